//! orderflow's scenario load driver, on goose.
//!
//! `loadgen browse|checkout|mixed` drives a running server with a realistic mix and
//! verifies every response (status and body shape): a server that answers errors
//! fast counts them as failures, it does not look fast. `loadgen ingest` drops a
//! generated products file into the inbox and waits for its job. Each run prints a
//! table and writes `<scenario>.json` (our summary) and `<scenario>.html` (goose's
//! report, with graphs) into `--report-dir`.
//!
//! Setup is idempotent: products `P-000001…` (with stock enough for the run) and
//! customers `bench1…` are created through the API when missing.
//!
//! Why one file: the goose driver's scenarios share its response checks and its report.

// Bench data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use goose::config::GooseConfiguration;
use goose::goose::GooseResponse;
use goose::prelude::*;
use rand::Rng;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// List, filter and get products.
    Browse,
    /// Log in once per user, then place orders.
    Checkout,
    /// 90% browse, 10% checkout.
    Mixed,
    /// Drop a generated products file into the inbox and wait for its job.
    Ingest,
}

#[derive(Debug, Parser)]
#[command(about = "Drive a running orderflow with a scenario and report throughput and latency")]
struct Args {
    #[arg(value_enum)]
    scenario: Kind,
    /// Base URL of the server.
    #[arg(long)]
    host: String,
    /// Concurrent users (connections).
    #[arg(long, default_value_t = 64)]
    users: usize,
    /// Seconds of load (after every user has started).
    #[arg(long, default_value_t = 20)]
    run_time: usize,
    /// Where reports go.
    #[arg(long, default_value = "target/bench-report")]
    report_dir: PathBuf,
    /// Label for this run in the report (e.g. `group-commit`).
    #[arg(long)]
    label: Option<String>,
    /// The admin's password (for setup).
    #[arg(long, env = "ORDERFLOW_ADMIN_PASSWORD")]
    admin_password: String,
    /// Products the catalog should have.
    #[arg(long, default_value_t = 1000)]
    products: u64,
    /// Ingest: rows of the generated file.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Requests per second, all users together (goose's throttle); unlimited when
    /// not given. For checkout that is about orders/s (each user logs in once).
    #[arg(long)]
    rate: Option<usize>,
    /// Ingest: the server's inbox folder.
    #[arg(long)]
    inbox: Option<PathBuf>,
}

const PASSWORD: &str = "bench-password-1";

fn main() -> anyhow_free::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

/// A tiny error alias so the driver needs no extra crate.
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

async fn run(args: Args) -> anyhow_free::Result<()> {
    std::fs::create_dir_all(&args.report_dir)?;
    let client = reqwest::Client::new();
    let admin = login(&client, &args.host, "admin", &args.admin_password).await?;
    if args.scenario == Kind::Ingest {
        return ingest(&args, &client, &admin).await;
    }
    ensure_catalog(&client, &args, &admin).await?;
    if args.scenario != Kind::Browse {
        ensure_customers(&client, &args.host, args.users).await?;
        CUSTOMERS.store(args.users.max(1), Ordering::Relaxed);
    }
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| format!("{:?}", args.scenario).to_lowercase());
    let name = label.clone();
    let products = args.products;
    PRODUCTS.store(products as usize, Ordering::Relaxed);

    let scenario = match args.scenario {
        Kind::Browse => scenario!("browse")
            .register_transaction(transaction!(list_products).set_weight(3)?)
            .register_transaction(transaction!(get_product).set_weight(6)?)
            .register_transaction(transaction!(categories).set_weight(1)?),
        Kind::Checkout => scenario!("checkout")
            .register_transaction(transaction!(log_in).set_on_start())
            .register_transaction(transaction!(place_order)),
        Kind::Mixed => scenario!("mixed")
            .register_transaction(transaction!(log_in).set_on_start())
            .register_transaction(transaction!(list_products).set_weight(3)?)
            .register_transaction(transaction!(get_product).set_weight(5)?)
            .register_transaction(transaction!(categories).set_weight(1)?)
            .register_transaction(transaction!(place_order).set_weight(1)?),
        Kind::Ingest => unreachable!(),
    };
    let html = args.report_dir.join(format!("{name}.html"));
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())?;
    if let Some(rate) = args.rate {
        attack = *attack.set_default(GooseDefault::ThrottleRequests, rate)?;
    }
    let metrics = attack
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, args.host.as_str())?
        .set_default(GooseDefault::Users, args.users)?
        .set_default(GooseDefault::IncreaseRate, &*args.users.max(1).to_string())?
        .set_default(GooseDefault::RunTime, args.run_time)?
        .set_default(GooseDefault::ReportFile, &*html.to_string_lossy())?
        .set_default(GooseDefault::Quiet, 1)?
        .execute()
        .await?;

    let summary = summarise(&label, &metrics);
    println!("{}", table(&summary));
    std::fs::write(
        args.report_dir.join(format!("{name}.json")),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    Ok(())
}

