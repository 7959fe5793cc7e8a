//! Several nodes on one PostgreSQL database watching one inbox folder (contract
//! §6): each file is loaded by exactly one node, and when that node is killed
//! mid-file another takes the job over and finishes it from the last committed
//! batch. The nodes are real `orderflow serve` processes, so one can be killed
//! with SIGKILL.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{ADMIN_PASSWORD, ChildServer, blocking_call, blocking_login};

const ROWS: u64 = 100_000;

/// Writes a products file of `ROWS` rows beside the inbox, then drops it in at
/// once (a rename), as a shop's export job would. Answers the sum of its stock
/// and how many rows stock anything (a level of 0 moves nothing).
fn drop_products(inbox: &Path, name: &str) -> (u64, u64) {
    let staging = inbox.parent().unwrap().join(format!("{name}.staging"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&staging).unwrap());
    writeln!(file, "sku,name,price,stock").unwrap();
    let (mut stock, mut stocked) = (0, 0);
    for i in 0..ROWS {
        let units = i % 50;
        stock += units;
        stocked += u64::from(units > 0);
        writeln!(
            file,
            "SH-{i:06},Shared product {i},{}.{:02},{units}",
            1 + i % 90,
            i % 100
        )
        .unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
    std::fs::rename(&staging, inbox.join(name)).unwrap();
    (stock, stocked)
}

fn jobs(base: &str, token: &str) -> Vec<Value> {
    let (status, body) = blocking_call("GET", &format!("{base}/api/v1/imports"), Some(token), None);
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[test]
fn a_shared_inbox_loads_a_file_once_even_when_the_node_loading_it_is_killed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(crate::pg::database());
    let sql = rt.block_on(orderflow_actors::pg::connect(&db.url)).unwrap();
    let count = |query: &str| -> i64 { rt.block_on(sql.query_one(query, &[])).unwrap().get(0) };
    let root = tempfile::tempdir().unwrap();
    let inbox = root.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let data: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Option<ChildServer>> = data
        .iter()
        .map(|d| {
            Some(ChildServer::start(
                d.path(),
                &inbox,
                &["--postgres", &db.url],
            ))
        })
        .collect();
    let token = blocking_login(&nodes[0].as_ref().unwrap().base, "admin", ADMIN_PASSWORD);

    let (stock, stocked) = drop_products(&inbox, "products_shared.csv");

    // Wait until the job has committed a batch, and kill the node holding it.
    let started = Instant::now();
    let (job, killed) = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no batch committed in time"
        );
        let listed = jobs(&nodes[0].as_ref().unwrap().base, &token);
        let running = listed
            .first()
            .filter(|j| j["status"] == "running" && j["rows_read"].as_u64().is_some_and(|r| r > 0));
        if let Some(j) = running {
            let id = j["id"].as_i64().unwrap();
            assert!(
                j["rows_read"].as_u64().unwrap() < ROWS,
                "the file must still be loading when its node is killed: {j}"
            );
            let holder: String = rt
                .block_on(sql.query_one("SELECT lease_node FROM jobs WHERE id = $1", &[&id]))
                .unwrap()
                .get(0);
            let pid: u32 = holder.split('/').nth(1).unwrap().parse().unwrap();
            let at = nodes
                .iter()
                .position(|n| n.as_ref().is_some_and(|n| n.child.id() == pid))
                .expect("the lease names one of the nodes");
            nodes[at].take().unwrap().kill();
            break (id, at);
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    // Another node takes it over once the lease runs out, and finishes it.
    let survivor = nodes.iter().flatten().next().unwrap().base.clone();
    let token = blocking_login(&survivor, "admin", ADMIN_PASSWORD);
    let started = Instant::now();
    let done = loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the job was not finished by another node in time"
        );
        let listed = jobs(&survivor, &token);
        if listed[0]["status"] == "completed" {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done.len(), 1, "one job for the file: {done:?}");
    let j = &done[0];
    assert_eq!(j["id"].as_i64().unwrap(), job);
    assert_eq!(j["rows_read"].as_u64(), Some(ROWS), "{j}");
    assert_eq!(j["rows_loaded"].as_u64(), Some(ROWS), "every row once: {j}");
    assert_eq!(j["rows_rejected"].as_u64(), Some(0), "{j}");

    assert_eq!(count("SELECT count(*) FROM products"), ROWS as i64);
    assert_eq!(
        count("SELECT coalesce(sum(units), 0)::int8 FROM stock"),
        stock as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE type = 'import.completed'"),
        1
    );
    let took_over = nodes
        .iter()
        .flatten()
        .filter(|n| {
            n.log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("taking over an import whose node stopped"))
        })
        .count();
    assert_eq!(took_over, 1, "one surviving node took the job over");
    assert!(nodes[killed].is_none());

    // The file and its report end in processed/, the job is settled, no claim is left.
    let started = Instant::now();
    while count("SELECT count(*) FROM jobs WHERE open") > 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "never settled");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(inbox.join("processed/products_shared.csv").exists());
    assert!(
        inbox
            .join("processed/products_shared.csv.report.json")
            .exists()
    );
    assert_eq!(std::fs::read_dir(inbox.join(".work")).unwrap().count(), 0);
    assert_eq!(count("SELECT count(*) FROM inbox_claims"), 0);
    let (status, verify) = blocking_call(
        "GET",
        &format!("{survivor}/api/v1/admin/ledger/verify"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{verify}");
    assert_eq!(verify["problems"], serde_json::json!([]), "{verify}");
    assert_eq!(verify["skus_checked"].as_u64(), Some(stocked), "{verify}");
}
