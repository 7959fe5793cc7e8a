//! The ledger's rows for one PostgreSQL batch: read and locked before the rules
//! run, written back after, in a few set-based statements.
//!
//! [`crate::pg::ledger`] reads every row the batch's commands can touch (locked, in
//! a fixed order), hands them to the rules as [`Staged`] and `StagedProducts`
//! (which implement [`LedgerRows`] and [`ProductRows`]), and then [`Staged::flush`]
//! writes what the rules wrote: one statement per table, however many orders. A
//! read of a row that was not fetched is an error that abandons the batch, never a
//! guess.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Transaction;

use crate::common::{StoreError, codec};
use crate::domain::{IdempotencyKey, OrderId, OrderRef, Sku, Timestamp, UserId};
use crate::events::{EventRow, EventType, RowEvents, Subject};
use crate::ledger::records::{IdempotencyRow, Level, MovementRow, OrderRow};
use crate::ledger::rows::LedgerRows;

/// A stored number as PostgreSQL's `bigint`.
pub(crate) fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit a bigint")))
}

/// A `bigint` read back as the unsigned number it stores.
pub(crate) fn uint(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative stored number {v}")))
}

pub(crate) fn not_read(what: &str, key: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} {key} was not read for this batch"))
}

/// Whether an order was read or is new in this batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Stored,
    New,
}

/// The ledger rows of one batch: what was read, and what the rules wrote.
#[derive(Debug)]
pub struct Staged {
    levels: HashMap<Sku, Level>,
    changed_levels: HashSet<Sku>,
    movements: Vec<(Sku, u64, MovementRow)>,
    orders: HashMap<OrderId, Option<(OrderRow, Origin)>>,
    changed_orders: Vec<OrderId>,
    keys: HashMap<(UserId, IdempotencyKey), Option<IdempotencyRow>>,
    new_keys: Vec<(UserId, IdempotencyKey, Timestamp)>,
    refs: HashMap<OrderRef, bool>,
    /// Order ids taken from the sequence for this batch, handed out in turn.
    ids: std::vec::IntoIter<i64>,
    events: Vec<(EventType, Subject, Vec<u8>, Timestamp)>,
    row_events: RowEvents,
}

impl Staged {
    pub fn new(row_events: RowEvents, ids: Vec<i64>) -> Self {
        Self {
            levels: HashMap::new(),
            changed_levels: HashSet::new(),
            movements: Vec::new(),
            orders: HashMap::new(),
            changed_orders: Vec::new(),
            keys: HashMap::new(),
            new_keys: Vec::new(),
            refs: HashMap::new(),
            ids: ids.into_iter(),
            events: Vec::new(),
            row_events,
        }
    }

    pub fn read_level(&mut self, sku: Sku, level: Level) {
        self.levels.insert(sku, level);
    }

    pub fn read_order(&mut self, id: OrderId, row: Option<OrderRow>) {
        self.orders.insert(id, row.map(|r| (r, Origin::Stored)));
    }

    pub fn read_key(&mut self, user: UserId, key: IdempotencyKey, row: Option<IdempotencyRow>) {
        self.keys.insert((user, key), row);
    }

    pub fn read_ref(&mut self, reference: OrderRef, taken: bool) {
        self.refs.insert(reference, taken);
    }

    /// Writes what the rules wrote, one statement per table, the event counter
    /// last (it is the one row every node's batch locks: held from here to the
    /// commit, it orders the commits that write events), then notifies the last
    /// seq taken, if any event was written. The products the batch wrote go
    /// first ([`crate::pg::staged_products::flush_products`]).
    pub async fn flush(self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        self.flush_levels(tx).await?;
        self.flush_movements(tx).await?;
        self.flush_orders(tx).await?;
        self.flush_keys(tx).await?;
        self.flush_events(tx).await
    }

