//! The resource an event carries, decoded from its stored record.
//!
//! Kept apart from `events/mod.rs` because it names every record type: the tables
//! that append events import `events`, and this file imports them, so arrows
//! still point one way.

use super::{Event, Subject};
use crate::catalog::Product;
use crate::domain::OrderStatus;
use crate::inbox::jobs::Job;
use crate::ledger::records::{Movement, Order};
use crate::store::{CodecError, codec};

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
