//! Why one file: the catalog contract's tests (§2 and §7), read in the contract's order.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[actix_web::test]
async fn admin_creates_and_anyone_reads() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/products",
            Some(&app.admin_token),
            json!({"sku": "RT-1", "name": "  Router Cisco ISR ", "price_cents": 45000, "stock": 3, "category": "Networking", "description": "fast"}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.header("location"), Some("/api/v1/products/RT-1"));
    let p = app.get("/api/v1/products/RT-1", None).await;
    p.assert_status(200);
    assert_eq!(p.body["name"], "Router Cisco ISR", "trimmed");
    assert_eq!(p.body["price_cents"], 45000);
    assert_eq!(p.body["currency"], "EUR");
    assert_eq!(p.body["stock"], 3);
    assert_eq!(p.body["in_stock"], true);
    assert_eq!(p.body["category"], "Networking");
    assert_eq!(p.body["description"], "fast");
    for key in ["created_at", "updated_at"] {
        assert!(p.body[key].as_str().unwrap().ends_with('Z'));
    }
    // The initial stock is a receipt movement in the ledger.
    let m = app
        .get("/api/v1/products/RT-1/movements", Some(&app.admin_token))
        .await;
    m.assert_status(200);
    assert_eq!(m.body["items"][0]["kind"], "receipt");
    assert_eq!(m.body["items"][0]["delta"], 3);
}

#[actix_web::test]
async fn unknown_sku_is_404_and_duplicate_sku_is_409() {
    let app = spawn_app().await;
    app.get("/api/v1/products/NOPE", None)
        .await
        .assert_problem(404, "not-found");
    app.get("/api/v1/products/bad%20sku", None)
        .await
        .assert_problem(404, "not-found");
    app.create_product("A-1", 100, 0).await;
    let r = app
        .post(
            "/api/v1/products",
            Some(&app.admin_token),
            json!({"sku": "A-1", "name": "x", "price_cents": 5}),
        )
        .await;
    r.assert_problem(409, "product-exists");
}

#[actix_web::test]
async fn create_names_each_bad_field() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    let cases = [
        (json!({"sku": "", "name": "x", "price_cents": 1}), "sku"),
        (
            json!({"sku": "a".repeat(65), "name": "x", "price_cents": 1}),
            "sku",
        ),
        (json!({"sku": "a/b", "name": "x", "price_cents": 1}), "sku"),
        (json!({"sku": "A", "name": " ", "price_cents": 1}), "name"),
        (
            json!({"sku": "A", "name": "n".repeat(201), "price_cents": 1}),
            "name",
        ),
        (
            json!({"sku": "A", "name": "x", "price_cents": 0}),
            "price_cents",
        ),
        (
            json!({"sku": "A", "name": "x", "price_cents": 100_000_000_001u64}),
            "price_cents",
        ),
        (
            json!({"sku": "A", "name": "x", "price_cents": 12.5}),
            "price_cents",
        ),
        (
            json!({"sku": "A", "name": "x", "price_cents": "12"}),
            "price_cents",
        ),
        (
            json!({"sku": "A", "name": "x", "price_cents": 1, "stock": -1}),
            "stock",
        ),
        (
            json!({"sku": "A", "name": "x", "price_cents": 1, "stock": 1_000_000_001u64}),
            "stock",
        ),
        (
            json!({"sku": "A", "name": "x", "price_cents": 1, "currency": "USD"}),
            "currency",
        ),
        (
            json!({"sku": "A", "name": "x", "price_cents": 1, "id": 5}),
            "id",
        ),
        (json!({"name": "x", "price_cents": 1}), "sku"),
        (json!({"sku": "A", "price_cents": 1}), "name"),
        (json!({"sku": "A", "name": "x"}), "price_cents"),
    ];
    for (body, field) in cases {
        app.post("/api/v1/products", t, body)
            .await
            .assert_invalid(field);
    }
    // The limits themselves are accepted.
    let ok = json!({"sku": "a".repeat(64), "name": "n".repeat(200), "price_cents": 100_000_000_000u64, "stock": 1_000_000_000u64});
    app.post("/api/v1/products", t, ok).await.assert_status(201);
    let list = app.get("/api/v1/products", None).await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "no invalid product was created"
    );
}

