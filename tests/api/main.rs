//! orderflow's integration tests: one binary, the real server on port 0.
//!
//! Index:
//! - `helpers`   — spawn_app (in-process) and ChildServer (the real binary)
//! - `apikeys`   — API keys: scopes, revocation, shown once
//! - `architecture` — the invariants of ARCHITECTURE.md, checked on the source tree
//! - `auth`      — register, login, throttling, refresh rotation, tokens
//! - `backup`    — online backups, restores, the release fixture data directory
//! - `console`   — the operator console in a real browser (Chromium via chromedriver)
//! - `crash`     — SIGKILL under load, then reopen
//! - `events`    — the outbox and the events feed
//! - `products`  — catalog reads and admin writes
//! - `search`    — ranked search, facets, cursors, the index rebuilt at start
//! - `search_model` — search's hits and facets against a brute-force count
//! - `product_cache` — every acknowledged write shows in the next read of a hot product
//! - `webhooks`  — SSRF guard, signed deliveries, retries, disable and resume
//! - `errors`    — problem+json for every kind of bad request
//! - `failover`  — three nodes while the PostgreSQL primary dies and the standby is promoted
//! - `hardening` — regressions: hostile files and clients that once broke things
//! - `operations` — metrics, readiness, header limits, overload
//! - `orders`    — checkout, races, idempotency, lifecycle
//! - `hostile`   — forged tokens, smuggled fields, hostile strings and numbers
//! - `inbox`     — dropped files and uploads through the import pipeline
//! - `lifecycle` — restart, single owner, graceful shutdown, CLI
//! - `logs`      — access lines, formats, filters, the request id on every line
//! - `nats`      — events to a three-server NATS JetStream cluster, leader and node killed
//! - `nodes`     — several nodes on one PostgreSQL database acting as one service
//! - `shared_inbox` — three node processes on one inbox; the loading one killed
//!
//! With `ORDERFLOW_TEST_BACKEND=postgres`, `spawn_app` keeps the state in a fresh
//! PostgreSQL database instead of a redb file (see `helpers`); `.ci/test` runs the
//! modules of the rooms that backend has that way too.

// Test data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod helpers;
#[path = "../../actors/tests/support/pg.rs"]
mod pg;

mod apikeys;
mod architecture;
mod auth;
mod backup;
mod console;
mod crash;
mod errors;
mod events;
mod failover;
mod hardening;
mod hostile;
mod inbox;
mod lifecycle;
mod logs;
mod nats;
mod nodes;
mod operations;
mod orders;
mod product_cache;
mod products;
mod search;
mod search_model;
mod shared_inbox;
pub mod webhooks;
