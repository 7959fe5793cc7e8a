use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[actix_web::test]
async fn checkout_prices_from_the_catalog_and_takes_stock() {
    let app = spawn_app().await;
    app.create_product("A", 1250, 10).await;
    app.create_product("B", 99, 5).await;
    let (user, token) = app.customer("alice").await;
    let r = app.checkout(&token, json!([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 1}]), None).await;
    r.assert_status(201);
    let order = &r.body;
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/orders/{}", order["id"])
    );
    assert_eq!(order["user_id"], user);
    assert_eq!(order["status"], "placed");
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["source"], "api");
    assert_eq!(
        order["items"],
        json!([
            {"sku": "A", "name": "Product A", "unit_price_cents": 1250, "quantity": 3, "line_total_cents": 3750},
            {"sku": "B", "name": "Product B", "unit_price_cents": 99, "quantity": 1, "line_total_cents": 99},
        ])
    );
    assert_eq!(order["total_cents"], 3849);
    assert_eq!(app.stock_of("A").await, 7);
    assert_eq!(app.stock_of("B").await, 4);
    let m = app
        .get("/api/v1/products/A/movements", Some(&app.admin_token))
        .await;
    let sale = &m.body["items"][1];
    assert_eq!(sale["kind"], "sale");
    assert_eq!(sale["delta"], -3);
    assert_eq!(sale["stock_after"], 7);
    assert_eq!(sale["order_id"], order["id"]);

    // A price change later does not touch the order; the next order pays the new price.
    app.call(
        Method::PATCH,
        "/api/v1/products/A",
        Some(&app.admin_token),
        Some(json!({"price_cents": 2000})),
    )
    .await
    .assert_status(200);
    let again = app
        .get(&format!("/api/v1/orders/{}", order["id"]), Some(&token))
        .await;
    assert_eq!(again.body["total_cents"], 3849);
    let next = app
        .checkout(&token, json!([{"sku": "A", "quantity": 1}]), None)
        .await;
    assert_eq!(next.body["total_cents"], 2000);
}

#[actix_web::test]
async fn client_prices_and_bad_lines_are_refused() {
    let app = spawn_app().await;
    app.create_product("A", 100, 10).await;
    let (_, token) = app.customer("alice").await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"sku": "A", "quantity": 1, "price_cents": 1}]),
            "items[0].price_cents",
        ),
        (json!([{"sku": "A", "quantity": 0}]), "items[0].quantity"),
        (json!([{"sku": "A", "quantity": 1001}]), "items[0].quantity"),
        (json!([{"sku": "A", "quantity": -1}]), "items[0].quantity"),
        (json!([{"sku": "A", "quantity": 1.5}]), "items[0].quantity"),
        (json!([{"sku": "A", "quantity": "2"}]), "items[0].quantity"),
        (json!([{"sku": "A", "quantity": 1e30}]), "items[0].quantity"),
        (json!([{"quantity": 1}]), "items[0].sku"),
        (json!([{"sku": "../../etc", "quantity": 1}]), "items[0].sku"),
        (json!([]), "items"),
        (
            json!([{"sku": "A", "quantity": 600}, {"sku": "A", "quantity": 401}]),
            "items",
        ),
        (json!([{"sku": "NOPE", "quantity": 1}]), "items"),
    ];
    for (items, field) in cases {
        app.checkout(&token, items, None)
            .await
            .assert_invalid(field);
    }
    let lines: Vec<Value> = (0..101)
        .map(|i| json!({"sku": format!("S{i}"), "quantity": 1}))
        .collect();
    app.checkout(&token, Value::Array(lines), None)
        .await
        .assert_invalid("items");
    let r = app
        .post(
            "/api/v1/orders",
            Some(&token),
            json!({"items": [{"sku": "A", "quantity": 1}], "user_id": 1}),
        )
        .await;
    r.assert_invalid("user_id");
    app.post(
        "/api/v1/orders",
        None,
        json!({"items": [{"sku": "A", "quantity": 1}]}),
    )
    .await
    .assert_problem(401, "unauthorized");
    // Archived products cannot be bought.
    app.create_product("GONE", 100, 10).await;
    app.call(
        Method::DELETE,
        "/api/v1/products/GONE",
        Some(&app.admin_token),
        None,
    )
    .await
    .assert_status(204);
    app.checkout(&token, json!([{"sku": "GONE", "quantity": 1}]), None)
        .await
        .assert_invalid("items");
    assert_eq!(app.stock_of("A").await, 10, "nothing was taken");
    assert_eq!(
        app.get("/api/v1/orders", Some(&token)).await.body["items"],
        json!([])
    );
}

