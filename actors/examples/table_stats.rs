//! What each table of a redb file holds and how many pages it takes: entries,
//! tree height, leaf and branch pages, stored bytes per entry. Run it on a copy
//! of a data directory's `orderflow.redb` (or on a stopped server's file; redb
//! lets one process open a file at a time) to see which tables a workload grows,
//! e.g. how many pages a commit of a checkout batch can touch.
//!
//!   cargo run --release -p orderflow-actors --example table_stats -- PATH/orderflow.redb

use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableHandle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: table_stats PATH/orderflow.redb");
        std::process::exit(2);
    };
    let db = Database::open(path)?;
    let read = db.begin_read()?;
    println!(
        "{:24} {:>10} {:>6} {:>8} {:>8} {:>12}",
        "table", "entries", "height", "leaves", "branches", "bytes/entry"
    );
    for handle in read.list_tables()? {
        let table = read.open_untyped_table(handle.clone())?;
        let stats = table.stats()?;
        let entries = table.len()?;
        println!(
            "{:24} {:>10} {:>6} {:>8} {:>8} {:>12.0}",
            handle.name(),
            entries,
            stats.tree_height(),
            stats.leaf_pages(),
            stats.branch_pages(),
            stats.stored_bytes() as f64 / entries.max(1) as f64
        );
    }
    Ok(())
}
