//! The product read cache: a product's response bytes by SKU, so a hot
//! `GET /products/{sku}` is answered on the HTTP worker without a hop to the
//! catalog's pool and a read transaction.
//!
//! The catalog room owns it; the API fills it (it holds the bytes it encoded),
//! and the ledger empties it: after every commit, before any writer of that
//! commit is answered, it forgets each SKU whose product row or stock level the
//! commit wrote ([`Touched`]). A reader that missed therefore never stores bytes
//! older than a commit it could have seen:
//!
//! - it takes a [`Stamp`] (its shard's epoch) before its read transaction begins;
//! - the ledger forgets a SKU and advances that shard's epoch under the shard's
//!   lock, after the commit;
//! - [`ProductCache::put`] stores only if the epoch is still the stamp's, under
//!   the same lock.
//!
//! If the reader's snapshot predates a commit to its SKU, that commit's
//! forgetting came after the stamp: it either finds the stale bytes and removes
//! them, or has already advanced the epoch and the put is refused. A put can be
//! refused needlessly (another SKU of the shard changed), never accepted wrongly.
//!
//! Memory is bounded: a shard that reaches its share of
//! [`PRODUCT_CACHE_ENTRIES_MAX`] is emptied before it takes the next entry.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::domain::Sku;
use crate::limits::{PRODUCT_CACHE_ENTRIES_MAX, PRODUCT_CACHE_TOUCHED_MAX, TOUCHED_SKUS_MAX};

/// Shards (a power of two): readers on different SKUs rarely share a lock.
const SHARDS: usize = 64;

/// Response bytes of recently read products. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct ProductCache {
    inner: Arc<Inner>,
}

struct Inner {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    /// Advanced each time an entry of this shard is forgotten.
    epoch: u64,
    entries: HashMap<Box<str>, Bytes>,
}

/// What a reader saw when it missed: the epoch its bytes must be put under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    shard: usize,
    epoch: u64,
}

impl Default for ProductCache {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                hasher: RandomState::new(),
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            }),
        }
    }
}