#[actix_web::test]
async fn customers_and_strangers_cannot_write_the_catalog() {
    let app = spawn_app().await;
    let (_, token) = app.customer("alice").await;
    let body = json!({"sku": "A", "name": "x", "price_cents": 1});
    app.post("/api/v1/products", Some(&token), body.clone())
        .await
        .assert_problem(403, "forbidden");
    app.post("/api/v1/products", None, body.clone())
        .await
        .assert_problem(401, "unauthorized");
    app.call(
        Method::PUT,
        "/api/v1/products/A",
        Some(&token),
        Some(json!({"name": "x", "price_cents": 1})),
    )
    .await
    .assert_problem(403, "forbidden");
    app.call(
        Method::PATCH,
        "/api/v1/products/A",
        Some(&token),
        Some(json!({"name": "x"})),
    )
    .await
    .assert_problem(403, "forbidden");
    app.call(Method::DELETE, "/api/v1/products/A", Some(&token), None)
        .await
        .assert_problem(403, "forbidden");
    app.post(
        "/api/v1/products/A/stock",
        Some(&token),
        json!({"delta": 5, "reason": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.get("/api/v1/products/A/movements", Some(&token))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/admin/ledger/verify", Some(&token))
        .await
        .assert_problem(403, "forbidden");
    let list = app.get("/api/v1/products", None).await;
    assert_eq!(list.body["items"], json!([]));
}

#[actix_web::test]
async fn put_creates_or_replaces_patch_updates_delete_archives() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    let r = app
        .call(
            Method::PUT,
            "/api/v1/products/P-1",
            t,
            Some(json!({"name": "Cable", "price_cents": 500, "stock": 10})),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.body["category"], "uncategorized");
    let r = app
        .call(
            Method::PUT,
            "/api/v1/products/P-1",
            t,
            Some(json!({"name": "Cable 2m", "price_cents": 600, "stock": 4, "category": "Cables"})),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["stock"], 4);
    assert_eq!(r.body["name"], "Cable 2m");
    app.call(
        Method::PUT,
        "/api/v1/products/P-1",
        t,
        Some(json!({"sku": "OTHER", "name": "x", "price_cents": 1})),
    )
    .await
    .assert_invalid("sku");

    let r = app
        .call(
            Method::PATCH,
            "/api/v1/products/P-1",
            t,
            Some(json!({"price_cents": 650, "description": "long"})),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["price_cents"], 650);
    assert_eq!(r.body["name"], "Cable 2m");
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/products/P-1",
            t,
            Some(json!({"description": null})),
        )
        .await;
    assert_eq!(r.body["description"], serde_json::Value::Null);
    app.call(
        Method::PATCH,
        "/api/v1/products/P-1",
        t,
        Some(json!({"stock": 3})),
    )
    .await
    .assert_invalid("stock");
    app.call(
        Method::PATCH,
        "/api/v1/products/NOPE",
        t,
        Some(json!({"name": "x"})),
    )
    .await
    .assert_problem(404, "not-found");

    let r = app
        .call(Method::DELETE, "/api/v1/products/P-1", t, None)
        .await;
    r.assert_status(204);
    app.get("/api/v1/products/P-1", None)
        .await
        .assert_problem(404, "not-found");
    assert_eq!(
        app.get("/api/v1/products", None).await.body["items"],
        json!([])
    );
    assert_eq!(app.get("/api/v1/categories", None).await.body, json!([]));
    app.call(Method::DELETE, "/api/v1/products/P-1", t, None)
        .await
        .assert_problem(404, "not-found");
    // PUT brings an archived product back.
    app.call(
        Method::PUT,
        "/api/v1/products/P-1",
        t,
        Some(json!({"name": "Cable", "price_cents": 500})),
    )
    .await
    .assert_status(200);
    assert_eq!(
        app.stock_of("P-1").await,
        4,
        "archiving kept the stock history"
    );
}

#[actix_web::test]
async fn list_filters_sorts_and_paginates() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    let rows = [
        ("A-1", "Router Cisco", 45000, 3, "Networking"),
        ("A-2", "Switch Mikrotik", 12050, 0, "Networking"),
        ("B-1", "Cable cat6", 500, 100, "Cables"),
        ("B-2", "cable USB-C", 900, 5, "Cables"),
        ("C-1", "Antenna", 7000, 1, "Radio"),
    ];
    for (sku, name, price, stock, cat) in rows {
        app.post("/api/v1/products", t, json!({"sku": sku, "name": name, "price_cents": price, "stock": stock, "category": cat}))
            .await
            .assert_status(201);
    }
    let skus = |r: &crate::helpers::Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = app.get("/api/v1/products", None).await;
    assert_eq!(skus(&all), ["A-1", "A-2", "B-1", "B-2", "C-1"]);
    assert_eq!(all.body["next_cursor"], serde_json::Value::Null);
    assert_eq!(
        skus(&app.get("/api/v1/products?category=networking", None).await),
        ["A-1", "A-2"]
    );
    assert_eq!(
        skus(&app.get("/api/v1/products?q=CABLE", None).await),
        ["B-1", "B-2"]
    );
    assert_eq!(
        skus(&app.get("/api/v1/products?in_stock=true", None).await),
        ["A-1", "B-1", "B-2", "C-1"]
    );
    assert_eq!(
        skus(
            &app.get(
                "/api/v1/products?min_price_cents=900&max_price_cents=12050",
                None
            )
            .await
        ),
        ["A-2", "B-2", "C-1"]
    );
    assert_eq!(
        skus(&app.get("/api/v1/products?sort=price", None).await),
        ["B-1", "B-2", "C-1", "A-2", "A-1"]
    );
    assert_eq!(
        skus(&app.get("/api/v1/products?sort=-price", None).await),
        ["A-1", "A-2", "C-1", "B-2", "B-1"]
    );
    assert_eq!(
        skus(&app.get("/api/v1/products?sort=name", None).await),
        ["C-1", "B-1", "B-2", "A-1", "A-2"]
    );
    assert_eq!(
        skus(
            &app.get("/api/v1/products?sort=-price&max_price_cents=7000", None)
                .await
        ),
        ["C-1", "B-2", "B-1"]
    );

    // Walk every sort two at a time: the pages join up to the full list, no repeats.
    for sort in ["sku", "price", "-price", "name"] {
        let full = skus(
            &app.get(&format!("/api/v1/products?sort={sort}"), None)
                .await,
        );
        let mut walked = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/products?sort={sort}&limit=2&cursor={c}"),
                None => format!("/api/v1/products?sort={sort}&limit=2"),
            };
            let page = app.get(&path, None).await;
            page.assert_status(200);
            walked.extend(skus(&page));
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(walked, full, "sort={sort}");
    }
    // A cursor from one sort is refused by another.
    let c = app
        .get("/api/v1/products?sort=price&limit=1", None)
        .await
        .body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&format!("/api/v1/products?sort=name&cursor={c}"), None)
        .await
        .assert_invalid("cursor");

    let cats = app.get("/api/v1/categories", None).await;
    assert_eq!(
        cats.body,
        json!([
            {"name": "Cables", "path": "Cables", "parent": null, "depth": 1, "product_count": 2},
            {"name": "Networking", "path": "Networking", "parent": null, "depth": 1, "product_count": 2},
            {"name": "Radio", "path": "Radio", "parent": null, "depth": 1, "product_count": 1}
        ])
    );
}

