//! The ledger on PostgreSQL, with several nodes on one database: each node is a
//! [`PgLedger`] with a connection of its own, group-committing its own commands,
//! exactly as separate `orderflow serve` processes would.

mod support;

use std::collections::{BTreeSet, HashSet};

use orderflow_actors::catalog::ProductDraft;
use orderflow_actors::common::{StoreError, codec};
use orderflow_actors::domain::{
    Category, Cents, Currency, IdempotencyKey, OrderLines, OrderRef, OrderStatus, ProductName,
    Quantity, Sku, StockLevel, UserId,
};
use orderflow_actors::events::EventType;
use orderflow_actors::events::PurgeCutoffs;
use orderflow_actors::events::RowEvents;
use orderflow_actors::events::reader::ListEvents;
use orderflow_actors::events::{Event, TypeFilter};
use orderflow_actors::inbox::jobs::{JobRow, Origin, new_job};
use orderflow_actors::inbox::load::{Batch, Piece, Unit};
use orderflow_actors::ledger::CreateProduct;
use orderflow_actors::ledger::products::ProductCommand;
use orderflow_actors::ledger::{Caller, CheckoutError, OrderRequest, Source};
use orderflow_actors::pg::ledger::{JobAnswer, JobCommand, PgLedger, Settings};
use orderflow_actors::pg::schema::{self, MigrateError, SCHEMA_VERSION};
use orderflow_actors::pg::{self, events::list};
use support::pg::database;

const NODES: usize = 3;

async fn migrated(url: &str) -> tokio_postgres::Client {
    let mut client = pg::connect(url).await.unwrap();
    schema::migrate(&mut client).await.unwrap();
    client
}

async fn nodes(url: &str, batch_max: usize) -> Vec<PgLedger> {
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        let client = migrated(url).await;
        nodes.push(PgLedger::start(
            client,
            Settings {
                currency: Currency::EUR,
                batch_max,
                row_events: RowEvents::Summary,
                telemetry: Default::default(),
                reconnect: None,
                node: format!("test-node-{}", nodes.len()),
                search_feed: None,
            },
        ));
    }
    nodes
}

fn sku(name: &str) -> Sku {
    Sku::parse(name).unwrap()
}

async fn stock_product(node: &PgLedger, name: &str, units: i64) {
    node.product(ProductCommand::Create(CreateProduct {
        sku: sku(name),
        draft: ProductDraft {
            attributes: Default::default(),
            name: ProductName::parse(&format!("Product {name}")).unwrap(),
            category: Category::uncategorized(),
            description: None,
            price: Cents::new(250).unwrap(),
        },
        stock: Some(StockLevel::new(units).unwrap()),
    }))
    .await
    .unwrap();
}

fn order(user: u64, sku_name: &str, key: Option<&str>) -> OrderRequest {
    OrderRequest {
        user: UserId(user),
        lines: OrderLines::merge([(sku(sku_name), Quantity::new(1).unwrap())]).unwrap(),
        idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
        source: Source::Api,
        external_ref: None,
        expected_prices: Vec::new(),
    }
}

/// Events after `after`, oldest first, at most `limit`: the feed's own read.
async fn read_events(client: &tokio_postgres::Client, after: u64, limit: usize) -> Vec<Event> {
    let page = list(
        client,
        ListEvents {
            after: Some(after),
            filter: TypeFilter::All,
            limit,
        },
    )
    .await
    .unwrap();
    page.items
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let db = database().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = pg::connect(&url).await.unwrap();
            schema::migrate(&mut client).await.unwrap()
        }));
    }
    let mut found = Vec::new();
    for task in tasks {
        found.push(task.await.unwrap());
    }
    found.sort_unstable();
    assert_eq!(
        found,
        vec![0, SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION],
        "one node applied it, the others found it"
    );
    let mut client = pg::connect(&db.url).await.unwrap();
    assert_eq!(
        count(&client, "SELECT count(*) FROM orderflow_schema").await,
        i64::from(SCHEMA_VERSION),
        "each version applied once"
    );

    client
        .execute(
            "INSERT INTO orderflow_schema VALUES ($1)",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let refused = schema::migrate(&mut client).await.unwrap_err();
    assert!(
        matches!(refused, MigrateError::Newer { found } if found == SCHEMA_VERSION + 1),
        "{refused}"
    );
}

