//! Reading the feed: events after a seq, oldest first, on one read snapshot, and
//! the actor (a pool of reader threads) that serves it.
//!
//! A page scans at most [`EVENTS_SCAN_ROWS_MAX`] stored events, so a filter that
//! matches rarely costs a bounded read per request; `next_after` always moves past
//! what was scanned, so a reader that follows it sees every matching event once.

use actix::{Actor, Context, Handler, Message};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable};
use tokio::sync::watch;

use super::{Event, EventRow, TypeFilter};
use crate::common::{StoreError, codec};
use crate::limits::EVENTS_SCAN_ROWS_MAX;
use crate::mailbox::{Ping, Stop};
use crate::store::Store;
use crate::store::tables::{EVENTS, EVENTS_META, events_meta};

/// One page of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// The seq to ask after next: the last event scanned (matching or not), or
    /// the `after` asked for when nothing newer exists yet.
    pub next_after: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// `after` asks for events the retention purge has forgotten.
    #[error("events after {after} are no longer kept; the oldest kept follow {purged_through}")]
    Expired { after: u64, purged_through: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::common::lift_redb_errors!(EventsError);

/// Events after `after` (or from the oldest kept, for `None`) and through seq
/// `through` that `filter` admits, at most `limit`.
pub fn list(
    txn: &ReadTransaction,
    after: Option<u64>,
    through: u64,
    filter: &TypeFilter,
    limit: usize,
) -> Result<EventPage, EventsError> {
    let meta = txn.open_table(EVENTS_META)?;
    let purged_through = meta
        .get(events_meta::PURGED_THROUGH)?
        .map_or(0, |v| v.value());
    let after = start_after(after, purged_through)?;
    let events = txn.open_table(EVENTS)?;
    let scanned = events
        .range(after.saturating_add(1)..=through.max(after))?
        .take(EVENTS_SCAN_ROWS_MAX)
        .map(|entry| {
            let (seq, bytes) = entry.map_err(StoreError::from)?;
            Ok((seq.value(), codec::decode(bytes.value())?))
        });
    page(after, scanned, filter, limit)
}

/// Where a page asked to start `after` starts, given that events through
/// `purged_through` are forgotten: from the oldest kept for `None`, expired for an
/// `after` before them.
pub fn start_after(after: Option<u64>, purged_through: u64) -> Result<u64, EventsError> {
    match after {
        Some(a) if a < purged_through => Err(EventsError::Expired {
            after: a,
            purged_through,
        }),
        Some(a) => Ok(a),
        None => Ok(purged_through),
    }
}

/// The page made of the events scanned after `after` (at most
/// [`EVENTS_SCAN_ROWS_MAX`] of them, oldest first): those `filter` admits, up to
/// `limit`, and where the next page starts.
pub fn page(
    after: u64,
    scanned: impl Iterator<Item = Result<(u64, EventRow), StoreError>>,
    filter: &TypeFilter,
    limit: usize,
) -> Result<EventPage, EventsError> {
    let mut items = Vec::new();
    let mut next_after = after;
    for entry in scanned {
        let (seq, row) = entry?;
        next_after = seq;
        if filter.matches(row.kind) {
            items.push(Event { seq, row });
            if items.len() >= limit {
                break;
            }
        }
    }
    Ok(EventPage { items, next_after })
}

/// The seq of the newest event (0 with none): where a new feed's wake-ups start.
pub fn newest_seq(store: &Store) -> Result<u64, StoreError> {
    let txn = store.db().begin_read()?;
    let events = txn.open_table(EVENTS)?;
    Ok(events.last()?.map_or(0, |(k, _)| k.value()))
}

/// Serves the feed, from a pool of threads (see [`crate::mailbox::start_pool`]).
pub struct EventsReader {
    store: Store,
    /// The newest seq the ledger has published: its batch is durable. A journaled
    /// batch is visible in redb a moment before its journal record is synced (see
    /// [`crate::store::journal`]); no reader is served its events before then, so
    /// no follower ever sees an event a power loss could take back.
    published: watch::Receiver<u64>,
}

impl EventsReader {
    pub fn new(store: Store, published: watch::Receiver<u64>) -> Self {
        Self { store, published }
    }
}

impl Actor for EventsReader {
    type Context = Context<Self>;
}

/// A page of events.
#[derive(Debug, Message)]
#[rtype(result = "Result<EventPage, EventsError>")]
pub struct ListEvents {
    /// Events after this seq; `None` from the oldest kept.
    pub after: Option<u64>,
    /// Which types.
    pub filter: TypeFilter,
    /// Page size, already bounded.
    pub limit: usize,
}

impl Handler<ListEvents> for EventsReader {
    type Result = Result<EventPage, EventsError>;
    fn handle(&mut self, msg: ListEvents, _: &mut Self::Context) -> Self::Result {
        // Read before the snapshot is taken: every event through it is in the snapshot.
        let published = *self.published.borrow();
        let txn = self.store.db().begin_read().map_err(StoreError::from)?;
        list(&txn, msg.after, published, &msg.filter, msg.limit)
    }
}

impl Handler<Ping> for EventsReader {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        self.store.check_readable()
    }
}

