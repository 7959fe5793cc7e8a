//! Failover (contract §6, issue 14): three nodes under checkout load on a primary
//! with a synchronous standby; the primary is killed (`pg_ctl -m immediate stop`)
//! and the standby promoted (`pg_ctl promote`). The nodes find the new primary by
//! themselves; meanwhile they answer 503 (with Retry-After) or, for a checkout whose
//! commit was cut off, the unknown-outcome problem, and a retry with the same
//! Idempotency-Key settles it. No acknowledged order is lost.
//!
//! `FAILOVER_RUNS=5` runs the whole failover five times in a row (each on a new
//! cluster); CI runs it once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{TestApp, spawn_node};
use crate::pg::Cluster;

const STOCK: u64 = 1_000_000;
const BUYERS: usize = 24;
/// Longest any one answer may take: no caller hangs through the outage.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);
/// How soon after the promotion every node must take checkouts again (a bound
/// for a noisy machine, not a timing).
const BACK_LIMIT: Duration = Duration::from_secs(60);

/// What a client finally got for one Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Final {
    Order(u64),
    /// Every attempt was refused (503) or left unknown: the order may or may not
    /// exist; the ledger's own count decides.
    GaveUp,
}

/// One buyer: checkouts of one unit, each retried with its key while the answer
/// is 503 or unknown, until `stop`. Answers every key's final outcome and the
/// statuses seen.
async fn buyer(
    node: Arc<TestApp>,
    token: String,
    name: String,
    stop: Arc<AtomicBool>,
) -> (BTreeMap<String, Final>, BTreeMap<u16, u64>) {
    let mut finals = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    let mut n = 0;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let key = format!("{name}-{n}");
        let mut outcome = Final::GaveUp;
        for _attempt in 0..40 {
            let reply = tokio::time::timeout(
                ANSWER_LIMIT,
                node.checkout(&token, json!([{"sku": "FO-1", "quantity": 1}]), Some(&key)),
            )
            .await
            .unwrap_or_else(|_| panic!("a checkout hung past {ANSWER_LIMIT:?}"));
            let status = reply.status.as_u16();
            *statuses.entry(status).or_default() += 1;
            match status {
                201 => {
                    outcome = Final::Order(reply.body["id"].as_u64().unwrap());
                    break;
                }
                503 => {
                    assert!(
                        reply.headers.contains_key("retry-after"),
                        "a 503 says when to retry: {:?}",
                        reply.body
                    );
                }
                // The same key still in flight (a retry beside an attempt the
                // ledger still holds): asked again.
                409 => {}
                500 => assert_eq!(
                    reply.body["type"], "/problems/outcome-unknown",
                    "the only 500 allowed is the unknown outcome: {}",
                    reply.body
                ),
                other => panic!("a wrong answer during failover: {other} {}", reply.body),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        finals.insert(key, outcome);
    }
    (finals, statuses)
}

async fn one_failover(run: usize) {
    let cluster = Cluster::start();
    let db = Arc::new(cluster.database());
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(spawn_node(Some(Arc::clone(&db)), |_| {}).await));
    }
    nodes[0].create_product("FO-1", 100, STOCK).await;
    let mut tokens = Vec::new();
    for i in 0..BUYERS {
        tokens.push(nodes[i % 3].customer(&format!("fo{run}b{i}")).await.1);
    }

    // A customer whose token (signed with the shared secret) opens every node.
    let late = nodes[0].customer(&format!("fo{run}late")).await.1;

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(join_all(tokens.into_iter().enumerate().map(
        |(i, token)| {
            buyer(
                Arc::clone(&nodes[i % 3]),
                token,
                format!("r{run}b{i}"),
                Arc::clone(&stop),
            )
        },
    )));

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let killer = Arc::new(cluster);
    let c = Arc::clone(&killer);
    tokio::task::spawn_blocking(move || c.kill_primary())
        .await
        .unwrap();
    // Without a primary, readiness says so (and checkouts get 503 meanwhile).
    let down = Instant::now();
    loop {
        let r = nodes[0].get("/readyz", None).await;
        if r.status == 503 {
            assert_eq!(r.body["checks"]["ledger"], false, "{}", r.body);
            break;
        }
        assert!(
            down.elapsed() < BACK_LIMIT,
            "/readyz kept saying ready without a primary: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = Arc::clone(&killer);
    tokio::task::spawn_blocking(move || c.promote())
        .await
        .unwrap();
    let promoted = Instant::now();

    // Every node takes checkouts again, by itself.
    for node in &nodes {
        loop {
            let r = node
                .checkout(&late, json!([{"sku": "FO-1", "quantity": 1}]), None)
                .await;
            if r.status == 201 {
                break;
            }
            assert!(
                promoted.elapsed() < BACK_LIMIT,
                "a node did not take checkouts {BACK_LIMIT:?} after the promotion: {} {}",
                r.status.as_u16(),
                r.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for node in &nodes {
        node.get("/readyz", None).await.assert_status(200);
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::Release);
    let results = load.await.unwrap();

    let mut acknowledged = Vec::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for (finals, seen) in results {
        acknowledged.extend(finals.values().filter_map(|f| match f {
            Final::Order(id) => Some(*id),
            Final::GaveUp => None,
        }));
        for (status, n) in seen {
            *statuses.entry(status).or_default() += n;
        }
    }
    assert!(
        statuses.get(&201).copied().unwrap_or(0) > 0,
        "load ran: {statuses:?}"
    );

    // Every acknowledged order is in the new primary; stock is what the orders
    // that exist took; the ledger verifies clean.
    let sql = orderflow_actors::pg::connect(&killer.standby_url)
        .await
        .unwrap();
    let ids: Vec<i64> = acknowledged.iter().map(|&id| id as i64).collect();
    let found: i64 = sql
        .query_one("SELECT count(*) FROM orders WHERE id = ANY($1)", &[&ids])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        found,
        ids.len() as i64,
        "every 201 is in the new primary ({statuses:?})"
    );
    let orders: i64 = sql
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    let units: i64 = sql
        .query_one("SELECT units FROM stock WHERE sku = 'FO-1'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        units,
        STOCK as i64 - orders,
        "stock = initial - orders that exist"
    );
    let verify = nodes[1]
        .get("/api/v1/admin/ledger/verify", Some(&nodes[1].admin_token))
        .await;
    verify.assert_status(200);
    assert_eq!(verify.body["problems"], json!([]), "{}", verify.body);
    eprintln!(
        "failover run {run}: {} orders acknowledged, {orders} in the ledger, answers {statuses:?}, back {:?} after the promotion",
        ids.len(),
        promoted.elapsed()
    );
}

#[actix_web::test]
async fn three_nodes_survive_the_loss_of_the_primary_without_losing_an_acknowledged_order() {
    let runs: usize = std::env::var("FAILOVER_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    for run in 0..runs {
        one_failover(run).await;
    }
}

#[actix_web::test]
async fn nodes_leave_a_primary_that_turned_read_only_for_the_promoted_standby() {
    let cluster = Cluster::start();
    let db = Arc::new(cluster.database());
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(spawn_node(Some(Arc::clone(&db)), |_| {}).await);
    }
    nodes[0].create_product("FO-1", 100, STOCK).await;
    let buyer = nodes[0].customer("ro-buyer").await.1;
    for node in &nodes {
        node.checkout(&buyer, json!([{"sku": "FO-1", "quantity": 1}]), None)
            .await
            .assert_status(201);
    }
    // The primary stops taking writes but keeps every connection open (as a
    // demoted primary would), and the standby is promoted.
    let old = orderflow_actors::pg::connect(&cluster.primary_url)
        .await
        .unwrap();
    for statement in [
        "ALTER SYSTEM SET default_transaction_read_only = on",
        "SELECT pg_reload_conf()",
    ] {
        old.batch_execute(statement).await.unwrap();
    }
    let cluster = Arc::new(cluster);
    let c = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || c.promote())
        .await
        .unwrap();
    let promoted = Instant::now();
    // Every node takes checkouts (its ledger) and registrations (its pool) again,
    // by itself, on the promoted standby.
    for (n, node) in nodes.iter().enumerate() {
        let mut i = 0;
        loop {
            i += 1;
            let order = node
                .checkout(&buyer, json!([{"sku": "FO-1", "quantity": 1}]), None)
                .await;
            let account = node.register(&format!("ro{n}x{i}")).await;
            if order.status == 201 && account.status == 201 {
                break;
            }
            for r in [&order, &account] {
                assert!(
                    [201, 503].contains(&r.status.as_u16()),
                    "only 201 or 503 meanwhile: {} {}",
                    r.status,
                    r.body
                );
            }
            assert!(
                promoted.elapsed() < BACK_LIMIT,
                "a node stayed on the read-only server: {} {} / {} {}",
                order.status,
                order.body,
                account.status,
                account.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let new = orderflow_actors::pg::connect(&cluster.standby_url)
        .await
        .unwrap();
    let orders: i64 = new
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(orders >= 4, "the later orders are on the promoted standby");
}
