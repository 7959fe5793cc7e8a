//! Import stages one at a time, in rows per second, on the same generated products
//! CSV: extract (CSV records), transform (validation into domain values), load
//! (applying batches in a ledger transaction, committed), the floor cost of one
//! listing-index entry, and the value parsers the transform leans on.

// Bench data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::io::{BufRead, Cursor};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use orderflow::config::{GenArgs, GenFormat, GenKind};
use orderflow_actors::domain::{
    Currency, JobId, Sku, parse_decimal_price, parse_json_number_price,
};
use orderflow_actors::events::RowEvents;
use orderflow_actors::inbox::extract::{RawRecord, extractor};
use orderflow_actors::inbox::load::{Batch, Grouper, apply};
use orderflow_actors::inbox::naming::{FileType, Format, Kind};
use orderflow_actors::inbox::transform::transform;
use orderflow_actors::ledger::tx;
use orderflow_actors::store::Store;

/// A (price, SKU) B-tree like the listing indexes of schema 1: the best case of a
/// sorted index insert.
const SORTED_INDEX: redb::TableDefinition<(u64, &str), ()> =
    redb::TableDefinition::new("sorted_index");

const ROWS: u64 = 20_000;

fn csv() -> Vec<u8> {
    let mut out = Vec::new();
    let args = GenArgs {
        kind: GenKind::Products,
        count: ROWS,
        first: 1,
        dirty: 1.0,
        seed: 1,
        catalog_depth: false,
        format: GenFormat::Csv,
        output: None,
        customers: 0,
        products: 0,
    };
    orderflow::datagen::generate(&args, &mut out).unwrap();
    out
}

fn records(bytes: &[u8]) -> Vec<RawRecord> {
    let reader: Box<dyn BufRead + Send> = Box::new(Cursor::new(bytes.to_vec()));
    let mut ex = extractor(
        FileType {
            kind: Kind::Products,
            format: Format::Csv,
            gzip: false,
        },
        reader,
    )
    .unwrap();
    let mut out = Vec::new();
    while let Some(r) = ex.next_record().unwrap() {
        out.push(r);
    }
    out
}

fn stages(c: &mut Criterion) {
    let bytes = csv();
    let mut group = c.benchmark_group("etl");
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("extract_csv", |b| b.iter(|| records(&bytes).len()));
    let recs = records(&bytes);
    group.bench_function("transform_products", |b| {
        b.iter(|| {
            recs.iter()
                .filter(|r| transform(Kind::Products, Currency::EUR, r).is_ok())
                .count()
        })
    });
    let mut pieces = Vec::new();
    let mut grouper = Grouper::default();
    for r in &recs {
        grouper.push(
            transform(Kind::Products, Currency::EUR, r),
            r.line,
            || r.raw_text(),
            &mut pieces,
        );
    }
    grouper.close(&mut pieces);
    group.sample_size(10);
    group.bench_function("load_products_commit", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path()).unwrap();
                let txn = store.db().begin_write().unwrap();
                orderflow_actors::inbox::jobs::create(
                    &txn,
                    JobId(1),
                    orderflow_actors::inbox::jobs::NewJob {
                        file_name: "p.csv".into(),
                        work_path: "p.csv".into(),
                        origin: orderflow_actors::inbox::jobs::Origin::Cli,
                        file_type: None,
                        dry_run: false,
                        refused: None,
                    },
                )
                .unwrap();
                txn.commit().unwrap();
                (
                    dir,
                    store,
                    Batch {
                        pieces: pieces.clone(),
                        bytes_read: 0,
                    },
                )
            },
            |(dir, store, batch)| {
                let txn = store.db().begin_write().unwrap();
                tx::within(&txn, Currency::EUR, RowEvents::Summary, |tx| {
                    apply(tx, JobId(1), batch).unwrap();
                    ((), true)
                })
                .unwrap();
                txn.commit().unwrap();
                drop(dir);
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Listing-index entries written into an empty table in key order, in one
/// transaction: the best case for an index insert, and so a floor on what the two
/// listing indexes (price and name) cost every imported product row.
const INDEX_ENTRIES: u64 = 200_000;

fn index_floor(c: &mut Criterion) {
    let keys: Vec<(u64, String)> = {
        let mut k: Vec<_> = (0..INDEX_ENTRIES)
            .map(|i| ((i * 7_919) % 100_000, format!("P-{:07}", i + 1)))
            .collect();
        k.sort();
        k
    };
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(INDEX_ENTRIES));
    group.sample_size(10);
    group.bench_function("sorted_index_insert_commit", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path()).unwrap();
                (dir, store)
            },
            |(dir, store)| {
                let txn = store.db().begin_write().unwrap();
                {
                    let mut index = txn.open_table(SORTED_INDEX).unwrap();
                    for (price, sku) in &keys {
                        index.insert((*price, sku.as_str()), ()).unwrap();
                    }
                }
                txn.commit().unwrap();
                drop(dir);
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn parsers(c: &mut Criterion) {
    let mut group = c.benchmark_group("domain");
    for (name, text) in [
        ("plain", "1234.56"),
        ("thousands", "1.234,56"),
        ("currency", "€12.50"),
    ] {
        group.bench_with_input(
            BenchmarkId::new("parse_decimal_price", name),
            text,
            |b, t| b.iter(|| parse_decimal_price(t, Currency::EUR)),
        );
    }
    group.bench_function("parse_json_number_price", |b| {
        b.iter(|| parse_json_number_price("120.50", Currency::EUR))
    });
    group.bench_function("sku_parse", |b| b.iter(|| Sku::parse("P-000123")));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = stages, index_floor, parsers
}
criterion_main!(benches);