#[actix_web::test]
async fn bad_query_values_name_the_parameter() {
    let app = spawn_app().await;
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("min_price_cents=-1", "min_price_cents"),
        ("max_price_cents=1.5", "max_price_cents"),
        ("min_price_cents=10&max_price_cents=5", "max_price_cents"),
        ("in_stock=yes", "in_stock"),
        ("sort=stock", "sort"),
        ("cursor=%%%", "cursor"),
        ("cursor=AAAA", "cursor"),
        ("colour=red", "colour"),
        ("q=", "q"),
        ("limit=1&limit=2", "limit"),
    ] {
        app.get(&format!("/api/v1/products?{query}"), None)
            .await
            .assert_invalid(param);
    }
    app.get("/api/v1/products?limit=200&in_stock=false", None)
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn stock_adjustments_go_through_the_ledger() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    app.create_product("S-1", 100, 2).await;
    let r = app
        .post(
            "/api/v1/products/S-1/stock",
            t,
            json!({"delta": 5, "reason": "delivery 42"}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.body["kind"], "receipt");
    assert_eq!(r.body["stock_after"], 7);
    let r = app
        .post(
            "/api/v1/products/S-1/stock",
            t,
            json!({"delta": -3, "reason": "broken"}),
        )
        .await;
    assert_eq!(r.body["kind"], "adjustment");
    let r = app
        .post(
            "/api/v1/products/S-1/stock",
            t,
            json!({"delta": -5, "reason": "too many"}),
        )
        .await;
    r.assert_problem(409, "insufficient-stock");
    assert_eq!(r.body["available"], 4);
    app.post(
        "/api/v1/products/S-1/stock",
        t,
        json!({"delta": 0, "reason": "x"}),
    )
    .await
    .assert_invalid("delta");
    app.post("/api/v1/products/S-1/stock", t, json!({"delta": 1}))
        .await
        .assert_invalid("reason");
    app.post(
        "/api/v1/products/S-1/stock",
        t,
        json!({"delta": 1_000_000_000, "reason": "x"}),
    )
    .await
    .assert_invalid("delta");
    app.post(
        "/api/v1/products/NOPE/stock",
        t,
        json!({"delta": 1, "reason": "x"}),
    )
    .await
    .assert_problem(404, "not-found");
    assert_eq!(app.stock_of("S-1").await, 4);
    let m = app.get("/api/v1/products/S-1/movements?limit=2", t).await;
    assert_eq!(m.body["items"].as_array().unwrap().len(), 2);
    let next = m.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/api/v1/products/S-1/movements?cursor={next}"), t)
        .await;
    assert_eq!(rest.body["items"][0]["seq"], 3);
    assert_eq!(rest.body["items"][0]["reason"], "broken");
    assert_eq!(app.verify_ledger().await["problems"], json!([]));
}

