//! Appending events inside the write transaction that makes the change.
//!
//! The outbox is opened by the ledger's [`crate::ledger::redb_rows::Book`], beside the
//! tables whose changes it records, so an event exists exactly when its change
//! does: an abandoned batch or a refused command leaves neither. `seq` is taken
//! from a counter in the same transaction; with redb's single writer, seqs are
//! gapless and grow in commit order.

use redb::{ReadableTable, WriteTransaction};

use super::{EventRow, EventType, Subject};
use crate::common::{Record, StoreError, codec};
use crate::domain::Timestamp;
use crate::store::get_record;
use crate::store::journal::{Capture, Logged, table};
use crate::store::tables::events_meta;

/// Whether products and inventory imports emit an event per row, or only their
/// job's (`--import-events`). Orders from files always emit `order.placed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowEvents {
    /// Only `import.completed` / `import.failed`: a 10M-row catalog import stays fast.
    #[default]
    Summary,
    /// Also `product.*` and `stock.changed` for every row loaded.
    Rows,
}

/// The events table, open in one write transaction.
pub struct Outbox<'txn> {
    events: Logged<'txn, u64, &'static [u8]>,
    meta: Logged<'txn, &'static str, u64>,
    row_events: RowEvents,
    /// The seq the next append takes, once read from the counter.
    next: Option<u64>,
    last: Option<u64>,
}

impl<'txn> Outbox<'txn> {
    /// Opens the outbox's tables, their writes recorded in `capture` (see
    /// [`crate::store::journal`]).
    pub fn open(
        txn: &'txn WriteTransaction,
        row_events: RowEvents,
        capture: &Capture,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            events: Logged::open(txn, table::EVENTS, capture)?,
            meta: Logged::open(txn, table::EVENTS_META, capture)?,
            row_events,
            next: None,
            last: None,
        })
    }

    /// Appends an event about `subject`, whose record as it now stands is
    /// `record`, and answers its seq.
    pub fn append<R: Record>(
        &mut self,
        kind: EventType,
        subject: Subject,
        record: &R,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.append_encoded(kind, subject, codec::encode(record), at)
    }

    /// [`Self::append`] for a record already encoded, as its table stores it.
    pub fn append_encoded(
        &mut self,
        kind: EventType,
        subject: Subject,
        record: Vec<u8>,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let seq = match self.next {
            Some(seq) => seq,
            None => self
                .meta
                .get(events_meta::NEXT_SEQ)?
                .map_or(1, |v| v.value()),
        };
        // The pair of the counter: the seq taken is past every stored one.
        debug_assert!(self.events.last()?.is_none_or(|(k, _)| k.value() < seq));
        self.meta.insert(events_meta::NEXT_SEQ, seq + 1)?;
        self.next = Some(seq + 1);
        let row = EventRow {
            id: rand::random(),
            kind,
            at,
            subject,
            record,
        };
        self.events.insert(seq, codec::encode(&row).as_slice())?;
        self.last = Some(seq);
        Ok(seq)
    }

    /// How imports of products and inventory report their rows.
    pub fn row_events(&self) -> RowEvents {
        self.row_events
    }

    /// The seq of the last event appended in this transaction, if any: after the
    /// commit, the ledger wakes the feed's long polls with it.
    pub fn last_appended(&self) -> Option<u64> {
        self.last
    }

    /// Forgets events created before `cutoff`, oldest first, at most `max` of them,
    /// and remembers the highest seq forgotten (an `after` below it is expired).
    pub fn purge(&mut self, cutoff: Timestamp, max: usize) -> Result<usize, StoreError> {
        let oldest = self.events.iter()?.take(max).map(|entry| {
            let (seq, bytes) = entry?;
            let row: EventRow = codec::decode(bytes.value())?;
            Ok::<_, StoreError>((seq.value(), row.at))
        });
        let expired = super::expired_prefix(oldest, cutoff)?;
        if let Some(&highest) = expired.last() {
            for seq in &expired {
                self.events.remove(*seq)?;
            }
            self.meta.insert(events_meta::PURGED_THROUGH, highest)?;
        }
        Ok(expired.len())
    }

    /// One stored event (for tests of the write path).
    pub fn get(&self, seq: u64) -> Result<Option<EventRow>, StoreError> {
        get_record(&*self.events, seq)
    }
}