    /// The stock levels the batch changed, in SKU order.
    async fn flush_levels(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.changed_levels.is_empty() {
            return Ok(());
        }
        let mut skus: Vec<&Sku> = self.changed_levels.iter().collect();
        skus.sort();
        let mut units = Vec::with_capacity(skus.len());
        let mut seqs = Vec::with_capacity(skus.len());
        for sku in &skus {
            let level = self.levels[*sku];
            units.push(int(level.units)?);
            seqs.push(int(level.last_seq)?);
        }
        let names: Vec<&str> = skus.iter().map(|s| s.as_str()).collect();
        tx.execute(
            "INSERT INTO stock (sku, units, last_seq) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[]) \
             ON CONFLICT (sku) DO UPDATE SET units = EXCLUDED.units, \
             last_seq = EXCLUDED.last_seq",
            &[&names, &units, &seqs],
        )
        .await?;
        Ok(())
    }

    /// The movements the batch wrote.
    async fn flush_movements(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.movements.is_empty() {
            return Ok(());
        }
        let n = self.movements.len();
        let (
            mut skus,
            mut seqs,
            mut kinds,
            mut deltas,
            mut afters,
            mut orders,
            mut ats,
            mut records,
        ) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (sku, seq, row) in &self.movements {
            skus.push(sku.as_str());
            seqs.push(int(*seq)?);
            kinds.push(row.kind.as_str());
            deltas.push(row.delta);
            afters.push(int(row.stock_after)?);
            orders.push(row.order_id.map(|id| int(id.0)).transpose()?);
            ats.push(row.at.millis());
            records.push(codec::encode(row));
        }
        tx.execute(
            "INSERT INTO movements (sku, seq, kind, delta, stock_after, order_id, at_ms, record) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::int8[], \
             $6::int8[], $7::int8[], $8::bytea[])",
            &[
                &skus, &seqs, &kinds, &deltas, &afters, &orders, &ats, &records,
            ],
        )
        .await?;
        Ok(())
    }

    /// The idempotency keys the batch remembered.
    async fn flush_keys(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.new_keys.is_empty() {
            return Ok(());
        }
        let mut users = Vec::new();
        let mut keys = Vec::new();
        let mut ats = Vec::new();
        let mut records = Vec::new();
        for (user, key, at) in &self.new_keys {
            let row = self.keys[&(*user, key.clone())]
                .as_ref()
                .ok_or_else(|| not_read("written idempotency key", key.as_str()))?;
            users.push(int(user.0)?);
            keys.push(key.as_str());
            ats.push(at.millis());
            records.push(codec::encode(row));
        }
        tx.execute(
            "INSERT INTO idempotency (user_id, key, created_ms, record) \
             SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::bytea[])",
            &[&users, &keys, &ats, &records],
        )
        .await?;
        Ok(())
    }

    /// The batch's events, numbered in commit order, and the notice that wakes
    /// every node's feed when (and only if) the batch commits.
    async fn flush_events(self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.events.is_empty() {
            return Ok(());
        }
        let count = int(self.events.len() as u64)?;
        let first: i64 = tx
            .query_one(
                "UPDATE counters SET value = value + $1 WHERE name = 'event_seq' \
                 RETURNING value - $1 + 1",
                &[&count],
            )
            .await?
            .get(0);
        let mut seqs = Vec::with_capacity(self.events.len());
        let mut types = Vec::with_capacity(self.events.len());
        let mut ats = Vec::with_capacity(self.events.len());
        let mut records = Vec::with_capacity(self.events.len());
        for (i, (kind, subject, record, at)) in self.events.into_iter().enumerate() {
            seqs.push(first + int(i as u64)?);
            types.push(kind.as_str());
            ats.push(at.millis());
            records.push(codec::encode(&EventRow {
                id: rand::random(),
                kind,
                at,
                subject,
                record,
            }));
        }
        let last = *seqs.last().expect("at least one event");
        tx.execute(
            "INSERT INTO events (seq, type, at_ms, record) \
             SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::bytea[])",
            &[&seqs, &types, &ats, &records],
        )
        .await?;
        // Delivered to every node's listener when (and only if) the batch commits:
        // their feeds' long polls wake without polling the table.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&super::EVENTS_CHANNEL, &last.to_string()],
        )
        .await?;
        Ok(())
    }

    async fn flush_orders(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let mut new = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let mut changed = (Vec::new(), Vec::new(), Vec::new());
        let mut seen = HashSet::new();
        for id in &self.changed_orders {
            if !seen.insert(*id) {
                continue;
            }
            let Some(Some((row, origin))) = self.orders.get(id) else {
                return Err(not_read("written order", id.0));
            };
            let record = codec::encode(row);
            match origin {
                Origin::New => {
                    new.0.push(int(id.0)?);
                    new.1.push(int(row.user_id.0)?);
                    new.2.push(row.status.as_str());
                    new.3.push(int(row.total_cents)?);
                    new.4.push(row.external_ref.as_ref().map(|r| r.as_str()));
                    new.5.push(row.created_at.millis());
                    new.6.push(record);
                }
                Origin::Stored => {
                    changed.0.push(int(id.0)?);
                    changed.1.push(row.status.as_str());
                    changed.2.push(record);
                }
            }
        }
        if !new.0.is_empty() {
            tx.execute(
                "INSERT INTO orders (id, user_id, status, total_cents, external_ref, created_ms, record) \
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::text[], \
                 $6::int8[], $7::bytea[])",
                &[&new.0, &new.1, &new.2, &new.3, &new.4, &new.5, &new.6],
            )
            .await?;
        }
        if !changed.0.is_empty() {
            tx.execute(
                "UPDATE orders o SET status = v.status, record = v.record \
                 FROM unnest($1::int8[], $2::text[], $3::bytea[]) AS v(id, status, record) \
                 WHERE o.id = v.id",
                &[&changed.0, &changed.1, &changed.2],
            )
            .await?;
        }
        Ok(())
    }
}

