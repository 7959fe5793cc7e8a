//! What the search index has yet to re-read: the SKUs committed changes touched,
//! handed over by the ledger (either backend) after each commit and taken by the
//! indexer in one piece. A SKU touched twice before the indexer comes is read
//! once; nothing here waits, so a commit never waits for the index.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use crate::catalog::Touched;
use crate::domain::Sku;
use crate::limits::FEED_SKUS_MAX;

/// The hand-over between the ledger's commits and the indexer. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pending: Mutex<Pending>,
    wake: Notify,
}

/// What was touched since the indexer last took it.
#[derive(Debug, Default)]
pub struct Pending {
    pub skus: HashSet<Box<str>>,
    /// Something changed more than a list says (re-read everything).
    pub all: bool,
    /// When the oldest of these changes was committed (the lag is measured from it).
    pub since: Option<Instant>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.skus.is_empty() && !self.all
    }
}

impl Feed {
    fn with(&self, f: impl FnOnce(&mut Pending)) {
        let mut pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut pending);
        if pending.skus.len() > FEED_SKUS_MAX {
            // An import outran the indexer: reading the whole catalog again costs
            // about what reading these does, and the list's memory stays bounded.
            pending.skus = HashSet::new();
            pending.all = true;
        }
        pending.since.get_or_insert_with(Instant::now);
        drop(pending);
        self.inner.wake.notify_one();
    }

    /// A commit wrote these products or stock levels.
    pub fn touched(&self, touched: &Touched) {
        if touched.is_empty() {
            return;
        }
        self.with(|p| match touched {
            Touched::Some(skus) => p.skus.extend(skus.iter().cloned()),
            Touched::All => p.all = true,
        });
    }

    /// These SKUs changed (a PostgreSQL batch's SKUs, another node's events).
    pub fn skus<'a>(&self, skus: impl IntoIterator<Item = &'a Sku>) {
        let mut skus = skus.into_iter().peekable();
        if skus.peek().is_none() {
            return;
        }
        self.with(|p| p.skus.extend(skus.map(|s| Box::from(s.as_str()))));
    }

    /// Anything may have changed.
    pub fn everything(&self) {
        self.with(|p| p.all = true);
    }

    /// Takes what is pending, leaving nothing.
    pub fn take(&self) -> Pending {
        let mut pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *pending)
    }

    /// Takes at most `max` SKUs (everything when the whole catalog is to be read
    /// again); the rest stay, as old as they were.
    pub fn take_at_most(&self, max: usize) -> Pending {
        let mut pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.all || pending.skus.len() <= max {
            return std::mem::take(&mut *pending);
        }
        let taken: HashSet<Box<str>> = pending.skus.iter().take(max).cloned().collect();
        pending.skus.retain(|s| !taken.contains(s));
        Pending {
            skus: taken,
            all: false,
            since: pending.since,
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// Resolves once something is fed after the last take (or was before it).
    pub async fn fed(&self) {
        self.inner.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_skus_are_taken_once() {
        let feed = Feed::default();
        feed.touched(&Touched::Some(vec!["A".into(), "B".into()]));
        feed.touched(&Touched::Some(vec!["A".into()]));
        let taken = feed.take();
        assert_eq!(taken.skus.len(), 2);
        assert!(!taken.all && taken.since.is_some());
        assert!(feed.take().is_empty());
        feed.touched(&Touched::All);
        assert!(feed.take().all);
        feed.touched(&Touched::default());
        assert!(feed.take().since.is_none(), "an empty commit feeds nothing");
    }

    #[test]
    fn a_long_list_is_taken_in_parts_as_old_as_it_was() {
        let feed = Feed::default();
        let skus: Vec<Box<str>> = (0..10).map(|i| format!("S-{i}").into()).collect();
        feed.touched(&Touched::Some(skus));
        let first = feed.take_at_most(4);
        assert_eq!(first.skus.len(), 4);
        assert!(!feed.is_empty());
        let second = feed.take_at_most(4);
        let third = feed.take_at_most(4);
        assert_eq!((second.skus.len(), third.skus.len()), (4, 2));
        assert_eq!(
            second.since, first.since,
            "the rest is as old as the first part"
        );
        let all: HashSet<_> = [first, second, third]
            .into_iter()
            .flat_map(|p| p.skus)
            .collect();
        assert_eq!(all.len(), 10);
        assert!(feed.is_empty());
    }

    #[test]
    fn past_its_bound_the_list_means_everything() {
        let feed = Feed::default();
        let skus: Vec<Box<str>> = (0..=FEED_SKUS_MAX)
            .map(|i| format!("S-{i}").into())
            .collect();
        feed.touched(&Touched::Some(skus));
        let taken = feed.take();
        assert!(taken.all && taken.skus.is_empty());
    }
}
