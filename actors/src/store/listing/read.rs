//! Reading a listing index on a snapshot: the runs merged, in either direction.

use std::ops::Bound;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable};

use super::block::{Backward, Forward, Tag};
use super::{Direction, Head, Index, first_head, pass_key};
use crate::common::StoreError;
use crate::store::tables::{LISTING_BLOCKS, LISTING_RUNS};

type BlocksTable = ReadOnlyTable<(u8, u64, &'static [u8]), &'static [u8]>;
type BlockRange<'a> = redb::Range<'a, (u8, u64, &'static [u8]), &'static [u8]>;

/// The listing tables of one read snapshot.
pub struct ListingTables {
    blocks: BlocksTable,
    runs: Vec<(u8, u64)>,
}

impl ListingTables {
    pub fn open(txn: &ReadTransaction) -> Result<Self, StoreError> {
        let blocks = txn.open_table(LISTING_BLOCKS)?;
        let mut runs = Vec::new();
        for entry in txn.open_table(LISTING_RUNS)?.iter()? {
            runs.push(entry?.0.value());
        }
        Ok(Self { blocks, runs })
    }

    /// The keys of `index` between `lower` and `upper`, in `direction`; each key
    /// once, with whether it is present (a removal not yet merged away is not).
    pub fn scan(
        &self,
        index: Index,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Result<ListingScan<'_>, StoreError> {
        let tag = index.tag();
        let mut runs = Vec::new();
        for &(t, run) in &self.runs {
            if t == tag {
                runs.push(RunReader::open(
                    &self.blocks,
                    tag,
                    run,
                    lower,
                    upper,
                    direction,
                )?);
            }
        }
        Ok(ListingScan {
            runs,
            direction,
            lower: lower.map(<[u8]>::to_vec),
            upper: upper.map(<[u8]>::to_vec),
            key: Vec::new(),
            ended: false,
        })
    }
}

/// A merged walk over the runs of one index.
pub struct ListingScan<'a> {
    runs: Vec<RunReader<'a>>,
    direction: Direction,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    key: Vec<u8>,
    ended: bool,
}

impl ListingScan<'_> {
    /// The next key and whether it is present, or `None` at the end of the range.
    pub fn next_key(&mut self) -> Result<Option<(&[u8], bool)>, StoreError> {
        if self.ended {
            return Ok(None);
        }
        let Some(best) = first_head(&self.runs, self.direction) else {
            self.ended = true;
            return Ok(None);
        };
        if above(best, self.upper.as_ref().map(Vec::as_slice))
            || below(best, self.lower.as_ref().map(Vec::as_slice))
        {
            self.ended = true;
            return Ok(None);
        }
        self.key.clear();
        self.key.extend_from_slice(best);
        let (winner, _) = pass_key(&mut self.runs, &self.key, RunReader::advance)?;
        Ok(Some((&self.key, !winner.dead())))
    }
}

/// One run, a block at a time, in one direction.
struct RunReader<'a> {
    blocks: &'a BlocksTable,
    tag: u8,
    run: u64,
    /// The blocks still to load; opened by `settle` when first wanted, unless a
    /// descending seek opened it. An ascending read that seeks loads its first
    /// block by a lookup of its own and opens this range only if it reads past
    /// that block: a page from a dozen runs rarely does.
    range: Option<BlockRange<'a>>,
    /// The first key of the block an ascending read loaded by its lookup.
    loaded_first: Option<Vec<u8>>,
    loaded: Loaded,
    done: bool,
}

/// The block a reader is in, walked in the read's direction.
enum Loaded {
    Ascending(Forward),
    Descending(Backward),
}

