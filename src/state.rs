//! What every handler can reach: the actors' mailboxes and the request-independent
//! settings. Handlers never get the database itself.
//!
//! Each room is a [`Room`]: the redb actor, or its PostgreSQL twin with `--postgres`.
//! Both backends have every room; what one backend does not do (online backups
//! on PostgreSQL) is reached through `Room::redb`, and its route answers 501 on
//! the other.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use orderflow_actors::apikeys::ApiKeys;
use orderflow_actors::catalog::{Catalog, ProductCache};
use orderflow_actors::domain::Currency;
use orderflow_actors::events::EventsReader;
use orderflow_actors::inbox::{InboxWatcher, RunnerAlive};
use orderflow_actors::ledger::Ledger;
use orderflow_actors::mailbox::Mailbox;
use orderflow_actors::pg::{PgApiKeys, PgCatalog, PgEvents, PgLedgerActor, PgUsers, PgWebhooks};
use orderflow_actors::room::Room;
use orderflow_actors::search::SearchReader;
use orderflow_actors::users::UserStore;
use orderflow_actors::webhooks::Webhooks;

use crate::auth::jwt::JwtKeys;
use crate::auth::throttle::{LoginThrottle, RegisterThrottle};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::webhooks::deliverer::Deliverer;

pub struct AppState {
    /// The OpenAPI document, built once at start-up.
    pub openapi: &'static str,
    pub catalog: Room<Catalog, PgCatalog>,
    /// The search index's readers (both backends: the index is the node's own).
    pub search: Mailbox<SearchReader>,
    /// Products' response bytes as last sent (redb only; see
    /// `orderflow_actors::catalog::cache`).
    pub product_cache: Option<ProductCache>,
    pub users: Room<UserStore, PgUsers>,
    pub ledger: Room<Ledger, PgLedgerActor>,
    pub events: Room<EventsReader, PgEvents>,
    pub api_keys: Room<ApiKeys, PgApiKeys>,
    pub webhooks: Room<Webhooks, PgWebhooks>,
    /// `--webhook-allow-private`.
    pub webhook_allow_private: bool,
    /// Sends test events (`POST /webhooks/{id}/test`).
    pub deliverer: Deliverer,
    /// The newest committed event's seq: the feed's long polls wait on it.
    pub newest_event: watch::Receiver<u64>,
    pub jwt: JwtKeys,
    pub refresh_ttl_secs: u64,
    pub currency: Currency,
    pub throttle: LoginThrottle,
    pub register_throttle: RegisterThrottle,
    pub metrics: Arc<Metrics>,
    /// The inbox's watcher, which takes uploads into the pipeline.
    pub inbox: Mailbox<InboxWatcher>,
    /// Whether the inbox's job runner is still alive (for readiness).
    pub inbox_runner: RunnerAlive,
    /// Where uploads are streamed before they are taken.
    pub uploads: PathBuf,
}

/// The problem for a route whose room this backend does not have yet.
fn not_here(what: &str) -> ApiError {
    ApiError::not_on_this_backend(what)
}

impl AppState {
    /// The redb ledger, for backups.
    pub fn redb_ledger(&self, what: &str) -> Result<&Mailbox<Ledger>, ApiError> {
        self.ledger.redb().ok_or_else(|| not_here(what))
    }
}
