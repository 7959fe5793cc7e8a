//! Ledger commits: the same number of orders committed in batches of 1, 64 and
//! 1024 orders per durable transaction, through the ledger's own rules
//! (`Book::place_order`). The difference is what group commit buys.

// Bench data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use orderflow_actors::catalog::{CatalogTables, ProductDraft};
use orderflow_actors::domain::{
    Category, Cents, Currency, MovementKind, OrderLines, ProductName, Quantity, Sku, StockLevel,
    Timestamp, UserId,
};
use orderflow_actors::ledger::{Book, OrderRequest, Source};
use orderflow_actors::store::Store;

const SKUS: usize = 100;
const ORDERS_PER_SAMPLE: usize = 1024;

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("SKU-{i:03}")).unwrap()
}

fn seed(store: &Store) {
    let txn = store.db().begin_write().unwrap();
    {
        let mut catalog = CatalogTables::open(&txn).unwrap();
        let mut book = Book::open(&txn).unwrap();
        for i in 0..SKUS {
            let draft = ProductDraft {
                attributes: Default::default(),
                name: ProductName::parse(&format!("Product {i}")).unwrap(),
                category: Category::uncategorized(),
                description: None,
                price: Cents::new(999).unwrap(),
            };
            catalog.upsert(&sku(i), draft, Timestamp::now()).unwrap();
            book.set_level(
                &sku(i),
                StockLevel::new(1_000_000_000).unwrap(),
                MovementKind::Receipt,
                Source::Api,
                Timestamp::now(),
            )
            .unwrap();
        }
        // The listing indexes and category counts, as the service writes them.
        catalog.flush().unwrap();
    }
    txn.commit().unwrap();
}

fn commit_batches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    seed(&store);
    let mut n = 0usize;
    let mut request = move || {
        n += 1;
        let lines = OrderLines::merge([
            (sku(n % SKUS), Quantity::new(1).unwrap()),
            (sku((n * 7) % SKUS), Quantity::new(2).unwrap()),
        ])
        .unwrap();
        OrderRequest {
            user: UserId(1 + (n % 64) as u64),
            lines,
            idempotency_key: None,
            source: Source::Api,
            external_ref: None,
            expected_prices: Vec::new(),
        }
    };

    let mut group = c.benchmark_group("ledger/commit");
    group.throughput(Throughput::Elements(ORDERS_PER_SAMPLE as u64));
    group.sample_size(10);
    for batch in [1usize, 64, 1024] {
        group.bench_with_input(
            BenchmarkId::new("orders_per_txn", batch),
            &batch,
            |b, &batch| {
                b.iter(|| {
                    for _ in 0..ORDERS_PER_SAMPLE / batch {
                        let txn = store.db().begin_write().unwrap();
                        {
                            let catalog = CatalogTables::open(&txn).unwrap();
                            let mut book = Book::open(&txn).unwrap();
                            for _ in 0..batch {
                                book.place_order(
                                    &catalog,
                                    &request(),
                                    Currency::EUR,
                                    Timestamp::now(),
                                )
                                .unwrap();
                            }
                        }
                        txn.commit().unwrap();
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = commit_batches
}
criterion_main!(benches);
