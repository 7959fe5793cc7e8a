//! What both backends share: the storage error every room answers, the record
//! codec (redb stores records as values, PostgreSQL in `bytea` columns) and a
//! page of a list. Neither backend's: `store/` is the redb file, `pg/` is
//! PostgreSQL, and both import this.

pub mod codec;

pub use codec::{CodecError, Record};

/// An operating error from the database (disk, corruption). Callers turn it into a
/// 500/503 without showing its text to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Redb(#[from] Box<redb::Error>),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("transaction abandoned, nothing was written: {0}")]
    Aborted(String),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The commit was sent but its answer was lost with the connection: it may
    /// or may not have taken effect.
    #[error("the commit's outcome is unknown: {0}")]
    OutcomeUnknown(String),
    /// Another node holds the lease on this import job (PostgreSQL's shared
    /// inbox): it runs the job now, and nothing was written here.
    #[error("another node runs import job {0} now")]
    LeaseLost(u64),
    /// The ledger's journal file failed (see [`crate::store::journal`]).
    #[error("ledger journal: {0}")]
    Io(#[from] std::io::Error),
}

macro_rules! redb_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(Box::new(e.into()))
            }
        }
    )*};
}
redb_error_from!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError,
    redb::CursorError,
    redb::SetDurabilityError
);

/// Lets `?` lift redb's errors into an operation's error enum through its
/// `Store(StoreError)` variant.
macro_rules! lift_redb_errors {
    ($($target:ty),*) => {$(
        impl From<redb::TableError> for $target {
            fn from(e: redb::TableError) -> Self { Self::Store(e.into()) }
        }
        impl From<redb::StorageError> for $target {
            fn from(e: redb::StorageError) -> Self { Self::Store(e.into()) }
        }
        impl From<redb::TransactionError> for $target {
            fn from(e: redb::TransactionError) -> Self { Self::Store(e.into()) }
        }
        impl From<redb::CommitError> for $target {
            fn from(e: redb::CommitError) -> Self { Self::Store(e.into()) }
        }
        impl From<$crate::common::CodecError> for $target {
            fn from(e: $crate::common::CodecError) -> Self { Self::Store(e.into()) }
        }
    )*};
}
pub(crate) use lift_redb_errors;

/// One page of a list and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page from up to `limit + 1` items read in list order: the one past
    /// `limit`, if there, only says that more follow, and the next page starts
    /// after the last item kept (`cursor` of it). Every list of both backends reads
    /// its pages this way.
    pub fn from_overfetch(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> C) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(cursor) } else { None };
        Page { items, next }
    }

    /// A page from a filtered scan in list order, of rows given as `(where,
    /// Some(item))` when they match and `(where, None)` when they do not: at most
    /// `limit` items, and at most `scan_max` rows looked at, so a filter that
    /// matches little costs a bounded read. A full page goes on after its last
    /// item (`cursor`); a scan stopped at `scan_max` goes on at the first row not
    /// looked at (`resume`). Both backends' filtered lists read their pages so.
    pub fn from_scan<E>(
        rows: impl IntoIterator<Item = Result<(C, Option<T>), E>>,
        limit: usize,
        scan_max: usize,
        cursor: impl Fn(&T) -> C,
        resume: impl Fn(C) -> C,
    ) -> Result<Self, E> {
        let mut items = Vec::with_capacity(limit.min(scan_max));
        for (scanned, row) in rows.into_iter().enumerate() {
            let (at, item) = row?;
            if items.len() == limit {
                // One more exists: the page is full.
                return Ok(Page {
                    next: items.last().map(&cursor),
                    items,
                });
            }
            if scanned == scan_max {
                return Ok(Page {
                    items,
                    next: Some(resume(at)),
                });
            }
            items.extend(item);
        }
        Ok(Page { items, next: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of both backends' lists: over-fetch by one, and a filtered scan that
    /// stops at a full page or at its scan bound, each with the cursor it goes
    /// on from.
    #[test]
    fn pages_say_where_the_next_one_starts() {
        let page = Page::from_overfetch(vec![5, 4, 3], 2, |n| *n);
        assert_eq!((page.items, page.next), (vec![5, 4], Some(4)));
        let page = Page::from_overfetch(vec![5, 4], 2, |n| *n);
        assert_eq!((page.items, page.next), (vec![5, 4], None));
        // Rows 10 down to 1; only even ones match.
        let rows = || {
            (1..=10u64)
                .rev()
                .map(|n| Ok::<_, ()>((n, (n % 2 == 0).then_some(n))))
        };
        let full = Page::from_scan(rows(), 2, 100, |n| *n, |n| n + 1).unwrap();
        assert_eq!((full.items, full.next), (vec![10, 8], Some(8)));
        let bounded = Page::from_scan(rows(), 5, 3, |n| *n, |n| n + 1).unwrap();
        // 10, 9, 8 looked at; the next page goes on at 7 (ids below 8).
        assert_eq!((bounded.items, bounded.next), (vec![10, 8], Some(8)));
        // A full page with rows after it goes on after its last item, even if
        // none of those rows would match (it does not look at them).
        let full_last = Page::from_scan(rows(), 5, 100, |n| *n, |n| n + 1).unwrap();
        assert_eq!(
            (full_last.items, full_last.next),
            (vec![10, 8, 6, 4, 2], Some(2))
        );
        let all = Page::from_scan(rows(), 6, 100, |n| *n, |n| n + 1).unwrap();
        assert_eq!((all.items, all.next), (vec![10, 8, 6, 4, 2], None));
        let bound_at_the_end = Page::from_scan(rows(), 6, 10, |n| *n, |n| n + 1).unwrap();
        assert_eq!(bound_at_the_end.next, None);
    }
}
