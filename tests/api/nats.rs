//! Events to NATS JetStream (`--events-nats`, contract §6): on a real three-server
//! JetStream cluster (`.ci/services/nats.sh`, Debian's nats-server), with the R3
//! stream's leader killed and the relaying node killed (SIGKILL) while events are
//! being committed, every event ends up in the stream exactly once (by
//! `Nats-Msg-Id`) and in seq order. On both backends.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ChildServer, blocking_call, blocking_login};
use crate::pg::free_port;

/// A GET's body as text (these tests run outside an async runtime).
fn get_text(url: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { reqwest::get(url).await.ok()?.text().await.ok() })
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/services/nats.sh")
}

/// Three JetStream servers of this test's own; stopped when dropped.
struct NatsCluster {
    dir: tempfile::TempDir,
    url: String,
    monitor: Vec<u16>,
}

impl NatsCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..9).map(|_| free_port()).collect();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .args(ports.iter().map(u16::to_string))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nats.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("export ORDERFLOW_TEST_NATS_URL="))
            .unwrap()
            .trim_matches('\'')
            .to_owned();
        Self {
            dir,
            url,
            monitor: ports[3..6].to_vec(),
        }
    }

    /// The server leading the stream `ORDERFLOW_EVENTS`, as a live server says
    /// (waiting, bounded, for the relay to have created it).
    fn stream_leader(&self) -> String {
        let started = Instant::now();
        loop {
            if let Some(leader) = self.find_stream_leader() {
                return leader;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no server names a leader of ORDERFLOW_EVENTS"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn find_stream_leader(&self) -> Option<String> {
        for port in &self.monitor {
            let Some(body) = get_text(&format!(
                "http://127.0.0.1:{port}/jsz?streams=true&accounts=true"
            )) else {
                continue;
            };
            let jsz: Value = serde_json::from_str(&body).unwrap();
            for account in jsz["account_details"].as_array().into_iter().flatten() {
                for stream in account["stream_detail"].as_array().into_iter().flatten() {
                    if stream["name"] == "ORDERFLOW_EVENTS"
                        && let Some(leader) = stream["cluster"]["leader"].as_str()
                    {
                        return Some(leader.to_owned());
                    }
                }
            }
        }
        None
    }

    fn kill(&self, name: &str) {
        let status = Command::new("bash")
            .arg(script())
            .args(["kill"])
            .arg(self.dir.path())
            .arg(name)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// Every message of the stream, in stream order: (Nats-Msg-Id, Orderflow-Seq);
/// an error while the cluster is still electing leaders.
fn stream_messages(url: &str) -> Result<Vec<(String, u64)>, String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let servers: Vec<async_nats::ServerAddr> =
            url.split(',').map(|u| u.parse().unwrap()).collect();
        let client = async_nats::connect(servers)
            .await
            .map_err(|e| e.to_string())?;
        let js = async_nats::jetstream::new(client);
        let mut stream = js
            .get_stream("ORDERFLOW_EVENTS")
            .await
            .map_err(|e| e.to_string())?;
        let state = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return Ok(out);
        }
        for seq in state.first_sequence..=state.last_sequence {
            let m = stream
                .get_raw_message(seq)
                .await
                .map_err(|e| e.to_string())?;
            let header = |name: &str| m.headers.get(name).map(|v| v.as_str().to_owned());
            out.push((
                header("Nats-Msg-Id").expect("every message has an id"),
                header("Orderflow-Seq").unwrap().parse().unwrap(),
            ));
        }
        Ok(out)
    })
}

/// Every event of the feed, oldest first: (id, seq).
fn feed(base: &str, token: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = blocking_call(
            "GET",
            &format!("{base}/api/v1/events?after={after}&limit=1000"),
            Some(token),
            None,
        );
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        out.extend(items.iter().map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["seq"].as_u64().unwrap(),
            )
        }));
        if items.is_empty() {
            return out;
        }
        after = page["next_after"].as_u64().unwrap();
    }
}

/// Places `n` one-unit orders through `base`.
fn orders(base: &str, token: &str, n: usize) {
    for _ in 0..n {
        let (status, body) = blocking_call(
            "POST",
            &format!("{base}/api/v1/orders"),
            Some(token),
            Some(json!({"items": [{"sku": "NATS-1", "quantity": 1}]})),
        );
        assert_eq!(status, 201, "{body}");
    }
}

