//! Writing the listing runs: a transaction's changes as a new run, and the merges'
//! share of work (see the module above).
//!
//! Why one file: writing a run and merging runs are one algorithm — a merge writes
//! its output with the same block writer and run rows as a fresh run, and the
//! property test below checks both together.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use redb::{ReadableTable, Table, WriteTransaction};

use super::block::{BlockWriter, Forward, Tag};
use super::{Changes, Direction, Head, Index, MergeRow, RunRow, first_head, level_of, pass_key};
use crate::common::{StoreError, codec};
use crate::limits::{
    LISTING_BLOCK_BYTES_MAX, LISTING_MERGE_ENTRIES_MIN, LISTING_MERGE_ENTRIES_PER_CHANGE,
    LISTING_MERGE_FANOUT,
};
use crate::store::tables::{LISTING_BLOCKS, LISTING_META, LISTING_RUNS, listing_meta};

type Blocks<'txn> = Table<'txn, (u8, u64, &'static [u8]), &'static [u8]>;

/// The listing tables, open in one write transaction.
pub struct ListingWriter<'txn> {
    blocks: Blocks<'txn>,
    runs: Table<'txn, (u8, u64), &'static [u8]>,
    meta: Table<'txn, &'static str, u64>,
}

/// The next piece of merge work of an index.
enum Job {
    Continue { dest: u64, row: RunRow },
    Start { level: u8, sources: Vec<u64> },
}

