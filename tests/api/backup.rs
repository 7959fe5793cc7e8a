//! Online backups, restores and schema versions: the real binary, its CLI and a
//! committed fixture data directory.
//!
//! Why one file: the three tests share the load harness and the CLI runner at the top.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ChildServer, blocking_call, blocking_login as login};

const SKUS: [&str; 4] = ["B-1", "B-2", "B-3", "B-4"];
const INITIAL_STOCK: u64 = 1_000_000;
const CLIENTS: usize = 32;

/// `orderflow ARGS…`, to completion.
fn orderflow(args: &[&str]) -> Output {
    Command::new(ChildServer::binary())
        .args(args)
        .env_remove("ORDERFLOW_DATA_DIR")
        .output()
        .expect("orderflow runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its bytes: what "touching nothing" compares.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    out
}

/// An acknowledged order: its id and what it took from each SKU.
type Acked = (u64, Vec<(String, u64)>);

#[test]
fn a_backup_taken_under_checkout_load_and_an_import_restores_to_a_consistent_cut() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let base = server.base.clone();
    let admin = login(&base, "admin", ADMIN_PASSWORD);
    for sku in SKUS {
        let (s, b) = blocking_call(
            "POST",
            &format!("{base}/api/v1/products"),
            Some(&admin),
            Some(json!({"sku": sku, "name": sku, "price_cents": 100, "stock": INITIAL_STOCK})),
        );
        assert_eq!(s, 201, "{b}");
    }
    let tokens: Vec<String> = (0..CLIENTS)
        .map(|i| {
            let name = format!("backup{i}");
            let (s, b) = blocking_call(
                "POST",
                &format!("{base}/api/v1/auth/register"),
                None,
                Some(json!({"username": name, "email": format!("{name}@example.com"), "password": "password-123"})),
            );
            assert_eq!(s, 201, "{b}");
            login(&base, &name, "password-123")
        })
        .collect();

    // 32 clients order until told to stop; every 201 is noted.
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::new();
    let workers: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (client, base, acked, stop) = (
                client.clone(),
                base.clone(),
                Arc::clone(&acked),
                Arc::clone(&stop),
            );
            rt.spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let lines = vec![
                        (SKUS[(i + n) % SKUS.len()].to_owned(), 1 + (n % 3) as u64),
                        (SKUS[(i + n + 1) % SKUS.len()].to_owned(), 1),
                    ];
                    let items: Vec<Value> = lines
                        .iter()
                        .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
                        .collect();
                    let res = client
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(&token)
                        .json(&json!({ "items": items }))
                        .send()
                        .await
                        .unwrap();
                    let status = res.status().as_u16();
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(status, 201, "{body}");
                    acked
                        .lock()
                        .unwrap()
                        .push((body["id"].as_u64().unwrap(), lines));
                    n += 1;
                }
            })
        })
        .collect();
    let wait_for = |count: usize| {
        let started = Instant::now();
        while acked.lock().unwrap().len() < count {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no load reached the server"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // An import runs too: a products file large enough to be loading during the backup.
    let file = scratch.path().join("products.csv");
    let out = orderflow(&["gen", "products", "--count", "60000", "-o", path(&file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::rename(&file, inbox.path().join("products.csv")).unwrap();
    let started = Instant::now();
    loop {
        let (_, jobs) = blocking_call(
            "GET",
            &format!("{base}/api/v1/imports?limit=10"),
            Some(&admin),
            None,
        );
        if jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["rows_read"].as_u64().unwrap_or(0) > 0)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the import did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_for(200);

    // The backup over HTTP, while both go on.
    let before: Vec<u64> = acked.lock().unwrap().iter().map(|a| a.0).collect();
    let (status, manifest) = blocking_call(
        "POST",
        &format!("{base}/api/v1/admin/backup"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 201, "{manifest}");
    let during = acked.lock().unwrap().len();
    for key in [
        "file",
        "bytes",
        "sha256",
        "last_order_id",
        "event_seq",
        "created_at",
    ] {
        assert!(!manifest[key].is_null(), "{key} missing: {manifest}");
    }
    let backup_file = PathBuf::from(manifest["file"].as_str().unwrap());
    assert!(
        backup_file.starts_with(data.path().join("backups")),
        "{backup_file:?}"
    );
    let last = manifest["last_order_id"].as_u64().unwrap();
    assert!(
        before.iter().all(|id| *id <= last),
        "an order acknowledged before the backup began is missing from it"
    );

    // And one through the CLI, which asks the running service over its control socket.
    let cli_file = scratch.path().join("cli.redb");
    let out = orderflow(&[
        "backup",
        "--data-dir",
        path(data.path()),
        "--to",
        path(&cli_file),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a service runs on"),
        "{}",
        stderr(&out)
    );
    let cli_manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(cli_manifest["last_order_id"].as_u64().unwrap() >= last);

    // Orders go on after the backup; then everything stops.
    wait_for(during + 200);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        rt.block_on(w).unwrap();
    }
    assert!(server.terminate().success());
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.iter().any(|a| a.0 > last),
        "no order came after the backup"
    );

    // Both backups restore and verify clean.
    for (file, expect_last) in [(&backup_file, Some(last)), (&cli_file, None)] {
        let restored = scratch.path().join(format!(
            "restored-{}",
            file.file_name().unwrap().to_str().unwrap()
        ));
        let out = orderflow(&[
            "restore",
            "--from",
            path(file),
            "--data-dir",
            path(&restored),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = orderflow(&["verify", "--data-dir", path(&restored)]);
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["problems"], json!([]));
        if let Some(last) = expect_last {
            assert_eq!(report["orders_checked"].as_u64().unwrap(), last);
        }
    }

    // The HTTP backup holds exactly the orders up to its last id, and the stock
    // those orders left.
    let restored_inbox = tempfile::tempdir().unwrap();
    let server = ChildServer::start(
        &scratch.path().join(format!(
            "restored-{}",
            backup_file.file_name().unwrap().to_str().unwrap()
        )),
        restored_inbox.path(),
        &[],
    );
    let base = server.base.clone();
    let admin = login(&base, "admin", ADMIN_PASSWORD);
    let mut restored: BTreeMap<u64, Value> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/api/v1/orders?limit=200&cursor={c}"),
            None => format!("{base}/api/v1/orders?limit=200"),
        };
        let (status, page) = blocking_call("GET", &url, Some(&admin), None);
        assert_eq!(status, 200, "{page}");
        for o in page["items"].as_array().unwrap() {
            restored.insert(o["id"].as_u64().unwrap(), o.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // Every order in the backup was acknowledged (no other orders were placed), so
    // the backup's orders are exactly the acknowledged ones up to its last id.
    let expected: BTreeMap<u64, &Vec<(String, u64)>> = acked
        .iter()
        .filter(|a| a.0 <= last)
        .map(|a| (a.0, &a.1))
        .collect();
    assert_eq!(
        restored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the backup's orders are not those acknowledged up to {last}"
    );
    let mut sold: BTreeMap<String, u64> = BTreeMap::new();
    for (id, lines) in &expected {
        let stored: Vec<(String, u64)> = restored[id]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["sku"].as_str().unwrap().to_owned(),
                    l["quantity"].as_u64().unwrap(),
                )
            })
            .collect();
        let mut want = (*lines).clone();
        want.sort();
        let mut got = stored;
        got.sort();
        assert_eq!(got, want, "order {id}");
        for (sku, q) in *lines {
            *sold.entry(sku.clone()).or_default() += q;
        }
    }
    for sku in SKUS {
        let (_, p) = blocking_call(
            "GET",
            &format!("{base}/api/v1/products/{sku}"),
            Some(&admin),
            None,
        );
        assert_eq!(
            p["stock"].as_u64().unwrap(),
            INITIAL_STOCK - sold.get(sku).copied().unwrap_or(0),
            "{sku}"
        );
    }
}

/// A data directory with one product, stopped; and a backup of it taken directly
/// (no service running).
fn stopped_data_dir_and_backup(root: &Path) -> (PathBuf, PathBuf) {
    let data = root.join("data");
    let inbox = root.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let server = ChildServer::start(&data, &inbox, &[]);
    let admin = login(&server.base, "admin", ADMIN_PASSWORD);
    let (s, b) = blocking_call(
        "POST",
        &format!("{}/api/v1/products", server.base),
        Some(&admin),
        Some(json!({"sku": "R-1", "name": "R", "price_cents": 100, "stock": 5})),
    );
    assert_eq!(s, 201, "{b}");
    assert!(server.terminate().success());
    let file = root.join("direct.redb");
    let out = orderflow(&["backup", "--data-dir", path(&data), "--to", path(&file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("a service runs on"));
    (data, file)
}

/// Runs `orderflow ARGS…`, expecting exit 1 with `message` on standard error and
/// no file under `watched` changed.
fn refused(args: &[&str], message: &str, watched: &[&Path]) {
    let before: Vec<_> = watched.iter().map(|d| snapshot(d)).collect();
    let out = orderflow(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    assert!(
        stderr(&out).contains(message),
        "{args:?}: expected {message:?} in {}",
        stderr(&out)
    );
    let after: Vec<_> = watched.iter().map(|d| snapshot(d)).collect();
    assert!(before == after, "{args:?} changed files under {watched:?}");
}

#[test]
fn restores_refuse_a_full_directory_a_damaged_backup_and_a_newer_release() {
    let root = tempfile::tempdir().unwrap();
    let (data, file) = stopped_data_dir_and_backup(root.path());
    let manifest = PathBuf::from(format!("{}.manifest.json", file.display()));

    // Into a directory that holds anything: refused.
    let full = root.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("keep.txt"), b"mine").unwrap();
    refused(
        &["restore", "--from", path(&file), "--data-dir", path(&full)],
        "is not empty",
        &[&full],
    );
    // Over the live data directory: refused the same way.
    refused(
        &["restore", "--from", path(&file), "--data-dir", path(&data)],
        "is not empty",
        &[&data],
    );

    // One byte flipped in the middle of the backup: refused, nothing created.
    let damaged = root.path().join("damaged.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::copy(
        &manifest,
        PathBuf::from(format!("{}.manifest.json", damaged.display())),
    )
    .unwrap();
    let target = root.path().join("target");
    refused(
        &[
            "restore",
            "--from",
            path(&damaged),
            "--data-dir",
            path(&target),
        ],
        "does not match its manifest",
        &[&target],
    );
    assert!(!target.exists(), "a refused restore left {target:?} behind");

    // A backup made by a newer release (its manifest says so): refused.
    let newer = root.path().join("newer.redb");
    std::fs::copy(&file, &newer).unwrap();
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["schema_version"] = json!(99);
    std::fs::write(
        format!("{}.manifest.json", newer.display()),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
    refused(
        &[
            "restore",
            "--from",
            path(&newer),
            "--data-dir",
            path(&target),
        ],
        "newer than this build",
        &[&target],
    );
    assert!(!target.exists());

    // A data directory of a newer release: verify, serve and backup refuse it,
    // and its bytes stay as they were.
    {
        let db = redb::Database::open(data.join("orderflow.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(orderflow_actors::store::tables::META)
            .unwrap()
            .insert(orderflow_actors::store::tables::counter::SCHEMA, 99)
            .unwrap();
        txn.commit().unwrap();
    }
    refused(
        &["verify", "--data-dir", path(&data)],
        "newer than this build",
        &[&data],
    );
    refused(
        &[
            "backup",
            "--data-dir",
            path(&data),
            "--to",
            path(&root.path().join("b2.redb")),
        ],
        "newer than this build",
        &[&data],
    );
    assert!(!root.path().join("b2.redb").exists());
    let inbox = root.path().join("inbox");
    refused(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            path(&data),
            "--inbox",
            path(&inbox),
        ],
        "newer than this build",
        &[&data],
    );

    // And the good backup still restores.
    let out = orderflow(&[
        "restore",
        "--from",
        path(&file),
        "--data-dir",
        path(&target),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = orderflow(&["verify", "--data-dir", path(&target)]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The fixture: a data directory made by this release (gzipped), and what the test
/// expects to find in it.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-v1")
}

/// Writes the fixture afresh: `ORDERFLOW_WRITE_FIXTURE=1 cargo nextest run fixture`.
/// Only when the release's data really changes shape (and then the old fixture is
/// kept beside the new one, under its own name, to prove the upgrade).
fn rt_block<F: std::future::Future<Output = reqwest::Result<reqwest::Response>>>(
    f: F,
) -> reqwest::Response {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
        .unwrap()
}

fn write_fixture(dir: &Path) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let server = ChildServer::start(&data, &inbox, &["--webhook-allow-private"]);
    let base = server.base.clone();
    let admin = login(&base, "admin", ADMIN_PASSWORD);
    let post = |path: &str, token: &str, body: Value| {
        let (s, b) = blocking_call("POST", &format!("{base}{path}"), Some(token), Some(body));
        assert!(s == 200 || s == 201, "{path}: {s} {b}");
        b
    };
    for (sku, price, stock) in [("FX-1", 1250, 10), ("FX-2", 399, 50), ("FX-3", 99_999, 2)] {
        post(
            "/api/v1/products",
            &admin,
            json!({"sku": sku, "name": format!("Fixture {sku}"), "price_cents": price, "stock": stock, "category": "Fixtures"}),
        );
    }
    let (s, b) = blocking_call(
        "POST",
        &format!("{base}/api/v1/auth/register"),
        None,
        Some(
            json!({"username": "fixture", "email": "fixture@example.com", "password": "fixture-password-1"}),
        ),
    );
    assert_eq!(s, 201, "{b}");
    let customer = login(&base, "fixture", "fixture-password-1");
    let first = post(
        "/api/v1/orders",
        &customer,
        json!({"items": [{"sku": "FX-1", "quantity": 2}, {"sku": "FX-2", "quantity": 1}]}),
    );
    let second = post(
        "/api/v1/orders",
        &customer,
        json!({"items": [{"sku": "FX-3", "quantity": 1}]}),
    );
    post(
        &format!("/api/v1/orders/{}/status", first["id"]),
        &admin,
        json!({"status": "paid"}),
    );
    post(
        &format!("/api/v1/orders/{}/cancel", second["id"]),
        &admin,
        json!({}),
    );
    let hook = post(
        "/api/v1/webhooks",
        &admin,
        json!({"url": "http://127.0.0.1:9/fixture", "events": ["order.*"]}),
    );
    let (s, b) = blocking_call(
        "PATCH",
        &format!("{base}/api/v1/webhooks/{}", hook["id"]),
        Some(&admin),
        Some(json!({"status": "disabled"})),
    );
    assert_eq!(s, 200, "{b}");
    let key = post(
        "/api/v1/api-keys",
        &admin,
        json!({"name": "fixture", "scopes": ["orders:read", "events:read"]}),
    );
    // An import job with a reject (uploaded, so its file name is known).
    let upload = rt_block(
        reqwest::Client::new()
            .post(format!("{base}/api/v1/imports?name=fixture_products.csv"))
            .bearer_auth(&admin)
            .body("sku,name,price,stock\nFX-4,Imported,5.00,7\nFX-5,Bad price,-1,1\n")
            .send(),
    );
    assert_eq!(upload.status().as_u16(), 202);
    let job = loop {
        let (_, jobs) = blocking_call("GET", &format!("{base}/api/v1/imports"), Some(&admin), None);
        let job = jobs["items"][0].clone();
        if job["status"] == "completed" {
            break job;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (_, events) = blocking_call(
        "GET",
        &format!("{base}/api/v1/events?limit=1000"),
        Some(&admin),
        None,
    );
    assert!(server.terminate().success());

    std::fs::create_dir_all(dir).unwrap();
    let db = std::fs::read(data.join("orderflow.redb")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &db).unwrap();
    std::fs::write(dir.join("orderflow.redb.gz"), gz.finish().unwrap()).unwrap();
    let expect = json!({
        "api_key": key["key"],
        "orders": [first, second],
        "events": events["items"].as_array().unwrap().len(),
        "webhook_id": hook["id"],
        "job": job,
    });
    std::fs::write(
        dir.join("expect.json"),
        serde_json::to_vec_pretty(&expect).unwrap(),
    )
    .unwrap();
}

#[test]
fn the_fixture_data_directory_of_release_one_still_opens() {
    let dir = fixture_dir();
    if std::env::var_os("ORDERFLOW_WRITE_FIXTURE").is_some() {
        write_fixture(&dir);
    }
    let expect: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let inbox = root.path().join("inbox");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&inbox).unwrap();
    let mut db = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(
            std::fs::File::open(dir.join("orderflow.redb.gz")).unwrap(),
        ),
        &mut db,
    )
    .unwrap();
    std::fs::write(data.join("orderflow.redb"), db).unwrap();

    // Offline first: the ledger's verify reads every record.
    let out = orderflow(&["verify", "--data-dir", path(&data)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["orders_checked"], json!(2));

    // Then served: every kind of record reads back.
    let server = ChildServer::start(&data, &inbox, &[]);
    let base = server.base.clone();
    let get = |path: &str, token: &str| {
        let (s, b) = blocking_call("GET", &format!("{base}{path}"), Some(token), None);
        assert_eq!(s, 200, "{path}: {b}");
        b
    };
    let customer = login(&base, "fixture", "fixture-password-1");
    for order in expect["orders"].as_array().unwrap() {
        let stored = get(&format!("/api/v1/orders/{}", order["id"]), &customer);
        assert_eq!(stored["items"], order["items"]);
        assert_eq!(stored["total_cents"], order["total_cents"]);
    }
    let admin = login(&base, "admin", ADMIN_PASSWORD);
    let first = get(
        &format!("/api/v1/orders/{}", expect["orders"][0]["id"]),
        &admin,
    );
    assert_eq!(first["status"], "paid");
    let second = get(
        &format!("/api/v1/orders/{}", expect["orders"][1]["id"]),
        &admin,
    );
    assert_eq!(second["status"], "cancelled");
    let products = get("/api/v1/products?sort=price&limit=10", &admin);
    let skus: Vec<&str> = products["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["FX-2", "FX-4", "FX-1", "FX-3"]);
    assert_eq!(get("/api/v1/products/FX-1", &admin)["stock"], json!(8));
    assert_eq!(get("/api/v1/products/FX-3", &admin)["stock"], json!(2));
    // The API key's hash, the events and the webhook endpoint.
    let key = expect["api_key"].as_str().unwrap();
    let events = get("/api/v1/events?limit=1000", key);
    assert_eq!(
        events["items"].as_array().unwrap().len() as u64,
        expect["events"].as_u64().unwrap()
    );
    let hook = get(
        &format!("/api/v1/webhooks/{}", expect["webhook_id"]),
        &admin,
    );
    assert_eq!(hook["status"], "disabled");
    assert_eq!(hook["events"], json!(["order.*"]));
    // The import job, its counts and its reject.
    let job = &expect["job"];
    let stored = get(&format!("/api/v1/imports/{}", job["id"]), &admin);
    for key in [
        "file_name",
        "status",
        "rows_read",
        "rows_loaded",
        "rows_rejected",
        "bytes",
        "sha256",
    ] {
        assert_eq!(stored[key], job[key], "{key}");
    }
    // Written as a version 1 job row (before `bytes_read`): upgraded on read, a
    // completed job has read all its bytes.
    assert_eq!(stored["bytes_read"], job["bytes"]);
    assert_eq!(stored["bytes_total"], job["bytes"]);
    let rejects = get(&format!("/api/v1/imports/{}/rejects", job["id"]), &admin);
    assert_eq!(rejects["items"].as_array().unwrap().len(), 1, "{rejects}");
    assert_eq!(get("/api/v1/products/FX-4", &admin)["stock"], json!(7));
    let report = get("/api/v1/admin/ledger/verify", &admin);
    assert_eq!(report["problems"], json!([]));
}

/// The mode of `path`'s permission bits.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The data directory, its database, journal and control socket, the backups
/// directory, a backup and its manifest, and a restored copy are the owner's
/// alone, whatever the umask (CI's is 022: with it every one of them was
/// world-readable).
#[actix_web::test]
async fn data_backups_and_restores_are_readable_by_their_owner_only() {
    let app = crate::helpers::spawn_app().await;
    let data = app._data_dir.path();
    let r = app
        .post("/api/v1/admin/backup", Some(&app.admin_token), json!({}))
        .await;
    r.assert_status(201);
    let backup = PathBuf::from(r.body["file"].as_str().unwrap());
    let manifest = orderflow_actors::store::backup::manifest_path(&backup);
    assert_eq!(mode(data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("backups")), 0o700, "backups/");
    for file in [
        data.join("orderflow.redb"),
        data.join("ledger.journal"),
        backup.clone(),
        manifest,
    ] {
        assert_eq!(mode(&file), 0o600, "{file:?}");
    }
    if data.join("control.sock").exists() {
        assert_eq!(
            mode(&data.join("control.sock")),
            0o600,
            "the control socket"
        );
    }
    let scratch = tempfile::tempdir().unwrap();
    let restored = scratch.path().join("restored");
    orderflow_actors::store::backup::restore(&backup, &restored).unwrap();
    assert_eq!(mode(&restored), 0o700, "the restored data directory");
    assert_eq!(
        mode(&restored.join("orderflow.redb")),
        0o600,
        "the restored database"
    );
}

/// A client that connects to the control socket and says nothing once held it
/// for ever (one connection at a time, no read time-out): every `orderflow
/// backup` after it, and the service's shutdown, waited behind it. It now gets a
/// refusal after the read time-out, and the backup behind it is taken.
#[actix_web::test]
async fn an_idle_control_client_does_not_hold_backups_up() {
    let app = crate::helpers::spawn_app().await;
    let data = app._data_dir.path().to_owned();
    let socket = data.join(orderflow::control::SOCKET_NAME);
    let until = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < until, "no control socket");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let idle = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let to = scratch.path().join("behind-the-idle-one.redb");
    let asked = {
        let to = to.clone();
        std::thread::spawn(move || {
            orderflow::control::ask(&data, &orderflow::control::Request::Backup { to: Some(to) })
        })
    };
    let until = Instant::now() + Duration::from_secs(60);
    while !asked.is_finished() {
        assert!(
            Instant::now() < until,
            "the backup waited behind an idle control client"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = asked.join().unwrap().unwrap();
    assert!(
        matches!(reply, orderflow::control::Reply::Backup(_)),
        "{reply:?}"
    );
    assert!(to.exists());
    // The idle client was told why it was dropped.
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(idle), &mut answer).unwrap();
    assert!(answer.contains("no request line"), "{answer}");
}