/// Requests per second, orders per second, latency percentiles and errors, per
/// request name and in total.
fn summarise(label: &str, m: &GooseMetrics) -> Value {
    let seconds = m.duration.max(1) as f64;
    let mut per_request = serde_json::Map::new();
    let (mut total, mut failed, mut orders) = (0usize, 0usize, 0usize);
    for (key, r) in &m.requests {
        let count = r.success_count + r.fail_count;
        total += count;
        failed += r.fail_count;
        if r.path.contains("/orders") && r.method == GooseMethod::Post {
            orders += r.success_count;
        }
        per_request.insert(
            key.clone(),
            json!({
                "requests": count,
                "errors": r.fail_count,
                "requests_per_second": (count as f64 / seconds).round(),
                "p50_ms": r.raw_data.percentile_us(0.5) as f64 / 1000.0,
                "p95_ms": r.raw_data.percentile_us(0.95) as f64 / 1000.0,
                "p99_ms": r.raw_data.percentile_us(0.99) as f64 / 1000.0,
                "status_codes": r.status_code_counts,
            }),
        );
    }
    json!({
        "scenario": label,
        "seconds": m.duration,
        "users": m.maximum_users,
        "requests": total,
        "errors": failed,
        "requests_per_second": (total as f64 / seconds).round(),
        "orders_per_second": (orders as f64 / seconds).round(),
        "by_request": per_request,
    })
}

fn table(s: &Value) -> String {
    let mut out = format!(
        "scenario {}: {} requests in {} s ({} req/s, {} orders/s), {} errors\n{:<36} {:>9} {:>8} {:>9} {:>9} {:>9}\n",
        s["scenario"].as_str().unwrap_or(""),
        s["requests"],
        s["seconds"],
        s["requests_per_second"],
        s["orders_per_second"],
        s["errors"],
        "request",
        "req/s",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms"
    );
    if let Some(rows) = s["by_request"].as_object() {
        for (name, r) in rows {
            out += &format!(
                "{name:<36} {:>9} {:>8} {:>9.2} {:>9.2} {:>9.2}\n",
                r["requests_per_second"],
                r["errors"],
                r["p50_ms"].as_f64().unwrap_or(0.0),
                r["p95_ms"].as_f64().unwrap_or(0.0),
                r["p99_ms"].as_f64().unwrap_or(0.0)
            );
        }
    }
    out
}

// --- setup ----------------------------------------------------------------------------

