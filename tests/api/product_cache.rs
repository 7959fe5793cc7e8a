//! The product read cache (redb; `orderflow_actors::catalog::cache`) seen from
//! outside: whatever wrote a product, the next read shows it. On PostgreSQL,
//! which has no cache, the same test checks plain reads.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

/// A product read is served from the read cache once it is hot; every write the
/// service has acknowledged shows in the next read all the same, whoever wrote
/// it: a checkout, a stock movement, an API change, an import, an archive. Four
/// readers keep the two products hot (and race each write with reads that may
/// put stale bytes) while the writes go on.
#[actix_web::test]
async fn every_acknowledged_write_shows_in_the_next_read_of_a_hot_product() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let app = Arc::new(spawn_app().await);
    let t = app.admin_token.clone();
    let t = Some(t.as_str());
    app.create_product("HOT-1", 100, 1_000).await;
    app.create_product("HOT-2", 200, 1_000).await;
    let (_, buyer) = app.customer("hot-buyer").await;
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (app, done) = (app.clone(), done.clone());
            actix_web::rt::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                    for sku in ["HOT-1", "HOT-2"] {
                        app.get(&format!("/api/v1/products/{sku}"), None)
                            .await
                            .assert_status(200);
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    // The model: (price, stock) of each product.
    let mut want = [(100u64, 1_000u64), (200, 1_000)];
    let check = |want: [(u64, u64); 2], step: usize| {
        let app = app.clone();
        async move {
            for (i, sku) in ["HOT-1", "HOT-2"].into_iter().enumerate() {
                let p = app.product(sku).await;
                assert_eq!(
                    (
                        p["price_cents"].as_u64().unwrap(),
                        p["stock"].as_u64().unwrap()
                    ),
                    want[i],
                    "{sku} after step {step}: {p}"
                );
            }
        }
    };
    for step in 0..24 {
        match step % 4 {
            0 => {
                app.checkout(&buyer, json!([{"sku": "HOT-1", "quantity": 2}]), None)
                    .await
                    .assert_status(201);
                want[0].1 -= 2;
            }
            1 => {
                app.post(
                    "/api/v1/products/HOT-2/stock",
                    t,
                    json!({"delta": 3, "reason": "delivery"}),
                )
                .await
                .assert_status(201);
                want[1].1 += 3;
            }
            2 => {
                let price = 100 + step as u64;
                app.call(
                    Method::PATCH,
                    "/api/v1/products/HOT-1",
                    t,
                    Some(json!({"price_cents": price})),
                )
                .await
                .assert_status(200);
                want[0].0 = price;
            }
            _ => {
                let (price, stock) = (300 + step as u64, 50 + step as u64);
                let name = format!("hot_{step}.csv");
                let csv = format!(
                    "sku,name,category,price,stock\nHOT-2,Product HOT-2,Tests,{}.{:02},{stock}\n",
                    price / 100,
                    price % 100
                );
                app.drop_file(&name, csv.as_bytes());
                assert_eq!(app.job_for(&name).await["status"], "completed");
                want[1] = (price, stock);
            }
        }
        check(want, step).await;
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        // The readers stop at `done` (or their deadline) and each read some.
        let reads = r.await.unwrap();
        assert!(reads > 0);
    }
    // An archive: the hot product is gone at once.
    app.product("HOT-2").await;
    app.call(Method::DELETE, "/api/v1/products/HOT-2", t, None)
        .await
        .assert_status(204);
    app.get("/api/v1/products/HOT-2", None)
        .await
        .assert_problem(404, "not-found");
}
