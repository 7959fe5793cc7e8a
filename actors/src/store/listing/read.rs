//! Reading a listing index on a snapshot: the runs merged, in either direction.

use std::ops::Bound;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable};

use super::block::{Block, Forward, Tag};
use super::{Direction, Head, Index, first_head, pass_key};
use crate::store::StoreError;
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
    range: BlockRange<'a>,
    loaded: Loaded,
    done: bool,
}

/// The block a reader is in. Ascending reads decode only the entries they pass;
/// a block's prefix-compressed keys decode only from its front, so descending
/// reads decode the whole block.
enum Loaded {
    Ascending(Forward),
    /// The block and one past the head entry's index.
    Descending(Block, usize),
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
        let run_end = Bound::Excluded((tag, run + 1, &[][..]));
        let range = match direction {
            Direction::Ascending => {
                // Start at the block holding the lower bound: the last one whose
                // first key is not above it.
                let start = match lower {
                    Bound::Included(k) | Bound::Excluded(k) => blocks
                        .range::<(u8, u64, &[u8])>(run_start..=(tag, run, k))?
                        .next_back()
                        .transpose()?
                        .map(|(first, _)| first.value().2.to_vec()),
                    Bound::Unbounded => None,
                };
                let start = start.unwrap_or_default();
                blocks.range::<(u8, u64, &[u8])>((
                    Bound::Included((tag, run, start.as_slice())),
                    run_end,
                ))?
            }
            Direction::Descending => {
                let end = match upper {
                    Bound::Included(k) => Bound::Included((tag, run, k)),
                    Bound::Excluded(k) => Bound::Excluded((tag, run, k)),
                    Bound::Unbounded => run_end,
                };
                blocks.range::<(u8, u64, &[u8])>((Bound::Included(run_start), end))?
            }
        };
        let mut reader = RunReader {
            range,
            loaded: match direction {
                Direction::Ascending => Loaded::Ascending(Forward::default()),
                Direction::Descending => Loaded::Descending(Block::default(), 0),
            },
            done: false,
        };
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
            Loaded::Descending(_, at) => *at = at.saturating_sub(1),
        }
        self.settle()
    }

    /// Loads blocks until there is a head or the run ends.
    fn settle(&mut self) -> Result<(), StoreError> {
        while self.key().is_none() && !self.done {
            let next = match self.loaded {
                Loaded::Ascending(_) => self.range.next(),
                Loaded::Descending(..) => self.range.next_back(),
            };
            match next.transpose()? {
                Some((_, bytes)) => match &mut self.loaded {
                    Loaded::Ascending(forward) => forward.load(bytes.value())?,
                    Loaded::Descending(block, at) => {
                        *block = Block::decode(bytes.value())?;
                        *at = block.len();
                    }
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
            Loaded::Descending(block, at) => at.checked_sub(1).map(|i| block.key(i)),
        }
    }

    fn tag(&self) -> Tag {
        match &self.loaded {
            Loaded::Ascending(forward) => forward.tag(),
            Loaded::Descending(block, at) => at.checked_sub(1).map(|i| block.tag(i)),
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
