//! Events: every change another system may act on, written to one table in the
//! same transaction as the change (a transactional outbox).
//!
//! - [`outbox`]: appending inside a write transaction; `seq` comes from a counter
//!   in that same transaction, and redb admits one write transaction at a time, so
//!   seqs are gapless and grow in commit order: a reader that has seen everything
//!   up to N never misses an event that commits later;
//! - [`reader`]: reading the feed on a snapshot, and the actor (a pool of readers)
//!   that serves it.
//!
//! An event stores the resource as its record, not as JSON: how a resource looks
//! on the wire is the web layer's business, and the same record renders the same
//! bytes every time it is read or delivered. This module imports no record type,
//! so the tables that append events (the book, the catalog's writes, the jobs) can
//! import it without a circle.

pub mod outbox;
pub mod reader;

use serde::{Deserialize, Serialize};

use crate::domain::{JobId, OrderId, OrderStatus, Sku, Timestamp};
use crate::limits::IDEMPOTENCY_KEY_TTL_SECS;

pub use outbox::{Outbox, RowEvents};
pub use reader::{EventPage, EventsError, EventsReader, ListEvents};

/// The kinds of event, by their stable names. Stored by position: new kinds go at
/// the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    ProductCreated,
    ProductUpdated,
    ProductArchived,
    StockChanged,
    OrderPlaced,
    OrderPaid,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
    ImportCompleted,
    ImportFailed,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::ProductCreated,
        EventType::ProductUpdated,
        EventType::ProductArchived,
        EventType::StockChanged,
        EventType::OrderPlaced,
        EventType::OrderPaid,
        EventType::OrderShipped,
        EventType::OrderDelivered,
        EventType::OrderCancelled,
        EventType::ImportCompleted,
        EventType::ImportFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ProductCreated => "product.created",
            EventType::ProductUpdated => "product.updated",
            EventType::ProductArchived => "product.archived",
            EventType::StockChanged => "stock.changed",
            EventType::OrderPlaced => "order.placed",
            EventType::OrderPaid => "order.paid",
            EventType::OrderShipped => "order.shipped",
            EventType::OrderDelivered => "order.delivered",
            EventType::OrderCancelled => "order.cancelled",
            EventType::ImportCompleted => "import.completed",
            EventType::ImportFailed => "import.failed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The event of an order reaching `status`.
    pub fn of_status(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Placed => EventType::OrderPlaced,
            OrderStatus::Paid => EventType::OrderPaid,
            OrderStatus::Shipped => EventType::OrderShipped,
            OrderStatus::Delivered => EventType::OrderDelivered,
            OrderStatus::Cancelled => EventType::OrderCancelled,
        }
    }
}

/// Which event types a reader (or a webhook endpoint) wants: one exact name, or
/// every name under a prefix (`order.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypeFilter {
    Exact(EventType),
    /// The part before `.*`, e.g. `order`.
    Prefix(String),
    /// `*`: everything.
    All,
    /// Any of these (a webhook endpoint's list). Never parsed from a query.
    AnyOf(Vec<TypeFilter>),
}

