//! Search (contract §7): relevance, typos, prefixes, accents, exact SKUs and
//! barcodes, the listing filters, facets counted without their own filter,
//! stable cursors, archived products never shown, and the index rebuilt when it
//! is missing, damaged or was not closed cleanly.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ChildServer, TestApp, blocking_login, spawn_app};

/// How long a committed change may take to become searchable (contract: 1 s),
/// with room for a loaded test machine.
const SEARCHABLE_WITHIN: Duration = Duration::from_secs(10);

pub(crate) fn skus(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sku"].as_str().unwrap().to_owned())
        .collect()
}

/// Searches `query` until `done` holds for the answer (bounded).
pub(crate) async fn search_until(
    app: &TestApp,
    query: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let reply = app.get(&format!("/api/v1/search?{query}"), None).await;
        if reply.status == 200 && done(&reply.body) {
            return reply.body;
        }
        assert!(
            started.elapsed() < SEARCHABLE_WITHIN,
            "search `{query}` never answered as expected; last: {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn search(app: &TestApp, query: &str) -> Value {
    let reply = app.get(&format!("/api/v1/search?{query}"), None).await;
    reply.assert_status(200);
    reply.body.clone()
}

pub(crate) fn facet(body: &Value, name: &str) -> Vec<(String, u64)> {
    body["facets"][name]
        .as_array()
        .unwrap_or_else(|| panic!("facet {name} in {body}"))
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_owned(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn shop(app: &TestApp) {
    let t = Some(app.admin_token.as_str());
    let products = [
        json!({"sku": "TEE-BLK-M", "name": "Classic T-Shirt", "price_cents": 1500,
               "category": "Apparel > Men > T-Shirts", "description": "Soft cotton",
               "group": "classic-tee", "options": {"Size": "M", "Color": "Black"}}),
        json!({"sku": "TEE-WHT-L", "name": "Classic T-Shirt", "price_cents": 1700,
               "category": "Apparel > Men > T-Shirts", "description": "Soft cotton",
               "group": "classic-tee", "options": {"Size": "L", "Color": "White"}}),
        json!({"sku": "MUG-1", "name": "Café Mug", "price_cents": 900,
               "category": "Kitchen > Mugs", "description": "Holds a black coffee"}),
        json!({"sku": "HAT-1", "name": "Sun Hat", "price_cents": 2900,
               "category": "Apparel > Accessories", "barcode": "4006381333931",
               "description": "Like a shirt for your head"}),
        json!({"sku": "RTR-1", "name": "Router Cisco ISR", "price_cents": 120000,
               "category": "Networking"}),
    ];
    for product in products {
        app.post("/api/v1/products", t, product)
            .await
            .assert_status(201);
    }
    app.post(
        "/api/v1/products/TEE-BLK-M/stock",
        t,
        json!({"delta": 3, "reason": "restock"}),
    )
    .await
    .assert_status(201);
    search_until(app, "q=shirt", |b| b["total"] == 3).await;
}

/// Matching and ranking: accents, several words, a typo, a prefix, a name
/// above a description, an exact SKU and barcode first.
#[actix_web::test]
async fn search_finds_ranks_and_forgives() {
    let app = spawn_app().await;
    shop(&app).await;
    assert_eq!(skus(&search(&app, "q=cafe").await), ["MUG-1"]);
    assert_eq!(skus(&search(&app, "q=CAFÉ%20mugs").await), ["MUG-1"]);
    assert_eq!(skus(&search(&app, "q=router%20isr").await), ["RTR-1"]);
    // "tshrt": one typo of "tshirt" (the name's `T-Shirt` joined); "blac": the
    // last word as a prefix of the option value Black.
    assert_eq!(skus(&search(&app, "q=tshrt%20blac").await), ["TEE-BLK-M"]);
    // Four letters allow no typo; a word matches whole or (last) as a prefix.
    assert_eq!(search(&app, "q=rotr").await["total"], 0);
    assert_eq!(skus(&search(&app, "q=rout").await), ["RTR-1"]);
    // A name match above a description match.
    let shirts = skus(&search(&app, "q=shirt").await);
    assert_eq!(shirts.len(), 3);
    assert_eq!(shirts.last().unwrap(), "HAT-1", "{shirts:?}");
    // Exact SKU and barcode first; a SKU is matched whole, without regard to case.
    assert_eq!(skus(&search(&app, "q=hat-1").await)[0], "HAT-1");
    assert_eq!(skus(&search(&app, "q=4006381333931").await), ["HAT-1"]);
    let body = search(&app, "q=tee-blk-m").await;
    assert_eq!(skus(&body)[0], "TEE-BLK-M");
    let first = &body["items"][0];
    assert!(first["score"].as_f64().unwrap() > 0.0);
    assert_eq!(first["price_cents"], 1500);
    assert_eq!(first["stock"], 3);
    assert_eq!(first["options"]["Size"], "M");
    // Nothing typed: everything, in the SKU-independent order of the index.
    assert_eq!(search(&app, "").await["total"], 5);
}

/// The listing's filters, and facets each counted with every filter but its own.
#[actix_web::test]
async fn search_filters_and_counts_facets() {
    let app = spawn_app().await;
    shop(&app).await;
    let q = |rest: &str| format!("q=shirt&{rest}");
    let body = search(&app, &q("facets=category,option.size,price")).await;
    let categories = facet(&body, "category");
    assert!(
        categories.contains(&("Apparel".into(), 3)),
        "{categories:?}"
    );
    assert!(categories.contains(&("Apparel > Men > T-Shirts".into(), 2)));
    assert!(categories.contains(&("Apparel > Accessories".into(), 1)));
    let mut sizes = facet(&body, "option.size");
    sizes.sort();
    assert_eq!(sizes, [("L".into(), 1), ("M".into(), 1)]);
    assert_eq!(
        facet(&body, "price"),
        [("1000-2500".into(), 2), ("2500-5000".into(), 1)]
    );
    // Filtering by an option narrows the hits, not that option's own counts.
    let body = search(&app, &q("option.Size=m&facets=option.Size,category")).await;
    assert_eq!(skus(&body), ["TEE-BLK-M"]);
    assert_eq!(body["total"], 1);
    assert_eq!(facet(&body, "option.Size").len(), 2);
    assert_eq!(
        facet(&body, "category")[0],
        ("Apparel".to_owned(), 1),
        "the other facets count with the option filter"
    );
    let only = |rest: &str| {
        let app = &app;
        let query = q(rest);
        async move { skus(&search(app, &query).await) }
    };
    assert_eq!(only("category=apparel%20%3E%20men").await.len(), 2);
    assert_eq!(
        only("category=Apparel%20%3E%20Accessories").await,
        ["HAT-1"]
    );
    assert_eq!(only("in_stock=true").await, ["TEE-BLK-M"]);
    assert_eq!(
        only("group=classic-tee&min_price_cents=1600").await,
        ["TEE-WHT-L"]
    );
    assert_eq!(only("max_price_cents=1500").await, ["TEE-BLK-M"]);
    // Price facet counted without the price filter.
    let body = search(&app, &q("max_price_cents=1500&facets=price")).await;
    assert_eq!(facet(&body, "price").iter().map(|v| v.1).sum::<u64>(), 3);
    for bad in [
        "facets=colour",
        "facets=option.",
        "limit=0",
        "limit=101",
        "category=%3E",
        "min_price_cents=9&max_price_cents=1",
        "sort=name",
    ] {
        app.get(&format!("/api/v1/search?{}", q(bad)), None)
            .await
            .assert_problem(422, "validation");
    }
    let long = "x".repeat(201);
    app.get(&format!("/api/v1/search?q={long}"), None)
        .await
        .assert_invalid("q");
}

/// Pages follow one snapshot: every hit once, while products change; a cursor
/// of another search is refused; an archived product is never shown once its
/// archive is acknowledged, even before the index has it.
#[actix_web::test]
async fn search_pages_are_stable_and_archives_are_never_shown() {
    let app = spawn_app().await;
    shop(&app).await;
    let t = Some(app.admin_token.as_str());
    let mut seen = Vec::new();
    let mut query = "q=shirt&limit=1".to_owned();
    loop {
        let body = search(&app, &query).await;
        assert_eq!(body["total"], 3);
        seen.extend(skus(&body));
        if seen.len() == 1 {
            // A change between pages does not shift the pages.
            app.post(
                "/api/v1/products",
                t,
                json!({"sku": "TEE-NEW", "name": "Shirt shirt shirt", "price_cents": 100}),
            )
            .await
            .assert_status(201);
            search_until(&app, "q=shirt", |b| b["total"] == 4).await;
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("q=shirt&limit=1&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["HAT-1", "TEE-BLK-M", "TEE-WHT-L"]);
    let first = search(&app, "q=shirt&limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    app.get(
        &format!("/api/v1/search?q=hat&limit=1&cursor={cursor}"),
        None,
    )
    .await
    .assert_invalid("cursor");
    app.get("/api/v1/search?q=shirt&cursor=AAAA", None)
        .await
        .assert_invalid("cursor");
    app.call(Method::DELETE, "/api/v1/products/TEE-WHT-L", t, None)
        .await
        .assert_status(204);
    assert!(
        !skus(&search(&app, "q=shirt&limit=100").await).contains(&"TEE-WHT-L".to_owned()),
        "an archived product shows in a search after its archive was acknowledged"
    );
    search_until(&app, "q=shirt", |b| b["total"] == 3).await;
}

/// Imported products are searchable too, without per-row events (`--import-events
/// summary`, the default): the index is fed from the commits themselves.
#[actix_web::test]
async fn imported_products_are_searchable() {
    let app = spawn_app().await;
    app.drop_file(
        "products_search.csv",
        b"sku,name,price,category,description\n\
          LMP-1,Desk Lamp,19.90,Home > Lighting,Warm light\n\
          LMP-2,Floor Lamp,49.00,Home > Lighting,Tall and bright\n",
    );
    let body = search_until(&app, "q=lamp&facets=category", |b| b["total"] == 2).await;
    assert_eq!(facet(&body, "category")[0], ("Home".into(), 2));
    assert_eq!(skus(&search(&app, "q=brigth").await), ["LMP-2"], "a typo");
}

fn lines_with(log: &[String], needle: &str) -> usize {
    log.iter().filter(|l| l.contains(needle)).count()
}

/// The server's log once its lines about the index have been read (the log is
/// read on a thread of its own, a little behind the answers).
fn log_of(server: &ChildServer) -> Vec<String> {
    let started = Instant::now();
    loop {
        let log = server.log.lock().unwrap().clone();
        if lines_with(&log, "search index built") + lines_with(&log, "search index opened") > 0
            || started.elapsed() > SEARCHABLE_WITHIN
        {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The index is derived data: a clean stop keeps it (the next start opens it and
/// builds nothing); a damaged index, or one a kill -9 left, is built again at
/// start from the catalog, and finds the same products.
#[test]
fn the_index_is_rebuilt_when_damaged_or_not_closed_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let start = || ChildServer::start(data.path(), inbox.path(), &[]);
    let found = |server: &ChildServer, q: &str| -> u64 {
        let url = format!("{}/api/v1/search?q={q}", server.base);
        runtime.block_on(async {
            let started = Instant::now();
            loop {
                let r = reqwest::get(&url).await.unwrap();
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").is_some();
                let body: Value = r.json().await.unwrap();
                if status == 200 && body["total"].as_u64() != Some(0) {
                    return body["total"].as_u64().unwrap();
                }
                if status == 503 {
                    assert_eq!(body["type"], "/problems/search-unavailable");
                    assert!(retry, "a 503 says when to retry");
                }
                assert!(started.elapsed() < SEARCHABLE_WITHIN, "{status} {body}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let server = start();
    let token = blocking_login(&server.base, "admin", ADMIN_PASSWORD);
    for (sku, name) in [("A-1", "Blue Kettle"), ("A-2", "Red Kettle")] {
        let (status, _) = crate::helpers::blocking_call(
            "POST",
            &format!("{}/api/v1/products", server.base),
            Some(&token),
            Some(json!({"sku": sku, "name": name, "price_cents": 100})),
        );
        assert_eq!(status, 201);
    }
    assert_eq!(found(&server, "kettle"), 2);
    let built_first = lines_with(&log_of(&server), "search index built");
    assert_eq!(built_first, 1, "a new node builds its index once");
    assert!(server.terminate().success());

    // A clean stop: opened, not built.
    let server = start();
    assert_eq!(found(&server, "kettle"), 2);
    let log = log_of(&server);
    assert_eq!(lines_with(&log, "search index built"), 0, "{log:?}");
    assert_eq!(lines_with(&log, "search index opened"), 1);
    // kill -9: the index was open for writing, so it is not trusted.
    server.kill();
    let server = start();
    assert_eq!(found(&server, "kettle"), 2);
    let log = log_of(&server);
    assert_eq!(lines_with(&log, "not closed cleanly"), 1, "{log:?}");
    assert_eq!(lines_with(&log, "search index built"), 1);
    assert!(server.terminate().success());

    // Damaged: its files garbled.
    let dir = data.path().join("search");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let server = start();
    assert_eq!(found(&server, "kettle"), 2);
    let log = log_of(&server);
    assert_eq!(lines_with(&log, "search index built"), 1, "{log:?}");
    assert!(server.terminate().success());
}

/// Every node keeps an index of its own, fed with the other nodes' commits
/// through the outbox: a product, an import (no per-row events), a sale that
/// empties the stock and an archive written through one node show in another's
/// searches.
#[actix_web::test]
async fn every_node_finds_what_another_node_wrote() {
    let nodes = crate::helpers::spawn_nodes(2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let t = Some(a.admin_token.as_str());
    a.post(
        "/api/v1/products",
        t,
        json!({"sku": "K-1", "name": "Copper Kettle", "price_cents": 4000}),
    )
    .await
    .assert_status(201);
    a.post(
        "/api/v1/products/K-1/stock",
        t,
        json!({"delta": 1, "reason": "restock"}),
    )
    .await
    .assert_status(201);
    search_until(b, "q=kettle&in_stock=true", |r| r["total"] == 1).await;
    a.drop_file(
        "products_kettles.csv",
        b"sku,name,price\nK-2,Steel Kettle,30.00\nK-3,Glass Kettle,35.00\n",
    );
    search_until(b, "q=kettle", |r| r["total"] == 3).await;
    let (_, customer) = a.customer("kettle-buyer").await;
    a.checkout(&customer, json!([{"sku": "K-1", "quantity": 1}]), None)
        .await
        .assert_status(201);
    search_until(b, "q=kettle&in_stock=true", |r| r["total"] == 0).await;
    a.call(Method::DELETE, "/api/v1/products/K-2", t, None)
        .await
        .assert_status(204);
    assert!(!skus(&search(b, "q=kettle").await).contains(&"K-2".to_owned()));
    search_until(b, "q=kettle", |r| r["total"] == 2).await;
}
