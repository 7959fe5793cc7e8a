//! orderflow's state: validated domain values, the embedded store and the actors
//! that own it. Nothing here knows about HTTP; the web layer (the `orderflow` crate)
//! turns requests into the messages defined here, and the inbox pipeline turns
//! dropped files into the same messages.
//!
//! Where things go:
//! - a request: `orderflow::api` → [`catalog::Catalog`], [`users::UserStore`] or
//!   [`ledger::Ledger`] (through [`mailbox::Mailbox`], which bounds every queue);
//! - a dropped file: [`inbox::watcher`] claims it → [`inbox::pipeline`] runs extract →
//!   transform → load → [`ledger::Ledger`] commits each batch with the file position.

pub mod apikeys;
pub mod catalog;
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
pub mod store;
pub mod telemetry;
pub mod text;
pub mod users;
pub mod webhooks;
