//! One block of a run: entries in key order, each key stored as the length it
//! shares with the previous key and the bytes that differ.
//!
//! An entry is `[shared][suffix length][suffix][tag]`, all numbers LEB128 varints;
//! the tag is `version << 1 | dead`. A block holds no count: it is decoded to its
//! end. Decoding puts every full key in one buffer, so a block of a few hundred
//! entries costs three allocations, not one per entry.

use crate::store::StoreError;

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
#[derive(Debug, Default)]
pub struct BlockWriter {
    bytes: Vec<u8>,
    first: Vec<u8>,
    last: Vec<u8>,
    entries: u64,
}

impl BlockWriter {
    /// Appends an entry; `key` must sort after the previous one.
    pub fn push(&mut self, key: &[u8], tag: Tag) {
        debug_assert!(self.entries == 0 || key > self.last.as_slice());
        let shared = if self.entries == 0 {
            self.first.clear();
            self.first.extend_from_slice(key);
            0
        } else {
            self.last
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
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

    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The first key and the encoded block, leaving the writer empty for the next.
    pub fn take(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        if self.entries == 0 {
            return None;
        }
        self.entries = 0;
        self.last.clear();
        Some((
            std::mem::take(&mut self.first),
            std::mem::take(&mut self.bytes),
        ))
    }
}

/// A decoded block.
#[derive(Debug, Default)]
pub struct Block {
    keys: Vec<u8>,
    ends: Vec<u32>,
    tags: Vec<Tag>,
}

impl Block {
    pub fn decode(mut bytes: &[u8]) -> Result<Self, StoreError> {
        let mut block = Block {
            keys: Vec::with_capacity(bytes.len() * 2),
            ends: Vec::new(),
            tags: Vec::new(),
        };
        let mut key = Vec::new();
        while !bytes.is_empty() {
            let tag = take_entry(&mut bytes, &mut key)?;
            block.keys.extend_from_slice(&key);
            block
                .ends
                .push(u32::try_from(block.keys.len()).map_err(|_| corrupt())?);
            block.tags.push(tag);
        }
        Ok(block)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys[start..self.ends[i] as usize]
    }

    pub fn tag(&self, i: usize) -> Tag {
        self.tags[i]
    }
}

/// A block's entries decoded one at a time from the front: how a merge walks its
/// sources and an ascending read its runs. A read wants only the first few: a
/// listing page of 20 from ten runs decodes a few dozen entries, not ten whole
/// blocks (whole-block decoding was a quarter of a sorted listing read's CPU).
#[derive(Debug, Default)]
pub struct Forward {
    bytes: Vec<u8>,
    /// Where the next entry starts in `bytes`.
    next: usize,
    key: Vec<u8>,
    /// The head entry's tag; `None` past the last entry.
    tag: Option<Tag>,
}

impl Forward {
    /// Loads `bytes` (an encoded block) and decodes its first entry, reusing this
    /// reader's buffers.
    pub fn load(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.bytes.clear();
        self.bytes.extend_from_slice(bytes);
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
        let mut rest = self.bytes.get(self.next..).unwrap_or_default();
        if rest.is_empty() {
            self.tag = None;
            return Ok(());
        }
        self.tag = Some(take_entry(&mut rest, &mut self.key)?);
        self.next = self.bytes.len() - rest.len();
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

    proptest! {
        #[test]
        fn blocks_round_trip(keys in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..24), 0..60),
                             versions in proptest::collection::vec((any::<u64>(), any::<bool>()), 60)) {
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
            match writer.take() {
                None => prop_assert!(entries.is_empty()),
                Some((first, bytes)) => {
                    prop_assert_eq!(&first, &entries[0].0);
                    let block = Block::decode(&bytes).unwrap();
                    prop_assert_eq!(block.len(), entries.len());
                    let mut forward = Forward::default();
                    forward.load(&bytes).unwrap();
                    for (i, (k, t)) in entries.iter().enumerate() {
                        prop_assert_eq!(block.key(i), k.as_slice());
                        prop_assert_eq!(block.tag(i), *t);
                        prop_assert_eq!(forward.key(), Some(k.as_slice()));
                        prop_assert_eq!(forward.tag(), Some(*t));
                        forward.advance().unwrap();
                    }
                    prop_assert_eq!(forward.key(), None);
                }
            }
            prop_assert_eq!(writer.entries(), 0);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Block::decode(&bytes);
            let mut forward = Forward::default();
            let mut steps = 0;
            let mut result = forward.load(&bytes);
            while result.is_ok() && forward.key().is_some() {
                result = forward.advance();
                steps += 1;
                prop_assert!(steps <= bytes.len(), "each entry takes at least one byte");
            }
        }
    }
}
