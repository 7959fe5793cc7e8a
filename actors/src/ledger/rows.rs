//! The storage seam under the ledger's rules: what [`super::rules::Rules`] reads
//! and writes, as two traits.
//!
//! The rules (check everything, then write) are written once against
//! [`LedgerRows`] and [`ProductRows`]. On redb ([`super::redb_rows`]) they are the
//! ledger's tables open in the batch's write transaction, so a read sees every
//! earlier write of the batch. On PostgreSQL ([`crate::pg::staged`]), the rows a
//! batch needs are read and locked first, the rules run against that copy, and
//! what they wrote is sent back in a few set-based statements: the same rules,
//! another place for the rows.

use super::records::{IdempotencyRow, Level, MovementRow, OrderRow};
use crate::catalog::{CatalogTables, ProductRow};
use crate::common::StoreError;
use crate::domain::{GroupHandle, IdempotencyKey, OrderId, OrderRef, Sku, Timestamp, UserId};
use crate::events::{EventType, RowEvents, Subject};

/// The catalog rows the ledger's rules read (price and name of a line, whether a
/// SKU is archived, the other variants of a product's group).
pub trait ProductRows {
    fn product(&self, sku: &Sku) -> Result<Option<ProductRow>, StoreError>;
    /// The active products of a variant group, by SKU.
    fn group_members(&self, group: &GroupHandle) -> Result<Vec<Sku>, StoreError>;
}

impl ProductRows for CatalogTables<'_> {
    fn product(&self, sku: &Sku) -> Result<Option<ProductRow>, StoreError> {
        self.get(sku)
    }
    fn group_members(&self, group: &GroupHandle) -> Result<Vec<Sku>, StoreError> {
        CatalogTables::group_members(self, group)
    }
}

/// The ledger's rows as its rules see them inside one transaction: a read returns
/// every earlier write of that transaction.
pub trait LedgerRows {
    /// A SKU's stock now; zero with no movements for a SKU never stocked.
    fn level(&self, sku: &Sku) -> Result<Level, StoreError>;
    /// Writes movement `seq` of `sku` and makes its `stock_after` the SKU's level.
    fn put_movement(&mut self, sku: &Sku, seq: u64, row: &MovementRow) -> Result<(), StoreError>;
    /// The id the next new order takes.
    fn next_order_id(&mut self) -> Result<OrderId, StoreError>;
    fn order(&self, id: OrderId) -> Result<Option<OrderRow>, StoreError>;
    /// Writes a new order, its place in its user's list and its reference.
    fn insert_order(&mut self, id: OrderId, row: &OrderRow) -> Result<(), StoreError>;
    /// Writes a changed order (status, updated_at).
    fn update_order(&mut self, id: OrderId, row: &OrderRow) -> Result<(), StoreError>;
    fn idempotency(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRow>, StoreError>;
    /// Remembers a key used at `at` (it expires from then).
    fn put_idempotency(
        &mut self,
        user: UserId,
        key: &IdempotencyKey,
        row: &IdempotencyRow,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Whether an order with this external reference is in the ledger.
    fn order_ref_taken(&self, reference: &OrderRef) -> Result<bool, StoreError>;
    /// How imports of products and inventory report their rows (`--import-events`).
    fn row_events(&self) -> RowEvents;
    /// Appends an event about `subject`, whose record as it now stands is `record`
    /// (encoded as its table stores it); its seq is taken in commit order.
    fn append_event(
        &mut self,
        kind: EventType,
        subject: Subject,
        record: Vec<u8>,
        at: Timestamp,
    ) -> Result<(), StoreError>;
}
