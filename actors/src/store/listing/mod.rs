//! The listing indexes (products by price, by name) as sorted runs of packed
//! blocks, merged a little in every transaction that changes them.
//!
//! A B-tree index takes a large import's keys at random places, so every batch
//! rewrote pages all over two growing trees, and the import's rate fell as the
//! catalog grew (docs/benchmarks.md, "Why ingest stops"). Here each transaction
//! that changes listings writes its changes, already sorted, as a new **run**: a
//! handful of blocks of up to one page (`LISTING_BLOCK_BYTES_MAX`) under sequential keys
//! in [`LISTING_BLOCKS`]. Runs are merged in the background of later writes, the
//! way an LSM tree does it:
//!
//! - a run's **level** is the base-[`LISTING_MERGE_FANOUT`] logarithm of its entry
//!   count; when a level holds that many runs, a merge of them into one new run
//!   starts;
//! - a merge advances by a bounded number of entries per transaction
//!   (`LISTING_MERGE_ENTRIES_PER_CHANGE` per change written, at least
//!   `LISTING_MERGE_ENTRIES_MIN`), recording how far it got in the new run's
//!   [`RunRow`], so no transaction stalls on a large merge and a crash resumes it;
//! - until a merge ends, its sources stay and its output is read beside them
//!   (their common entries are equal, so reading both is harmless); at its end the
//!   sources go, in the same transaction.
//!
//! An entry is a key (price or lower-case name, then SKU, as bytes that sort like
//! the pair) and a [`block::Tag`]: the id of the run it was first written in, and
//! whether it removes the key. Where runs disagree about a key the higher id wins,
//! so a product whose price changes leaves a removal beside its old entry, and a
//! merge that sees both keeps only the removal; a merge of every run of an index
//! drops removals too.
//!
//! Everything happens in the writer's own transaction (the ledger's, for imports
//! and API writes alike): a listing is current the moment the commit is, across a
//! crash exactly as the product rows are. Readers ([`read`]) merge the runs of a
//! snapshot. The ledger's other writers never touch these tables.

pub mod block;
pub mod read;
pub mod write;

use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};

use serde::{Deserialize, Serialize};

use crate::common::{Record, StoreError};
use crate::limits::LISTING_MERGE_FANOUT;
use block::Tag;

pub use read::{ListingScan, ListingTables};
pub use write::ListingWriter;

use crate::store::tables::LISTING_BLOCKS;

/// The order a listing is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

/// A run as a merge sees it: its head entry, or none once it is passed.
/// A merge's sources ([`write`]) and a read's runs ([`read`]) are both walked so.
trait Head {
    fn key(&self) -> Option<&[u8]>;
    /// The head entry's tag; only asked while there is a head.
    fn tag(&self) -> Tag;
}

/// The first head key of `runs` in `direction` (the smallest, ascending).
fn first_head<H: Head>(runs: &[H], direction: Direction) -> Option<&[u8]> {
    let mut best: Option<&[u8]> = None;
    for k in runs.iter().filter_map(Head::key) {
        let better = match (best, direction) {
            (None, _) => true,
            (Some(b), Direction::Ascending) => k < b,
            (Some(b), Direction::Descending) => k > b,
        };
        if better {
            best = Some(k);
        }
    }
    best
}

/// Moves every run whose head is `key` past it with `advance`, answering the
/// newest of their tags (the entry that counts) and how many runs held the key.
fn pass_key<H: Head>(
    runs: &mut [H],
    key: &[u8],
    mut advance: impl FnMut(&mut H) -> Result<(), StoreError>,
) -> Result<(Tag, u64), StoreError> {
    let mut winner: Option<Tag> = None;
    let mut held = 0u64;
    for r in runs.iter_mut() {
        if r.key() == Some(key) {
            let t = r.tag();
            if winner.is_none_or(|w| t.version() > w.version()) {
                winner = Some(t);
            }
            advance(r)?;
            held += 1;
        }
    }
    let winner = winner.expect("the key passed is a head of some run");
    Ok((winner, held))
}

/// The listing indexes, a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    /// (price in cents, SKU), active products only.
    Price,
    /// (lower-case name, SKU), active products only.
    Name,
}

impl Index {
    pub const ALL: [Index; 2] = [Index::Price, Index::Name];

    /// The index's first key byte in the listing tables.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Index::Price => 0,
            Index::Name => 1,
        }
    }
}

