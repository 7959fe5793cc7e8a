//! Webhooks: the events feed pushed to the shop's other systems.
//!
//! - [`guard`]: the SSRF guard, at registration and at every delivery;
//! - [`sign`]: Standard Webhooks signatures;
//! - [`deliverer`]: the loop that sends each endpoint its events in seq order.
//!
//! The endpoints and their durable delivery state live in the actors crate
//! (`orderflow_actors::webhooks`); this side owns the HTTP client and the wire
//! format, as the API does.

pub mod deliverer;
pub mod guard;
pub mod sign;