/// 200 buyers spread over three nodes for 50 units: exactly 50 orders, stock 0,
/// every refusal an honest "insufficient stock", refused orders beside accepted
/// ones in the same batches without failing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_sell_exactly_the_stock() {
    let db = database().await;
    let nodes = nodes(&db.url, 64).await;
    stock_product(&nodes[0], "P-1", 50).await;
    let mut tasks = Vec::new();
    for buyer in 0..200u64 {
        let node = nodes[usize::try_from(buyer).unwrap() % NODES].clone();
        tasks.push(tokio::spawn(async move {
            // Every fifth buyer also sends an order for a SKU that does not exist,
            // into the same batches.
            if buyer % 5 == 0 {
                let unknown = node.place_order(order(1000 + buyer, "NOPE", None)).await;
                assert!(matches!(unknown, Err(CheckoutError::UnknownSkus(_))));
            }
            node.place_order(order(buyer + 1, "P-1", None)).await
        }));
    }
    let mut placed = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(p) => placed.push(p.order.id),
            Err(CheckoutError::Insufficient(_)) => {}
            Err(other) => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(placed.len(), 50);
    assert_eq!(
        placed.iter().collect::<HashSet<_>>().len(),
        50,
        "50 distinct orders"
    );

    let client = pg::connect(&db.url).await.unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM orders").await, 50);
    assert_eq!(
        count(&client, "SELECT units FROM stock WHERE sku = 'P-1'").await,
        0
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM movements WHERE sku = 'P-1'").await,
        51,
        "the initial receipt and one sale per order"
    );
    // The movements chain: seq 1..=51, each stock_after the previous minus one.
    let chain: Vec<(i64, i64)> = client
        .query(
            "SELECT seq, stock_after FROM movements WHERE sku = 'P-1' ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(i64, i64)> = (1..=51).map(|s| (s, 51 - s)).collect();
    assert_eq!(chain, expected);

    // Cancel one order on another node than the one that placed it: the stock
    // comes back, the second cancel is refused.
    let admin = Caller {
        user: UserId(0),
        is_admin: true,
    };
    let cancelled = nodes[1]
        .change_status(placed[0], OrderStatus::Cancelled, admin)
        .await
        .unwrap();
    assert_eq!(cancelled.row.status, OrderStatus::Cancelled);
    assert!(
        nodes[2]
            .change_status(placed[0], OrderStatus::Cancelled, admin)
            .await
            .is_err()
    );
    assert_eq!(
        count(&client, "SELECT units FROM stock WHERE sku = 'P-1'").await,
        1
    );
}