impl LedgerRows for Staged {
    fn level(&self, sku: &Sku) -> Result<Level, StoreError> {
        self.levels
            .get(sku)
            .copied()
            .ok_or_else(|| not_read("stock of", sku))
    }

    fn put_movement(&mut self, sku: &Sku, seq: u64, row: &MovementRow) -> Result<(), StoreError> {
        let level = self
            .levels
            .get_mut(sku)
            .ok_or_else(|| not_read("stock of", sku))?;
        *level = Level {
            units: row.stock_after,
            last_seq: seq,
        };
        self.changed_levels.insert(sku.clone());
        self.movements.push((sku.clone(), seq, row.clone()));
        Ok(())
    }

    fn next_order_id(&mut self) -> Result<OrderId, StoreError> {
        let id = self
            .ids
            .next()
            .ok_or_else(|| StoreError::Corrupt("more new orders than ids taken".into()))?;
        Ok(OrderId(uint(id)?))
    }

    fn order(&self, id: OrderId) -> Result<Option<OrderRow>, StoreError> {
        match self.orders.get(&id) {
            Some(row) => Ok(row.as_ref().map(|(r, _)| r.clone())),
            None => Err(not_read("order", id.0)),
        }
    }

    fn insert_order(&mut self, id: OrderId, row: &OrderRow) -> Result<(), StoreError> {
        if let Some(reference) = &row.external_ref {
            self.refs.insert(reference.clone(), true);
        }
        self.orders.insert(id, Some((row.clone(), Origin::New)));
        self.changed_orders.push(id);
        Ok(())
    }

    fn update_order(&mut self, id: OrderId, row: &OrderRow) -> Result<(), StoreError> {
        let Some(Some((stored, _))) = self.orders.get_mut(&id) else {
            return Err(not_read("order", id.0));
        };
        *stored = row.clone();
        self.changed_orders.push(id);
        Ok(())
    }

    fn idempotency(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        self.keys
            .get(&(user, key.clone()))
            .cloned()
            .ok_or_else(|| not_read("idempotency key", key.as_str()))
    }

    fn put_idempotency(
        &mut self,
        user: UserId,
        key: &IdempotencyKey,
        row: &IdempotencyRow,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.keys.insert((user, key.clone()), Some(row.clone()));
        self.new_keys.push((user, key.clone(), at));
        Ok(())
    }

    fn order_ref_taken(&self, reference: &OrderRef) -> Result<bool, StoreError> {
        self.refs
            .get(reference)
            .copied()
            .ok_or_else(|| not_read("order reference", reference.as_str()))
    }

    fn row_events(&self) -> RowEvents {
        self.row_events
    }

    fn append_event(
        &mut self,
        kind: EventType,
        subject: Subject,
        record: Vec<u8>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.events.push((kind, subject, record, at));
        Ok(())
    }
}