/// The bytes of a price-index key: the price big-endian, then the SKU, so the bytes
/// sort as the pair does.
pub fn price_key(price: u64, sku: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + sku.len());
    key.extend_from_slice(&price.to_be_bytes());
    key.extend_from_slice(sku.as_bytes());
    key
}

/// The bytes of a name-index key: the lower-case name, a zero byte, the SKU. Names
/// cannot hold control characters and SKUs are ASCII letters, digits and `._-`, so
/// the zero byte is the separator and the bytes sort as the pair does.
pub fn name_key(name: &str, sku: &str) -> Vec<u8> {
    debug_assert!(!name.as_bytes().contains(&0));
    let mut key = Vec::with_capacity(name.len() + 1 + sku.len());
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key.extend_from_slice(sku.as_bytes());
    key
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a listing key does not decode: {what}"))
}

/// (price, SKU) from a price-index key.
pub fn split_price(key: &[u8]) -> Result<(u64, &str), StoreError> {
    if key.len() < 8 {
        return Err(corrupt("price key too short"));
    }
    let (price, sku) = key.split_at(8);
    let price = u64::from_be_bytes(price.try_into().expect("eight bytes"));
    let sku = std::str::from_utf8(sku).map_err(|_| corrupt("SKU is not UTF-8"))?;
    Ok((price, sku))
}

/// (lower-case name, SKU) from a name-index key.
pub fn split_name(key: &[u8]) -> Result<(&str, &str), StoreError> {
    let at = key
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| corrupt("no separator"))?;
    let name = std::str::from_utf8(&key[..at]).map_err(|_| corrupt("name is not UTF-8"))?;
    let sku = std::str::from_utf8(&key[at + 1..]).map_err(|_| corrupt("SKU is not UTF-8"))?;
    Ok((name, sku))
}

/// Schema 1 kept each listing as a B-tree of (key, SKU) pairs. Writes each one's
/// entries, already in key order, as one run, and deletes the old tables.
pub fn upgrade_from_schema_1(txn: &WriteTransaction) -> Result<(), StoreError> {
    use crate::store::tables::legacy::{PRODUCTS_BY_NAME, PRODUCTS_BY_PRICE};
    let mut writer = ListingWriter::open(txn)?;
    run_from_legacy(
        txn,
        &mut writer,
        Index::Price,
        PRODUCTS_BY_PRICE,
        |(price, sku)| price_key(price, sku),
    )?;
    run_from_legacy(
        txn,
        &mut writer,
        Index::Name,
        PRODUCTS_BY_NAME,
        |(name, sku)| name_key(name, sku),
    )?;
    txn.delete_table(PRODUCTS_BY_PRICE)?;
    txn.delete_table(PRODUCTS_BY_NAME)?;
    Ok(())
}

/// Schema 2 wrote blocks without restart points ([`block`]). Re-encodes every
/// block in place (its first key, so its table key, is unchanged), a bounded
/// number at a time: a large catalog's blocks do not fit the memory bound.
pub fn upgrade_from_schema_2(txn: &WriteTransaction) -> Result<(), StoreError> {
    /// Blocks re-encoded per pass: about 1 MiB.
    const BLOCKS_PER_PASS: usize = 256;
    let mut blocks = txn.open_table(LISTING_BLOCKS)?;
    let mut after: Option<(u8, u64, Vec<u8>)> = None;
    loop {
        let mut pass = Vec::with_capacity(BLOCKS_PER_PASS);
        let lower = match &after {
            Some((tag, run, first)) => Bound::Excluded((*tag, *run, first.as_slice())),
            None => Bound::Unbounded,
        };
        for entry in blocks
            .range::<(u8, u64, &[u8])>((lower, Bound::Unbounded))?
            .take(BLOCKS_PER_PASS)
        {
            let (key, bytes) = entry?;
            let (tag, run, first) = key.value();
            pass.push((
                (tag, run, first.to_vec()),
                block::reencode_schema_2(bytes.value())?,
            ));
        }
        let Some((last, _)) = pass.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for ((tag, run, first), bytes) in &pass {
            blocks.insert((*tag, *run, first.as_slice()), bytes.as_slice())?;
        }
    }
}