/// One Idempotency-Key sent 21 times at once across three nodes: one order; every
/// other answer is its replay or "still in flight", never a second order. Twenty
/// rounds, a key each, so the requests really race; a third of them send another
/// body (another SKU, so no stock row orders them): "key reused", never a second
/// order and never a failed batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_sent_21_times_across_nodes_makes_one_order() {
    const ROUNDS: u64 = 20;
    let db = database().await;
    let nodes = nodes(&db.url, 64).await;
    stock_product(&nodes[0], "P-1", 1000).await;
    stock_product(&nodes[0], "P-2", 1000).await;
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for i in 0..21usize {
            let node = nodes[i % NODES].clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("key-{round}");
                let sku = if i % 3 == 2 { "P-2" } else { "P-1" };
                node.place_order(order(7, sku, Some(&key))).await
            }));
        }
        rounds.push(tasks);
    }
    let mut first_ids = Vec::new();
    for tasks in rounds {
        let mut ids = BTreeSet::new();
        let mut fresh = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(p) => {
                    ids.insert(p.order.id);
                    fresh += usize::from(!p.replayed);
                }
                Err(CheckoutError::InFlight | CheckoutError::KeyReused) => {}
                Err(other) => panic!("unexpected answer {other:?}"),
            }
        }
        assert_eq!(ids.len(), 1, "every success names the same order");
        assert_eq!(fresh, 1, "exactly one answer placed it");
        first_ids.push(*ids.first().unwrap());
    }
    let client = pg::connect(&db.url).await.unwrap();
    let rounds = i64::try_from(ROUNDS).unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM orders").await, rounds);
    assert_eq!(
        count(&client, "SELECT sum(units)::int8 FROM stock").await,
        2000 - rounds
    );
    // A retry now replays, whichever body won.
    let won: String = client
        .query_one(
            "SELECT sku FROM movements WHERE order_id = $1",
            &[&i64::try_from(first_ids[0].0).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    let again = nodes[2]
        .place_order(order(7, &won, Some("key-0")))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.order.id, first_ids[0]);
}

