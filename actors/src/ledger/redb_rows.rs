//! The ledger's rows on redb: its tables open in one write transaction
//! ([`RedbRows`], the [`super::rows`] traits' embedded implementation) and the
//! rules over them ([`Book`]).

use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};

use super::records::{IdempotencyRow, Level, MovementRow, OrderRow};
use super::rows::LedgerRows;
use super::rules::Rules;
use crate::catalog::cache::Touched;
use crate::common::{StoreError, codec};
use crate::domain::{IdempotencyKey, OrderId, OrderRef, Sku, Timestamp, UserId};
use crate::events::{EventType, Outbox, RowEvents, Subject};
use crate::store::get_record;
use crate::store::journal::{Capture, Logged, table};
use crate::store::sorted;
use crate::store::tables::counter;

/// The rules on the ledger's redb tables, open in one write transaction.
pub type Book<'txn> = Rules<RedbRows<'txn>>;

impl<'txn> Book<'txn> {
    /// The book with the default of `--import-events` (`summary`).
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Self::open_with(txn, RowEvents::default())
    }

    pub fn open_with(
        txn: &'txn WriteTransaction,
        row_events: RowEvents,
    ) -> Result<Self, StoreError> {
        Ok(Rules {
            rows: RedbRows::open(txn, row_events)?,
        })
    }

    /// Takes the next value of a `META` counter (starting at 1).
    pub fn next_id(&mut self, name: &str) -> Result<u64, StoreError> {
        self.rows.next_id(name)
    }

    /// Forgets idempotency keys created before `cutoff`, at most `max` of them.
    pub fn purge_idempotency(
        &mut self,
        cutoff: Timestamp,
        max: usize,
    ) -> Result<usize, StoreError> {
        let rows = &mut self.rows;
        let expired: Vec<(i64, u64, String)> = rows
            .idempotency_expiry
            .range(..(cutoff.millis(), 0u64, ""))?
            .take(max)
            .map(|entry| {
                entry.map(|(k, _)| {
                    let (ms, user, key) = k.value();
                    (ms, user, key.to_owned())
                })
            })
            .collect::<Result<_, _>>()?;
        for (ms, user, key) in &expired {
            rows.idempotency_expiry.remove((*ms, *user, key.as_str()))?;
            rows.idempotency.remove((*user, key.as_str()))?;
        }
        Ok(expired.len())
    }
}

/// The ledger's redb tables, open in one write transaction.
pub struct RedbRows<'txn> {
    pub(super) meta: Logged<'txn, &'static str, u64>,
    stock: Logged<'txn, &'static str, (u64, u64)>,
    movements: Logged<'txn, (&'static str, u64), &'static [u8]>,
    orders: Logged<'txn, u64, &'static [u8]>,
    orders_by_user: Logged<'txn, (u64, u64), ()>,
    pub(super) idempotency: Logged<'txn, (u64, &'static str), &'static [u8]>,
    pub(super) idempotency_expiry: Logged<'txn, (i64, u64, &'static str), ()>,
    order_refs: Logged<'txn, &'static str, u64>,
    /// What this transaction wrote, for the ledger's journal (recording only while
    /// the ledger asks it to).
    pub capture: Capture,
    /// The events of this transaction's changes, written beside them.
    pub outbox: Outbox<'txn>,
    /// SKUs whose stock level this transaction wrote (for the read cache).
    pub touched: Touched,
    /// Movements and levels held back to be written in key order, while an
    /// import batch is staged ([`Self::stage_stock`]).
    staged: Option<StagedStock>,
}

/// An import batch's movements and stock levels, held back by [`RedbRows`] to be
/// written into their tables in key order ([`crate::store::sorted`]): written
/// one by one, new SKUs that sort between stored ones leave half-empty leaves.
#[derive(Debug, Default)]
pub struct StagedStock {
    /// Each SKU's level as its last movement left it: (units, that movement's seq).
    levels: BTreeMap<String, (u64, u64)>,
    movements: Vec<((String, u64), Vec<u8>)>,
}

impl<'txn> RedbRows<'txn> {
    pub fn open(txn: &'txn WriteTransaction, row_events: RowEvents) -> Result<Self, StoreError> {
        let capture = Capture::default();
        let c = &capture;
        Ok(Self {
            meta: Logged::open(txn, table::META, c)?,
            stock: Logged::open(txn, table::STOCK, c)?,
            movements: Logged::open(txn, table::MOVEMENTS, c)?,
            orders: Logged::open(txn, table::ORDERS, c)?,
            orders_by_user: Logged::open(txn, table::ORDERS_BY_USER, c)?,
            idempotency: Logged::open(txn, table::IDEMPOTENCY, c)?,
            idempotency_expiry: Logged::open(txn, table::IDEMPOTENCY_EXPIRY, c)?,
            order_refs: Logged::open(txn, table::ORDER_REFS, c)?,
            outbox: Outbox::open(txn, row_events, c)?,
            capture,
            touched: Touched::default(),
            staged: None,
        })
    }