impl<'txn> ListingWriter<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            blocks: txn.open_table(LISTING_BLOCKS)?,
            runs: txn.open_table(LISTING_RUNS)?,
            meta: txn.open_table(LISTING_META)?,
        })
    }

    /// Writes `changes` (key → present after this transaction) as a new run of
    /// `index`, then does this transaction's share of the index's merges.
    pub fn apply(&mut self, index: Index, changes: Changes) -> Result<(), StoreError> {
        let budget = u64::try_from(changes.len())
            .unwrap_or(u64::MAX)
            .saturating_mul(LISTING_MERGE_ENTRIES_PER_CHANGE)
            .max(LISTING_MERGE_ENTRIES_MIN);
        self.apply_with_budget(index, changes, budget)
    }

    /// [`Self::apply`] with a merge budget of the caller's.
    pub(crate) fn apply_with_budget(
        &mut self,
        index: Index,
        changes: Changes,
        budget: u64,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.write_run(index, changes.into_sorted())?;
        self.maintain(index, budget)
    }

    /// Writes entries given in ascending key order as one new run, tagged with its
    /// id. Answers the run's id and how many entries it has.
    pub fn write_run<K: AsRef<[u8]>>(
        &mut self,
        index: Index,
        entries: impl IntoIterator<Item = (K, bool)>,
    ) -> Result<(u64, u64), StoreError> {
        let id = self.next_run_id()?;
        let mut out = BlockWriter::default();
        let mut count = 0u64;
        for (key, present) in entries {
            let tag = Tag::new(id, !present);
            if !out.fits(key.as_ref(), tag, LISTING_BLOCK_BYTES_MAX) {
                self.put_block(index, id, &mut out)?;
            }
            out.push(key.as_ref(), tag);
            count += 1;
        }
        self.put_block(index, id, &mut out)?;
        if count > 0 {
            self.put_run(
                index,
                id,
                &RunRow {
                    entries: count,
                    merge: None,
                },
            )?;
        }
        Ok((id, count))
    }

    /// Merges up to `budget` source entries of `index`, lowest level first.
    pub fn maintain(&mut self, index: Index, mut budget: u64) -> Result<(), StoreError> {
        while budget > 0 {
            let runs = self.runs(index)?;
            let (dest, row) = match next_job(&runs) {
                None => break,
                Some(Job::Continue { dest, row }) => (dest, row),
                Some(Job::Start { level, sources }) => {
                    let drops_removals = sources.len() == runs.len();
                    let dest = self.next_run_id()?;
                    let row = RunRow {
                        entries: 0,
                        merge: Some(MergeRow {
                            level,
                            sources,
                            done_through: None,
                            drops_removals,
                        }),
                    };
                    (dest, row)
                }
            };
            budget = self.step(index, dest, row, budget)?;
        }
        Ok(())
    }

    /// Advances the merge whose output is `dest` by up to `budget` source entries;
    /// answers what is left of the budget.
    fn step(
        &mut self,
        index: Index,
        dest: u64,
        row: RunRow,
        mut budget: u64,
    ) -> Result<u64, StoreError> {
        let merge = row.merge.expect("only a merge's output is stepped");
        let tag = index.tag();
        let mut sources = Vec::with_capacity(merge.sources.len());
        for &run in &merge.sources {
            sources.push(Source::start(
                &self.blocks,
                tag,
                run,
                merge.done_through.as_deref(),
            )?);
        }
        let mut out = BlockWriter::default();
        let mut written = 0u64;
        let mut key = Vec::new();
        let mut moved = false;
        let finished = loop {
            let Some(best) = first_head(&sources, Direction::Ascending) else {
                break true;
            };
            if budget == 0 {
                break false;
            }
            key.clear();
            key.extend_from_slice(best);
            let blocks = &self.blocks;
            let (winner, held) = pass_key(&mut sources, &key, |s| s.advance(blocks, tag))?;
            budget = budget.saturating_sub(held);
            moved = true;
            if winner.dead() && merge.drops_removals {
                continue;
            }
            if !out.fits(&key, winner, LISTING_BLOCK_BYTES_MAX) {
                self.put_block(index, dest, &mut out)?;
            }
            out.push(&key, winner);
            written += 1;
        };
        self.put_block(index, dest, &mut out)?;
        let entries = row.entries + written;
        if finished {
            for &run in &merge.sources {
                self.drop_run(index, run)?;
            }
            if entries == 0 {
                self.runs.remove((tag, dest))?;
            } else {
                self.put_run(
                    index,
                    dest,
                    &RunRow {
                        entries,
                        merge: None,
                    },
                )?;
            }
        } else {
            let done_through = if moved { Some(key) } else { merge.done_through };
            self.put_run(
                index,
                dest,
                &RunRow {
                    entries,
                    merge: Some(MergeRow {
                        done_through,
                        ..merge
                    }),
                },
            )?;
        }
        Ok(budget)
    }

    fn next_run_id(&mut self) -> Result<u64, StoreError> {
        let id = self
            .meta
            .get(listing_meta::NEXT_RUN)?
            .map_or(1, |v| v.value());
        self.meta.insert(listing_meta::NEXT_RUN, id + 1)?;
        Ok(id)
    }

    fn put_block(
        &mut self,
        index: Index,
        run: u64,
        out: &mut BlockWriter,
    ) -> Result<(), StoreError> {
        if let Some((first, bytes)) = out.take() {
            self.blocks
                .insert((index.tag(), run, first.as_slice()), bytes.as_slice())?;
        }
        Ok(())
    }

    fn put_run(&mut self, index: Index, run: u64, row: &RunRow) -> Result<(), StoreError> {
        self.runs
            .insert((index.tag(), run), codec::encode(row).as_slice())?;
        Ok(())
    }

    fn drop_run(&mut self, index: Index, run: u64) -> Result<(), StoreError> {
        let tag = index.tag();
        self.blocks.retain_in::<(u8, u64, &[u8]), _>(
            (tag, run, &[][..])..(tag, run + 1, &[][..]),
            |_, _| false,
        )?;
        self.runs.remove((tag, run))?;
        Ok(())
    }

    /// The runs of `index` with their rows, by id.
    pub fn runs(&self, index: Index) -> Result<Vec<(u64, RunRow)>, StoreError> {
        let tag = index.tag();
        let mut runs = Vec::new();
        for entry in self.runs.range((tag, 0)..=(tag, u64::MAX))? {
            let (k, v) = entry?;
            runs.push((k.value().1, codec::decode(v.value())?));
        }
        Ok(runs)
    }
}