/// The feed tailed from its own connection while three nodes commit: every event
/// is seen, once, in seq order, with no seq skipped (a seq taken from a sequence
/// instead of the counter row would let a reader pass a seq that commits later).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_tailed_while_three_nodes_commit_misses_nothing() {
    let db = database().await;
    let nodes = nodes(&db.url, 16).await;
    for i in 0..4 {
        stock_product(&nodes[0], &format!("P-{i}"), 10_000).await;
    }
    let reader = pg::connect(&db.url).await.unwrap();
    let before = read_events(&reader, 0, 1000).await;
    let start = before.last().map_or(0, |e| e.seq);

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tail = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = start;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = read_events(&reader, after, 500).await;
                for event in &page {
                    assert_eq!(event.seq, after + 1, "the feed skipped past a seq");
                    after = event.seq;
                    seen.push(event.clone());
                }
                if finished && page.is_empty() {
                    return seen;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for i in 0..600u64 {
        let node = nodes[usize::try_from(i).unwrap() % NODES].clone();
        tasks.push(tokio::spawn(async move {
            let sku = format!("P-{}", i % 4);
            node.place_order(order(i + 1, &sku, None)).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = tail.await.unwrap();
    // Each order: order.placed and one stock.changed.
    assert_eq!(seen.len(), 1200);
    let placed = seen
        .iter()
        .filter(|e| e.row.kind == EventType::OrderPlaced)
        .count();
    assert_eq!(placed, 600);
    let ids: HashSet<_> = seen.iter().map(|e| e.row.id).collect();
    assert_eq!(ids.len(), seen.len(), "event ids are unique");
}

/// One external order reference sent at once through three nodes (as an import
/// on each would), each time for another SKU so no stock row orders them: one
/// order; the others are refused as duplicates, and no batch is abandoned on the
/// unique index.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_order_reference_across_nodes_makes_one_order() {
    let db = database().await;
    let nodes = nodes(&db.url, 64).await;
    for i in 0..3 {
        stock_product(&nodes[0], &format!("P-{i}"), 100).await;
    }
    let mut tasks = Vec::new();
    for i in 0..9usize {
        let node = nodes[i % NODES].clone();
        tasks.push(tokio::spawn(async move {
            let mut request = order(9, &format!("P-{}", i / NODES), None);
            request.external_ref = Some(OrderRef::parse("EXT-1").unwrap());
            node.place_order(request).await
        }));
    }
    let mut placed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => placed += 1,
            Err(CheckoutError::DuplicateRef(r)) => assert_eq!(r, "EXT-1"),
            Err(other) => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(placed, 1);
    let client = pg::connect(&db.url).await.unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM orders").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_forget_old_keys_and_events_and_the_feed_says_expired_before_them() {
    use orderflow_actors::domain::Timestamp;
    use orderflow_actors::events::TypeFilter;
    use orderflow_actors::events::reader::{EventsError, ListEvents};
    use orderflow_actors::pg::events::list;

    let db = database().await;
    let node = nodes(&db.url, 64).await.remove(0);
    stock_product(&node, "PURGE-1", 100).await;
    let first = node
        .place_order(order(7, "PURGE-1", Some("k-1")))
        .await
        .unwrap();
    let mut client = pg::connect(&db.url).await.unwrap();
    let all = |after| ListEvents {
        after,
        filter: TypeFilter::All,
        limit: 100,
    };
    let before = list(&client, all(None)).await.unwrap();
    let seqs: Vec<u64> = before.items.iter().map(|e| e.seq).collect();
    assert!(seqs.len() >= 3, "{seqs:?}");
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

    // Nothing is old enough yet.
    let past = Timestamp(0);
    let none = pg::purge(
        &mut client,
        PurgeCutoffs {
            keys: past,
            events: past,
        },
        100,
    )
    .await
    .unwrap();
    assert_eq!(none, pg::Purged::default());

    // Everything is, two at a time: the two oldest events go, and the key.
    let later = Timestamp::now().plus_secs(60);
    let some = pg::purge(
        &mut client,
        PurgeCutoffs {
            keys: later,
            events: later,
        },
        2,
    )
    .await
    .unwrap();
    assert_eq!(some, pg::Purged { keys: 1, events: 2 });
    let from_oldest = list(&client, all(None)).await.unwrap();
    assert_eq!(from_oldest.items[0].seq, 3, "from the oldest kept");
    assert!(matches!(
        list(&client, all(Some(1))).await,
        Err(EventsError::Expired {
            after: 1,
            purged_through: 2
        })
    ));
    assert_eq!(list(&client, all(Some(2))).await.unwrap().items[0].seq, 3);

    // The key is forgotten: the same request makes a new order, not a replay.
    let again = node
        .place_order(order(7, "PURGE-1", Some("k-1")))
        .await
        .unwrap();
    assert!(!again.replayed);
    assert_ne!(again.order.id, first.order.id);
    // New events go on from the seqs taken; a full purge keeps the mark.
    let rest = pg::purge(
        &mut client,
        PurgeCutoffs {
            keys: later,
            events: Timestamp::now().plus_secs(60),
        },
        1_000,
    )
    .await
    .unwrap();
    assert!(rest.events >= 3);
    let empty = list(&client, all(None)).await.unwrap();
    assert!(empty.items.is_empty());
    assert!(list(&client, all(Some(2))).await.is_err());
}

/// A products batch of `names`, as the loader cuts it.
fn products_batch(names: &[&str]) -> Batch {
    Batch {
        pieces: names
            .iter()
            .map(|n| Piece {
                unit: Unit::Product {
                    warnings: 0,
                    grouped: None,
                    sku: sku(n),
                    draft: ProductDraft {
                        attributes: Default::default(),
                        name: ProductName::parse(&format!("Imported {n}")).unwrap(),
                        category: Category::uncategorized(),
                        description: None,
                        price: Cents::new(100).unwrap(),
                    },
                    stock: Some(StockLevel::new(5).unwrap()),
                },
                records: 1,
                failed_ref_after: None,
            })
            .collect(),
        bytes_read: 0,
    }
}

fn loaded(answer: Result<JobAnswer, StoreError>) -> Result<u64, StoreError> {
    match answer? {
        JobAnswer::Loaded(applied) => Ok(applied.loaded),
        other => panic!("a load answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_lease_on_a_job_writes_nothing_more_for_it() {
    let db = database().await;
    let nodes = nodes(&db.url, 64).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let created = a
        .job(JobCommand::Create {
            new: new_job(
                std::path::Path::new("/inbox/.work/x-products_a.csv"),
                "products_a.csv".into(),
                Origin::Inbox,
                None,
                false,
            ),
            claim: None,
        })
        .await
        .unwrap();
    let JobAnswer::Created(job) = created else {
        panic!("{created:?}")
    };
    let load = |node: &PgLedger, names: &[&str]| {
        node.job(JobCommand::Load {
            id: job.id,
            batch: products_batch(names),
            dry_run: false,
        })
    };
    // The holder loads; another node is refused, and writes nothing.
    assert_eq!(loaded(load(a, &["L1", "L2"]).await).unwrap(), 2);
    let refused = loaded(load(b, &["L3"]).await).unwrap_err();
    assert!(
        matches!(refused, StoreError::LeaseLost(id) if id == job.id.0),
        "{refused}"
    );
    // Another node takes the job over (its lease ran out): the old holder is
    // fenced off, the new one goes on from the committed position.
    let client = pg::connect(&db.url).await.unwrap();
    client
        .execute("UPDATE jobs SET lease_node = 'test-node-1'", &[])
        .await
        .unwrap();
    let refused = loaded(load(a, &["L4"]).await).unwrap_err();
    assert!(matches!(refused, StoreError::LeaseLost(_)), "{refused}");
    assert_eq!(loaded(load(b, &["L5"]).await).unwrap(), 1);
    assert_eq!(
        count(&client, "SELECT count(*) FROM products").await,
        3,
        "L1, L2 and L5; nothing of the refused batches"
    );
    let rows_read: Vec<u8> = client
        .query_one("SELECT record FROM jobs", &[])
        .await
        .unwrap()
        .get(0);
    let row: JobRow = codec::decode(&rows_read).unwrap();
    assert_eq!((row.rows_read, row.rows_loaded), (3, 3));
}

/// A TCP proxy to PostgreSQL that, once armed, passes a transaction's `COMMIT` on
/// and then cuts the connection before the server's answer comes back: the
/// commit happens, the client never hears of it.
async fn commit_cutting_proxy(
    upstream: u16,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let armed = Arc::new(AtomicBool::new(false));
    let arm = Arc::clone(&armed);
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                .await
                .unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let cut = Arc::new(AtomicBool::new(false));
            let (cut_up, armed) = (Arc::clone(&cut), Arc::clone(&arm));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let commit = buf[..n].windows(7).any(|w| w == b"COMMIT\0");
                    if commit && armed.swap(false, Ordering::AcqRel) {
                        cut_up.store(true, Ordering::Release);
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    if cut_up.load(Ordering::Acquire) {
                        // Let the server take the COMMIT, then drop both sides.
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if cut.load(Ordering::Acquire) {
                        return;
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, armed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_unknown_and_a_keyed_retry_returns_its_order() {
    let db = database().await;
    let client = migrated(&db.url).await;
    let primary: i32 = client
        .query_one("SELECT inet_server_port()", &[])
        .await
        .unwrap()
        .get(0);
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    let (port, armed) = commit_cutting_proxy(u16::try_from(primary).unwrap()).await;
    let url = format!("postgres://postgres@127.0.0.1:{port}/{name}");
    let node = PgLedger::start(
        pg::connect(&url).await.unwrap(),
        Settings {
            currency: Currency::EUR,
            batch_max: 64,
            row_events: RowEvents::Summary,
            telemetry: Default::default(),
            reconnect: Some(url.clone()),
            node: "cut".into(),
            search_feed: None,
        },
    );
    stock_product(&node, "U1", 10).await;

    armed.store(true, std::sync::atomic::Ordering::Release);
    let first = node.place_order(order(1, "U1", Some("unknown-1"))).await;
    assert!(
        matches!(
            first,
            Err(CheckoutError::Store(StoreError::OutcomeUnknown(_)))
        ),
        "a commit whose answer was lost is neither done nor failed: {first:?}"
    );
    // The retry with the same key (the ledger connects again by itself) finds
    // the order the lost commit made.
    let retry = node
        .place_order(order(1, "U1", Some("unknown-1")))
        .await
        .unwrap();
    assert!(retry.replayed, "the first attempt had committed");
    assert_eq!(count(&client, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(
        count(&client, "SELECT units::int8 FROM stock WHERE sku = 'U1'").await,
        9
    );
}

/// Whether some session waits for an advisory lock now.
async fn an_advisory_lock_is_awaited(client: &tokio_postgres::Client) -> bool {
    count(
        client,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
    )
    .await
        > 0
}

/// A crafted `Idempotency-Key` once chose a lock in the `bigint` space the
/// service's own session locks use (the webhook leader's among them), and the
/// checkout waited for ever. Here another session holds exactly the lock the old
/// scheme would have taken for the key, and the service's own delivery lock: the
/// checkout does not wait for either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_chosen_key_never_waits_on_the_services_own_locks() {
    let db = database().await;
    let node = nodes(&db.url, 8).await.remove(0);
    stock_product(&node, "LK-1", 5).await;
    let holder = pg::connect(&db.url).await.unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock(hashtextextended('k:7:crafted-key', 0))",
            &[],
        )
        .await
        .unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&pg::webhooks::DELIVERY_LOCK],
        )
        .await
        .unwrap();
    let placed = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        node.place_order(order(7, "LK-1", Some("crafted-key"))),
    )
    .await
    .expect("the checkout waited on a lock of the service's own");
    assert!(placed.is_ok(), "{placed:?}");
}

/// A batch that waits on a lock gives up after `lock_timeout`, its callers are
/// told nothing was written, the ledger answers pings again and goes on; while it
/// waits, the ledger's ping (what `/readyz` asks) is not answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_stuck_on_a_lock_gives_up_and_the_ledger_goes_on() {
    let db = database().await;
    let node = nodes(&db.url, 8).await.remove(0);
    stock_product(&node, "LK-2", 5).await;
    let key = IdempotencyKey::parse("held-elsewhere").unwrap();
    let lock = pg::ledger::client_key_lock(&pg::ledger::idempotency_lock(UserId(7), &key));
    let holder = pg::connect(&db.url).await.unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&pg::ledger::CLIENT_KEY_LOCK_SPACE, &lock],
        )
        .await
        .unwrap();
    let stuck = tokio::spawn(node.place_order(order(7, "LK-2", Some("held-elsewhere"))));
    let watcher = pg::connect(&db.url).await.unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !an_advisory_lock_is_awaited(&watcher).await {
        assert!(std::time::Instant::now() < until, "the batch never waited");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let ping = tokio::time::timeout(std::time::Duration::from_millis(500), node.ping()).await;
    assert!(ping.is_err(), "a ledger stuck in a batch answered the ping");
    let answer = tokio::time::timeout(
        std::time::Duration::from_millis(orderflow_actors::limits::PG_LOCK_TIMEOUT_MS + 10_000),
        stuck,
    )
    .await
    .expect("the stuck batch never gave up")
    .unwrap();
    assert!(
        matches!(answer, Err(CheckoutError::Store(StoreError::Aborted(_)))),
        "{answer:?}"
    );
    node.ping().await.unwrap();
    node.place_order(order(7, "LK-2", None)).await.unwrap();
    // The lock released, the same key goes through.
    drop(holder);
    node.place_order(order(7, "LK-2", Some("held-elsewhere")))
        .await
        .unwrap();
}

/// Nodes once deadlocked: a product write read its product `FOR SHARE`, then
/// upgraded the lock to write it, while another node's checkout held the same
/// share lock and waited for the stock row the first held. Here two nodes write
/// and sell the same SKUs at once, round after round: every command is answered
/// with its own outcome, none with a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_writing_and_selling_the_same_skus_never_deadlock() {
    use orderflow_actors::catalog::ProductPatch;
    use orderflow_actors::ledger::PatchProduct;
    use orderflow_actors::ledger::products::ProductCommand;
    let db = database().await;
    let all = nodes(&db.url, 8).await;
    for name in ["DL-1", "DL-2"] {
        stock_product(&all[0], name, 100_000).await;
    }
    for round in 0..150i64 {
        let name = if round % 2 == 0 { "DL-1" } else { "DL-2" };
        let patch = all[0].product(ProductCommand::Patch(PatchProduct {
            sku: sku(name),
            patch: ProductPatch {
                name: None,
                category: None,
                description: None,
                price: Some(Cents::new(100 + round).unwrap()),
                ..ProductPatch::default()
            },
        }));
        let sells = (1..NODES).map(|n| all[n].place_order(order(7, name, None)));
        let (patched, sold) = tokio::join!(patch, futures_util::future::join_all(sells));
        assert!(patched.is_ok(), "round {round}: {patched:?}");
        for s in sold {
            assert!(s.is_ok(), "round {round}: {s:?}");
        }
    }
}

/// A job ends its file's inbox claim in its own transaction; a claim this node no
/// longer holds (it ran out and another node took the file over) refuses the
/// job, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_is_not_created_on_a_claim_another_node_holds() {
    let db = database().await;
    let node = nodes(&db.url, 8).await.remove(0);
    let watcher = pg::connect(&db.url).await.unwrap();
    watcher
        .execute(
            "INSERT INTO inbox_claims (name, work_path, node, lease_until) \
             VALUES ('products_c.csv', '/inbox/.work/y-products_c.csv', 'another-node', now() + interval '1 minute')",
            &[],
        )
        .await
        .unwrap();
    let refused = node
        .job(JobCommand::Create {
            new: new_job(
                std::path::Path::new("/inbox/.work/x-products_c.csv"),
                "products_c.csv".into(),
                Origin::Inbox,
                None,
                false,
            ),
            claim: Some("products_c.csv".into()),
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::Aborted(_))),
        "{refused:?}"
    );
    assert_eq!(count(&watcher, "SELECT count(*) FROM jobs").await, 0);
    assert_eq!(
        count(
            &watcher,
            "SELECT count(*) FROM inbox_claims WHERE node = 'another-node'"
        )
        .await,
        1
    );
}

/// Whether the connection `client` came on is encrypted.
async fn on_tls(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// `sslmode=require` (or `verify-full`) with the server's CA as `sslrootcert`
/// connects with TLS, the ledger's connection and the pool's alike; without the
/// CA the server's certificate is not trusted and nothing connects; a URL that
/// asks for nothing stays plain (the test server, `.ci/services/postgres.sh`,
/// takes both).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_url_that_asks_for_tls_gets_it_verified() {
    let db = database().await;
    let plain = pg::connect(&db.url).await.unwrap();
    assert!(
        !on_tls(&plain).await,
        "a URL that asks for nothing stays plain"
    );
    let cert_file: String = plain
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let ca = std::path::Path::new(&cert_file).with_file_name("ca.crt");
    assert!(ca.exists(), "the test server's CA at {ca:?}");
    let with = |options: &str| {
        let joiner = if db.url.contains('?') { '&' } else { '?' };
        format!("{}{joiner}{options}", db.url)
    };
    for mode in ["require", "verify-full"] {
        let url = with(&format!("sslmode={mode}&sslrootcert={}", ca.display()));
        let client = pg::connect(&url).await.unwrap();
        assert!(
            on_tls(&client).await,
            "{mode}: the ledger's kind of connection"
        );
        let pool = pg::pool(&url, 2).unwrap();
        let pooled = pg::client(&pool).await.unwrap();
        assert!(on_tls(&pooled).await, "{mode}: the pool's connections");
    }
    let untrusted = pg::connect(&with("sslmode=require")).await;
    assert!(
        untrusted.is_err(),
        "a certificate no root vouches for was accepted"
    );
}