/// Contract §7's product fields: weight, tax class and barcode, with their
/// defaults, their bounds (a barcode's check digit verified), a patch that
/// changes or clears them, and the product event that carries them.
#[actix_web::test]
async fn weight_tax_class_and_barcode_are_kept_checked_and_patched() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    let plain = app.create_product("PLAIN-1", 500, 1).await;
    plain.assert_status(201);
    assert_eq!(plain.body["weight_grams"], 0);
    assert_eq!(plain.body["tax_class"], "standard");
    assert_eq!(plain.body["barcode"], Value::Null);
    app.post(
        "/api/v1/products",
        t,
        json!({"sku": "TEE-M", "name": "Tee", "price_cents": 1900, "weight_grams": 180,
               "tax_class": "reduced_7", "barcode": "4006381333931"}),
    )
    .await
    .assert_status(201);
    let got = app.get("/api/v1/products/TEE-M", None).await;
    assert_eq!(got.body["weight_grams"], 180);
    assert_eq!(got.body["tax_class"], "reduced_7");
    assert_eq!(got.body["barcode"], "4006381333931");
    for (body, field) in [
        (json!({"barcode": "4006381333932"}), "barcode"),
        (json!({"barcode": "3.65275E+11"}), "barcode"),
        (json!({"barcode": "1234567"}), "barcode"),
        (json!({"tax_class": "Reduced"}), "tax_class"),
        (json!({"tax_class": ""}), "tax_class"),
        (json!({"weight_grams": -1}), "weight_grams"),
        (json!({"weight_grams": 10_000_001}), "weight_grams"),
    ] {
        let mut full = json!({"sku": "BAD-1", "name": "x", "price_cents": 1});
        full.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        app.post("/api/v1/products", t, full)
            .await
            .assert_invalid(field);
        app.call(Method::PATCH, "/api/v1/products/TEE-M", t, Some(body))
            .await
            .assert_invalid(field);
    }
    let patched = app
        .call(
            Method::PATCH,
            "/api/v1/products/TEE-M",
            t,
            Some(json!({"weight_grams": 200, "barcode": null})),
        )
        .await;
    patched.assert_status(200);
    assert_eq!(patched.body["weight_grams"], 200);
    assert_eq!(patched.body["tax_class"], "reduced_7", "left alone");
    assert_eq!(patched.body["barcode"], Value::Null, "cleared");
    let events = app.all_events().await;
    let updated = events
        .iter()
        .rev()
        .find(|e| e["type"] == "product.updated" && e["data"]["sku"] == "TEE-M")
        .expect("the patch's event");
    assert_eq!(updated["data"]["weight_grams"], 200);
    assert_eq!(updated["data"]["barcode"], Value::Null);
}