    /// Holds back the movements and stock levels written from now on (a read
    /// sees them) until [`Self::unstage_stock`].
    pub fn stage_stock(&mut self) {
        self.staged = Some(StagedStock::default());
    }

    /// Stops holding back, answering what was held back (to [`Self::write_stock`],
    /// or to drop when the batch failed).
    pub fn unstage_stock(&mut self) -> StagedStock {
        self.staged.take().unwrap_or_default()
    }

    /// Writes movements and levels held back, each table in key order.
    pub fn write_stock(&mut self, staged: StagedStock) -> Result<(), StoreError> {
        let StagedStock {
            levels,
            mut movements,
        } = staged;
        movements.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sorted::write_all(self.movements.unlogged(), movements)?;
        sorted::write_all(self.stock.unlogged(), levels)
    }

    /// Takes the next value of a `META` counter (starting at 1).
    pub fn next_id(&mut self, name: &str) -> Result<u64, StoreError> {
        let next = self.meta.get(name)?.map_or(1, |v| v.value());
        self.meta.insert(name, next + 1)?;
        Ok(next)
    }
}

impl LedgerRows for RedbRows<'_> {
    fn level(&self, sku: &Sku) -> Result<Level, StoreError> {
        let staged = self
            .staged
            .as_ref()
            .and_then(|s| s.levels.get(sku.as_str()));
        let (units, last_seq) = match staged {
            Some(level) => *level,
            None => match self.stock.get(sku.as_str())? {
                Some(v) => v.value(),
                None => return Ok(Level::default()),
            },
        };
        Ok(Level { units, last_seq })
    }

    fn put_movement(&mut self, sku: &Sku, seq: u64, row: &MovementRow) -> Result<(), StoreError> {
        let encoded = codec::encode(row);
        match &mut self.staged {
            Some(staged) => {
                let key = sku.as_str().to_owned();
                staged.levels.insert(key.clone(), (row.stock_after, seq));
                staged.movements.push(((key, seq), encoded));
            }
            None => {
                self.movements
                    .insert((sku.as_str(), seq), encoded.as_slice())?;
                self.stock.insert(sku.as_str(), (row.stock_after, seq))?;
            }
        }
        self.touched.note(sku);
        Ok(())
    }

    fn next_order_id(&mut self) -> Result<OrderId, StoreError> {
        Ok(OrderId(self.next_id(counter::NEXT_ORDER_ID)?))
    }

    fn order(&self, id: OrderId) -> Result<Option<OrderRow>, StoreError> {
        get_record(&*self.orders, id.0)
    }

    fn insert_order(&mut self, id: OrderId, row: &OrderRow) -> Result<(), StoreError> {
        self.orders.insert(id.0, codec::encode(row).as_slice())?;
        self.orders_by_user.insert((row.user_id.0, id.0), ())?;
        if let Some(reference) = &row.external_ref {
            self.order_refs.insert(reference.as_str(), id.0)?;
        }
        Ok(())
    }

    fn update_order(&mut self, id: OrderId, row: &OrderRow) -> Result<(), StoreError> {
        self.orders.insert(id.0, codec::encode(row).as_slice())?;
        Ok(())
    }

    fn idempotency(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        get_record(&*self.idempotency, (user.0, key.as_str()))
    }

    fn put_idempotency(
        &mut self,
        user: UserId,
        key: &IdempotencyKey,
        row: &IdempotencyRow,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.idempotency
            .insert((user.0, key.as_str()), codec::encode(row).as_slice())?;
        self.idempotency_expiry
            .insert((at.millis(), user.0, key.as_str()), ())?;
        Ok(())
    }

    fn order_ref_taken(&self, reference: &OrderRef) -> Result<bool, StoreError> {
        Ok(self.order_refs.get(reference.as_str())?.is_some())
    }

    fn row_events(&self) -> RowEvents {
        self.outbox.row_events()
    }

    fn append_event(
        &mut self,
        kind: EventType,
        subject: Subject,
        record: Vec<u8>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.outbox.append_encoded(kind, subject, record, at)?;
        Ok(())
    }
}
