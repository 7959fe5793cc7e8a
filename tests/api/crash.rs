//! Crash tests: the real binary killed with SIGKILL under load, then reopened.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ChildServer};

const SKUS: [&str; 4] = ["K-1", "K-2", "K-3", "K-4"];
const INITIAL_STOCK: u64 = 1_000_000;

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut req = client.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

async fn login(client: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn checkouts_acknowledged_before_a_sigkill_survive_it_exactly_once() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();

    for round in 0..2 {
        let server = ChildServer::start(data.path(), inbox.path(), &[]);
        let base = server.base.clone();
        let tokens = rt.block_on(async {
            let admin = login(&client, &base, "admin", ADMIN_PASSWORD).await;
            if round == 0 {
                for sku in SKUS {
                    let body = json!({"sku": sku, "name": sku, "price_cents": 100, "stock": INITIAL_STOCK});
                    let (s, b) = call(&client, reqwest::Method::POST, format!("{base}/api/v1/products"), &admin, Some(body)).await.unwrap();
                    assert_eq!(s, 201, "{b}");
                }
            }
            let mut tokens = Vec::new();
            for i in 0..32 {
                let name = format!("crash{i}");
                if round == 0 {
                    let res = client.post(format!("{base}/api/v1/auth/register"))
                        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "password-123"}))
                        .send().await.unwrap();
                    assert_eq!(res.status().as_u16(), 201);
                }
                tokens.push(login(&client, &base, &name, "password-123").await);
            }
            tokens
        });

        // 32 clients place orders as fast as they can; the server is killed mid-stream.
        let workers: Vec<_> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, token)| {
                let (client, base, acknowledged) = (client.clone(), base.clone(), Arc::clone(&acknowledged));
                rt.spawn(async move {
                    for n in 0usize.. {
                        let a = SKUS[(i + n) % SKUS.len()];
                        let b = SKUS[(i + n + 1) % SKUS.len()];
                        let items = json!({"items": [{"sku": a, "quantity": 1 + n % 3}, {"sku": b, "quantity": 1}]});
                        match call(&client, reqwest::Method::POST, format!("{base}/api/v1/orders"), &token, Some(items)).await {
                            Ok((201, order)) => acknowledged.lock().unwrap().push(order),
                            Ok((status, body)) => panic!("unexpected {status}: {body}"),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        server.kill();
        for w in workers {
            rt.block_on(w).unwrap();
        }
    }

    // Reopen: every acknowledged order is there, with the same lines and total.
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let base = server.base.clone();
    rt.block_on(async {
        let admin = login(&client, &base, "admin", ADMIN_PASSWORD).await;
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            acknowledged.len() > 100,
            "the load ran ({} orders)",
            acknowledged.len()
        );
        for order in &acknowledged {
            let (status, stored) = call(
                &client,
                reqwest::Method::GET,
                format!("{base}/api/v1/orders/{}", order["id"]),
                &admin,
                None,
            )
            .await
            .unwrap();
            assert_eq!(status, 200, "acknowledged order {} lost", order["id"]);
            assert_eq!(stored["items"], order["items"]);
            assert_eq!(stored["total_cents"], order["total_cents"]);
        }

        // Every order in the ledger once; stock = initial − Σ sold + Σ cancelled = Σ movements.
        let mut ids = HashSet::new();
        let mut sold: BTreeMap<String, u64> = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{base}/api/v1/orders?limit=200&cursor={c}"),
                None => format!("{base}/api/v1/orders?limit=200"),
            };
            let (_, page) = call(&client, reqwest::Method::GET, url, &admin, None)
                .await
                .unwrap();
            for o in page["items"].as_array().unwrap() {
                assert!(
                    ids.insert(o["id"].as_u64().unwrap()),
                    "order {} listed twice",
                    o["id"]
                );
                if o["status"] != "cancelled" {
                    for line in o["items"].as_array().unwrap() {
                        *sold
                            .entry(line["sku"].as_str().unwrap().to_owned())
                            .or_default() += line["quantity"].as_u64().unwrap();
                    }
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert!(ids.len() >= acknowledged.len());
        for sku in SKUS {
            let (_, p) = call(
                &client,
                reqwest::Method::GET,
                format!("{base}/api/v1/products/{sku}"),
                &admin,
                None,
            )
            .await
            .unwrap();
            assert_eq!(
                p["stock"].as_u64().unwrap(),
                INITIAL_STOCK - sold.get(sku).copied().unwrap_or(0),
                "{sku}"
            );
        }
        let (_, report) = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/api/v1/admin/ledger/verify"),
            &admin,
            None,
        )
        .await
        .unwrap();
        assert_eq!(report["problems"], json!([]), "{report}");
        assert_eq!(
            report["orders_checked"].as_u64().unwrap() as usize,
            ids.len()
        );
    });
    drop(server);
}
