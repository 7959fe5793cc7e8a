//! orderflow's web layer and command line. The state lives in `orderflow_actors`;
//! this crate turns HTTP requests and CLI commands into messages for it.
//!
//! A request goes: [`middleware::observe`] (request id, log, metrics) → a handler in
//! [`api`] (strict parsing into domain types, auth extractors) → an actor's
//! [`orderflow_actors::mailbox::Mailbox`] → back as JSON, or as a problem built in
//! [`error`].

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod control;
pub mod datagen;
pub mod error;
pub mod follow;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod progress;
pub mod relay;
pub mod search_service;
pub mod services;
pub mod startup;
pub mod state;
pub mod webhooks;