async fn login(
    client: &reqwest::Client,
    host: &str,
    user: &str,
    password: &str,
) -> anyhow_free::Result<String> {
    let res = client
        .post(format!("{host}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(format!("login as {user} failed: {}", res.status()).into());
    }
    Ok(res.json::<Value>().await?["access_token"]
        .as_str()
        .ok_or("no token")?
        .to_owned())
}

/// Creates products `P-000001…` one request each (32 at a time), with the stock
/// the import would give them.
async fn seed_through_api(
    client: &reqwest::Client,
    args: &Args,
    admin: &str,
) -> anyhow_free::Result<()> {
    let mut pending = Vec::new();
    for i in 1..=args.products {
        let request = client
            .put(format!("{}/api/v1/products/P-{i:06}", args.host))
            .bearer_auth(admin)
            .json(&json!({
                "name": format!("Bench product {i}"),
                "category": format!("Category {}", i % 20),
                "price_cents": 100 + (i * 37) % 10_000,
                "stock": 1_000_000_000,
            }))
            .send();
        pending.push(request);
        if pending.len() == 32 || i == args.products {
            for res in futures_util::future::join_all(pending.drain(..)).await {
                let res = res?;
                if !res.status().is_success() {
                    return Err(format!("seeding through the API: {}", res.status()).into());
                }
            }
        }
    }
    Ok(())
}

/// Uploads products `P-000001…` with a large stock, unless the catalog has them.
async fn ensure_catalog(
    client: &reqwest::Client,
    args: &Args,
    admin: &str,
) -> anyhow_free::Result<()> {
    let last = format!("{}/api/v1/products/P-{:06}", args.host, args.products);
    if client.get(&last).send().await?.status().is_success() {
        return Ok(());
    }
    let mut products = Vec::new();
    orderflow::datagen::generate(
        &orderflow::config::GenArgs {
            kind: orderflow::config::GenKind::Products,
            count: args.products,
            first: 1,
            dirty: 0.0,
            seed: 1,
            catalog_depth: false,
            format: orderflow::config::GenFormat::Csv,
            output: None,
            customers: 0,
            products: 0,
        },
        &mut products,
    )?;
    let stock: String = (1..=args.products)
        .map(|i| format!("P-{i:06},1000000000\n"))
        .collect();
    for (name, body) in [
        ("products_bench_seed.csv", products),
        (
            "inventory_bench_seed.csv",
            format!("sku,stock\n{stock}").into_bytes(),
        ),
    ] {
        let res = client
            .post(format!("{}/api/v1/imports?name={name}", args.host))
            .bearer_auth(admin)
            .body(body)
            .send()
            .await?;
        if res.status().as_u16() == 501 {
            // A backend without imports (PostgreSQL, so far): the same products
            // through the API instead.
            return seed_through_api(client, args, admin).await;
        }
        if res.status().as_u16() != 202 {
            return Err(format!("seeding {name}: {}", res.status()).into());
        }
        let job = res.json::<Value>().await?["job"]["id"]
            .as_u64()
            .ok_or("no job id")?;
        wait_job(client, &args.host, admin, job).await?;
    }
    Ok(())
}

async fn ensure_customers(
    client: &reqwest::Client,
    host: &str,
    n: usize,
) -> anyhow_free::Result<()> {
    for i in 1..=n {
        let body = json!({"username": format!("bench{i}"), "email": format!("bench{i}@example.com"), "password": PASSWORD});
        let status = client
            .post(format!("{host}/api/v1/auth/register"))
            .json(&body)
            .send()
            .await?
            .status()
            .as_u16();
        if status != 201 && status != 409 {
            return Err(format!("registering bench{i}: {status}").into());
        }
    }
    Ok(())
}

async fn wait_job(
    client: &reqwest::Client,
    host: &str,
    admin: &str,
    id: u64,
) -> anyhow_free::Result<Value> {
    loop {
        let job: Value = client
            .get(format!("{host}/api/v1/imports/{id}"))
            .bearer_auth(admin)
            .send()
            .await?
            .json()
            .await?;
        match job["status"].as_str() {
            Some("completed") => return Ok(job),
            Some("failed") | Some("duplicate") => return Err(format!("job {id}: {job}").into()),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Drops a generated file into the inbox and waits for its job: rows/s from drop
/// to the last durable commit, and as the job measured it.
async fn ingest(args: &Args, client: &reqwest::Client, admin: &str) -> anyhow_free::Result<()> {
    let inbox = args.inbox.clone().ok_or("ingest needs --inbox")?;
    let staging = inbox.join(format!(".bench-{}.csv.part", std::process::id()));
    let file = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&staging)?);
    orderflow::datagen::generate(
        &orderflow::config::GenArgs {
            kind: orderflow::config::GenKind::Products,
            count: args.rows,
            first: 1,
            dirty: 1.0,
            seed: 11,
            catalog_depth: false,
            format: orderflow::config::GenFormat::Csv,
            output: None,
            customers: 0,
            products: 0,
        },
        file,
    )?;
    let bytes = std::fs::metadata(&staging)?.len();
    let name = format!("products_bench_{}.csv", std::process::id());
    let dropped = Instant::now();
    std::fs::rename(&staging, inbox.join(&name))?;
    let job = loop {
        let jobs: Value = client
            .get(format!("{}/api/v1/imports?limit=20", args.host))
            .bearer_auth(admin)
            .send()
            .await?
            .json()
            .await?;
        if let Some(job) = jobs["items"]
            .as_array()
            .and_then(|a| a.iter().find(|j| j["file_name"] == name.as_str()))
        {
            match job["status"].as_str() {
                Some("completed") => break job.clone(),
                Some("failed") | Some("duplicate") => {
                    return Err(format!("ingest job: {job}").into());
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let wall = dropped.elapsed().as_secs_f64();
    let rows = job["rows_read"].as_u64().unwrap_or(0);
    let started = time_ms(&job["started_at"]);
    let finished = time_ms(&job["finished_at"]);
    let job_seconds = (finished - started).max(1) as f64 / 1000.0;
    let label = args.label.clone().unwrap_or_else(|| "ingest".into());
    let summary = json!({
        "scenario": label,
        "rows": rows,
        "rows_loaded": job["rows_loaded"],
        "rows_rejected": job["rows_rejected"],
        "bytes": bytes,
        "seconds_drop_to_done": wall,
        "rows_per_second_drop_to_done": (rows as f64 / wall).round(),
        "rows_per_second_job": (rows as f64 / job_seconds).round(),
    });
    println!(
        "ingest: {rows} rows ({bytes} bytes) in {wall:.2} s from drop to last commit = {:.0} rows/s ({:.0} rows/s inside the job)",
        rows as f64 / wall,
        rows as f64 / job_seconds
    );
    std::fs::write(
        args.report_dir.join(format!("{label}.json")),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    Ok(())
}

fn time_ms(v: &Value) -> i64 {
    // RFC 3339 with milliseconds, UTC: 2026-11-25T20:06:49.123Z.
    let s = v.as_str().unwrap_or("");
    let parse = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let (h, m, sec, ms) = (parse(11, 13), parse(14, 16), parse(17, 19), parse(20, 23));
    let day = parse(8, 10);
    ((day * 24 + h) * 60 + m) * 60_000 + sec * 1000 + ms
}

// --- transactions ---------------------------------------------------------------------

static PRODUCTS: AtomicUsize = AtomicUsize::new(1000);
static NEXT_USER: AtomicUsize = AtomicUsize::new(0);
/// Customers registered in setup (`bench1…benchN`); a goose user started beyond
/// them (goose restarts users) logs in as one of them again.
static CUSTOMERS: AtomicUsize = AtomicUsize::new(1);

struct Session {
    token: String,
}

fn random_sku() -> String {
    let n = PRODUCTS.load(Ordering::Relaxed).max(1);
    format!("P-{:06}", rand::rng().random_range(1..=n))
}

/// Reads the body and fails the request unless the status and the body's shape are
/// right.
async fn verify(
    user: &mut GooseUser,
    mut goose: GooseResponse,
    status: u16,
    check: impl Fn(&Value) -> bool,
) -> TransactionResult {
    let response = match goose.response {
        Ok(r) => r,
        Err(e) => {
            return user.set_failure(&format!("transport: {e}"), &mut goose.request, None, None);
        }
    };
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if got != status || !check(&body) {
        let text = body.to_string();
        return user.set_failure(
            &format!("status {got}"),
            &mut goose.request,
            None,
            Some(&text),
        );
    }
    Ok(())
}

async fn list_products(user: &mut GooseUser) -> TransactionResult {
    const QUERIES: [&str; 5] = [
        "?limit=20",
        "?category=Networking&limit=20",
        "?sort=price&limit=50",
        "?q=router&limit=20",
        "?in_stock=true&sort=-price&limit=20",
    ];
    let q = QUERIES[rand::rng().random_range(0..QUERIES.len())];
    let path = format!("/api/v1/products{q}");
    let request = GooseRequest::builder()
        .path(path.as_str())
        .name("/api/v1/products?…")
        .build();
    let goose = user.request(request).await?;
    verify(user, goose, 200, |b| {
        b["items"].is_array() && b.get("next_cursor").is_some()
    })
    .await
}

async fn get_product(user: &mut GooseUser) -> TransactionResult {
    let sku = random_sku();
    let path = format!("/api/v1/products/{sku}");
    let request = GooseRequest::builder()
        .path(path.as_str())
        .name("/api/v1/products/{sku}")
        .build();
    let goose = user.request(request).await?;
    verify(user, goose, 200, |b| {
        b["sku"] == sku.as_str() && b["price_cents"].is_u64()
    })
    .await
}

async fn categories(user: &mut GooseUser) -> TransactionResult {
    let goose = user.get("/api/v1/categories").await?;
    verify(user, goose, 200, |b| b.is_array()).await
}

/// Log-ins this driver has in flight at once. The service counts a log-in from one
/// address as failed until its hash is done, and refuses the address with 429 past
/// `LOGIN_FAILURES_MAX` of them: 64 users logging in at start from 127.0.0.1 drew
/// dozens of 429s (all in the errors column). Staying under the limit, none do.
static LOGINS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(orderflow_actors::limits::LOGIN_FAILURES_MAX as usize - 2);

async fn log_in(user: &mut GooseUser) -> TransactionResult {
    // The semaphore never closes; a user that cannot hold a permit logs in anyway.
    let _permit = LOGINS.acquire().await.ok();
    let n = NEXT_USER.fetch_add(1, Ordering::Relaxed) % CUSTOMERS.load(Ordering::Relaxed) + 1;
    let body = json!({"username": format!("bench{n}"), "password": PASSWORD});
    let goose = user.post_json("/api/v1/auth/login", &body).await?;
    let token = match goose.response {
        Ok(r) => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["access_token"].as_str().map(str::to_owned)),
        Err(_) => None,
    };
    match token {
        Some(token) => {
            user.set_session_data(Arc::new(Session { token }));
            Ok(())
        }
        None => {
            let mut request = goose.request;
            user.set_failure("login failed", &mut request, None, None)
        }
    }
}

async fn place_order(user: &mut GooseUser) -> TransactionResult {
    let Some(session) = user.get_session_data::<Arc<Session>>().cloned() else {
        // The log-in at start failed (a 429 from the login throttle, which counts
        // logins in flight from one address): wait, then log in again. Returning
        // at once would spin this user without ever yielding.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        return log_in(user).await;
    };
    let lines: Vec<Value> = (0..rand::rng().random_range(1..=2))
        .map(|_| json!({"sku": random_sku(), "quantity": 1}))
        .collect();
    let builder = user
        .get_request_builder(&GooseMethod::Post, "/api/v1/orders")?
        .bearer_auth(&session.token)
        .json(&json!({"items": lines}));
    let request = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path("/api/v1/orders")
        .set_request_builder(builder)
        .build();
    let goose = user.request(request).await?;
    verify(user, goose, 201, |b| {
        b["id"].is_u64() && b["total_cents"].as_u64().is_some_and(|t| t > 0)
    })
    .await
}
