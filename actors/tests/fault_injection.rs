//! Storage fault injection: the ledger (group commit included) and an import run
//! over a redb backend that fails a chosen read, write, sync or resize, once or for
//! good. After any injected fault the service may answer with errors, but it must
//! never acknowledge what is not durable: after reopening the file with the plain
//! backend, every acknowledged order, status change and stock movement is there, a
//! `completed` import has every row, and the ledger's verify is clean.
//!
//! `FAULT_SEEDS=N` sets the number of seeds (default 200, what CI runs); the long
//! campaign is `FAULT_SEEDS=10000 cargo nextest run -p orderflow-actors --test
//! fault_injection --nocapture`, and prints its tally.

// Test data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix::Actor;
use rand::{Rng, SeedableRng};
use redb::ReadableDatabase;

use orderflow_actors::catalog::{Catalog, ProductDraft};
use orderflow_actors::common::codec;
use orderflow_actors::domain::{
    Category, Cents, Currency, OrderId, OrderLines, OrderStatus, ProductName, Quantity, Reason,
    Sku, StockDelta, StockLevel, UserId,
};
use orderflow_actors::inbox::jobs::{JobStatus, Origin};
use orderflow_actors::inbox::pipeline::{Outcome, Pipeline};
use orderflow_actors::inbox::watcher::create_job;
use orderflow_actors::ledger::{
    self, AdjustStock, ChangeStatus, CreateProduct, Ledger, PlaceOrder, verify,
};
use orderflow_actors::ledger::{Caller, MovementRow, OrderRequest, OrderRow, Source};
use orderflow_actors::mailbox::Mailbox;
use orderflow_actors::store::Store;
use orderflow_actors::store::fault::{FaultKind, FaultPlan, open_faulty};
use orderflow_actors::store::tables::{MOVEMENTS, ORDERS, PRODUCTS};
use orderflow_actors::telemetry::Telemetry;

const SKUS: usize = 4;
const IMPORT_ROWS: usize = 300;

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("F{i}")).unwrap()
}

/// What the service acknowledged, to be found again after reopening.
#[derive(Debug, Default)]
struct Acknowledged {
    orders: Vec<(OrderId, u64)>,
    cancelled: Vec<OrderId>,
    movements: Vec<(Sku, u64, i64)>,
    import_completed: bool,
}

#[derive(Debug, Default)]
struct Tally {
    seeds: u64,
    /// Seeds whose plan did fail an operation (some pick one that never comes).
    seeds_faulted: u64,
    faults: u64,
    acknowledged: u64,
    refused: u64,
    imports_completed: u64,
    imports_failed: u64,
}