impl<'a> RunReader<'a> {
    fn open(
        blocks: &'a BlocksTable,
        tag: u8,
        run: u64,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Result<Self, StoreError> {
        let run_start = (tag, run, &[][..]);
        let mut reader = RunReader {
            blocks,
            tag,
            run,
            range: None,
            loaded_first: None,
            loaded: match direction {
                Direction::Ascending => Loaded::Ascending(Forward::default()),
                Direction::Descending => Loaded::Descending(Backward::default()),
            },
            done: false,
        };
        // The bound a read starts from, and the block holding it: the last one
        // whose first key is not above it.
        let start = match direction {
            Direction::Ascending => lower,
            Direction::Descending => upper,
        };
        match (start, &mut reader.loaded) {
            // `settle` opens the whole run.
            (Bound::Unbounded, _) => {}
            (Bound::Included(k) | Bound::Excluded(k), Loaded::Ascending(forward)) => {
                let holding = blocks
                    .range::<(u8, u64, &[u8])>(run_start..=(tag, run, k))?
                    .next_back()
                    .transpose()?;
                if let Some((first, bytes)) = holding {
                    forward.load(bytes.value())?;
                    forward.seek(k)?;
                    reader.loaded_first = Some(first.value().2.to_vec());
                }
            }
            (Bound::Included(k) | Bound::Excluded(k), Loaded::Descending(backward)) => {
                // Earlier blocks hold only keys below the first one loaded.
                let mut range = blocks.range::<(u8, u64, &[u8])>(run_start..=(tag, run, k))?;
                if let Some((_, bytes)) = range.next_back().transpose()? {
                    backward.load(bytes.value())?;
                    backward.seek(k)?;
                }
                reader.range = Some(range);
            }
        }
        reader.settle()?;
        match direction {
            Direction::Ascending => {
                while reader.key().is_some_and(|k| below(k, lower)) {
                    reader.advance()?;
                }
            }
            Direction::Descending => {
                while reader.key().is_some_and(|k| above(k, upper)) {
                    reader.advance()?;
                }
            }
        }
        Ok(reader)
    }

    fn advance(&mut self) -> Result<(), StoreError> {
        match &mut self.loaded {
            Loaded::Ascending(forward) => forward.advance()?,
            Loaded::Descending(backward) => backward.advance()?,
        }
        self.settle()
    }

    /// Loads blocks until there is a head or the run ends.
    fn settle(&mut self) -> Result<(), StoreError> {
        while self.key().is_none() && !self.done {
            let (tag, run) = (self.tag, self.run);
            let range = match &mut self.range {
                Some(range) => range,
                // The whole run, or (an ascending seek) what follows the block
                // its lookup loaded.
                None => self.range.insert(self.blocks.range::<(u8, u64, &[u8])>((
                    match &self.loaded_first {
                        Some(first) => Bound::Excluded((tag, run, first.as_slice())),
                        None => Bound::Included((tag, run, &[][..])),
                    },
                    Bound::Excluded((tag, run + 1, &[][..])),
                ))?),
            };
            let next = match self.loaded {
                Loaded::Ascending(_) => range.next(),
                Loaded::Descending(_) => range.next_back(),
            };
            match next.transpose()? {
                Some((_, bytes)) => match &mut self.loaded {
                    Loaded::Ascending(forward) => forward.load(bytes.value())?,
                    Loaded::Descending(backward) => backward.load(bytes.value())?,
                },
                None => self.done = true,
            }
        }
        Ok(())
    }
}

impl Head for RunReader<'_> {
    fn key(&self) -> Option<&[u8]> {
        match &self.loaded {
            Loaded::Ascending(forward) => forward.key(),
            Loaded::Descending(backward) => backward.key(),
        }
    }

    fn tag(&self) -> Tag {
        match &self.loaded {
            Loaded::Ascending(forward) => forward.tag(),
            Loaded::Descending(backward) => backward.tag(),
        }
        .expect("a head to read")
    }
}

fn below(key: &[u8], lower: Bound<&[u8]>) -> bool {
    match lower {
        Bound::Included(l) => key < l,
        Bound::Excluded(l) => key <= l,
        Bound::Unbounded => false,
    }
}

fn above(key: &[u8], upper: Bound<&[u8]>) -> bool {
    match upper {
        Bound::Included(u) => key > u,
        Bound::Excluded(u) => key >= u,
        Bound::Unbounded => false,
    }
}