/// The lowest level's work: a merge under way, or a level with enough idle runs to
/// start one (the oldest of them).
fn next_job(runs: &[(u64, RunRow)]) -> Option<Job> {
    let busy: BTreeSet<u64> = runs
        .iter()
        .filter_map(|(_, r)| r.merge.as_ref())
        .flat_map(|m| m.sources.iter().copied())
        .collect();
    let merging: BTreeMap<u8, u64> = runs
        .iter()
        .filter_map(|(id, r)| r.merge.as_ref().map(|m| (m.level, *id)))
        .collect();
    let mut idle: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
    for (id, r) in runs {
        if r.merge.is_none() && !busy.contains(id) {
            idle.entry(level_of(r.entries)).or_default().push(*id);
        }
    }
    let startable = idle
        .into_iter()
        .find(|(level, ids)| ids.len() >= LISTING_MERGE_FANOUT && !merging.contains_key(level));
    let under_way = merging.first_key_value();
    match (under_way, startable) {
        (Some((&level, &dest)), start) if start.as_ref().is_none_or(|(l, _)| *l >= level) => {
            let row = runs
                .iter()
                .find(|(id, _)| *id == dest)
                .map(|(_, r)| r.clone())?;
            Some(Job::Continue { dest, row })
        }
        (_, Some((level, mut ids))) => {
            ids.truncate(LISTING_MERGE_FANOUT);
            Some(Job::Start {
                level,
                sources: ids,
            })
        }
        (_, None) => None,
    }
}

/// One source run of a merge, read a block at a time.
struct Source {
    run: u64,
    entries: Forward,
    /// First key of the block loaded, if any.
    first: Option<Vec<u8>>,
    done: bool,
}

impl Source {
    /// Positioned at the first entry after `after` (or the run's first).
    fn start(
        blocks: &Blocks<'_>,
        tag: u8,
        run: u64,
        after: Option<&[u8]>,
    ) -> Result<Self, StoreError> {
        let mut s = Source {
            run,
            entries: Forward::default(),
            first: None,
            done: false,
        };
        if let Some(k) = after {
            let holding = blocks
                .range::<(u8, u64, &[u8])>((tag, run, &[][..])..=(tag, run, k))?
                .next_back()
                .transpose()?;
            if let Some((first, bytes)) = holding {
                s.first = Some(first.value().2.to_vec());
                s.entries.load(bytes.value())?;
                s.entries.seek(k)?;
            }
        }
        if s.first.is_none() {
            s.load_next(blocks, tag)?;
        }
        s.settle(blocks, tag)?;
        if let Some(k) = after {
            while s.key().is_some_and(|x| x <= k) {
                s.advance(blocks, tag)?;
            }
        }
        Ok(s)
    }

    fn advance(&mut self, blocks: &Blocks<'_>, tag: u8) -> Result<(), StoreError> {
        self.entries.advance()?;
        self.settle(blocks, tag)
    }

    /// Loads blocks until there is a head entry or the run ends.
    fn settle(&mut self, blocks: &Blocks<'_>, tag: u8) -> Result<(), StoreError> {
        while self.entries.key().is_none() && !self.done {
            self.load_next(blocks, tag)?;
        }
        Ok(())
    }

    fn load_next(&mut self, blocks: &Blocks<'_>, tag: u8) -> Result<(), StoreError> {
        let lower = match &self.first {
            Some(f) => Bound::Excluded((tag, self.run, f.as_slice())),
            None => Bound::Included((tag, self.run, &[][..])),
        };
        let upper = Bound::Excluded((tag, self.run + 1, &[][..]));
        match blocks
            .range::<(u8, u64, &[u8])>((lower, upper))?
            .next()
            .transpose()?
        {
            Some((first, bytes)) => {
                self.first = Some(first.value().2.to_vec());
                self.entries.load(bytes.value())?;
            }
            None => self.done = true,
        }
        Ok(())
    }
}