#[actix_web::test]
async fn all_lines_or_none_and_409_names_every_short_sku() {
    let app = spawn_app().await;
    app.create_product("A", 100, 5).await;
    app.create_product("B", 100, 1).await;
    app.create_product("C", 100, 0).await;
    let (_, token) = app.customer("alice").await;
    let r = app.checkout(&token, json!([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 3}, {"sku": "C", "quantity": 1}]), None).await;
    r.assert_problem(409, "insufficient-stock");
    assert_eq!(
        r.body["shortages"],
        json!([
            {"sku": "B", "requested": 3, "available": 1},
            {"sku": "C", "requested": 1, "available": 0},
        ])
    );
    assert_eq!(
        app.stock_of("A").await,
        5,
        "A untouched although it had enough"
    );
}

#[actix_web::test]
async fn two_hundred_concurrent_checkouts_for_fifty_units() {
    let app = spawn_app().await;
    app.create_product("HOT", 500, 50).await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(app.customer(&format!("buyer{i}")).await.1);
    }
    let attempts = (0..200).map(|i| {
        app.checkout(
            &tokens[i % tokens.len()],
            json!([{"sku": "HOT", "quantity": 1}]),
            None,
        )
    });
    let replies = futures_util::future::join_all(attempts).await;
    let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
    let refused = replies.iter().filter(|r| r.status.as_u16() == 409).count();
    assert_eq!((created, refused), (50, 150));
    for r in replies.iter().filter(|r| r.status.as_u16() == 409) {
        r.assert_problem(409, "insufficient-stock");
    }
    assert_eq!(app.stock_of("HOT").await, 0);
    let m = app
        .get(
            "/api/v1/products/HOT/movements?limit=200",
            Some(&app.admin_token),
        )
        .await;
    let sales = m.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "sale")
        .count();
    assert_eq!(sales, 50);
    let ids: HashSet<u64> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 201)
        .map(|r| r.body["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 50);
    assert_eq!(app.verify_ledger().await["problems"], json!([]));
}

#[actix_web::test]
async fn idempotency_key_replays_the_same_order() {
    let app = spawn_app().await;
    app.create_product("A", 100, 10).await;
    let (_, alice) = app.customer("alice").await;
    let (_, bob) = app.customer("bob").await;
    let items = json!([{"sku": "A", "quantity": 2}]);
    let first = app.checkout(&alice, items.clone(), Some("key-1")).await;
    first.assert_status(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = app.checkout(&alice, items.clone(), Some("key-1")).await;
    again.assert_status(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    // Same lines in another order are the same request.
    app.checkout(
        &alice,
        json!([{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 1}]),
        Some("key-1"),
    )
    .await
    .assert_status(201);
    // Same key, other body: 422.
    app.checkout(&alice, json!([{"sku": "A", "quantity": 3}]), Some("key-1"))
        .await
        .assert_invalid("Idempotency-Key");
    // Keys are per user.
    let bobs = app.checkout(&bob, items.clone(), Some("key-1")).await;
    bobs.assert_status(201);
    assert_eq!(bobs.header("idempotent-replayed"), None);
    assert_ne!(bobs.body["id"], first.body["id"]);
    assert_eq!(app.stock_of("A").await, 6);
    // A replay after a cancel still shows the order as it was answered.
    app.post(
        &format!("/api/v1/orders/{}/cancel", first.body["id"]),
        Some(&alice),
        json!({}),
    )
    .await
    .assert_status(200);
    let replay = app.checkout(&alice, items, Some("key-1")).await;
    assert_eq!(replay.body, first.body);
    app.checkout(
        &alice,
        json!([{"sku": "A", "quantity": 1}]),
        Some("bad key"),
    )
    .await
    .assert_invalid("Idempotency-Key");
}

#[actix_web::test]
async fn twenty_concurrent_retries_with_one_key_make_one_order() {
    let app = spawn_app().await;
    app.create_product("A", 100, 100).await;
    let (_, token) = app.customer("alice").await;
    let items = json!([{"sku": "A", "quantity": 3}]);
    let replies = futures_util::future::join_all(
        (0..20).map(|_| app.checkout(&token, items.clone(), Some("retry-me"))),
    )
    .await;
    let mut ids = HashSet::new();
    for r in &replies {
        match r.status.as_u16() {
            201 => {
                ids.insert(r.body["id"].as_u64().unwrap());
            }
            409 => {
                r.assert_problem(409, "idempotency-in-flight");
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(ids.len(), 1, "one order");
    assert_eq!(app.stock_of("A").await, 97);
    let m = app
        .get("/api/v1/products/A/movements", Some(&app.admin_token))
        .await;
    assert_eq!(
        m.body["items"].as_array().unwrap().len(),
        2,
        "receipt + one sale"
    );
    assert_eq!(
        app.get("/api/v1/orders", Some(&token)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn orders_are_private_and_listed_newest_first() {
    let app = spawn_app().await;
    app.create_product("A", 100, 100).await;
    let (alice_id, alice) = app.customer("alice").await;
    let (_, bob) = app.customer("bob").await;
    let mut mine = Vec::new();
    for q in 1..=5 {
        mine.push(
            app.checkout(&alice, json!([{"sku": "A", "quantity": q}]), None)
                .await
                .body["id"]
                .as_u64()
                .unwrap(),
        );
    }
    let bobs = app
        .checkout(&bob, json!([{"sku": "A", "quantity": 1}]), None)
        .await
        .body["id"]
        .as_u64()
        .unwrap();

    let mut walked = Vec::new();
    let mut path = "/api/v1/orders?limit=2".to_owned();
    loop {
        let page = app.get(&path, Some(&alice)).await;
        page.assert_status(200);
        walked.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_u64().unwrap()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/orders?limit=2&cursor={c}"),
            None => break,
        }
    }
    mine.reverse();
    assert_eq!(walked, mine, "own orders, newest first");

    app.get(&format!("/api/v1/orders/{bobs}"), Some(&alice))
        .await
        .assert_problem(404, "not-found");
    app.post(
        &format!("/api/v1/orders/{bobs}/cancel"),
        Some(&alice),
        json!({}),
    )
    .await
    .assert_problem(404, "not-found");
    app.get("/api/v1/orders/999999", Some(&alice))
        .await
        .assert_problem(404, "not-found");
    app.get("/api/v1/orders/not-a-number", Some(&alice))
        .await
        .assert_problem(404, "not-found");
    app.get(
        &format!("/api/v1/orders?user={}", alice_id + 1),
        Some(&alice),
    )
    .await
    .assert_problem(403, "forbidden");

    let all = app.get("/api/v1/orders", Some(&app.admin_token)).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 6);
    assert_eq!(all.body["items"][0]["id"], bobs);
    let filtered = app
        .get(
            &format!("/api/v1/orders?user={alice_id}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(filtered.body["items"].as_array().unwrap().len(), 5);
    app.get(&format!("/api/v1/orders/{bobs}"), Some(&app.admin_token))
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn cancel_restocks_and_the_lifecycle_is_enforced() {
    let app = spawn_app().await;
    app.create_product("A", 100, 10).await;
    let (_, alice) = app.customer("alice").await;
    let admin = app.admin_token.clone();
    let order = app
        .checkout(&alice, json!([{"sku": "A", "quantity": 4}]), None)
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    assert_eq!(app.stock_of("A").await, 6);
    let r = app
        .post(
            &format!("/api/v1/orders/{order}/cancel"),
            Some(&alice),
            json!({}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(app.stock_of("A").await, 10);
    let m = app.get("/api/v1/products/A/movements", Some(&admin)).await;
    assert_eq!(m.body["items"][2]["kind"], "cancel");
    assert_eq!(m.body["items"][2]["delta"], 4);
    app.post(
        &format!("/api/v1/orders/{order}/cancel"),
        Some(&alice),
        json!({}),
    )
    .await
    .assert_problem(409, "invalid-transition");

    let second = app
        .checkout(&alice, json!([{"sku": "A", "quantity": 1}]), None)
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    let status = |s: &'static str| json!({"status": s});
    let path = format!("/api/v1/orders/{second}/status");
    app.post(&path, Some(&alice), status("paid"))
        .await
        .assert_problem(403, "forbidden");
    app.post(&path, Some(&admin), status("shipped"))
        .await
        .assert_problem(409, "invalid-transition");
    app.post(&path, Some(&admin), status("paid"))
        .await
        .assert_status(200);
    app.post(&path, Some(&admin), status("shipped"))
        .await
        .assert_status(200);
    app.post(
        &format!("/api/v1/orders/{second}/cancel"),
        Some(&alice),
        json!({}),
    )
    .await
    .assert_problem(409, "invalid-transition");
    app.post(&path, Some(&admin), status("placed"))
        .await
        .assert_problem(409, "invalid-transition");
    let r = app.post(&path, Some(&admin), status("delivered")).await;
    assert_eq!(r.body["status"], "delivered");
    app.post(&path, Some(&admin), status("lost"))
        .await
        .assert_invalid("status");
    app.post(&path, Some(&admin), json!({"status": "paid", "note": 1}))
        .await
        .assert_invalid("note");
    assert_eq!(app.stock_of("A").await, 9);

    // Admin cancels a paid order.
    let third = app
        .checkout(&alice, json!([{"sku": "A", "quantity": 2}]), None)
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    app.post(
        &format!("/api/v1/orders/{third}/status"),
        Some(&admin),
        status("paid"),
    )
    .await
    .assert_status(200);
    app.post(
        &format!("/api/v1/orders/{third}/cancel"),
        Some(&admin),
        json!({}),
    )
    .await
    .assert_status(200);
    assert_eq!(app.stock_of("A").await, 9);
    let v = app.verify_ledger().await;
    assert_eq!(v["problems"], json!([]));
    assert_eq!(v["orders_checked"], 3);
    assert_eq!(v["skus_checked"], 1);
}