impl Handler<Stop> for EventsReader {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;
    use crate::domain::{Currency, MovementKind, Sku, StockLevel, Timestamp};
    use crate::events::EventType;
    use crate::ledger::records::{Source, StockError};
    use crate::ledger::tx::commit_one;

    /// Five `stock.changed` events, at 0 s, 1 s, … 4 s after the epoch.
    fn five_events() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        commit_one::<_, StockError>(&store, Currency::EUR, |tx| {
            for i in 0..5_i64 {
                let sku = Sku::parse(&format!("S{i}")).unwrap();
                let level = StockLevel::new(i + 1).unwrap();
                let at = Timestamp(i * 1000);
                tx.book
                    .set_level(&sku, level, MovementKind::Receipt, Source::Api, at)?;
            }
            Ok(())
        })
        .unwrap();
        (dir, store)
    }

    fn page(store: &Store, after: Option<u64>) -> Result<Vec<u64>, EventsError> {
        let txn = store.db().begin_read().unwrap();
        let page = list(&txn, after, u64::MAX, &TypeFilter::All, 100)?;
        Ok(page.items.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn events_are_numbered_from_one_in_the_order_written() {
        let (_dir, store) = five_events();
        assert_eq!(page(&store, None).unwrap(), [1, 2, 3, 4, 5]);
        assert_eq!(page(&store, Some(3)).unwrap(), [4, 5]);
        assert_eq!(page(&store, Some(5)).unwrap(), Vec::<u64>::new());
        assert_eq!(newest_seq(&store).unwrap(), 5);
        let txn = store.db().begin_read().unwrap();
        let only = list(
            &txn,
            None,
            u64::MAX,
            &TypeFilter::Exact(EventType::OrderPlaced),
            100,
        )
        .unwrap();
        assert!(only.items.is_empty());
        assert_eq!(only.next_after, 5, "the scan moved past what it skipped");
    }

    #[actix::test]
    async fn the_reader_serves_no_event_the_ledger_has_not_published() {
        let (_dir, store) = five_events();
        let (publish, published) = watch::channel(3);
        let reader = EventsReader::new(store, published).start();
        let ask = |after| {
            reader.send(ListEvents {
                after,
                filter: TypeFilter::All,
                limit: 100,
            })
        };
        let seqs = |page: EventPage| page.items.iter().map(|e| e.seq).collect::<Vec<_>>();
        let first = ask(None).await.unwrap().unwrap();
        assert_eq!(first.next_after, 3);
        assert_eq!(seqs(first), [1, 2, 3]);
        let none = ask(Some(3)).await.unwrap().unwrap();
        assert_eq!((seqs(none.clone()), none.next_after), (vec![], 3));
        publish.send_replace(5);
        assert_eq!(seqs(ask(Some(3)).await.unwrap().unwrap()), [4, 5]);
    }

    #[test]
    fn purged_events_are_gone_and_an_after_before_them_is_expired() {
        let (_dir, store) = five_events();
        let purged = commit_one::<_, StoreError>(&store, Currency::EUR, |tx| {
            tx.book.rows.outbox.purge(Timestamp(2500), 100)
        })
        .unwrap();
        assert_eq!(purged, 3);
        assert_eq!(page(&store, None).unwrap(), [4, 5], "from the oldest kept");
        assert_eq!(page(&store, Some(3)).unwrap(), [4, 5]);
        assert!(matches!(
            page(&store, Some(2)),
            Err(EventsError::Expired {
                after: 2,
                purged_through: 3
            })
        ));
        assert!(matches!(
            page(&store, Some(0)),
            Err(EventsError::Expired { .. })
        ));
        // The next event takes the next seq: a purge never lets a seq be reused.
        commit_one::<_, StockError>(&store, Currency::EUR, |tx| {
            let sku = Sku::parse("S9").unwrap();
            tx.book.set_level(
                &sku,
                StockLevel::new(1).unwrap(),
                MovementKind::Receipt,
                Source::Api,
                Timestamp(9000),
            )?;
            Ok(())
        })
        .unwrap();
        assert_eq!(page(&store, Some(3)).unwrap(), [4, 5, 6]);
        // Purging everything still remembers where the seqs stood.
        commit_one::<_, StoreError>(&store, Currency::EUR, |tx| {
            tx.book.rows.outbox.purge(Timestamp(99_999), 100)
        })
        .unwrap();
        assert_eq!(page(&store, None).unwrap(), Vec::<u64>::new());
        assert_eq!(page(&store, Some(6)).unwrap(), Vec::<u64>::new());
        assert!(page(&store, Some(5)).is_err());
    }

    #[test]
    fn an_abandoned_transaction_leaves_no_event() {
        let (_dir, store) = five_events();
        let refused = commit_one::<(), StockError>(&store, Currency::EUR, |tx| {
            let sku = Sku::parse("S7").unwrap();
            tx.book.set_level(
                &sku,
                StockLevel::new(3).unwrap(),
                MovementKind::Receipt,
                Source::Api,
                Timestamp(7000),
            )?;
            Err(StockError::UnknownSku)
        });
        assert!(refused.is_err());
        assert_eq!(page(&store, None).unwrap(), [1, 2, 3, 4, 5]);
        assert_eq!(newest_seq(&store).unwrap(), 5);
    }
}