impl Head for Source {
    fn key(&self) -> Option<&[u8]> {
        self.entries.key()
    }

    fn tag(&self) -> Tag {
        self.entries.tag().expect("a head to read")
    }
}

#[cfg(test)]
mod tests {
    //! The runs against a plain set: random transactions of puts and removals,
    //! merges advanced in small steps (so they stay under way across many
    //! transactions), every range read both ways must list exactly the set.
    use std::collections::BTreeMap;
    use std::ops::Bound;

    use proptest::prelude::*;
    use redb::ReadableDatabase;

    use super::*;
    use crate::store::Store;
    use crate::store::listing::ListingTables;

    /// `k` first (so keys sort as their numbers), then 60 bytes that differ from
    /// the neighbours', so a run of a few dozen keys spans several blocks and
    /// reads seek inside blocks, not only to their fronts.
    fn key(k: u16) -> Vec<u8> {
        let mut key = k.to_be_bytes().to_vec();
        key.extend((0..60u16).map(|i| k.wrapping_mul(31).wrapping_add(i * 7).to_le_bytes()[0]));
        key
    }

    fn bound(b: Option<(u16, bool)>) -> Bound<Vec<u8>> {
        match b {
            None => Bound::Unbounded,
            Some((k, true)) => Bound::Included(key(k)),
            Some((k, false)) => Bound::Excluded(key(k)),
        }
    }

