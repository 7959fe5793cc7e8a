//! The events feed: each change writes exactly its event in the same transaction,
//! seqs are gapless in commit order, filters and paging, the long poll.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[actix_web::test]
async fn every_change_writes_exactly_its_event() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    app.create_product("EV-1", 1000, 5).await;
    app.post(
        "/api/v1/products/EV-1/stock",
        Some(&admin),
        json!({"delta": 3, "reason": "delivery"}),
    )
    .await
    .assert_status(201);
    app.call(
        reqwest::Method::PATCH,
        "/api/v1/products/EV-1",
        Some(&admin),
        Some(json!({"price_cents": 1200})),
    )
    .await
    .assert_status(200);
    let (_, token) = app.customer("eve").await;
    let order = app
        .checkout(&token, json!([{"sku": "EV-1", "quantity": 2}]), None)
        .await;
    order.assert_status(201);
    let id = order.body["id"].as_u64().unwrap();
    app.post(
        &format!("/api/v1/orders/{id}/status"),
        Some(&admin),
        json!({"status": "paid"}),
    )
    .await
    .assert_status(200);
    app.post(
        &format!("/api/v1/orders/{id}/cancel"),
        Some(&token),
        json!({}),
    )
    .await
    .assert_status(200);
    app.call(
        reqwest::Method::DELETE,
        "/api/v1/products/EV-1",
        Some(&admin),
        None,
    )
    .await
    .assert_status(204);

    let events = app.all_events().await;
    assert_eq!(
        types(&events),
        [
            "stock.changed",   // the initial stock, a receipt
            "product.created", // with that stock
            "stock.changed",   // +3
            "product.updated", // the price
            "order.placed",    // the order first,
            "stock.changed",   // then its sale
            "order.paid",
            "order.cancelled", // the status first,
            "stock.changed",   // then the restock
            "product.archived",
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "gapless, in order");
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10, "ids are unique");
    assert!(
        events
            .iter()
            .all(|e| e["id"].as_str().unwrap().starts_with("evt_"))
    );

    assert_eq!(events[0]["data"]["kind"], "receipt");
    assert_eq!(events[0]["data"]["stock_after"], 5);
    assert_eq!(events[1]["data"]["sku"], "EV-1");
    assert_eq!(events[1]["data"]["stock"], 5);
    assert_eq!(events[3]["data"]["price_cents"], 1200);
    assert_eq!(events[4]["data"]["id"], id);
    assert_eq!(events[4]["data"]["total_cents"], 2400);
    assert_eq!(events[4]["data"].get("previous_status"), None);
    assert_eq!(events[5]["data"]["kind"], "sale");
    assert_eq!(events[5]["data"]["order_id"], id);
    assert_eq!(events[6]["data"]["status"], "paid");
    assert_eq!(events[6]["data"]["previous_status"], "placed");
    assert_eq!(events[7]["data"]["previous_status"], "paid");
    assert_eq!(events[8]["data"]["kind"], "cancel");
    assert_eq!(events[9]["type"], "product.archived");
    // The event's data is the resource as the API shows it.
    let shown = app
        .get(&format!("/api/v1/orders/{id}"), Some(&token))
        .await
        .body;
    let mut cancelled = events[7]["data"].clone();
    cancelled.as_object_mut().unwrap().remove("previous_status");
    assert_eq!(cancelled, shown);
}

#[actix_web::test]
async fn refused_changes_write_no_event() {
    let app = spawn_app().await;
    app.create_product("EV-2", 500, 1).await;
    let before = app.all_events().await.len();
    let (_, token) = app.customer("refused").await;
    app.checkout(&token, json!([{"sku": "EV-2", "quantity": 2}]), None)
        .await
        .assert_problem(409, "insufficient-stock");
    app.checkout(&token, json!([{"sku": "NOPE", "quantity": 1}]), None)
        .await
        .assert_status(422);
    app.post(
        "/api/v1/products",
        Some(&app.admin_token),
        json!({"sku": "EV-2", "name": "again", "price_cents": 1}),
    )
    .await
    .assert_status(409);
    app.post(
        "/api/v1/products/EV-2/stock",
        Some(&app.admin_token),
        json!({"delta": -5, "reason": "too many"}),
    )
    .await
    .assert_status(409);
    assert_eq!(app.all_events().await.len(), before);
}

