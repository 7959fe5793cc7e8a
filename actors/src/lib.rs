//! orderflow's state: validated domain values, the embedded store and the actors
//! that own it. Nothing here knows about HTTP; the web layer (the `orderflow` crate)
//! turns requests into the messages defined here, and the inbox pipeline turns
//! dropped files into the same messages.
//!
//! Each module is a room, and its `mod.rs` is its front: the web layer names a
//! room's own items (`inbox::Inbox`, `pg::PgUsers`, `ledger::PlaceOrder`), never a
//! file inside it (a test in `tests/api/architecture.rs` keeps it so).
//!
//! Where things go:
//! - a request: `orderflow::api` → a room's actor through [`room::Room`] (the redb
//!   actor or its PostgreSQL twin) and [`mailbox::Mailbox`], which bounds every
//!   queue: [`catalog`] reads, [`users`], [`ledger`] for every write of stock,
//!   orders and products, [`events`], [`webhooks`], [`apikeys`];
//! - a dropped file: [`inbox`]'s watcher claims it → its pipeline runs extract →
//!   transform → load → the ledger commits each batch with the file position;
//! - a change of state: [`ledger::rules`] over [`ledger::rows`], on redb
//!   ([`store`]) or PostgreSQL ([`pg`]), with its event in the same transaction;
//! - what both backends share: [`common`] (the error, the record codec, pages),
//!   [`domain`] (validated values and closed sets), [`limits`].

pub mod apikeys;
pub mod catalog;
pub mod common;
pub mod domain;
pub mod events;
pub mod failpoint;
pub mod inbox;
pub mod json_nesting;
pub mod ledger;
pub mod limits;
pub mod mailbox;
pub mod pg;
pub mod priority;
pub mod room;
pub mod search;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod users;
pub mod webhooks;
