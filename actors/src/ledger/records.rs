//! The ledger's records and the answers of its rules: the rows it keeps (orders,
//! movements, idempotency keys), the requests it takes and the errors it answers.
//! Plain data; the rules that write them are in [`super::rules`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::common::Page;
use crate::common::{Record, StoreError};
use crate::domain::{
    Cents, CheckoutRejection, IdempotencyKey, JobId, MovementKind, OrderId, OrderLines, OrderRef,
    OrderStatus, Quantity, Reason, Sku, Timestamp, UserId,
};
use crate::limits::{LIST_SCAN_ROWS_MAX, STOCK_UNITS_MAX};
use crate::telemetry::{Event, OrderPlaced, OrderRejected, Telemetry};

/// Who caused a movement or an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    Api,
    Import(JobId),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Api => f.write_str("api"),
            Source::Import(job) => write!(f, "import:{}", job.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementRow {
    pub kind: MovementKind,
    pub delta: i64,
    pub stock_after: u64,
    pub order_id: Option<OrderId>,
    pub source: Source,
    pub reason: Option<Reason>,
    pub at: Timestamp,
}

impl Record for MovementRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "movement";
}

/// One stock movement of one SKU; `seq` counts that SKU's movements from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub sku: Sku,
    pub seq: u64,
    pub row: MovementRow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Sku,
    /// The product's name when the order was placed; archived products keep it.
    pub name: String,
    pub unit_price: Cents,
    pub quantity: Quantity,
    pub line_total_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRow {
    pub user_id: UserId,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub total_cents: u64,
    pub currency: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub source: Source,
    pub external_ref: Option<OrderRef>,
}

impl Record for OrderRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "order";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub row: OrderRow,
}

/// What an idempotency key remembers: which request it was for and the order as it
/// was answered, so a replay gets the same body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRow {
    pub fingerprint: [u8; 32],
    pub order_id: OrderId,
    pub snapshot: OrderRow,
}

impl Record for IdempotencyRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "idempotency";
}

/// A checkout, validated at the edge.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    pub user: UserId,
    pub lines: OrderLines,
    pub idempotency_key: Option<IdempotencyKey>,
    pub source: Source,
    /// External reference of an imported order; refused if already in the ledger.
    pub external_ref: Option<OrderRef>,
    /// Unit prices an import file claims; each must equal the catalog price.
    pub expected_prices: Vec<(Sku, Cents)>,
}

impl OrderRequest {
    /// Identifies "the same body" for idempotency: the merged, sorted lines.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for (sku, qty) in self.lines.iter() {
            h.update(sku.as_str().as_bytes());
            h.update([0]);
            h.update(qty.get().to_le_bytes());
        }
        h.finalize().into()
    }
}

/// A SKU the order could not take enough of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub sku: Sku,
    pub requested: u32,
    pub available: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("unknown or archived SKUs: {0:?}")]
    UnknownSkus(Vec<Sku>),
    #[error("insufficient stock")]
    Insufficient(Vec<Shortage>),
    #[error("the idempotency key was used with a different request")]
    KeyReused,
    #[error("a request with this idempotency key is still being processed")]
    InFlight,
    #[error("order reference {0} is already in the ledger")]
    DuplicateRef(String),
    #[error("unit price of {sku} is {claimed}, the catalog says {catalog}")]
    PriceMismatch {
        sku: Sku,
        claimed: u64,
        catalog: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CheckoutError {
    pub fn rejection(&self) -> CheckoutRejection {
        match self {
            CheckoutError::UnknownSkus(_) => CheckoutRejection::UnknownSku,
            CheckoutError::Insufficient(_) => CheckoutRejection::InsufficientStock,
            CheckoutError::KeyReused => CheckoutRejection::IdempotencyKeyReused,
            CheckoutError::InFlight => CheckoutRejection::InFlight,
            CheckoutError::DuplicateRef(_) => CheckoutRejection::DuplicateOrderRef,
            CheckoutError::PriceMismatch { .. } => CheckoutRejection::PriceMismatch,
            CheckoutError::Store(_) => CheckoutRejection::Storage,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("order not found")]
    NotFound,
    #[error("an order cannot go from {} to {}", from.as_str(), to.as_str())]
    InvalidTransition { from: OrderStatus, to: OrderStatus },
    /// Cancelling would restock `sku` past [`STOCK_UNITS_MAX`].
    #[error(
        "restocking {sku} would make its stock {would_be}, above the maximum {STOCK_UNITS_MAX}"
    )]
    RestockAboveMax { sku: Sku, would_be: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("unknown or archived SKU")]
    UnknownSku,
    #[error("stock cannot go below zero: {available} available")]
    Insufficient { available: u64 },
    #[error("stock would be {would_be}, above the maximum {STOCK_UNITS_MAX}")]
    AboveMax { would_be: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::common::lift_redb_errors!(CheckoutError, OrderError, StockError);

/// The outcome of a checkout that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub order: Order,
    /// True when an idempotency key matched an earlier order: nothing new was written.
    pub replayed: bool,
}

/// Who asks for an order change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub is_admin: bool,
}

impl Caller {
    pub fn may_see(&self, order: &OrderRow) -> bool {
        self.is_admin || order.user_id == self.user
    }
}

/// A SKU's stock level and the seq of its last movement (0 before the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Level {
    pub units: u64,
    pub last_seq: u64,
}

/// A stock movement to record, before it has a seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementDraft {
    pub kind: MovementKind,
    pub delta: i64,
    pub order_id: Option<OrderId>,
    pub source: Source,
    pub reason: Option<Reason>,
    pub at: Timestamp,
}

/// A page of orders, newest first, from a scan of `(id, Some(order) when it
/// passes the filter)`: both ledgers page `ListOrders` so, at most
/// [`LIST_SCAN_ROWS_MAX`] orders looked at, a page stopped there going on below
/// the first order not looked at.
pub fn orders_page<E>(
    rows: impl IntoIterator<Item = Result<(OrderId, Option<Order>), E>>,
    limit: usize,
) -> Result<Page<Order, OrderId>, E> {
    Page::from_scan(
        rows,
        limit,
        LIST_SCAN_ROWS_MAX,
        |o| o.id,
        |id| OrderId(id.0 + 1),
    )
}

/// Idempotency keys whose checkout is being written and not yet committed: a
/// second checkout with one of them is answered [`CheckoutError::InFlight`]
/// instead of being written twice. The redb ledger holds them from a checkout's
/// arrival to its batch's commit; PostgreSQL's for one batch (a later batch
/// reads the committed key and replays it).
#[derive(Debug, Default)]
pub struct KeysInFlight(HashSet<(UserId, IdempotencyKey)>);

impl KeysInFlight {
    /// Takes the request's key, or says it is taken.
    pub fn take(&mut self, request: &OrderRequest) -> Result<(), CheckoutError> {
        match &request.idempotency_key {
            Some(key) if !self.0.insert((request.user, key.clone())) => {
                Err(CheckoutError::InFlight)
            }
            _ => Ok(()),
        }
    }

    /// Forgets every key (their batches committed or failed).
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Counts one checkout's outcome, as both ledgers do: a new order, nothing for
/// a replay, or the reason it was refused.
pub fn count_checkout(telemetry: &Telemetry, placed: &Result<Placed, CheckoutError>) {
    match placed {
        Ok(p) if !p.replayed => OrderPlaced.emit(telemetry),
        Ok(_) => {}
        Err(e) => OrderRejected {
            reason: e.rejection(),
        }
        .emit(telemetry),
    }
}
