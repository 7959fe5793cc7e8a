//! One block of a run: entries in key order, each key stored as the length it
//! shares with the previous key and the bytes that differ. Every
//! [`RESTART_INTERVAL`]th entry (the first included) stores its whole key: a
//! restart point. The block ends with the restart points' offsets, so a reader
//! can start decoding at any of them (LevelDB's block format, in miniature):
//!
//! - a seek binary-searches the restart points and walks at most one segment,
//!   not half the block;
//! - a descending read decodes one segment (at most `RESTART_INTERVAL` entries) at
//!   a time, from its back, not the whole block.
//!
//! Layout: `[entry]* [restart offset]* [restart count]`, offsets and count as
//! little-endian `u32`. An entry is `[shared][suffix length][suffix][tag]`, all
//! numbers LEB128 varints; the tag is `version << 1 | dead`. Schema 2 wrote the
//! entries alone ([`reencode_schema_2`] turns such a block into this format).
//!
//! Why one file: the writer, both readers and the schema-2 re-encoding are one
//! format, and the property tests below check them against each other.

use crate::common::StoreError;

/// Entries per restart segment: a seek walks at most this many, a descending read
/// decodes this many at a time. Each restart point costs its whole key and four
/// bytes of offset (about 3 % of a block of price keys).
pub const RESTART_INTERVAL: u64 = 16;

/// An entry's tag: the run the entry was first written in (its version: the higher
/// wins between entries of the same key) and whether it removes the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag(u64);

impl Tag {
    pub fn new(version: u64, dead: bool) -> Self {
        Self(version << 1 | u64::from(dead))
    }
    pub fn version(self) -> u64 {
        self.0 >> 1
    }
    pub fn dead(self) -> bool {
        self.0 & 1 == 1
    }
}

/// Builds one block.
#[derive(Debug, Default, Clone)]
pub struct BlockWriter {
    bytes: Vec<u8>,
    restarts: Vec<u32>,
    first: Vec<u8>,
    last: Vec<u8>,
    entries: u64,
}

impl BlockWriter {
    /// Appends an entry; `key` must sort after the previous one.
    pub fn push(&mut self, key: &[u8], tag: Tag) {
        debug_assert!(self.entries == 0 || key > self.last.as_slice());
        if self.entries == 0 {
            self.first.clear();
            self.first.extend_from_slice(key);
        }
        let shared = if self.entries.is_multiple_of(RESTART_INTERVAL) {
            // Blocks are under 4 KiB (`LISTING_BLOCK_BYTES_MAX`).
            self.restarts
                .push(u32::try_from(self.bytes.len()).expect("a block far below 4 GiB"));
            0
        } else {
            shared_prefix(&self.last, key)
        };
        put_varint(&mut self.bytes, shared as u64);
        put_varint(&mut self.bytes, (key.len() - shared) as u64);
        self.bytes.extend_from_slice(&key[shared..]);
        put_varint(&mut self.bytes, tag.0);
        self.last.truncate(shared);
        self.last.extend_from_slice(&key[shared..]);
        self.entries += 1;
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Whether pushing `key` with `tag` keeps the block, with its first key, within
    /// `max` bytes. An empty block takes any entry.
    pub fn fits(&self, key: &[u8], tag: Tag, max: usize) -> bool {
        if self.entries == 0 {
            return true;
        }
        let (shared, restart) = if self.entries.is_multiple_of(RESTART_INTERVAL) {
            (0, 4)
        } else {
            (shared_prefix(&self.last, key), 0)
        };
        let entry = varint_len(shared as u64)
            + varint_len((key.len() - shared) as u64)
            + (key.len() - shared)
            + varint_len(tag.0);
        self.first.len() + self.encoded_len() + restart + entry <= max
    }

    /// The block's size if it were taken now, trailer included.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len() + 4 * (self.restarts.len() + 1)
    }