    fn listed(
        store: &Store,
        lower: &Bound<Vec<u8>>,
        upper: &Bound<Vec<u8>>,
        direction: Direction,
    ) -> Vec<Vec<u8>> {
        let txn = store.db().begin_read().unwrap();
        let tables = ListingTables::open(&txn).unwrap();
        let mut scan = tables
            .scan(
                Index::Name,
                lower.as_ref().map(Vec::as_slice),
                upper.as_ref().map(Vec::as_slice),
                direction,
            )
            .unwrap();
        let mut out = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        while let Some((k, present)) = scan.next_key().unwrap() {
            if let Some(l) = &last {
                match direction {
                    Direction::Ascending => assert!(k > l.as_slice(), "keys out of order"),
                    Direction::Descending => assert!(k < l.as_slice(), "keys out of order"),
                }
            }
            last = Some(k.to_vec());
            if present {
                out.push(k.to_vec());
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn runs_list_what_was_written(
            txns in proptest::collection::vec(
                // A list, so a key may change twice in one transaction.
                (proptest::collection::vec((0u16..300, any::<bool>()), 0..40), 0u64..60),
                1..40,
            ),
            lower in proptest::option::of((0u16..300, any::<bool>())),
            upper in proptest::option::of((0u16..300, any::<bool>())),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let mut model: BTreeMap<Vec<u8>, ()> = BTreeMap::new();
            let (lower, upper) = (bound(lower), bound(upper));
            for (changes, budget) in txns {
                let changes: Vec<(Vec<u8>, bool)> =
                    changes.into_iter().map(|(k, p)| (key(k), p)).collect();
                let txn = store.db().begin_write().unwrap();
                {
                    let mut w = ListingWriter::open(&txn).unwrap();
                    w.apply_with_budget(Index::Name, changes.iter().cloned().collect(), budget)
                        .unwrap();
                }
                txn.commit().unwrap();
                for (k, present) in changes {
                    if present {
                        model.insert(k, ());
                    } else {
                        model.remove(&k);
                    }
                }
                let want: Vec<Vec<u8>> = model
                    .keys()
                    .filter(|k| std::ops::RangeBounds::contains(&(lower.clone(), upper.clone()), *k))
                    .cloned()
                    .collect();
                prop_assert_eq!(&listed(&store, &lower, &upper, Direction::Ascending), &want);
                let mut back = listed(&store, &lower, &upper, Direction::Descending);
                back.reverse();
                prop_assert_eq!(&back, &want);
                // The price index is untouched by the name index's writes.
                let txn = store.db().begin_read().unwrap();
                let tables = ListingTables::open(&txn).unwrap();
                let mut other = tables
                    .scan(Index::Price, Bound::Unbounded, Bound::Unbounded, Direction::Ascending)
                    .unwrap();
                prop_assert!(other.next_key().unwrap().is_none());
            }
            // Merged to the end, every level holds fewer runs than the fan-out and
            // no merge is left under way.
            let txn = store.db().begin_write().unwrap();
            {
                let mut w = ListingWriter::open(&txn).unwrap();
                w.maintain(Index::Name, u64::MAX).unwrap();
                let runs = w.runs(Index::Name).unwrap();
                let mut per_level: BTreeMap<u8, usize> = BTreeMap::new();
                for (_, row) in &runs {
                    prop_assert!(row.merge.is_none());
                    *per_level.entry(level_of(row.entries)).or_default() += 1;
                }
                prop_assert!(per_level.values().all(|&n| n < LISTING_MERGE_FANOUT), "{per_level:?}");
            }
            txn.commit().unwrap();
            let all = listed(&store, &Bound::Unbounded, &Bound::Unbounded, Direction::Ascending);
            prop_assert_eq!(all, model.keys().cloned().collect::<Vec<_>>());
        }
    }

    /// A run's blocks, and a merge's, each fit one redb leaf page: before blocks
    /// were closed ahead of crossing it, each took a two-page allocation with
    /// about 4 KiB of it empty.
    #[test]
    fn blocks_fill_single_pages() {
        use redb::ReadableTableMetadata;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Keys of 2 to 62 bytes; four runs, so a merge writes blocks too.
        for round in 0..u16::try_from(LISTING_MERGE_FANOUT).unwrap() {
            let keys = (0..3_000u16).map(|k| {
                let mut key = key(k * 4 + round);
                key.truncate(2 + usize::from(k % 61));
                (key, true)
            });
            let txn = store.db().begin_write().unwrap();
            ListingWriter::open(&txn)
                .unwrap()
                .write_run(Index::Name, keys)
                .unwrap();
            txn.commit().unwrap();
        }
        let txn = store.db().begin_write().unwrap();
        {
            let mut w = ListingWriter::open(&txn).unwrap();
            w.maintain(Index::Name, u64::MAX).unwrap();
            assert_eq!(
                w.runs(Index::Name).unwrap().len(),
                1,
                "the four runs merged"
            );
        }
        txn.commit().unwrap();
        let txn = store.db().begin_read().unwrap();
        let blocks = txn.open_table(LISTING_BLOCKS).unwrap();
        let stats = blocks.stats().unwrap();
        let count = blocks.len().unwrap();
        assert!(count > 20, "{count} blocks");
        assert_eq!(stats.leaf_pages(), count, "one leaf page per block");
        // Each block's page is full but for less than one entry.
        assert!(
            stats.fragmented_bytes() < 128 * stats.leaf_pages(),
            "{stats:?}"
        );
    }

    /// A removal and the entry it removes, merged together by a merge of every run,
    /// leave nothing stored.
    #[test]
    fn a_merge_of_every_run_drops_removals() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for round in 0..LISTING_MERGE_FANOUT {
            let present = round % 2 == 0;
            let changes: Changes = (0..3u16).map(|k| (key(k), present)).collect();
            let txn = store.db().begin_write().unwrap();
            ListingWriter::open(&txn)
                .unwrap()
                .apply_with_budget(Index::Name, changes, u64::MAX)
                .unwrap();
            txn.commit().unwrap();
        }
        let txn = store.db().begin_write().unwrap();
        let runs = ListingWriter::open(&txn)
            .unwrap()
            .runs(Index::Name)
            .unwrap();
        assert!(runs.is_empty(), "{runs:?}");
    }
}