/// One schema-1 listing table, streamed in its key order (which is the run's
/// order) into one run: a large catalog's keys do not fit the memory bound.
fn run_from_legacy<K: redb::Key + 'static>(
    txn: &WriteTransaction,
    writer: &mut ListingWriter<'_>,
    index: Index,
    legacy: redb::TableDefinition<K, ()>,
    encode: impl Fn(K::SelfType<'_>) -> Vec<u8>,
) -> Result<(), StoreError> {
    let table = txn.open_table(legacy)?;
    let mut failed = None;
    let keys = table.iter()?.map_while(|e| match e {
        Ok((k, _)) => Some((encode(k.value()), true)),
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    writer.write_run(index, keys)?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// One transaction's changes to one index, in the order they were made; a key's
/// last change wins. A list sorted once at the end, not a sorted map kept row by
/// row: the keys of an import come in random order, and the map's compares were
/// a tenth of the ledger thread's time.
#[derive(Debug, Default)]
pub struct Changes {
    list: Vec<(Vec<u8>, bool)>,
}

impl Changes {
    /// Notes that `key` is now present (`true`) or removed (`false`).
    pub fn note(&mut self, key: Vec<u8>, present: bool) {
        self.list.push((key, present));
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sorted by key, each key once with its last change.
    fn into_sorted(mut self) -> Vec<(Vec<u8>, bool)> {
        // Stable: a key's changes keep their order, so the last is the last.
        self.list.sort_by(|a, b| a.0.cmp(&b.0));
        self.list.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        self.list
    }
}

impl FromIterator<(Vec<u8>, bool)> for Changes {
    fn from_iter<I: IntoIterator<Item = (Vec<u8>, bool)>>(iter: I) -> Self {
        Self {
            list: iter.into_iter().collect(),
        }
    }
}

/// What [`crate::store::tables::LISTING_RUNS`] holds about one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRow {
    /// Entries written to the run so far.
    pub entries: u64,
    /// Present while the run is the output of a merge still under way.
    pub merge: Option<MergeRow>,
}

impl Record for RunRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "listing run";
}

/// A merge under way: which runs it reads and how far it has written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRow {
    /// The level of the runs it merges.
    pub level: u8,
    /// The runs it merges, by id.
    pub sources: Vec<u64>,
    /// Every source entry up to this key (included) is merged into the output.
    pub done_through: Option<Vec<u8>>,
    /// Whether the sources were every run of the index when the merge started, so
    /// nothing older can hide behind a removal and removals need not be kept.
    pub drops_removals: bool,
}

/// A run's level: the base-[`LISTING_MERGE_FANOUT`] logarithm of its entry count.
pub(crate) fn level_of(entries: u64) -> u8 {
    let mut level = 0u8;
    let mut n = entries.max(1);
    while n >= LISTING_MERGE_FANOUT as u64 {
        n /= LISTING_MERGE_FANOUT as u64;
        level += 1;
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_their_pairs() {
        let prices = [
            (0, "A"),
            (5, "A"),
            (5, "B"),
            (5, "B-1"),
            (256, "A"),
            (u64::MAX, "Z"),
        ];
        for w in prices.windows(2) {
            assert!(price_key(w[0].0, w[0].1) < price_key(w[1].0, w[1].1));
            assert!(w[0] < w[1]);
        }
        let names = [
            ("ab", "Z"),
            ("ab c", "A"),
            ("abc", "A"),
            ("abc", "B"),
            ("é", "A"),
        ];
        for w in names.windows(2) {
            assert!(name_key(w[0].0, w[0].1) < name_key(w[1].0, w[1].1), "{w:?}");
            assert!(w[0] < w[1]);
        }
        assert_eq!(split_price(&price_key(42, "X-1")).unwrap(), (42, "X-1"));
        assert_eq!(
            split_name(&name_key("blue mug", "M.2")).unwrap(),
            ("blue mug", "M.2")
        );
        assert!(split_price(b"short").is_err());
        assert!(split_name(b"no separator").is_err());
    }

    #[test]
    fn changes_keep_each_keys_last_change_in_key_order() {
        let mut changes = Changes::default();
        changes.note(b"b".to_vec(), true);
        changes.note(b"a".to_vec(), false);
        changes.note(b"b".to_vec(), false);
        changes.note(b"c".to_vec(), false);
        changes.note(b"a".to_vec(), true);
        changes.note(b"c".to_vec(), true);
        changes.note(b"c".to_vec(), false);
        assert_eq!(
            changes.into_sorted(),
            vec![
                (b"a".to_vec(), true),
                (b"b".to_vec(), false),
                (b"c".to_vec(), false)
            ]
        );
    }

    /// A schema-2 file (blocks without restart points), with a merge under way,
    /// opens as this schema listing the same keys both ways, and every block
    /// decodes in this format.
    #[test]
    fn schema_2_blocks_are_reencoded() {
        use crate::store::tables::{META, counter};
        use crate::store::{SCHEMA_VERSION, Store};
        use redb::{ReadableDatabase, ReadableTableMetadata};
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Vec<u8>> = (0..5_000u32)
            .map(|i| (i * 7).to_be_bytes().to_vec())
            .collect();
        let list = |store: &Store, direction| {
            let txn = store.db().begin_read().unwrap();
            let tables = ListingTables::open(&txn).unwrap();
            let mut scan = tables
                .scan(Index::Name, Bound::Unbounded, Bound::Unbounded, direction)
                .unwrap();
            let mut out = Vec::new();
            while let Some((key, present)) = scan.next_key().unwrap() {
                assert!(present);
                out.push(key.to_vec());
            }
            out
        };
        {
            let store = Store::open(dir.path()).unwrap();
            // Five runs, and a merge left under way by a small budget.
            for chunk in keys.chunks(1_000) {
                let txn = store.db().begin_write().unwrap();
                let changes: Changes = chunk.iter().map(|k| (k.clone(), true)).collect();
                ListingWriter::open(&txn)
                    .unwrap()
                    .apply_with_budget(Index::Name, changes, 1_500)
                    .unwrap();
                txn.commit().unwrap();
            }
            let txn = store.db().begin_write().unwrap();
            {
                let runs = ListingWriter::open(&txn)
                    .unwrap()
                    .runs(Index::Name)
                    .unwrap();
                assert!(runs.iter().any(|(_, r)| r.merge.is_some()), "{runs:?}");
                let mut blocks = txn.open_table(LISTING_BLOCKS).unwrap();
                let mut old = Vec::new();
                for entry in blocks.iter().unwrap() {
                    let (key, bytes) = entry.unwrap();
                    let mut forward = block::Forward::default();
                    forward.load(bytes.value()).unwrap();
                    let mut entries = Vec::new();
                    while let (Some(k), Some(t)) = (forward.key(), forward.tag()) {
                        entries.push((k.to_vec(), t));
                        forward.advance().unwrap();
                    }
                    let (tag, run, first) = key.value();
                    old.push(((tag, run, first.to_vec()), block::schema_2_block(&entries)));
                }
                assert!(old.len() > 10, "several blocks per run");
                for ((tag, run, first), bytes) in &old {
                    blocks
                        .insert((*tag, *run, first.as_slice()), bytes.as_slice())
                        .unwrap();
                }
                txn.open_table(META)
                    .unwrap()
                    .insert(counter::SCHEMA, 2)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let txn = store.db().begin_read().unwrap();
        let schema = txn.open_table(META).unwrap().get(counter::SCHEMA).unwrap();
        assert_eq!(schema.map(|v| v.value()), Some(SCHEMA_VERSION));
        let blocks = txn.open_table(LISTING_BLOCKS).unwrap();
        assert!(blocks.len().unwrap() > 10);
        for entry in blocks.iter().unwrap() {
            let (_, bytes) = entry.unwrap();
            // Schema 2's bytes end in an entry, not a restart count this format
            // can read; each block now has its restart points.
            let mut backward = block::Backward::default();
            backward.load(bytes.value()).unwrap();
            assert!(backward.key().is_some());
        }
        drop(txn);
        assert_eq!(list(&store, Direction::Ascending), keys);
        let mut back = list(&store, Direction::Descending);
        back.reverse();
        assert_eq!(back, keys);
        // The merge under way goes on over the new blocks.
        let txn = store.db().begin_write().unwrap();
        ListingWriter::open(&txn)
            .unwrap()
            .maintain(Index::Name, u64::MAX)
            .unwrap();
        txn.commit().unwrap();
        assert_eq!(list(&store, Direction::Ascending), keys);
    }

    #[test]
    fn levels_grow_by_the_fanout() {
        assert_eq!(level_of(0), 0);
        assert_eq!(level_of(1), 0);
        let f = LISTING_MERGE_FANOUT as u64;
        assert_eq!(level_of(f - 1), 0);
        assert_eq!(level_of(f), 1);
        assert_eq!(level_of(f * f), 2);
        assert_eq!(level_of(f * f - 1), 1);
    }
}
