//! How fast the two listing indexes (by price, by lower-case name) take new
//! products, alone in a redb file of their own, as the tables grow: `rows`
//! generated products (random prices and names, sequential SKUs as `orderflow gen`
//! makes them) go in sorted chunks of `chunk` rows, one durable write transaction
//! per chunk. Prints the rate of each tenth of the load and the whole.
//!
//!   cargo run --release -p orderflow-actors --example listing_build -- [ROWS] [CHUNK] [CACHE_MB]

use std::time::Instant;

use rand::{Rng, SeedableRng};
use redb::TableDefinition;

const BY_PRICE: TableDefinition<(u64, &str), ()> = TableDefinition::new("by_price");
const BY_NAME: TableDefinition<(&str, &str), ()> = TableDefinition::new("by_name");

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map_or(default, |a| a.parse().expect("a number"))
}

fn main() {
    let rows = arg(1, 1_000_000);
    let chunk = arg(2, 32_768).max(1);
    let cache_mb = arg(3, 32);
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Builder::new()
        .set_cache_size(cache_mb << 20)
        .create(dir.path().join("listings.redb"))
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let started = Instant::now();
    let mut tenth_started = Instant::now();
    let mut tenth_rows = 0usize;
    let mut done = 0usize;
    while done < rows {
        let n = chunk.min(rows - done);
        let mut prices: Vec<(u64, String)> = Vec::with_capacity(n);
        let mut names: Vec<(String, String)> = Vec::with_capacity(n);
        for i in done + 1..=done + n {
            let sku = format!("P-{i:06}");
            let exponent: f64 = rng.random_range(0.0..3.3);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let price = ((10f64.powf(exponent) * 100.0) as u64).max(99);
            let name = format!(
                "word{} thing{} {}",
                rng.random_range(0..40u32),
                rng.random_range(0..40u32),
                rng.random_range(100..10_000u32)
            );
            prices.push((price, sku.clone()));
            names.push((name, sku));
        }
        prices.sort_unstable();
        names.sort_unstable();
        let txn = db.begin_write().unwrap();
        {
            let mut by_price = txn.open_table(BY_PRICE).unwrap();
            for (price, sku) in &prices {
                by_price.insert((*price, sku.as_str()), ()).unwrap();
            }
            let mut by_name = txn.open_table(BY_NAME).unwrap();
            for (name, sku) in &names {
                by_name.insert((name.as_str(), sku.as_str()), ()).unwrap();
            }
        }
        txn.commit().unwrap();
        done += n;
        tenth_rows += n;
        if tenth_rows >= rows / 10 || done == rows {
            let secs = tenth_started.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let rate = tenth_rows as f64 / secs;
            println!("up to {done:>10} rows: {rate:>12.0} rows/s");
            tenth_started = Instant::now();
            tenth_rows = 0;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    println!("{{\"rows\":{rows},\"chunk\":{chunk},\"rows_per_s\":{rate:.0}}}");
}
