//! The resource an event carries, decoded from its stored record: what the
//! events API and the webhooks show of it.
//!
//! In the web layer, not beside the events: it names every record type (the
//! catalog's, the ledger's, the inbox's), and the rooms that append events must
//! not import them back.

use orderflow_actors::catalog::Product;
use orderflow_actors::common::{CodecError, codec};
use orderflow_actors::domain::OrderStatus;
use orderflow_actors::events::{Event, Subject};
use orderflow_actors::inbox::Job;
use orderflow_actors::ledger::{Movement, Order};

/// What an event is about, as it stood after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Product(Product),
    Movement(Movement),
    Order {
        order: Order,
        previous_status: Option<OrderStatus>,
    },
    Job(Job),
}

/// Decodes an event's record into its resource.
pub fn of(event: &Event) -> Result<Resource, CodecError> {
    let bytes = event.row.record.as_slice();
    Ok(match &event.row.subject {
        Subject::Product { sku, stock } => Resource::Product(Product {
            sku: sku.clone(),
            row: codec::decode(bytes)?,
            stock: *stock,
        }),
        Subject::Movement { sku, seq } => Resource::Movement(Movement {
            sku: sku.clone(),
            seq: *seq,
            row: codec::decode(bytes)?,
        }),
        Subject::Order {
            id,
            previous_status,
        } => Resource::Order {
            order: Order {
                id: *id,
                row: codec::decode(bytes)?,
            },
            previous_status: *previous_status,
        },
        Subject::Job { id } => Resource::Job(Job {
            id: *id,
            row: codec::decode(bytes)?,
        }),
    })
}