fn customer(base: &str, name: &str) -> String {
    let (status, body) = blocking_call(
        "POST",
        &format!("{base}/api/v1/auth/register"),
        None,
        Some(
            json!({"username": name, "email": format!("{name}@example.com"), "password": "password-123"}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    blocking_login(base, name, "password-123")
}

/// Waits until the stream holds every event of the feed, then checks: each once,
/// in seq order, none missing.
fn assert_stream_matches_feed(nats: &NatsCluster, base: &str, admin: &str) {
    let events = feed(base, admin);
    let newest = events.last().unwrap().1;
    let started = Instant::now();
    let messages = loop {
        let messages = stream_messages(&nats.url);
        if let Ok(m) = &messages
            && m.last().is_some_and(|m| m.1 == newest)
        {
            break messages.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the stream did not catch up with seq {newest}: {:?}",
            messages.map(|m| m.last().cloned())
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let ids: BTreeSet<&str> = messages.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(ids.len(), messages.len(), "no event twice in the stream");
    assert!(
        messages.windows(2).all(|w| w[0].1 < w[1].1),
        "the stream holds the events in seq order"
    );
    assert_eq!(messages, events, "every event, once, in order");
}

#[test]
fn events_reach_jetstream_once_and_in_order_through_leader_and_node_kills_on_redb() {
    let nats = NatsCluster::start();
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let args = ["--events-nats", &nats.url, "--events-nats-replicas", "3"];
    let node = ChildServer::start(data.path(), inbox.path(), &args);
    let admin = blocking_login(&node.base, "admin", ADMIN_PASSWORD);
    let (status, body) = blocking_call(
        "POST",
        &format!("{}/api/v1/products", node.base),
        Some(&admin),
        Some(json!({"sku": "NATS-1", "name": "Streamed", "price_cents": 100, "stock": 100000})),
    );
    assert_eq!(status, 201, "{body}");
    let buyer = customer(&node.base, "streamer");
    orders(&node.base, &buyer, 60);

    // The stream's leader dies, then the relaying node (SIGKILL), while events
    // keep being committed.
    nats.kill(&nats.stream_leader());
    orders(&node.base, &buyer, 40);
    node.kill();
    let node = ChildServer::start(data.path(), inbox.path(), &args);
    let buyer = blocking_login(&node.base, "streamer", "password-123");
    orders(&node.base, &buyer, 60);
    let admin = blocking_login(&node.base, "admin", ADMIN_PASSWORD);
    assert_stream_matches_feed(&nats, &node.base, &admin);
    let metrics = get_text(&format!("{}/metrics", node.base)).unwrap();
    assert!(
        metrics.contains("orderflow_nats_relay_lag_events 0"),
        "caught up, the lag metric says 0"
    );
}

#[test]
fn events_reach_jetstream_once_and_in_order_when_the_relaying_node_dies_on_postgresql() {
    let nats = NatsCluster::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(crate::pg::database());
    let inbox = tempfile::tempdir().unwrap();
    let data: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let args = [
        "--postgres",
        &db.url,
        "--events-nats",
        &nats.url,
        "--events-nats-replicas",
        "3",
    ];
    let mut nodes: Vec<Option<ChildServer>> = data
        .iter()
        .map(|d| Some(ChildServer::start(d.path(), inbox.path(), &args)))
        .collect();
    let base = |i: usize, nodes: &[Option<ChildServer>]| nodes[i].as_ref().unwrap().base.clone();
    let admin = blocking_login(&base(0, &nodes), "admin", ADMIN_PASSWORD);
    let (status, body) = blocking_call(
        "POST",
        &format!("{}/api/v1/products", base(0, &nodes)),
        Some(&admin),
        Some(json!({"sku": "NATS-1", "name": "Streamed", "price_cents": 100, "stock": 100000})),
    );
    assert_eq!(status, 201, "{body}");
    let buyer = customer(&base(0, &nodes), "streamer");
    orders(&base(0, &nodes), &buyer, 40);
    orders(&base(1, &nodes), &buyer, 40);

    // Kill the node that relays (the lock holder says so in its log), and the
    // stream's leader; the other node takes the relay over.
    let started = Instant::now();
    let relaying = loop {
        let found = nodes.iter().position(|n| {
            n.as_ref().is_some_and(|n| {
                n.log
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|l| l.contains("events relay: this node does it"))
            })
        });
        if let Some(i) = found {
            break i;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no node relays"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    nodes[relaying].take().unwrap().kill();
    nats.kill(&nats.stream_leader());
    let other = 1 - relaying;
    orders(&base(other, &nodes), &buyer, 60);
    assert_stream_matches_feed(&nats, &base(other, &nodes), &admin);
}