impl ProductCache {
    fn shard_of(&self, sku: &str) -> usize {
        // SHARDS is a power of two: the low bits of the hash pick the shard.
        usize::try_from(self.inner.hasher.hash_one(sku)).unwrap_or_default() & (SHARDS - 1)
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard leaves a map that is still a valid cache.
        self.inner.shards[shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached bytes of `sku`, or the stamp to put them under once read.
    pub fn get(&self, sku: &Sku) -> Result<Bytes, Stamp> {
        let shard = self.shard_of(sku.as_str());
        let guard = self.lock(shard);
        match guard.entries.get(sku.as_str()) {
            Some(bytes) => Ok(bytes.clone()),
            None => Err(Stamp {
                shard,
                epoch: guard.epoch,
            }),
        }
    }

    /// Keeps `bytes` for `sku` unless something of its shard was forgotten since
    /// `stamp` was taken. Answers whether they were kept.
    pub fn put(&self, sku: &Sku, stamp: Stamp, bytes: Bytes) -> bool {
        debug_assert_eq!(stamp.shard, self.shard_of(sku.as_str()));
        let mut guard = self.lock(stamp.shard);
        if guard.epoch != stamp.epoch {
            return false;
        }
        if guard.entries.len() >= PRODUCT_CACHE_ENTRIES_MAX / SHARDS {
            guard.entries.clear();
        }
        guard.entries.insert(sku.as_str().into(), bytes);
        true
    }

    /// Forgets what a commit changed. Call after the commit, before its writers
    /// are answered.
    pub fn forget(&self, touched: Touched) {
        match touched {
            Touched::Some(skus) if skus.len() <= PRODUCT_CACHE_TOUCHED_MAX => {
                for sku in skus {
                    let mut guard = self.lock(self.shard_of(&sku));
                    guard.entries.remove(&*sku);
                    guard.epoch += 1;
                }
            }
            // An import batch: emptying every shard is cheaper than SKU by SKU.
            Touched::Some(_) | Touched::All => {
                for shard in 0..SHARDS {
                    let mut guard = self.lock(shard);
                    guard.entries.clear();
                    guard.epoch += 1;
                }
            }
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|s| self.lock(s).entries.len()).sum()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The SKUs one transaction wrote a product row or a stock level of (the read
/// cache forgets them, the search index re-reads them). Past
/// [`TOUCHED_SKUS_MAX`] (several import batches in one commit) it stops
/// counting: everything is forgotten and re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    Some(Vec<Box<str>>),
    All,
}

impl Default for Touched {
    fn default() -> Self {
        Self::Some(Vec::new())
    }
}

impl Touched {
    /// Notes that `sku`'s row or stock was written.
    pub fn note(&mut self, sku: &Sku) {
        if let Self::Some(skus) = self {
            if skus.len() >= TOUCHED_SKUS_MAX {
                *self = Self::All;
            } else {
                skus.push(sku.as_str().into());
            }
        }
    }

    /// Both sets as one.
    #[must_use]
    pub fn and(self, other: Touched) -> Touched {
        match (self, other) {
            (Self::Some(mut a), Self::Some(b)) if a.len() + b.len() <= TOUCHED_SKUS_MAX => {
                a.extend(b);
                Self::Some(a)
            }
            _ => Self::All,
        }
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Some(skus) if skus.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    #[test]
    fn a_put_after_a_forget_of_its_sku_is_refused() {
        let cache = ProductCache::default();
        let a = sku("A-1");
        let stamp = cache.get(&a).unwrap_err();
        cache.forget(Touched::Some(vec!["A-1".into()]));
        assert!(!cache.put(&a, stamp, Bytes::from_static(b"old")));
        assert!(cache.get(&a).is_err());
        let stamp = cache.get(&a).unwrap_err();
        assert!(cache.put(&a, stamp, Bytes::from_static(b"new")));
        assert_eq!(cache.get(&a).unwrap(), Bytes::from_static(b"new"));
    }

    #[test]
    fn a_forget_removes_what_was_put_before_it() {
        let cache = ProductCache::default();
        let a = sku("A-1");
        let stamp = cache.get(&a).unwrap_err();
        assert!(cache.put(&a, stamp, Bytes::from_static(b"v1")));
        cache.forget(Touched::Some(vec!["A-1".into()]));
        assert!(cache.get(&a).is_err());
    }

    #[test]
    fn forgetting_all_empties_every_shard_and_refuses_older_stamps() {
        let cache = ProductCache::default();
        let stamps: Vec<_> = (0..200)
            .map(|i| {
                let s = sku(&format!("S-{i}"));
                let stamp = cache.get(&s).unwrap_err();
                (s, stamp)
            })
            .collect();
        for (s, stamp) in &stamps[..100] {
            assert!(cache.put(s, *stamp, Bytes::from_static(b"x")));
        }
        assert_eq!(cache.len(), 100);
        cache.forget(Touched::All);
        assert!(cache.is_empty());
        for (s, stamp) in &stamps[100..] {
            assert!(!cache.put(s, *stamp, Bytes::from_static(b"x")));
        }
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let cache = ProductCache::default();
        for i in 0..PRODUCT_CACHE_ENTRIES_MAX * 2 {
            let s = sku(&format!("S-{i}"));
            let stamp = cache.get(&s).unwrap_err();
            assert!(cache.put(&s, stamp, Bytes::from_static(b"x")));
        }
        assert!(cache.len() <= PRODUCT_CACHE_ENTRIES_MAX);
        assert!(cache.len() > PRODUCT_CACHE_ENTRIES_MAX / 4);
    }

    /// A commit that touched more SKUs than the cache forgets one by one (an
    /// import batch) empties the whole cache, and still names them (for the
    /// search index).
    #[test]
    fn a_long_list_empties_the_whole_cache() {
        let cache = ProductCache::default();
        let (a, b) = (sku("A-1"), sku("B-1"));
        for s in [&a, &b] {
            let stamp = cache.get(s).unwrap_err();
            assert!(cache.put(s, stamp, Bytes::from_static(b"v")));
        }
        let mut t = Touched::default();
        for i in 0..=PRODUCT_CACHE_TOUCHED_MAX {
            t.note(&sku(&format!("S-{i}")));
        }
        assert!(matches!(&t, Touched::Some(v) if v.len() == PRODUCT_CACHE_TOUCHED_MAX + 1));
        cache.forget(t);
        assert!(
            cache.is_empty(),
            "A-1 and B-1 were not in the list but are gone"
        );
    }

    #[test]
    fn touched_turns_into_all_past_its_bound() {
        let mut t = Touched::default();
        assert!(t.is_empty());
        for i in 0..TOUCHED_SKUS_MAX {
            t.note(&sku(&format!("S-{i}")));
        }
        assert!(matches!(&t, Touched::Some(v) if v.len() == TOUCHED_SKUS_MAX));
        t.note(&sku("S-last"));
        assert_eq!(t, Touched::All);
        let one = |s: &str| {
            let mut t = Touched::default();
            t.note(&sku(s));
            t
        };
        assert_eq!(
            one("A").and(one("B")),
            Touched::Some(vec!["A".into(), "B".into()])
        );
    }
}
