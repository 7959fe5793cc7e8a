//! The catalog read path: one product by SKU, read directly from a redb snapshot
//! and through the catalog actor's mailbox (what a request pays), over 10,000
//! products.

// Bench data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use redb::ReadableDatabase;

use orderflow_actors::catalog::{Catalog, CatalogTables, GetProduct, ProductDraft, read_product};
use orderflow_actors::domain::{Category, Cents, ProductName, Sku, Timestamp};
use orderflow_actors::mailbox::{Mailbox, start_pool};
use orderflow_actors::store::Store;

const PRODUCTS: usize = 10_000;

fn seed(store: &Store) {
    let txn = store.db().begin_write().unwrap();
    {
        let mut catalog = CatalogTables::open(&txn).unwrap();
        for i in 0..PRODUCTS {
            let draft = ProductDraft {
                attributes: Default::default(),
                name: ProductName::parse(&format!("Product number {i}")).unwrap(),
                category: Category::parse("Bench").unwrap(),
                description: None,
                price: Cents::new(1000 + i as i64).unwrap(),
            };
            catalog
                .upsert(
                    &Sku::parse(&format!("SKU-{i:05}")).unwrap(),
                    draft,
                    Timestamp::now(),
                )
                .unwrap();
        }
        // The listing indexes and category counts, as the service writes them.
        catalog.flush().unwrap();
    }
    txn.commit().unwrap();
}

fn catalog_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    seed(&store);
    let sku = Sku::parse("SKU-04321").unwrap();

    c.bench_function("catalog/get_direct", |b| {
        b.iter(|| {
            let txn = store.db().begin_read().unwrap();
            read_product(&txn, &sku).unwrap().unwrap()
        })
    });

    let system = actix::System::new();
    let mailbox = system.block_on(async {
        let s = store.clone();
        let addrs = start_pool(2, move || Catalog::new(s.clone()));
        Mailbox::pool(addrs, "catalog", 4096, Duration::from_secs(5))
    });
    c.bench_function("catalog/get_through_actor", |b| {
        b.iter(|| {
            system
                .block_on(mailbox.ask(GetProduct { sku: sku.clone() }))
                .unwrap()
                .unwrap()
                .unwrap()
        })
    });
    c.bench_function("catalog/get_through_actor_64_in_flight", |b| {
        b.iter(|| {
            system.block_on(async {
                let asks = (0..64).map(|_| mailbox.ask(GetProduct { sku: sku.clone() }));
                futures_util::future::join_all(asks).await
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = catalog_get
}
criterion_main!(benches);
