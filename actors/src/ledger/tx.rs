//! The one way a write transaction is opened for the ledger's rules: the catalog's
//! tables and the book, side by side in one redb write transaction, as a [`Tx`].
//!
//! Everything that changes state goes through here (the ledger's batches, dry runs,
//! tests and benches that drive the rules directly), so the two invariants below
//! are kept in one place:
//! - the catalog's buffered index changes are written only when the work stands
//!   (they must be, before a commit);
//! - prices and stock are read inside the very transaction that writes the order.

use crate::catalog::CatalogTables;
use crate::common::StoreError;
use crate::domain::{Currency, Timestamp};
use crate::events::RowEvents;
use crate::store::Store;

use super::redb_rows::Book;

/// The open transaction a command works in.
pub struct Tx<'a, 'txn> {
    /// For tables that neither the catalog nor the book hold open (jobs, users).
    pub txn: &'txn redb::WriteTransaction,
    pub catalog: &'a mut CatalogTables<'txn>,
    pub book: &'a mut Book<'txn>,
    pub currency: Currency,
    pub at: Timestamp,
}

/// Runs `work` on the catalog and the book of `txn` as one [`Tx`]. The work answers
/// its result and whether it stands; only then are the catalog's buffered index
/// changes written.
pub fn within<R>(
    txn: &redb::WriteTransaction,
    currency: Currency,
    row_events: RowEvents,
    work: impl FnOnce(&mut Tx<'_, '_>) -> (R, bool),
) -> Result<R, StoreError> {
    let mut catalog = CatalogTables::open(txn)?;
    let mut book = Book::open_with(txn, row_events)?;
    let (out, stands) = work(&mut Tx {
        txn,
        catalog: &mut catalog,
        book: &mut book,
        currency,
        at: Timestamp::now(),
    });
    if stands {
        catalog.flush()?;
    }
    Ok(out)
}

/// Runs `work` in a write transaction of its own and commits it if the work
/// succeeds (abandons it otherwise). For tests and benches that drive the rules
/// without the actor; the ledger itself batches many commands into one [`within`].
pub fn commit_one<T, E: From<StoreError>>(
    store: &Store,
    currency: Currency,
    work: impl FnOnce(&mut Tx<'_, '_>) -> Result<T, E>,
) -> Result<T, E> {
    let txn = store.db().begin_write().map_err(StoreError::from)?;
    let out = within(&txn, currency, RowEvents::default(), |tx| {
        let out = work(tx);
        let stands = out.is_ok();
        (out, stands)
    })?;
    match out {
        Ok(v) => {
            txn.commit().map_err(StoreError::from)?;
            Ok(v)
        }
        Err(e) => {
            txn.abort().map_err(StoreError::from)?;
            Err(e)
        }
    }
}