impl TypeFilter {
    /// `order.placed`, `order.*` or `*`; a prefix must name at least one type.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw == "*" {
            return Ok(TypeFilter::All);
        }
        if let Some(prefix) = raw.strip_suffix(".*") {
            let known = EventType::ALL
                .iter()
                .any(|t| t.as_str().split('.').next() == Some(prefix));
            return if known {
                Ok(TypeFilter::Prefix(prefix.to_owned()))
            } else {
                Err(format!("no event type starts with `{prefix}.`"))
            };
        }
        EventType::parse(raw)
            .map(TypeFilter::Exact)
            .ok_or_else(|| format!("`{raw}` is not an event type"))
    }

    pub fn matches(&self, kind: EventType) -> bool {
        match self {
            TypeFilter::Exact(t) => *t == kind,
            TypeFilter::Prefix(p) => kind.as_str().split('.').next() == Some(p.as_str()),
            TypeFilter::All => true,
            TypeFilter::AnyOf(filters) => filters.iter().any(|f| f.matches(kind)),
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            TypeFilter::Exact(t) => t.as_str().to_owned(),
            TypeFilter::Prefix(p) => format!("{p}.*"),
            TypeFilter::All => "*".to_owned(),
            TypeFilter::AnyOf(filters) => filters
                .iter()
                .map(TypeFilter::as_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// What an event is about. The resource itself is stored beside it as the
/// record's own encoded bytes (see [`EventRow::record`]), so this module needs
/// none of the record types and any release that reads the table reads the event.
/// Stored by position: new variants go at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    /// `record` is a `catalog::ProductRow`; `stock` the level after the change.
    Product { sku: Sku, stock: u64 },
    /// `record` is a `ledger::records::MovementRow`.
    Movement { sku: Sku, seq: u64 },
    /// `record` is a `ledger::records::OrderRow`; a status change names the status
    /// before it.
    Order {
        id: OrderId,
        previous_status: Option<OrderStatus>,
    },
    /// `record` is an `inbox::jobs::JobRow`.
    Job { id: JobId },
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// Random, so an id stays unique forever, even across a restored backup.
    pub id: [u8; 16],
    pub kind: EventType,
    pub at: Timestamp,
    pub subject: Subject,
    /// The resource as it stood after the change: its record's bytes, exactly as
    /// its own table stores them (version byte first), so it decodes through the
    /// same codec, old versions included.
    pub record: Vec<u8>,
}

impl crate::common::Record for EventRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "event";
}

/// An event with its place in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub row: EventRow,
}

impl Event {
    /// The opaque id clients see: `evt_` and 32 hex digits.
    pub fn id(&self) -> String {
        let mut id = String::with_capacity(36);
        id.push_str("evt_");
        crate::text::push_hex(&mut id, &self.row.id);
        id
    }
}

/// Where the periodic purge cuts, as of one moment: idempotency keys older than
/// [`IDEMPOTENCY_KEY_TTL_SECS`], events older than the retention. Both ledgers
/// purge to these cutoffs, a bounded number of rows at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeCutoffs {
    pub keys: Timestamp,
    pub events: Timestamp,
}

impl PurgeCutoffs {
    pub fn at(now: Timestamp, retention_days: u64) -> Self {
        Self {
            keys: now.minus_secs(IDEMPOTENCY_KEY_TTL_SECS),
            events: now.minus_secs(retention_days.saturating_mul(86_400)),
        }
    }
}

/// The seqs of the oldest events that are past `cutoff`, from `oldest_first`
/// (at most as many as it yields): the purge stops at the first event still
/// kept, so the feed's history never has a hole. Both ledgers purge events so.
pub fn expired_prefix<E>(
    oldest_first: impl IntoIterator<Item = Result<(u64, Timestamp), E>>,
    cutoff: Timestamp,
) -> Result<Vec<u64>, E> {
    let mut expired = Vec::new();
    for event in oldest_first {
        let (seq, at) = event?;
        if at >= cutoff {
            break;
        }
        expired.push(seq);
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert!(TypeFilter::parse(t.as_str()).unwrap().matches(t));
        }
    }

    #[test]
    fn a_prefix_matches_its_family_only() {
        let orders = TypeFilter::parse("order.*").unwrap();
        assert!(orders.matches(EventType::OrderPlaced));
        assert!(orders.matches(EventType::OrderCancelled));
        assert!(!orders.matches(EventType::StockChanged));
        assert!(TypeFilter::parse("ord.*").is_err());
        assert!(TypeFilter::parse("order.bogus").is_err());
        assert!(
            TypeFilter::parse("*")
                .unwrap()
                .matches(EventType::ImportFailed)
        );
    }
}