    /// The first key and the encoded block, leaving the writer empty for the next.
    pub fn take(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        if self.entries == 0 {
            return None;
        }
        let mut bytes = std::mem::take(&mut self.bytes);
        for offset in &self.restarts {
            bytes.extend_from_slice(&offset.to_le_bytes());
        }
        let count = u32::try_from(self.restarts.len()).expect("a block far below 4 GiB");
        bytes.extend_from_slice(&count.to_le_bytes());
        self.restarts.clear();
        self.entries = 0;
        self.last.clear();
        Some((std::mem::take(&mut self.first), bytes))
    }
}

/// A schema-2 block (entries alone, no restart points) in this format.
pub fn reencode_schema_2(mut bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut writer = BlockWriter::default();
    let mut key = Vec::new();
    while !bytes.is_empty() {
        let tag = take_entry(&mut bytes, &mut key)?;
        if writer.entries > 0 && key.as_slice() <= writer.last.as_slice() {
            return Err(corrupt());
        }
        writer.push(&key, tag);
    }
    Ok(writer.take().map(|(_, b)| b).unwrap_or_default())
}

/// Schema 2's encoding of `entries`: the entries alone, no restart points
/// (for the upgrade's tests).
#[cfg(test)]
pub(crate) fn schema_2_block(entries: &[(Vec<u8>, Tag)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut last: &[u8] = &[];
    for (key, tag) in entries {
        let shared = last.iter().zip(key).take_while(|(a, b)| a == b).count();
        put_varint(&mut bytes, shared as u64);
        put_varint(&mut bytes, (key.len() - shared) as u64);
        bytes.extend_from_slice(&key[shared..]);
        put_varint(&mut bytes, tag.0);
        last = key;
    }
    bytes
}

/// An encoded block's bytes with its restart points checked; their offsets are
/// read from the trailer when wanted (a read opens a block in each of a dozen runs
/// for a page of 20: no allocation per block beyond the bytes).
#[derive(Debug, Default)]
struct Encoded {
    bytes: Vec<u8>,
    /// Where the entries end and the trailer starts.
    end: usize,
    /// How many restart points (0 only for a block that failed to load).
    count: usize,
}

impl Encoded {
    fn load(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.bytes.clear();
        self.bytes.extend_from_slice(bytes);
        self.end = 0;
        self.count = 0;
        let count_at = bytes.len().checked_sub(4).ok_or_else(corrupt)?;
        let count = usize::try_from(u32_at(bytes, count_at)).map_err(|_| corrupt())?;
        let end = count
            .checked_mul(4)
            .and_then(|n| count_at.checked_sub(n))
            .ok_or_else(corrupt)?;
        // Offsets ascend from 0 and stay inside the entries.
        let mut previous = None;
        for i in 0..count {
            let offset = usize::try_from(u32_at(bytes, end + 4 * i)).map_err(|_| corrupt())?;
            let ascending = previous.map_or(offset == 0, |p| offset > p);
            if !ascending || offset >= end {
                return Err(corrupt());
            }
            previous = Some(offset);
        }
        if (count == 0) != (end == 0) {
            return Err(corrupt());
        }
        self.end = end;
        self.count = count;
        Ok(())
    }

    /// Where restart point `i` (below `count`) starts.
    fn restart(&self, i: usize) -> usize {
        usize::try_from(u32_at(&self.bytes, self.end + 4 * i)).unwrap_or(usize::MAX)
    }

    /// Where restart segment `i` ends: the next restart point, or the entries' end.
    fn segment_end(&self, i: usize) -> usize {
        if i + 1 < self.count {
            self.restart(i + 1)
        } else {
            self.end
        }
    }

    /// The last restart point whose key is not above `target` (the first if none
    /// is); `scratch` is left holding some restart key. The block has entries.
    fn restart_at_or_before(
        &self,
        target: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<usize, StoreError> {
        // restarts[..lo] are not above target, restarts[hi..] are.
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            scratch.clear();
            // A restart entry shares nothing: decoding it from an empty key gives
            // its whole key (and a corrupt one that claims to share fails here).
            take_entry(&mut &self.bytes[self.restart(mid)..self.end], scratch)?;
            if scratch.as_slice() <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.saturating_sub(1))
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// A block's entries decoded one at a time from the front: how a merge walks its
/// sources and an ascending read its runs. A read wants only the first few: a
/// listing page of 20 from ten runs decodes a few dozen entries, not ten whole
/// blocks (whole-block decoding was a quarter of a sorted listing read's CPU).
#[derive(Debug, Default)]
pub struct Forward {
    block: Encoded,
    /// Where the next entry starts in the block.
    next: usize,
    key: Vec<u8>,
    /// The head entry's tag; `None` past the last entry.
    tag: Option<Tag>,
}

impl Forward {
    /// Loads `bytes` (an encoded block) and decodes its first entry, reusing this
    /// reader's buffers.
    pub fn load(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.tag = None;
        self.block.load(bytes)?;
        self.next = 0;
        self.key.clear();
        self.advance()
    }

    pub fn key(&self) -> Option<&[u8]> {
        self.tag.map(|_| self.key.as_slice())
    }

    pub fn tag(&self) -> Option<Tag> {
        self.tag
    }

    /// Moves to the next entry (or past the last).
    pub fn advance(&mut self) -> Result<(), StoreError> {
        let mut rest = self
            .block
            .bytes
            .get(self.next..self.block.end)
            .unwrap_or_default();
        if rest.is_empty() {
            self.tag = None;
            return Ok(());
        }
        self.tag = Some(take_entry(&mut rest, &mut self.key)?);
        self.next = self.block.end - rest.len();
        Ok(())
    }

    /// Moves to the block's first entry whose key is not below `target` (or past
    /// the last), decoding from the restart point before it.
    pub fn seek(&mut self, target: &[u8]) -> Result<(), StoreError> {
        if self.block.count == 0 {
            self.tag = None;
            return Ok(());
        }
        let i = self.block.restart_at_or_before(target, &mut self.key)?;
        self.next = self.block.restart(i);
        self.key.clear();
        self.advance()?;
        while self.key().is_some_and(|k| k < target) {
            self.advance()?;
        }
        Ok(())
    }
}

/// A block's entries from the back: one restart segment decoded at a time, walked
/// backward. How a descending read walks its runs.
#[derive(Debug, Default)]
pub struct Backward {
    block: Encoded,
    /// The restart segment decoded.
    segment: usize,
    /// Its entries' keys, end to end, and where each ends.
    keys: Vec<u8>,
    ends: Vec<usize>,
    tags: Vec<Tag>,
    /// One past the head entry's index in the segment; 0 past the block's first.
    at: usize,
    scratch: Vec<u8>,
}

impl Backward {
    /// Loads `bytes` (an encoded block) and decodes its last segment, the head
    /// being the block's last entry.
    pub fn load(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.at = 0;
        self.block.load(bytes)?;
        if let Some(last) = self.block.count.checked_sub(1) {
            self.decode_segment(last)?;
            self.at = self.tags.len();
        }
        Ok(())
    }

    pub fn key(&self) -> Option<&[u8]> {
        let i = self.at.checked_sub(1)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.keys[start..self.ends[i]])
    }

    pub fn tag(&self) -> Option<Tag> {
        self.at.checked_sub(1).map(|i| self.tags[i])
    }

    /// Moves to the previous entry (or past the first).
    pub fn advance(&mut self) -> Result<(), StoreError> {
        if self.at > 1 {
            self.at -= 1;
        } else if self.at == 1 && self.segment > 0 {
            self.decode_segment(self.segment - 1)?;
            self.at = self.tags.len();
        } else {
            self.at = 0;
        }
        Ok(())
    }

    /// Moves to the block's last entry whose key is not above `target` (or past
    /// the first).
    pub fn seek(&mut self, target: &[u8]) -> Result<(), StoreError> {
        if self.block.count == 0 {
            self.at = 0;
            return Ok(());
        }
        let i = self.block.restart_at_or_before(target, &mut self.scratch)?;
        self.decode_segment(i)?;
        self.at = self.ends.len();
        while self.key().is_some_and(|k| k > target) {
            self.at -= 1;
        }
        Ok(())
    }

    fn decode_segment(&mut self, i: usize) -> Result<(), StoreError> {
        self.at = 0;
        self.keys.clear();
        self.ends.clear();
        self.tags.clear();
        self.scratch.clear();
        let mut rest = &self.block.bytes[self.block.restart(i)..self.block.segment_end(i)];
        while !rest.is_empty() {
            let tag = take_entry(&mut rest, &mut self.scratch)?;
            self.keys.extend_from_slice(&self.scratch);
            self.ends.push(self.keys.len());
            self.tags.push(tag);
        }
        self.segment = i;
        Ok(())
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("a listing block does not decode".to_owned())
}

/// Decodes the entry at the front of `bytes`, moving past it. `key` holds the
/// previous entry's key (empty before the first) and is left holding this one's.
fn take_entry(bytes: &mut &[u8], key: &mut Vec<u8>) -> Result<Tag, StoreError> {
    let shared = usize::try_from(take_varint(bytes).ok_or_else(corrupt)?).map_err(|_| corrupt())?;
    let suffix = usize::try_from(take_varint(bytes).ok_or_else(corrupt)?).map_err(|_| corrupt())?;
    if shared > key.len() || suffix > bytes.len() {
        return Err(corrupt());
    }
    key.truncate(shared);
    key.extend_from_slice(&bytes[..suffix]);
    *bytes = &bytes[suffix..];
    Ok(Tag(take_varint(bytes).ok_or_else(corrupt)?))
}

/// The low seven bits of `v`, the digit a varint writes next.
fn low_byte(v: u64) -> u8 {
    u8::try_from(v & 0x7f).unwrap_or(0)
}

fn shared_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Bytes `put_varint` writes for `v`.
fn varint_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).max(1).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(low_byte(v) | 0x80);
        v >>= 7;
    }
    out.push(low_byte(v));
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn forward_all(bytes: &[u8]) -> Vec<(Vec<u8>, Tag)> {
        let mut forward = Forward::default();
        forward.load(bytes).unwrap();
        let mut out = Vec::new();
        while let (Some(k), Some(t)) = (forward.key(), forward.tag()) {
            out.push((k.to_vec(), t));
            forward.advance().unwrap();
        }
        out
    }

    proptest! {
        /// `fits` answers whether the block, its first key included, stays within
        /// the bound after the push: exactly, restart points and varint widths too.
        #[test]
        fn fits_predicts_the_size_exactly(
            keys in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..300), 1..80),
            versions in proptest::collection::vec(any::<u64>(), 80),
            max in 0usize..6_000,
        ) {
            let mut writer = BlockWriter::default();
            for (key, version) in keys.iter().zip(versions) {
                let tag = Tag::new(version >> 1, version & 1 == 1);
                let fits = writer.fits(key, tag, max);
                let mut after = writer.clone();
                after.push(key, tag);
                let size = after.first.len() + after.encoded_len();
                prop_assert_eq!(fits, writer.entries() == 0 || size <= max, "size {}", size);
                if fits {
                    writer = after;
                } else {
                    writer.take();
                    writer.push(key, tag);
                }
            }
        }

        #[test]
        fn blocks_round_trip_and_seek_both_ways(
            keys in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..24), 0..120),
            versions in proptest::collection::vec((any::<u64>(), any::<bool>()), 120),
            targets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 8),
        ) {
            let mut writer = BlockWriter::default();
            let entries: Vec<(Vec<u8>, Tag)> = keys
                .into_iter()
                .zip(versions)
                .map(|(k, (v, d))| (k, Tag::new(v >> 1, d)))
                .collect();
            for (k, t) in &entries {
                writer.push(k, *t);
            }
            prop_assert_eq!(writer.entries(), entries.len() as u64);
            let expected_len = writer.encoded_len();
            let Some((first, bytes)) = writer.take() else {
                prop_assert!(entries.is_empty());
                return Ok(());
            };
            prop_assert_eq!(writer.entries(), 0);
            prop_assert_eq!(bytes.len(), expected_len);
            prop_assert_eq!(&first, &entries[0].0);
            prop_assert_eq!(&forward_all(&bytes), &entries);
            // Schema 2's block of the same entries re-encodes to the same bytes.
            prop_assert_eq!(&reencode_schema_2(&schema_2_block(&entries)).unwrap(), &bytes);
            let mut backward = Backward::default();
            backward.load(&bytes).unwrap();
            for (k, t) in entries.iter().rev() {
                prop_assert_eq!(backward.key(), Some(k.as_slice()));
                prop_assert_eq!(backward.tag(), Some(*t));
                backward.advance().unwrap();
            }
            prop_assert_eq!(backward.key(), None);
            // Seeks land where a scan of the list would, and walk on from there.
            let mut forward = Forward::default();
            forward.load(&bytes).unwrap();
            for target in targets.iter().chain(entries.iter().map(|(k, _)| k)) {
                let at = entries.partition_point(|(k, _)| k < target);
                forward.seek(target).unwrap();
                prop_assert_eq!(forward.key(), entries.get(at).map(|(k, _)| k.as_slice()));
                if at + 1 < entries.len() {
                    forward.advance().unwrap();
                    prop_assert_eq!(forward.key(), Some(entries[at + 1].0.as_slice()));
                }
                let below = entries.partition_point(|(k, _)| k <= target);
                backward.seek(target).unwrap();
                let head = below.checked_sub(1).map(|i| entries[i].0.as_slice());
                prop_assert_eq!(backward.key(), head);
                if below >= 2 {
                    backward.advance().unwrap();
                    prop_assert_eq!(backward.key(), Some(entries[below - 2].0.as_slice()));
                }
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                target in proptest::collection::vec(any::<u8>(), 0..8)) {
            let _ = reencode_schema_2(&bytes);
            let mut forward = Forward::default();
            let mut steps = 0;
            let mut result = forward.load(&bytes);
            while result.is_ok() && forward.key().is_some() {
                result = forward.advance();
                steps += 1;
                prop_assert!(steps <= bytes.len(), "each entry takes at least one byte");
            }
            if forward.load(&bytes).is_ok() {
                let _ = forward.seek(&target);
            }
            let mut backward = Backward::default();
            let mut steps = 0;
            let mut result = backward.load(&bytes);
            while result.is_ok() && backward.key().is_some() {
                result = backward.advance();
                steps += 1;
                prop_assert!(steps <= bytes.len(), "each entry takes at least one byte");
            }
            if backward.load(&bytes).is_ok() {
                let _ = backward.seek(&target);
            }
        }
    }

    #[test]
    fn every_sixteenth_entry_is_a_restart_point() {
        let mut writer = BlockWriter::default();
        for i in 0..40u16 {
            writer.push(&i.to_be_bytes(), Tag::new(1, false));
        }
        let (_, bytes) = writer.take().unwrap();
        let mut encoded = Encoded::default();
        encoded.load(&bytes).unwrap();
        assert_eq!(encoded.count, 3);
        // Each restart entry decodes from nothing: it holds its whole key.
        for (i, at) in (0u16..).zip((0..encoded.count).map(|r| encoded.restart(r))) {
            let mut key = Vec::new();
            take_entry(&mut &bytes[at..encoded.end], &mut key).unwrap();
            assert_eq!(key, (16 * i).to_be_bytes());
        }
    }
}
