//! Why one file: the inbox contract's tests, rule by rule, in the contract's order.

use std::io::Write;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, fixture, spawn_app, spawn_app_with};

fn codes(rejects: &[Value]) -> Vec<(u64, String)> {
    rejects
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn the_original_supplier_data_json_loads_two_and_rejects_the_negative_price() {
    let app = spawn_app().await;
    app.drop_file("supplier_data.json", &fixture("supplier_data.json"));
    let job = app.job_for("supplier_data.json").await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (
            job["rows_read"].as_u64(),
            job["rows_loaded"].as_u64(),
            job["rows_rejected"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(job["kind"], "products", "read from the columns");
    let rejects = app.rejects_of(&job).await;
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["line"], 4);
    assert!(
        rejects[0]["reason"].as_str().unwrap().contains("-10.00"),
        "{}",
        rejects[0]
    );
    assert!(
        rejects[0]["raw"]
            .as_str()
            .unwrap()
            .contains("Cavo Ethernet errato")
    );

    let processed = app.inbox.path().join("processed");
    assert!(processed.join("supplier_data.json").exists());
    let report: Value = serde_json::from_slice(
        &std::fs::read(processed.join("supplier_data.json.report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["job"]["rows_loaded"], 2);
    assert_eq!(
        report["rejects_by_reason"],
        json!({"price_not_positive": 1})
    );
    assert!(report["duration_ms"].is_u64() && report["rows_per_second"].is_number());
    let rejects_csv =
        std::fs::read_to_string(processed.join("supplier_data.json.rejects.csv")).unwrap();
    assert!(
        rejects_csv.starts_with("line,reason,raw\n4,price must be greater than 0 (got -10.00),"),
        "{rejects_csv}"
    );

    let list = app.get("/api/v1/products", None).await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Router Cisco ISR", "Switch Microtik"]);
    let switch = &list.body["items"][1];
    assert_eq!(
        switch["price_cents"], 12050,
        "120.50 without float rounding"
    );
    assert_eq!(switch["category"], "Networking");
}

#[actix_web::test]
async fn a_dirty_csv_gives_exact_counts_and_reasons() {
    let app = spawn_app().await;
    app.drop_file("products_dirty.csv", &fixture("products_dirty.csv"));
    let job = app.job_for("products_dirty.csv").await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["rows_read"], 18);
    assert_eq!(job["rows_loaded"], 8);
    assert_eq!(job["rows_rejected"], 10);
    let rejects = app.rejects_of(&job).await;
    let got = codes(&rejects);
    let expect_prefix = [
        (10, "name is missing"),
        (11, "price is missing"),
        (12, "price must be greater than 0 (got -3,00)"),
        (13, "price must be greater than 0 (got 0,00)"),
        (14, "currency USD is not the store currency EUR"),
        (15, "name must be at most 200 characters (got 201)"),
        (16, "sku must be at most 64 characters"),
        (17, "price '1,234' is ambiguous"),
        (18, "stock must not be negative"),
        (20, "row has 8 fields, the header has 6"),
    ];
    assert_eq!(got.len(), expect_prefix.len(), "{got:?}");
    for ((line, reason), (want_line, want)) in got.iter().zip(expect_prefix) {
        assert_eq!(*line, want_line, "{got:?}");
        assert!(
            reason.starts_with(want),
            "line {line}: {reason:?} should start with {want:?}"
        );
    }
    let report: Value = serde_json::from_slice(
        &std::fs::read(
            app.inbox
                .path()
                .join("processed/products_dirty.csv.report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(report["rejects_by_reason"]["price_not_positive"], 2);

    // Every notation became the right number of cents.
    for (sku, cents) in [
        ("D-2", 123_456),
        ("D-3", 123_456),
        ("D-4", 1250),
        ("D-5", 1250),
        ("D-6", 123_456),
    ] {
        assert_eq!(app.product(sku).await["price_cents"], cents, "{sku}");
    }
    let d3 = app.product("D-3").await;
    assert_eq!(d3["description"], "line one\nline two");
    assert_eq!(app.product("D-2").await["name"], "Router; dual band");
    // The duplicate SKU: the last row wins.
    let d1 = app.product("D-1").await;
    assert_eq!(
        (
            d1["name"].as_str(),
            d1["price_cents"].as_u64(),
            d1["stock"].as_u64()
        ),
        (Some("Cable cat6 (new name)"), Some(1300), Some(20))
    );
    let m = app
        .get("/api/v1/products/D-1/movements", Some(&app.admin_token))
        .await;
    let kinds: Vec<&str> = m.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["import", "import"]);
    assert_eq!(
        m.body["items"][0]["source"],
        format!("import:{}", job["id"])
    );
    // A row without a SKU gets a derived one.
    let all = app.get("/api/v1/products?q=nameless", None).await;
    assert!(
        all.body["items"][0]["sku"]
            .as_str()
            .unwrap()
            .starts_with("nameless-sku-derives-")
    );
    assert_eq!(
        app.get("/api/v1/products?limit=200", None).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
}

#[actix_web::test]
async fn reimporting_the_same_rows_updates_instead_of_duplicating() {
    let app = spawn_app().await;
    let rows = b"name,price\nAlpha,1.00\nBeta,2.00\n";
    app.drop_file("products_a.csv", rows);
    app.job_for("products_a.csv").await;
    // Same rows, other bytes (a trailing comment line is another product).
    app.drop_file(
        "products_b.csv",
        b"name,price\nAlpha,1.50\nBeta,2.00\nGamma,3.00\n",
    );
    let job = app.job_for("products_b.csv").await;
    assert_eq!(job["rows_loaded"], 3);
    let items = app.get("/api/v1/products", None).await.body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items.len(), 3, "derived SKUs matched the earlier import");
    assert_eq!(
        items.iter().find(|p| p["name"] == "Alpha").unwrap()["price_cents"],
        150
    );
}

#[actix_web::test]
async fn the_same_bytes_twice_are_a_duplicate() {
    let app = spawn_app().await;
    let bytes = b"sku,name,price,stock\nDUP-1,Thing,1.00,5\n";
    app.drop_file("products_first.csv", bytes);
    assert_eq!(
        app.job_for("products_first.csv").await["status"],
        "completed"
    );
    app.drop_file("products_again.csv", bytes);
    let job = app.job_for("products_again.csv").await;
    assert_eq!(job["status"], "duplicate");
    assert_eq!(job["rows_loaded"], 0);
    assert!(job["duplicate_of"].is_u64());
    assert!(
        app.inbox
            .path()
            .join("processed/products_again.csv.report.json")
            .exists()
    );
    let m = app
        .get("/api/v1/products/DUP-1/movements", Some(&app.admin_token))
        .await;
    assert_eq!(m.body["items"].as_array().unwrap().len(), 1, "loaded once");
    // Dropping a file with a name already in processed/ keeps both, with a suffix.
    app.drop_file("products_first.csv", b"sku,name,price\nDUP-2,Other,2.00\n");
    let report = app
        .inbox
        .path()
        .join("processed/products_first-1.csv.report.json");
    let started = std::time::Instant::now();
    while !report.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "second products_first.csv not processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.inbox
            .path()
            .join("processed/products_first-1.csv")
            .exists()
    );
    let report: Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(report["job"]["status"], "completed");
    assert_eq!(report["job"]["file_name"], "products_first.csv");
    assert_eq!(app.product("DUP-2").await["price_cents"], 200);
}

#[actix_web::test]
async fn a_part_file_written_slowly_is_loaded_once_complete() {
    let app = spawn_app().await;
    let part = app.inbox.path().join("products_slow.csv.part");
    let mut f = std::fs::File::create(&part).unwrap();
    writeln!(f, "sku,name,price").unwrap();
    for i in 0..5 {
        writeln!(f, "SLOW-{i},Slow {i},1.00").unwrap();
        f.flush().unwrap();
        // Longer than the settle period: only the .part suffix keeps it waiting.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    drop(f);
    assert!(
        app.get("/api/v1/products", None).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    std::fs::rename(&part, app.inbox.path().join("products_slow.csv")).unwrap();
    let job = app.job_for("products_slow.csv").await;
    assert_eq!(
        (job["rows_read"].as_u64(), job["rows_loaded"].as_u64()),
        (Some(5), Some(5))
    );
}

#[actix_web::test]
async fn broken_files_fail_whole_with_a_reason() {
    let app = spawn_app().await;
    app.drop_file("notes.txt", b"hello\n");
    app.drop_file("stuff.csv", b"colour,size\nred,9\n");
    app.drop_file("products_bad.csv.gz", b"this is not gzip\n");
    app.drop_file("products_latin1.csv", b"name,price\ncaf\xe9,1.00\n");
    app.drop_file("products_object.json", b"{\"name\": \"x\", \"price\": 1}\n");
    app.drop_file("products_noheader.csv", b"\n\n");
    for (name, reason) in [
        ("notes.txt", "unknown format"),
        ("stuff.csv", "unknown kind"),
        ("products_bad.csv.gz", "bad gzip"),
        ("products_latin1.csv", "not UTF-8"),
        ("products_object.json", "not an array"),
        ("products_noheader.csv", "no header"),
    ] {
        let job = app.job_for(name).await;
        assert_eq!(job["status"], "failed", "{name}: {job}");
        assert!(
            job["error"].as_str().unwrap().contains(reason),
            "{name}: {}",
            job["error"]
        );
        assert_eq!(job["rows_loaded"], 0);
        let failed = app.inbox.path().join("failed");
        assert!(failed.join(name).exists(), "{name} moved to failed/");
        let report: Value = serde_json::from_slice(
            &std::fs::read(failed.join(format!("{name}.report.json"))).unwrap(),
        )
        .unwrap();
        assert!(report["job"]["error"].as_str().unwrap().contains(reason));
    }
    assert!(
        app.get("/api/v1/products", None).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[actix_web::test]
async fn a_truncated_json_array_waits_then_fails() {
    let app = spawn_app_with(|a| a.truncated_wait_secs = 2).await;
    app.drop_file(
        "products_cut.json",
        b"[{\"name\": \"a\", \"price\": 1},\n{\"name\": \"b\", \"pri",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.inbox.path().join("products_cut.json").exists(),
        "still waiting to be completed"
    );
    let job = app.job_for("products_cut.json").await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("looks truncated"),
        "{job}"
    );
}

#[actix_web::test]
async fn a_truncated_file_that_gets_completed_loads() {
    let app = spawn_app_with(|a| a.truncated_wait_secs = 30).await;
    let path = app.inbox.path().join("products_growing.json");
    std::fs::write(
        &path,
        b"[{\"name\": \"A\", \"price\": \"1.00\"},\n {\"name\": \"B\", \"price\": \"2.0",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(path.exists());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"0\"}]\n").unwrap();
    drop(f);
    let job = app.job_for("products_growing.json").await;
    assert_eq!(job["rows_loaded"], 2);
    let b = app.get("/api/v1/products?q=b", None).await;
    assert_eq!(b.body["items"][0]["price_cents"], 200);
}

#[actix_web::test]
async fn gzip_json_lines_load() {
    let app = spawn_app().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"sku\":\"GZ-1\",\"name\":\"Zipped\",\"price\":120.50,\"stock\":3}\n{\"sku\":\"GZ-2\",\"name\":\"Also\",\"price\":\"7,25\"}\n").unwrap();
    app.drop_file("products_feed.jsonl.gz", &gz.finish().unwrap());
    let job = app.job_for("products_feed.jsonl.gz").await;
    assert_eq!(job["format"], "jsonl.gz");
    assert_eq!(job["rows_loaded"], 2);
    assert_eq!(app.product("GZ-1").await["price_cents"], 12050);
    assert_eq!(app.product("GZ-1").await["stock"], 3);
    assert_eq!(app.product("GZ-2").await["price_cents"], 725);
}

#[actix_web::test]
async fn orders_files_load_whole_orders_through_the_ledger_rules() {
    let app = spawn_app().await;
    app.register("alice").await.assert_status(201);
    app.register("bob").await.assert_status(201);
    let admin = Some(app.admin_token.as_str());
    app.post(
        "/api/v1/products",
        admin,
        json!({"sku": "A", "name": "Apple", "price_cents": 999, "stock": 5}),
    )
    .await
    .assert_status(201);
    app.post(
        "/api/v1/products",
        admin,
        json!({"sku": "B", "name": "Banana", "price_cents": 250, "stock": 2}),
    )
    .await
    .assert_status(201);
    let csv = "order_ref,customer,sku,quantity,unit_price\n\
               O-1,alice,A,2,\n\
               O-1,alice,B,1,\n\
               O-2,bob@example.com,A,1,9.99\n\
               O-3,carol,A,1,\n\
               O-4,alice,B,5,\n\
               O-5,alice,A,0,\n\
               O-5,alice,B,1,\n\
               O-6,bob,A,1,5.00\n\
               O-1,alice,A,1,\n";
    app.drop_file("orders_day1.csv", csv.as_bytes());
    let job = app.job_for("orders_day1.csv").await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (
            job["rows_read"].as_u64(),
            job["rows_loaded"].as_u64(),
            job["rows_rejected"].as_u64()
        ),
        (Some(9), Some(3), Some(6))
    );
    let got = codes(&app.rejects_of(&job).await);
    let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [5, 6, 7, 8, 9, 10]);
    assert!(got[0].1.contains("no customer carol"), "{got:?}");
    assert!(
        got[1]
            .1
            .contains("not enough stock for B (requested 5, available 1)"),
        "{got:?}"
    );
    assert!(
        got[2].1.contains("quantity must be between 1 and 1000"),
        "{got:?}"
    );
    assert!(got[3].1.contains("O-5: line 7 was rejected"), "{got:?}");
    assert!(
        got[4]
            .1
            .contains("unit price of A is 500 cents, the catalog says 999"),
        "{got:?}"
    );
    assert!(got[5].1.contains("O-1: already in the ledger"), "{got:?}");
    assert_eq!(app.stock_of("A").await, 2);
    assert_eq!(app.stock_of("B").await, 1);
    let orders = app.get("/api/v1/orders", admin).await;
    let imported: Vec<&Value> = orders.body["items"].as_array().unwrap().iter().collect();
    assert_eq!(imported.len(), 2);
    assert_eq!(imported[1]["external_ref"], "O-1");
    assert_eq!(imported[1]["source"], format!("import:{}", job["id"]));
    assert_eq!(imported[1]["total_cents"], 2 * 999 + 250);

    // The same orders again (other bytes): nothing counted twice.
    app.drop_file("orders_day1_resent.csv", format!("{csv}\n").as_bytes());
    let again = app.job_for("orders_day1_resent.csv").await;
    assert_eq!(again["status"], "completed");
    assert_eq!(again["rows_loaded"], 0);
    assert_eq!(
        app.get("/api/v1/orders", admin).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(app.verify_ledger().await["problems"], json!([]));
}

#[actix_web::test]
async fn inventory_feeds_set_levels_through_adjustments() {
    let app = spawn_app().await;
    app.create_product("INV-1", 100, 7).await;
    app.drop_file(
        "inventory_today.csv",
        b"sku,stock\nINV-1,42\nNOPE,5\nINV-1,x\n",
    );
    let job = app.job_for("inventory_today.csv").await;
    assert_eq!(
        (job["rows_loaded"].as_u64(), job["rows_rejected"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(app.stock_of("INV-1").await, 42);
    let m = app
        .get("/api/v1/products/INV-1/movements", Some(&app.admin_token))
        .await;
    assert_eq!(m.body["items"][1]["kind"], "adjustment");
    assert_eq!(m.body["items"][1]["delta"], 35);
    let got = codes(&app.rejects_of(&job).await);
    assert!(got[0].1.contains("unknown or archived SKU NOPE"));
    assert!(got[1].1.contains("stock 'x' is not a whole number"));
}

async fn upload(
    app: &TestApp,
    query: &str,
    token: &str,
    body: &'static [u8],
) -> crate::helpers::Reply {
    app.post_raw(&format!("/api/v1/imports?{query}"), Some(token), None, body)
        .await
}

#[actix_web::test]
async fn uploads_enter_the_same_pipeline() {
    let app = spawn_app().await;
    let r = upload(
        &app,
        "name=products_up.csv",
        &app.admin_token,
        b"sku,name,price\nUP-1,Uploaded,3.50\nUP-2,,1\n",
    )
    .await;
    r.assert_status(202);
    let id = r.body["job"]["id"].as_u64().unwrap();
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/imports/{id}")
    );
    let job = app.job_for("products_up.csv").await;
    assert_eq!(job["id"], id);
    assert_eq!(
        (job["rows_loaded"].as_u64(), job["rows_rejected"].as_u64()),
        (Some(1), Some(1))
    );
    let one = app
        .get(&format!("/api/v1/imports/{id}"), Some(&app.admin_token))
        .await;
    assert_eq!(one.body["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(app.product("UP-1").await["price_cents"], 350);
    app.get("/api/v1/imports/99999", Some(&app.admin_token))
        .await
        .assert_problem(404, "not-found");
    app.get("/api/v1/imports/99999/rejects", Some(&app.admin_token))
        .await
        .assert_problem(404, "not-found");
}

#[actix_web::test]
async fn a_dry_run_reports_without_loading() {
    let app = spawn_app().await;
    let r = upload(
        &app,
        "name=products_check.csv&dry_run=true",
        &app.admin_token,
        b"sku,name,price\nDRY-1,Would load,1.00\nDRY-2,Also,2.00\nDRY-3,,0\n",
    )
    .await;
    r.assert_status(202);
    assert_eq!(r.body["job"]["dry_run"], true);
    let job = app.job_for("products_check.csv").await;
    assert_eq!(job["status"], "completed");
    assert_eq!(
        (job["rows_loaded"].as_u64(), job["rows_rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(
        app.get("/api/v1/products", None).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing loaded"
    );
    app.get("/api/v1/products/DRY-1", None)
        .await
        .assert_problem(404, "not-found");
    // A dry run does not make the real load a duplicate.
    let r = upload(
        &app,
        "name=products_real.csv",
        &app.admin_token,
        b"sku,name,price\nDRY-1,Would load,1.00\nDRY-2,Also,2.00\nDRY-3,,0\n",
    )
    .await;
    r.assert_status(202);
    assert_eq!(app.job_for("products_real.csv").await["rows_loaded"], 2);
}

#[actix_web::test]
async fn hostile_upload_names_and_callers_are_refused() {
    let app = spawn_app().await;
    let (_, customer) = app.customer("mallory").await;
    upload(&app, "name=products.csv", &customer, b"name,price\nx,1\n")
        .await
        .assert_problem(403, "forbidden");
    for (query, field) in [
        ("name=../../escape.csv", "name"),
        ("name=..%2F..%2Fescape.csv", "name"),
        ("name=%2Ftmp%2Fproducts.csv", "name"),
        ("name=.products.csv", "name"),
        ("name=products.csv.part", "name"),
        ("name=notes.txt", "name"),
        ("", "name"),
        ("name=products.csv&dry_run=maybe", "dry_run"),
        ("name=products.csv&owner=1", "owner"),
    ] {
        upload(&app, query, &app.admin_token, b"name,price\nx,1\n")
            .await
            .assert_invalid(field);
    }
    let parent = app.inbox.path().parent().unwrap();
    assert!(!parent.join("escape.csv").exists());
    assert!(
        !std::path::Path::new("/tmp/products.csv").exists()
            || std::fs::metadata("/tmp/products.csv").unwrap().len() != 15
    );
    let jobs = app.get("/api/v1/imports", Some(&app.admin_token)).await;
    assert_eq!(jobs.body["items"], json!([]), "no job was created");
    assert_eq!(
        std::fs::read_dir(app.inbox.path().join(".uploads"))
            .unwrap()
            .count(),
        0
    );
    app.call(
        Method::DELETE,
        "/api/v1/imports",
        Some(&app.admin_token),
        None,
    )
    .await
    .assert_problem(405, "method-not-allowed");
}

/// A products file with contract §7's optional columns: each row keeps its
/// weight, tax class and barcode; a barcode whose check digit is wrong, a tax
/// class out of its alphabet and a negative weight are rejects with their own
/// codes, and a row without the columns takes the defaults.
#[actix_web::test]
async fn a_products_file_carries_weight_tax_class_and_barcode() {
    let app = spawn_app().await;
    app.drop_file(
        "products_attrs.csv",
        b"sku,name,price,weight_grams,tax_class,barcode\n\
          TEE-S,Tee S,19.00,170,reduced_7,4006381333931\n\
          TEE-M,Tee M,19.00,,,\n\
          BAD-1,Bad barcode,1.00,1,standard,4006381333932\n\
          BAD-2,Bad class,1.00,1,Reduced,\n\
          BAD-3,Bad weight,1.00,-5,,\n",
    );
    let job = app.job_for("products_attrs.csv").await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (job["rows_loaded"].as_u64(), job["rows_rejected"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(
        job["rejects_by_reason"],
        json!({"invalid_barcode": 1, "invalid_tax_class": 1, "invalid_weight": 1})
    );
    let s = app.product("TEE-S").await;
    assert_eq!(
        (
            s["weight_grams"].as_u64(),
            s["tax_class"].as_str(),
            s["barcode"].as_str()
        ),
        (Some(170), Some("reduced_7"), Some("4006381333931"))
    );
    let m = app.product("TEE-M").await;
    assert_eq!(
        (
            m["weight_grams"].as_u64(),
            m["tax_class"].as_str(),
            m["barcode"].as_str()
        ),
        (Some(0), Some("standard"), None)
    );
}

/// A products file with contract §7's group and option columns: variants load
/// into their group; a row repeating a variant's values (also within the file),
/// one with other option names than its group, options without a group, a name
/// without its value and a handle that is not one are rejects with their own
/// codes and the line they came from; a row without a group takes its product
/// out of the group, freeing its values for a row after it.
#[actix_web::test]
async fn a_products_file_puts_variants_in_groups_and_refuses_repeats() {
    let app = spawn_app().await;
    app.drop_file(
        "products_variants.csv",
        b"sku,name,price,group,option1_name,option1_value,option2_name,option2_value\n\
          TEE-S-B,Tee,19.00,tee,Size,S,Color,Black\n\
          TEE-M-B,Tee,19.00,tee,Size,M,Color,Black\n\
          TEE-DUP,Tee,19.00,tee,color,black,size,m\n\
          TEE-X,Tee,19.00,tee,Size,XL,,\n\
          LONE-1,Lone,1.00,,Size,M,,\n\
          HALF-1,Half,1.00,half,Size,,,\n\
          BAD-G,Bad,1.00,Not A Handle,,,,\n\
          TEE-M-B,Tee,19.00,,,,,\n\
          TEE-M-B2,Tee,19.00,tee,Size,M,Color,Black\n",
    );
    let job = app.job_for("products_variants.csv").await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["rejects_by_reason"],
        json!({"variant_exists": 1, "variant_options": 1, "invalid_options": 2, "invalid_group": 1}),
        "{job}"
    );
    assert_eq!(
        (job["rows_loaded"].as_u64(), job["rows_rejected"].as_u64()),
        (Some(4), Some(5))
    );
    let rejects = app.rejects_of(&job).await;
    let dup = rejects.iter().find(|r| r["line"] == 4).unwrap();
    assert!(dup["reason"].as_str().unwrap().contains("TEE-M-B"), "{dup}");
    assert!(
        dup["raw"].as_str().unwrap().starts_with("TEE-DUP,"),
        "{dup}"
    );
    let group = app.get("/api/v1/groups/tee", None).await;
    let mut skus: Vec<&str> = group.body["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    skus.sort();
    assert_eq!(skus, ["TEE-M-B2", "TEE-S-B"]);
    assert_eq!(app.product("TEE-M-B").await["group"], Value::Null);
    assert_eq!(
        app.product("TEE-S-B").await["options"],
        json!({"Size": "S", "Color": "Black"})
    );
    let report = app.verify_ledger().await;
    assert_eq!(report["problems"], json!([]), "{report}");
}

/// Shopify's own sample exports (`tests/fixtures/shopify`, real files): every
/// handle is a group, continuation rows inherit the title, type and option names,
/// image-only rows are skipped, `Default Title` means no options, and variants
/// without a SKU get one from the handle and their values.
#[actix_web::test]
async fn a_real_shopify_export_loads_as_groups_of_variants() {
    let app = spawn_app().await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/shopify");
    for (name, file) in [
        ("products_jewelery.csv", "jewelery.csv"),
        ("products_apparel.csv", "apparel.csv"),
    ] {
        app.drop_file(name, &std::fs::read(format!("{fixtures}/{file}")).unwrap());
        let job = app.job_for(name).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["rows_rejected"], 0, "{job}");
    }
    let jewelery = app.job_for("products_jewelery.csv").await;
    // 41 records: 23 variants and 18 rows that only carry an image.
    assert_eq!(
        (
            jewelery["rows_read"].as_u64(),
            jewelery["rows_loaded"].as_u64()
        ),
        (Some(41), Some(23))
    );
    let chain = app.get("/api/v1/groups/chain-bracelet", None).await;
    chain.assert_status(200);
    assert_eq!(chain.body["name"], "7 Shakra Bracelet");
    assert_eq!(chain.body["category"], "Bracelet");
    // One batch creates both in the same millisecond: the group lists them, and
    // the values, in SKU order (docs/decisions.md).
    assert_eq!(
        chain.body["options"],
        json!([{"name": "Color", "values": ["Black", "Blue"]}])
    );
    let stock: Vec<(String, u64, u64)> = chain.body["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["stock"].as_u64().unwrap(),
                v["price_cents"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stock,
        [
            ("7 Shakra Bracelet".into(), 0, 4299),
            ("7 Shakra Bracelet".into(), 1, 4299)
        ]
    );
    let gem = app.get("/api/v1/groups/gemstone", None).await;
    assert_eq!(
        gem.body["options"],
        json!([{"name": "Colour", "values": ["Blue", "Purple"]}])
    );
    let earrings = app.get("/api/v1/groups/boho-earrings", None).await;
    let only = &earrings.body["variants"][0];
    assert_eq!(
        (only["options"].clone(), only["weight_grams"].clone()),
        (json!({}), json!(28))
    );
    assert!(
        only["sku"].as_str().unwrap().starts_with("boho-earrings-"),
        "{only}"
    );
    let varsity = app.get("/api/v1/groups/classic-varsity-top", None).await;
    assert_eq!(
        varsity.body["options"],
        json!([{"name": "Size", "values": ["Large", "Medium", "Small"]}])
    );
    assert_eq!(varsity.body["price_min_cents"], 6000);
    let tree = app.get("/api/v1/categories", None).await;
    let bracelet = tree
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "Bracelet")
        .unwrap();
    assert_eq!(bracelet["product_count"], 7, "{bracelet}");
    let report = app.verify_ledger().await;
    assert_eq!(report["problems"], json!([]), "{report}");
}

/// A messy export: a draft product and image rows are skipped, a barcode a
/// spreadsheet mangled is left out, grams are rounded, the body's HTML becomes
/// text, `Product Category` wins over `Type`, a repeated variant and a handle that
/// is not one are rejects with their lines.
#[actix_web::test]
async fn a_messy_shopify_export_keeps_what_it_can() {
    let app = spawn_app().await;
    app.drop_file(
        "products_shop.csv",
        "Handle,Title,Body (HTML),Type,Product Category,Option1 Name,Option1 Value,Option2 Name,Option2 Value,\
Variant SKU,Variant Grams,Variant Inventory Qty,Variant Price,Variant Barcode,Image Src,Status\n\
tee,Tee,\"<p>Soft &amp; <b>warm</b></p>\",Shirts,Apparel > Tops > T-Shirts,Size,S,Color,Black,TEE-S-B,170.6,5,19.00,3.65275E+11,,active\n\
tee,,,,,,M,,Black,TEE-M-B,170.4,-2,19.00,4006381333931,,\n\
tee,,,,,,,,,,,,,,https://example.test/tee.jpg,\n\
tee,,,,,,M,,black,TEE-M-B2,170,1,19.00,,,\n\
draft-mug,Mug,,Kitchen,,Title,Default Title,,,MUG-1,300,4,9.00,,,draft\n\
Bad Handle,Bad,,,,Title,Default Title,,,BAD-1,0,1,1.00,,,active\n"
            .as_bytes(),
    );
    let job = app.job_for("products_shop.csv").await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (
            job["rows_read"].as_u64(),
            job["rows_loaded"].as_u64(),
            job["rows_rejected"].as_u64()
        ),
        (Some(6), Some(2), Some(2)),
        "{job}"
    );
    assert_eq!(
        job["rejects_by_reason"],
        json!({"variant_exists": 1, "invalid_group": 1}),
        "{job}"
    );
    assert_eq!(job["warnings"], 1, "the mangled barcode is counted: {job}");
    let s = app.product("TEE-S-B").await;
    assert_eq!(s["description"], "Soft & warm");
    assert_eq!(s["category"], "Apparel > Tops > T-Shirts");
    assert_eq!(
        (
            s["weight_grams"].clone(),
            s["barcode"].clone(),
            s["stock"].clone()
        ),
        (json!(171), Value::Null, json!(5))
    );
    let m = app.product("TEE-M-B").await;
    assert_eq!(
        (
            m["weight_grams"].clone(),
            m["barcode"].clone(),
            m["stock"].clone()
        ),
        (json!(170), json!("4006381333931"), json!(0))
    );
    assert_eq!(m["options"], json!({"Size": "M", "Color": "Black"}));
    assert_eq!(m["name"], "Tee");
    app.get("/api/v1/products/MUG-1", None)
        .await
        .assert_status(404);
    let rejects = app.rejects_of(&job).await;
    let lines: Vec<u64> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [5, 7]);
}
