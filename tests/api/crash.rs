//! Crash tests: the real binary killed with SIGKILL under load, then reopened.
//!
//! Why one file: each crash scenario shares the kill-and-reopen harness at its top.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

    // How many starts after a kill found journaled batches redb had not made
    // durable and wrote them again: the load is heavy enough that each kill lands
    // between two checkpoints, so the acknowledged orders below went that way.
    let mut replays = 0;
    for round in 0..2 {
        let server = ChildServer::start(data.path(), inbox.path(), &[]);
        replays += replayed_journal(&server);
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
        // Kill mid-stream once this round has had its 100 acknowledgements and at
        // least a second of load, however slow the machine is today.
        let (round_start, before) = (Instant::now(), acknowledged.lock().unwrap().len());
        while acknowledged.lock().unwrap().len() < before + 100
            || round_start.elapsed() < Duration::from_secs(1)
        {
            assert!(
                round_start.elapsed() < Duration::from_secs(120),
                "no load reached the server"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server.kill();
        for w in workers {
            rt.block_on(w).unwrap();
        }
    }

    // Reopen: every acknowledged order is there, with the same lines and total.
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    replays += replayed_journal(&server);
    assert!(
        replays >= 1,
        "no restart replayed the ledger journal, so the kills did not test it"
    );
    let base = server.base.clone();
    rt.block_on(async {
        let admin = login(&client, &base, "admin", ADMIN_PASSWORD).await;
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            acknowledged.len() >= 200,
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

        // The outbox committed with the orders: every order in the ledger (so every
        // acknowledged one) has exactly one `order.placed`, no event names an order
        // that does not exist, and the seqs have no gap.
        let mut placed = Vec::new();
        let (mut after, mut expected_seq) = (0u64, 1u64);
        loop {
            let (status, page) = call(
                &client,
                reqwest::Method::GET,
                format!("{base}/api/v1/events?after={after}&limit=1000"),
                &admin,
                None,
            )
            .await
            .unwrap();
            assert_eq!(status, 200, "{page}");
            let items = page["items"].as_array().unwrap();
            if items.is_empty() {
                break;
            }
            for e in items {
                assert_eq!(
                    e["seq"].as_u64().unwrap(),
                    expected_seq,
                    "a gap in the seqs"
                );
                expected_seq += 1;
                if e["type"] == "order.placed" {
                    placed.push(e["data"]["id"].as_u64().unwrap());
                }
            }
            after = page["next_after"].as_u64().unwrap();
        }
        let placed_set: HashSet<u64> = placed.iter().copied().collect();
        assert_eq!(placed_set.len(), placed.len(), "an order placed twice");
        assert_eq!(placed_set, ids, "orders and their events differ");
    });
    drop(server);
}

/// Runs `orderflow gen …` into `path`.
fn generate(path: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new(ChildServer::binary())
        .arg("gen")
        .args(args)
        .arg("-o")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drops `source` into the inbox atomically (a rename on the same file system).
fn drop_into(inbox: &std::path::Path, source: &std::path::Path, name: &str) {
    std::fs::rename(source, inbox.join(name)).unwrap();
}

struct Admin {
    client: reqwest::Client,
    token: String,
    base: String,
}

impl Admin {
    fn connect(rt: &tokio::runtime::Runtime, base: &str) -> Self {
        let client = reqwest::Client::new();
        let token = rt.block_on(login(&client, base, "admin", ADMIN_PASSWORD));
        Self {
            client,
            token,
            base: base.to_owned(),
        }
    }

    fn get(&self, rt: &tokio::runtime::Runtime, path: &str) -> Value {
        rt.block_on(call(
            &self.client,
            reqwest::Method::GET,
            format!("{}{path}", self.base),
            &self.token,
            None,
        ))
        .unwrap()
        .1
    }

    fn job(&self, rt: &tokio::runtime::Runtime, file_name: &str) -> Option<Value> {
        let jobs = self.get(rt, "/api/v1/imports?limit=200");
        jobs["items"]
            .as_array()?
            .iter()
            .find(|j| j["file_name"] == file_name)
            .cloned()
    }

    /// Waits until the job has made progress past `rows` (or finished).
    fn wait_progress(&self, rt: &tokio::runtime::Runtime, file_name: &str, rows: u64) -> Value {
        let started = Instant::now();
        loop {
            if let Some(job) = self.job(rt, file_name)
                && (job["rows_read"].as_u64().unwrap() > rows
                    || job["status"] != "running" && job["status"] != "queued")
            {
                return job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "no progress on {file_name}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_finished(&self, rt: &tokio::runtime::Runtime, file_name: &str) -> Value {
        let started = Instant::now();
        loop {
            if let Some(job) = self.job(rt, file_name)
                && ["completed", "failed", "duplicate"].contains(&job["status"].as_str().unwrap())
            {
                return job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "{file_name} did not finish"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Kills the server each time the job has committed more, `kills` times, then lets
/// it finish. Returns how many kills landed while the job was still running.
fn kill_while_loading(
    rt: &tokio::runtime::Runtime,
    data: &std::path::Path,
    inbox: &std::path::Path,
    file_name: &str,
    kills: usize,
) -> (ChildServer, usize) {
    let mut server = ChildServer::start(data, inbox, &[]);
    let mut mid_file = 0;
    let mut seen = 0;
    for _ in 0..kills {
        let admin = Admin::connect(rt, &server.base);
        let job = admin.wait_progress(rt, file_name, seen);
        seen = job["rows_read"].as_u64().unwrap();
        if job["status"] == "running" {
            mid_file += 1;
        }
        server.kill();
        server = ChildServer::start(data, inbox, &[]);
    }
    (server, mid_file)
}

#[test]
fn a_products_file_killed_mid_load_loads_every_row_exactly_once() {
    const ROWS: u64 = 300_000;
    let root = tempfile::tempdir().unwrap();
    let (data, inbox) = (root.path().join("data"), root.path().join("inbox"));
    std::fs::create_dir_all(&inbox).unwrap();
    let source = root.path().join("generated.csv");
    generate(
        &source,
        &["products", "--count", &ROWS.to_string(), "--seed", "42"],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let first = ChildServer::start(&data, &inbox, &[]);
    drop_into(&inbox, &source, "products_big.csv");
    drop(first);
    let (server, mid_file) = kill_while_loading(&rt, &data, &inbox, "products_big.csv", 3);
    assert!(
        mid_file >= 2,
        "the kills should land mid-file ({mid_file} did)"
    );

    let admin = Admin::connect(&rt, &server.base);
    let job = admin.wait_finished(&rt, "products_big.csv");
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (
            job["rows_read"].as_u64(),
            job["rows_loaded"].as_u64(),
            job["rows_rejected"].as_u64()
        ),
        (Some(ROWS), Some(ROWS), Some(0))
    );
    // Counted independently of the job: the catalog's category counts (the
    // top level's subtrees hold every product once).
    let categories = admin.get(&rt, "/api/v1/categories");
    let products: u64 = categories
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["depth"] == 1)
        .map(|c| c["product_count"].as_u64().unwrap())
        .sum();
    assert_eq!(products, ROWS);
    let report = admin.get(&rt, "/api/v1/admin/ledger/verify");
    assert_eq!(report["problems"], json!([]), "{report}");
    assert!(inbox.join("processed/products_big.csv").exists());
    assert!(
        inbox
            .join("processed/products_big.csv.report.json")
            .exists()
    );
}

#[test]
fn an_orders_file_killed_mid_load_never_counts_an_order_twice() {
    const ROWS: u64 = 60_000;
    const SKUS: u64 = 500;
    const INITIAL: u64 = 1_000_000;
    let root = tempfile::tempdir().unwrap();
    let (data, inbox) = (root.path().join("data"), root.path().join("inbox"));
    std::fs::create_dir_all(&inbox).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = ChildServer::start(&data, &inbox, &[]);
    let admin = Admin::connect(&rt, &server.base);
    rt.block_on(async {
        for i in 1..=20 {
            let res = admin
                .client
                .post(format!("{}/api/v1/auth/register", server.base))
                .json(&json!({"username": format!("customer{i}"), "email": format!("customer{i}@example.com"), "password": "password-123"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 201);
        }
    });
    let products = root.path().join("p.csv");
    generate(
        &products,
        &["products", "--count", &SKUS.to_string(), "--seed", "3"],
    );
    drop_into(&inbox, &products, "products_base.csv");
    assert_eq!(
        admin.wait_finished(&rt, "products_base.csv")["status"],
        "completed"
    );
    let inventory: String = (1..=SKUS)
        .map(|i| format!("P-{i:06},{INITIAL}\n"))
        .collect();
    let inv = root.path().join("i.csv");
    std::fs::write(&inv, format!("sku,stock\n{inventory}")).unwrap();
    drop_into(&inbox, &inv, "inventory_base.csv");
    assert_eq!(
        admin.wait_finished(&rt, "inventory_base.csv")["rows_loaded"],
        SKUS
    );

    let orders = root.path().join("o.csv");
    generate(
        &orders,
        &[
            "orders",
            "--count",
            &ROWS.to_string(),
            "--customers",
            "20",
            "--products",
            &SKUS.to_string(),
            "--seed",
            "9",
            "--dirty",
            "2",
        ],
    );
    drop_into(&inbox, &orders, "orders_big.csv");
    drop(server);
    let (server, mid_file) = kill_while_loading(&rt, &data, &inbox, "orders_big.csv", 3);
    assert!(
        mid_file >= 1,
        "a kill should land mid-file ({mid_file} did)"
    );

    let admin = Admin::connect(&rt, &server.base);
    let job = admin.wait_finished(&rt, "orders_big.csv");
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["rows_read"].as_u64(), Some(ROWS));
    assert_eq!(
        job["rows_loaded"].as_u64().unwrap() + job["rows_rejected"].as_u64().unwrap(),
        ROWS
    );
    assert!(
        job["rows_rejected"].as_u64().unwrap() > 0,
        "the dirty rows were rejected"
    );

    // Every order once; its lines add up to what the job loaded; stock is what the
    // orders took, and the ledger's own audit agrees.
    let mut refs = HashSet::new();
    let mut lines = 0u64;
    let mut sold: BTreeMap<String, u64> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orders?limit=200&cursor={c}"),
            None => "/api/v1/orders?limit=200".to_owned(),
        };
        let page = admin.get(&rt, &path);
        for o in page["items"].as_array().unwrap() {
            assert!(
                refs.insert(o["external_ref"].as_str().unwrap().to_owned()),
                "order {} loaded twice",
                o["external_ref"]
            );
            for l in o["items"].as_array().unwrap() {
                *sold
                    .entry(l["sku"].as_str().unwrap().to_owned())
                    .or_default() += l["quantity"].as_u64().unwrap();
            }
        }
        lines += page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["items"].as_array().unwrap().len() as u64)
            .sum::<u64>();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(
        lines <= job["rows_loaded"].as_u64().unwrap(),
        "merged lines never exceed loaded rows"
    );
    for (sku, qty) in sold.iter().take(50) {
        let p = admin.get(&rt, &format!("/api/v1/products/{sku}"));
        assert_eq!(p["stock"].as_u64().unwrap(), INITIAL - qty, "{sku}");
    }
    let report = admin.get(&rt, "/api/v1/admin/ledger/verify");
    assert_eq!(report["problems"], json!([]), "{report}");
    assert_eq!(
        report["orders_checked"].as_u64().unwrap() as usize,
        refs.len()
    );
}

/// 1 if the server's start replayed ledger journal records (it logs that before
/// it listens), else 0.
fn replayed_journal(server: &ChildServer) -> usize {
    usize::from(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("ledger journal replayed")),
    )
}