#[actix_web::test]
async fn two_hundred_concurrent_checkouts_write_one_order_placed_per_201() {
    let app = spawn_app().await;
    app.create_product("HOT-EV", 500, 50).await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(app.customer(&format!("evbuyer{i}")).await.1);
    }
    let attempts = (0..200).map(|i| {
        app.checkout(
            &tokens[i % tokens.len()],
            json!([{"sku": "HOT-EV", "quantity": 1}]),
            None,
        )
    });
    let replies = futures_util::future::join_all(attempts).await;
    let created: BTreeSet<u64> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 201)
        .map(|r| r.body["id"].as_u64().unwrap())
        .collect();
    assert_eq!(created.len(), 50);
    let events = app.all_events().await;
    let placed: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "order.placed")
        .map(|e| e["data"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(placed.len(), 50, "one event per order, none for a 409");
    assert_eq!(placed.iter().copied().collect::<BTreeSet<_>>(), created);
    let sales = events
        .iter()
        .filter(|e| e["type"] == "stock.changed" && e["data"]["kind"] == "sale")
        .count();
    assert_eq!(sales, 50);
    // Orders commit in id order, and so do their events.
    assert!(placed.windows(2).all(|w| w[0] < w[1]), "{placed:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[actix_web::test]
async fn type_filters_limits_and_paging() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_product(&format!("F-{i}"), 100, 10).await;
    }
    let (_, token) = app.customer("filterer").await;
    for _ in 0..2 {
        app.checkout(&token, json!([{"sku": "F-0", "quantity": 1}]), None)
            .await
            .assert_status(201);
    }
    let admin = Some(app.admin_token.as_str());
    let orders = app.get("/api/v1/events?type=order.*", admin).await;
    orders.assert_status(200);
    assert_eq!(
        types(orders.body["items"].as_array().unwrap()),
        ["order.placed"; 2]
    );
    let exact = app.get("/api/v1/events?type=product.created", admin).await;
    assert_eq!(exact.body["items"].as_array().unwrap().len(), 3);
    let all = app.all_events().await;
    assert_eq!(all.len(), 3 * 2 + 2 * 2);
    // Paging by `limit` and `next_after` gives the same events in the same order.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(&format!("/api/v1/events?after={after}&limit=3"), admin)
            .await;
        let items = page.body["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 3);
        after = page.body["next_after"].as_u64().unwrap();
        paged.extend(items);
    }
    assert_eq!(paged, all);
    // A filtered page's `next_after` moves past what the filter skipped.
    let last = app
        .get("/api/v1/events?type=product.*&limit=1000", admin)
        .await;
    assert_eq!(
        last.body["next_after"].as_u64().unwrap(),
        all.last().unwrap()["seq"].as_u64().unwrap()
    );
    for bad in [
        "type=order.bogus",
        "type=nope.*",
        "limit=0",
        "limit=1001",
        "wait=31",
        "after=-1",
        "colour=red",
    ] {
        let field = bad.split('=').next().unwrap();
        app.get(&format!("/api/v1/events?{bad}"), admin)
            .await
            .assert_invalid(field);
    }
    app.get("/api/v1/events", Some(&token))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/events", None)
        .await
        .assert_problem(401, "unauthorized");
}

/// A long poll is answered by the commit that writes a matching event, not at
/// the end of its wait: with a 30 s wait and a checkout right after, an empty page
/// would mean the commit never woke it.
#[actix_web::test]
async fn a_long_poll_wakes_on_the_commit() {
    let app = spawn_app().await;
    app.create_product("LP-1", 100, 10).await;
    let newest = app.all_events().await.last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    let (_, token) = app.customer("poller").await;
    let admin = app.admin_token.clone();
    let path = format!("/api/v1/events?after={newest}&type=order.placed&wait=30");
    let poll = app.get(&path, Some(&admin));
    let buy = async {
        // An event the filter skips first: the poll must keep waiting past it.
        app.post(
            "/api/v1/products/LP-1/stock",
            Some(&admin),
            json!({"delta": 1, "reason": "skip me"}),
        )
        .await
        .assert_status(201);
        app.checkout(&token, json!([{"sku": "LP-1", "quantity": 1}]), None)
            .await
    };
    let (polled, bought) = futures_util::future::join(poll, buy).await;
    bought.assert_status(201);
    polled.assert_status(200);
    let items = polled.body["items"].as_array().unwrap();
    assert_eq!(types(items), ["order.placed"]);
    assert_eq!(items[0]["data"]["id"], bought.body["id"]);
}

#[actix_web::test]
async fn imports_emit_their_job_event_and_row_events_only_when_asked() {
    for rows in [false, true] {
        let app = spawn_app_with(|a| {
            if rows {
                a.pipeline.import_events = orderflow::config::ImportEvents::Rows;
            }
        })
        .await;
        app.drop_file(
            "products_ev.csv",
            b"sku,name,price,stock\nIM-1,One,1.00,5\nIM-2,Two,2.00,0\nIM-3,,3.00,1\n",
        );
        let job = app.job_for("products_ev.csv").await;
        assert_eq!(job["status"], "completed");
        app.drop_file("products_bad.csv.gz", b"not gzip at all");
        let failed = app.job_for("products_bad.csv.gz").await;
        assert_eq!(failed["status"], "failed");
        let events = app.all_events().await;
        let kinds = types(&events);
        let expected: Vec<&str> = if rows {
            vec![
                "stock.changed",
                "product.created",
                "product.created",
                "import.completed",
                "import.failed",
            ]
        } else {
            vec!["import.completed", "import.failed"]
        };
        assert_eq!(kinds, expected, "rows: {rows}");
        let completed = events
            .iter()
            .find(|e| e["type"] == "import.completed")
            .unwrap();
        assert_eq!(completed["data"]["id"], job["id"]);
        assert_eq!(completed["data"]["rows_loaded"], 2);
        assert_eq!(completed["data"]["rows_rejected"], 1);
    }
}

#[actix_web::test]
async fn orders_from_files_emit_order_placed() {
    let app = spawn_app().await;
    app.create_product("OF-1", 250, 10).await;
    app.customer("filebuyer").await;
    let before = app.all_events().await.len();
    app.drop_file(
        "orders_ev.csv",
        b"order_ref,customer,sku,quantity\nR-1,filebuyer,OF-1,2\nR-2,filebuyer,OF-1,50\n",
    );
    let job = app.job_for("orders_ev.csv").await;
    assert_eq!(job["rows_loaded"], 1);
    let events = app.all_events().await;
    let new = &events[before..];
    assert_eq!(
        types(new),
        ["order.placed", "stock.changed", "import.completed"]
    );
    assert_eq!(new[0]["data"]["external_ref"], "R-1");
    assert_eq!(
        new[0]["data"]["source"],
        format!("import:{}", job["id"].as_u64().unwrap())
    );
}
