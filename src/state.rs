//! What every handler can reach: the actors' mailboxes and the request-independent
//! settings. Handlers never get the database itself.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use orderflow_actors::apikeys::ApiKeys;
use orderflow_actors::catalog::Catalog;
use orderflow_actors::domain::Currency;
use orderflow_actors::events::EventsReader;
use orderflow_actors::inbox::watcher::{InboxWatcher, RunnerAlive};
use orderflow_actors::ledger::Ledger;
use orderflow_actors::mailbox::Mailbox;
use orderflow_actors::users::UserStore;
use orderflow_actors::webhooks::Webhooks;

use crate::auth::jwt::JwtKeys;
use crate::auth::throttle::{LoginThrottle, RegisterThrottle};
use crate::metrics::Metrics;
use crate::webhooks::deliverer::Deliverer;

pub struct AppState {
    /// The OpenAPI document, built once at start-up.
    pub openapi: &'static str,
    pub catalog: Mailbox<Catalog>,
    pub users: Mailbox<UserStore>,
    pub ledger: Mailbox<Ledger>,
    pub events: Mailbox<EventsReader>,
    pub api_keys: Mailbox<ApiKeys>,
    pub webhooks: Mailbox<Webhooks>,
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
    /// The inbox watcher, which takes uploads into the pipeline.
    pub inbox: Mailbox<InboxWatcher>,
    /// Whether the inbox's job runner is still alive (for readiness).
    pub inbox_runner: RunnerAlive,
    /// Where uploads are streamed before they are taken.
    pub uploads: PathBuf,
}