/// Contract §7's category paths: a path is normalized (`a>b` is `a > b`), a
/// filter matches the category and everything below it by whole levels and
/// without regard to case, and a path of six levels or with an empty one is
/// refused, in a body and in a filter alike.
#[actix_web::test]
async fn a_category_filter_matches_its_subtree() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    for (sku, category) in [
        ("TEE-1", "Apparel > Men > T-Shirts"),
        ("SOCK-1", "apparel>MEN>Socks"),
        ("DRESS-1", "Apparel > Women"),
        ("MUG-1", "Kitchen"),
        ("MENU-1", "Apparel > Menus"),
    ] {
        app.post(
            "/api/v1/products",
            t,
            json!({"sku": sku, "name": sku, "price_cents": 100, "category": category}),
        )
        .await
        .assert_status(201);
    }
    let sock = app.get("/api/v1/products/SOCK-1", None).await;
    assert_eq!(sock.body["category"], "apparel > MEN > Socks");
    let skus = |r: &crate::helpers::Reply| -> Vec<String> {
        let mut v: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    for (filter, expected) in [
        ("apparel%20%3E%20men", vec!["SOCK-1", "TEE-1"]),
        ("APPAREL>men", vec!["SOCK-1", "TEE-1"]),
        ("Apparel", vec!["DRESS-1", "MENU-1", "SOCK-1", "TEE-1"]),
        ("apparel%20%3E%20men%20%3E%20t-shirts", vec!["TEE-1"]),
        ("apparel%20%3E%20m", vec![]),
        ("kitchen", vec!["MUG-1"]),
    ] {
        let r = app
            .get(&format!("/api/v1/products?category={filter}"), None)
            .await;
        r.assert_status(200);
        assert_eq!(skus(&r), expected, "{filter}");
    }
    app.get("/api/v1/products?category=a%3Eb%3Ec%3Ed%3Ee%3Ef", None)
        .await
        .assert_invalid("category");
    app.get("/api/v1/products?category=a%20%3E%20%3E%20b", None)
        .await
        .assert_invalid("category");
    for bad in ["a>b>c>d>e>f", "A >  > B"] {
        app.post(
            "/api/v1/products",
            t,
            json!({"sku": "BAD-1", "name": "x", "price_cents": 1, "category": bad}),
        )
        .await
        .assert_invalid("category");
    }
}

/// Contract §7's category tree: every node with active products at or below it,
/// depth first, with its parent, depth and subtree count; `?parent=` lists one
/// level, case-insensitively, page after page with the parent kept in the
/// `Link`; an archive and a move between categories change the counts.
#[actix_web::test]
async fn categories_are_a_tree_with_subtree_counts() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    for (sku, category) in [
        ("TEE-1", "Apparel > Men > T-Shirts"),
        ("TEE-2", "apparel > men > t-shirts"),
        ("SOCK-1", "Apparel > Men > Socks"),
        ("DRESS-1", "Apparel > Women"),
        ("MUG-1", "Kitchen"),
    ] {
        app.post(
            "/api/v1/products",
            t,
            json!({"sku": sku, "name": sku, "price_cents": 100, "category": category}),
        )
        .await
        .assert_status(201);
    }
    let tree = |r: &crate::helpers::Reply| -> Vec<(String, Value, u64, u64)> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["path"].as_str().unwrap().to_owned(),
                    c["parent"].clone(),
                    c["depth"].as_u64().unwrap(),
                    c["product_count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let all = app.get("/api/v1/categories", None).await;
    all.assert_status(200);
    let node = |p: &str, parent: Value, depth: u64, n: u64| (p.to_owned(), parent, depth, n);
    assert_eq!(
        tree(&all),
        [
            node("Apparel", Value::Null, 1, 4),
            node("Apparel > Men", json!("Apparel"), 2, 3),
            node("Apparel > Men > Socks", json!("Apparel > Men"), 3, 1),
            node("Apparel > Men > T-Shirts", json!("Apparel > Men"), 3, 2),
            node("Apparel > Women", json!("Apparel"), 2, 1),
            node("Kitchen", Value::Null, 1, 1),
        ]
    );
    assert_eq!(all.body[3]["name"], "T-Shirts");
    // One level, a page of one at a time, the parent kept in the next link.
    let first = app
        .get(
            "/api/v1/categories?parent=apparel%20%3E%20MEN&limit=1",
            None,
        )
        .await;
    assert_eq!(
        tree(&first),
        [node("Apparel > Men > Socks", json!("Apparel > Men"), 3, 1)]
    );
    let link = first.header("link").unwrap().to_owned();
    assert!(link.contains("parent=apparel+%3E+MEN"), "{link}");
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let second = app.get(next, None).await;
    assert_eq!(
        tree(&second),
        [node(
            "Apparel > Men > T-Shirts",
            json!("Apparel > Men"),
            3,
            2
        )]
    );
    assert!(second.header("link").is_none());
    assert_eq!(
        app.get("/api/v1/categories?parent=Nowhere", None)
            .await
            .body,
        json!([])
    );
    app.get("/api/v1/categories?parent=a%3E%3Eb", None)
        .await
        .assert_invalid("parent");
    // An archive and a move: the counts follow, an emptied node goes.
    app.call(Method::DELETE, "/api/v1/products/DRESS-1", t, None)
        .await
        .assert_status(204);
    app.call(
        Method::PATCH,
        "/api/v1/products/SOCK-1",
        t,
        Some(json!({"category": "Kitchen > Socks?"})),
    )
    .await
    .assert_status(200);
    assert_eq!(
        tree(&app.get("/api/v1/categories", None).await),
        [
            node("Apparel", Value::Null, 1, 2),
            node("Apparel > Men", json!("Apparel"), 2, 2),
            node("Apparel > Men > T-Shirts", json!("Apparel > Men"), 3, 2),
            node("Kitchen", Value::Null, 1, 2),
            node("Kitchen > Socks?", json!("Kitchen"), 2, 1),
        ]
    );
}