fn campaign_seeds() -> u64 {
    std::env::var("FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

#[test]
fn injected_storage_faults_never_acknowledge_what_is_not_durable() {
    let mut tally = Tally::default();
    for seed in 0..campaign_seeds() {
        run_seed(seed, &mut tally);
    }
    eprintln!(
        "fault campaign: {} seeds ({} with a fault), {} faults injected, {} operations acknowledged and found after reopening, {} refused with an error, imports {} completed / {} failed; verify clean after every reopen",
        tally.seeds,
        tally.seeds_faulted,
        tally.faults,
        tally.acknowledged,
        tally.refused,
        tally.imports_completed,
        tally.imports_failed
    );
    assert!(
        tally.seeds_faulted > tally.seeds / 4,
        "the campaign injected too little"
    );
}

fn run_seed(seed: u64, tally: &mut Tally) {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("products_fault.csv");
    let mut csv = String::from("sku,name,price,stock\n");
    for i in 0..IMPORT_ROWS {
        csv.push_str(&format!("IMP-{i},Imported {i},{}.50,{}\n", i + 1, i % 7));
    }
    std::fs::write(&import, csv).unwrap();
    let data = dir.path().join("data");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let plan = Arc::new(FaultPlan::default());
    let ack = actix::System::new().block_on(workload(&data, &import, Arc::clone(&plan), &mut rng));
    tally.seeds += 1;
    tally.seeds_faulted += u64::from(plan.injected() > 0);
    tally.faults += plan.injected();
    tally.refused += ack.1;
    let ack = ack.0;
    if ack.import_completed {
        tally.imports_completed += 1;
    } else {
        tally.imports_failed += 1;
    }
    tally.acknowledged += check_durable(&data, &ack, seed);
}

/// Runs the workload with a fault armed; answers what was acknowledged and how
/// many operations were refused with an error.
async fn workload(
    data: &Path,
    import: &Path,
    plan: Arc<FaultPlan>,
    rng: &mut impl Rng,
) -> (Acknowledged, u64) {
    let store = open_faulty(data, Arc::clone(&plan)).unwrap();
    store.ensure_currency(Currency::EUR).unwrap();
    let catalog = Catalog::new(store.clone()).start();
    let telemetry = Telemetry::default();
    let ledger = Ledger::new(store.clone(), Currency::EUR, 1024, telemetry.clone()).start();
    for i in 0..SKUS {
        ledger
            .send(CreateProduct {
                sku: sku(i),
                draft: ProductDraft {
                    attributes: Default::default(),
                    name: ProductName::parse(&format!("Faulty {i}")).unwrap(),
                    category: Category::uncategorized(),
                    description: None,
                    price: Cents::new(100 + i as i64).unwrap(),
                },
                stock: Some(StockLevel::new(40).unwrap()),
            })
            .await
            .unwrap()
            .unwrap();
    }
    // Reads mostly hit redb's cache and resizes are rare: their n is small.
    let (kinds, n_max) = match rng.random_range(0..5) {
        0 => (vec![FaultKind::Read], 4),
        1 => (vec![FaultKind::Write], 40),
        2 => (vec![FaultKind::Sync], 16),
        3 => (vec![FaultKind::SetLen], 3),
        _ => (FaultKind::ALL.to_vec(), 40),
    };
    plan.arm(&kinds, rng.random_range(1..=n_max), rng.random_bool(0.3));

    let mut ack = Acknowledged::default();
    let mut refused = 0u64;
    // The import runs on a thread of its own, as the inbox runner does, while the
    // checkouts go on.
    let mailbox = Mailbox::new(ledger.clone(), "ledger", 8192, Duration::from_secs(30));
    let import = import.to_owned();
    let importer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let pipeline = Pipeline {
            ledger: orderflow_actors::room::Room::Redb(mailbox),
            currency: Currency::EUR,
            telemetry,
            stop: Arc::new(AtomicBool::new(false)),
        };
        let job = create_job(
            &pipeline,
            &rt,
            &import,
            "products_fault.csv".into(),
            Origin::Cli,
            None,
            false,
        )
        .ok()?;
        match pipeline.run(&rt, job.id) {
            Ok(Outcome::Finished(job)) => Some(job.row.status == JobStatus::Completed),
            _ => Some(false),
        }
    });

    for _burst in 0..6 {
        let mut pending = Vec::new();
        for _ in 0..8 {
            let s = rng.random_range(0..SKUS);
            match rng.random_range(0..10) {
                0..=5 => {
                    let q = rng.random_range(1..4u32);
                    let request = OrderRequest {
                        user: UserId(1),
                        lines: OrderLines::merge([(sku(s), Quantity::new(i64::from(q)).unwrap())])
                            .unwrap(),
                        idempotency_key: None,
                        source: Source::Api,
                        external_ref: None,
                        expected_prices: Vec::new(),
                    };
                    let f = ledger.send(PlaceOrder { request });
                    pending.push(Box::pin(async move {
                        match f.await.unwrap() {
                            Ok(p) => Step::Placed(p.order.id, p.order.row.total_cents),
                            Err(_) => Step::Refused,
                        }
                    })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = Step>>>);
                }
                6..=7 => {
                    let delta = rng.random_range(1..6i64);
                    let f = ledger.send(AdjustStock {
                        sku: sku(s),
                        delta: StockDelta::new(delta).unwrap(),
                        reason: Reason::parse("fault test").unwrap(),
                    });
                    pending.push(Box::pin(async move {
                        match f.await.unwrap() {
                            Ok(m) => Step::Moved(m.sku, m.seq, m.row.delta),
                            Err(_) => Step::Refused,
                        }
                    }));
                }
                _ => {
                    let Some(&(id, _)) = ack.orders.last() else {
                        continue;
                    };
                    let f = ledger.send(ChangeStatus {
                        order: id,
                        next: OrderStatus::Cancelled,
                        caller: Caller {
                            user: UserId(1),
                            is_admin: true,
                        },
                    });
                    pending.push(Box::pin(async move {
                        match f.await.unwrap() {
                            Ok(o) => Step::Cancelled(o.id),
                            Err(_) => Step::Refused,
                        }
                    }));
                }
            }
        }
        for step in futures_util::future::join_all(pending).await {
            match step {
                Step::Placed(id, total) => ack.orders.push((id, total)),
                Step::Moved(s, seq, delta) => ack.movements.push((s, seq, delta)),
                Step::Cancelled(id) => ack.cancelled.push(id),
                Step::Refused => refused += 1,
            }
        }
    }
    let completed = tokio::task::spawn_blocking(move || importer.join().unwrap())
        .await
        .unwrap();
    ack.import_completed = completed == Some(true);
    plan.disarm();
    let _ = ledger.send(ledger::Shutdown).await;
    drop((catalog, ledger));
    for _ in 0..500 {
        if store.handle_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(store.handle_count(), 1, "actors did not release the store");
    drop(store);
    (ack, refused)
}

enum Step {
    Placed(OrderId, u64),
    Moved(Sku, u64, i64),
    Cancelled(OrderId),
    Refused,
}

/// Reopens with the plain backend and finds everything acknowledged; answers how
/// many acknowledgements were checked.
fn check_durable(data: &Path, ack: &Acknowledged, seed: u64) -> u64 {
    let store = Store::open(data).unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
    let report = verify::verify(&store).unwrap();
    assert!(
        report.problems.is_empty(),
        "seed {seed}: {:?}",
        report.problems
    );
    let txn = store.db().begin_read().unwrap();
    let orders = txn.open_table(ORDERS).unwrap();
    for (id, total) in &ack.orders {
        let row: OrderRow = codec::decode(
            orders
                .get(id.0)
                .unwrap()
                .unwrap_or_else(|| panic!("seed {seed}: acknowledged order {} is gone", id.0))
                .value(),
        )
        .unwrap();
        assert_eq!(row.total_cents, *total, "seed {seed}");
    }
    for id in &ack.cancelled {
        let row: OrderRow = codec::decode(orders.get(id.0).unwrap().unwrap().value()).unwrap();
        assert_eq!(
            row.status,
            OrderStatus::Cancelled,
            "seed {seed}: order {}",
            id.0
        );
    }
    let movements = txn.open_table(MOVEMENTS).unwrap();
    for (s, seq, delta) in &ack.movements {
        let row: MovementRow = codec::decode(
            movements
                .get((s.as_str(), *seq))
                .unwrap()
                .unwrap_or_else(|| panic!("seed {seed}: acknowledged movement {s}/{seq} is gone"))
                .value(),
        )
        .unwrap();
        assert_eq!(row.delta, *delta, "seed {seed}");
    }
    if ack.import_completed {
        let products = txn.open_table(PRODUCTS).unwrap();
        for i in 0..IMPORT_ROWS {
            assert!(
                products.get(format!("IMP-{i}").as_str()).unwrap().is_some(),
                "seed {seed}: a completed import lost row {i}"
            );
        }
    }
    (ack.orders.len() + ack.cancelled.len() + ack.movements.len()) as u64
        + u64::from(ack.import_completed)
}

/// A durable commit whose sync fails may have reached the disk: the caller is
/// told its outcome is unknown, never "nothing was written, retry".
#[test]
fn a_failed_durable_commit_is_answered_as_outcome_unknown() {
    actix::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let plan = Arc::new(FaultPlan::default());
        let store = open_faulty(dir.path(), Arc::clone(&plan)).unwrap();
        store.ensure_currency(Currency::EUR).unwrap();
        let ledger = Ledger::new(store, Currency::EUR, 1024, Telemetry::default()).start();
        ledger
            .send(CreateProduct {
                sku: sku(0),
                draft: ProductDraft {
                    attributes: Default::default(),
                    name: ProductName::parse("Synced").unwrap(),
                    category: Category::uncategorized(),
                    description: None,
                    price: Cents::new(100).unwrap(),
                },
                stock: Some(StockLevel::new(1).unwrap()),
            })
            .await
            .unwrap()
            .unwrap();
        plan.arm(&[FaultKind::Sync], 1, false);
        let answer = ledger
            .send(AdjustStock {
                sku: sku(0),
                delta: StockDelta::new(1).unwrap(),
                reason: Reason::parse("sync fails").unwrap(),
            })
            .await
            .unwrap();
        assert!(plan.injected() > 0, "the sync fault was not reached");
        assert!(
            matches!(
                answer,
                Err(ledger::StockError::Store(
                    orderflow_actors::common::StoreError::OutcomeUnknown(_)
                ))
            ),
            "{answer:?}"
        );
    });
}