/// Contract §7's variants: a product of a group carries its options (in the
/// order written); two active products of one group with the same values (case
/// aside) are a 409 `variant-exists`, other option names a 422, options without a
/// group a 422; archiving or leaving the group frees the values; `?group=` and
/// `option.NAME=` filter the list.
#[actix_web::test]
async fn the_variants_of_a_group_are_distinct_and_filterable() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    let tee = |sku: &str, size: &str, color: &str| {
        json!({"sku": sku, "name": "Tee", "price_cents": 1500, "group": "tee",
               "options": {"Size": size, "Color": color}})
    };
    for (sku, size, color) in [
        ("TEE-S-B", "S", "Black"),
        ("TEE-M-B", "M", "Black"),
        ("TEE-M-W", "M", "White"),
    ] {
        app.post("/api/v1/products", t, tee(sku, size, color))
            .await
            .assert_status(201);
    }
    let shown = app.get("/api/v1/products/TEE-M-W", None).await;
    assert_eq!(shown.body["group"], "tee");
    // The event carries them too, for the systems that act on it.
    let events = app.all_events().await;
    let created = events
        .iter()
        .find(|e| e["type"] == "product.created" && e["data"]["sku"] == "TEE-M-W")
        .unwrap();
    assert_eq!(created["data"]["group"], "tee");
    assert_eq!(
        created["data"]["options"],
        json!({"Size": "M", "Color": "White"})
    );
    let options: Vec<(&String, &Value)> =
        shown.body["options"].as_object().unwrap().iter().collect();
    assert_eq!(options.len(), 2);
    assert_eq!(
        shown.body["options"],
        json!({"Size": "M", "Color": "White"})
    );
    assert_eq!(
        app.get("/api/v1/products/TEE-S-B", None).await.body["options"]["Size"],
        "S"
    );
    // The same values, in another case and order: taken.
    let dup = app
        .post(
            "/api/v1/products",
            t,
            json!({"sku": "TEE-DUP", "name": "Tee", "price_cents": 1500,
            "group": "tee", "options": {"color": "BLACK", "size": "m"}}),
        )
        .await;
    dup.assert_status(409);
    assert_eq!(dup.body["type"], "/problems/variant-exists", "{}", dup.body);
    assert!(
        dup.body["detail"].as_str().unwrap().contains("TEE-M-B"),
        "{}",
        dup.body
    );
    // Other option names than the group's.
    app.post(
        "/api/v1/products",
        t,
        json!({"sku": "TEE-X", "name": "Tee", "price_cents": 1500,
            "group": "tee", "options": {"Size": "XL"}}),
    )
    .await
    .assert_invalid("options");
    // Options outside a group; a handle that is not one; four options.
    app.post(
        "/api/v1/products",
        t,
        json!({"sku": "LONE", "name": "x", "price_cents": 1, "options": {"Size": "M"}}),
    )
    .await
    .assert_invalid("options");
    app.post(
        "/api/v1/products",
        t,
        json!({"sku": "LONE", "name": "x", "price_cents": 1, "group": "Tee Shirts"}),
    )
    .await
    .assert_invalid("group");
    app.post(
        "/api/v1/products",
        t,
        json!({"sku": "LONE", "name": "x", "price_cents": 1, "group": "g",
            "options": {"a": "1", "b": "2", "c": "3", "d": "4"}}),
    )
    .await
    .assert_invalid("options");
    // A replace onto another variant's values is refused; onto its own, fine.
    let put = |values: Value| json!({"name": "Tee", "price_cents": 1600, "group": "tee", "options": values});
    app.call(
        Method::PUT,
        "/api/v1/products/TEE-M-W",
        t,
        Some(put(json!({"Size": "M", "Color": "Black"}))),
    )
    .await
    .assert_status(409);
    app.call(
        Method::PUT,
        "/api/v1/products/TEE-M-W",
        t,
        Some(put(json!({"Size": "M", "Color": "White"}))),
    )
    .await
    .assert_status(200);
    // Archived, its values are free again.
    app.call(Method::DELETE, "/api/v1/products/TEE-M-B", t, None)
        .await
        .assert_status(204);
    app.post("/api/v1/products", t, tee("TEE-M-B2", "M", "Black"))
        .await
        .assert_status(201);
    // Leaving the group (a replace without one) frees them too.
    app.call(
        Method::PUT,
        "/api/v1/products/TEE-S-B",
        t,
        Some(json!({"name": "Tee", "price_cents": 1500})),
    )
    .await
    .assert_status(200);
    app.post("/api/v1/products", t, tee("TEE-S-B2", "S", "Black"))
        .await
        .assert_status(201);
    app.create_product("MUG-1", 900, 1).await.assert_status(201);
    let skus = |path: String| {
        let app = &app;
        async move {
            let r = app.get(&path, None).await;
            r.assert_status(200);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["sku"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        skus("/api/v1/products?group=tee".into()).await,
        ["TEE-M-B2", "TEE-M-W", "TEE-S-B2"]
    );
    assert_eq!(
        skus("/api/v1/products?option.size=m".into()).await,
        ["TEE-M-B2", "TEE-M-W"]
    );
    assert_eq!(
        skus("/api/v1/products?group=tee&option.Size=M&option.COLOR=white&sort=price".into()).await,
        ["TEE-M-W"]
    );
    assert!(skus("/api/v1/products?group=mug".into()).await.is_empty());
    app.get("/api/v1/products?group=Not%20A%20Handle", None)
        .await
        .assert_invalid("group");
    app.get("/api/v1/products?option.size=m&option.SIZE=l", None)
        .await
        .assert_status(422);
    app.get("/api/v1/products?colour=red", None)
        .await
        .assert_invalid("colour");
    let report = app.verify_ledger().await;
    assert_eq!(report["problems"], json!([]), "{report}");
}

/// Twenty creates of one variant at once (each its own SKU) make one product,
/// and twenty of one new group with two sets of option names make a group of
/// one set: the rule runs in the ledger's transaction, where the batch sees its
/// own writes (and, on PostgreSQL, holds the group's lock).
#[actix_web::test]
async fn twenty_creates_of_one_variant_at_once_make_one_product() {
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    let replies = futures_util::future::join_all((0..20).map(|i| {
        app.post(
            "/api/v1/products",
            t,
            json!({"sku": format!("RACE-{i}"), "name": "Race",
            "price_cents": 100, "group": "race", "options": {"Size": "M"}}),
        )
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let taken = replies
        .iter()
        .filter(|r| r.status == 409 && r.body["type"] == "/problems/variant-exists")
        .count();
    assert_eq!((created, taken), (1, 19));
    let replies = futures_util::future::join_all((0..20).map(|i| {
        let name = if i % 2 == 0 { "Size" } else { "Color" };
        app.post(
            "/api/v1/products",
            t,
            json!({"sku": format!("MIX-{i}"), "name": "Mix",
            "price_cents": 100, "group": "mix", "options": {name: format!("v{i}")}}),
        )
    }))
    .await;
    let group = app.get("/api/v1/products?group=mix&limit=50", None).await;
    let items = group.body["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        replies.iter().filter(|r| r.status == 201).count()
    );
    let names: BTreeSet<Vec<String>> = items
        .iter()
        .map(|p| p["options"].as_object().unwrap().keys().cloned().collect())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "one set of option names in a group: {names:?}"
    );
    assert!(replies.iter().all(|r| r.status == 201 || r.status == 422));
}
