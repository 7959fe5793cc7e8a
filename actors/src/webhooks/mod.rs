//! Webhook endpoints and their delivery state: the durable half of webhooks.
//!
//! The deliverer (in the web layer, which owns the HTTP client and the wire format)
//! asks this actor which endpoints are due and records every attempt here, in one
//! transaction per attempt: the attempt's log row, and on success the endpoint's
//! cursor (the seq of the last event it received), or on failure its retry state.
//! Killed at any moment, delivery resumes from the cursor: an event may arrive
//! twice (receivers dedupe on its id), never zero times.
//!
//! That rule is what lets a success commit without a sync to disk
//! ([`Durability::None`]): losing one in a crash only re-sends the event. The
//! ledger's next commit syncs it, or this actor's own empty durable commit at most
//! [`WEBHOOK_CURSOR_SYNC_MS`] later, so a crash re-sends about a second of events
//! at most, and a busy ledger pays no extra sync per delivery. Failures, disables
//! and every management change are synced before they are answered.

use actix::{Actor, Context, Handler, Message};
use std::time::Duration;

use actix::AsyncContext;
use redb::{Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::common::{Record, StoreError, codec};
use crate::domain::Timestamp;
use crate::events::TypeFilter;
use crate::limits::{WEBHOOK_CURSOR_SYNC_MS, WEBHOOK_ENDPOINTS_MAX, WEBHOOK_SECRET_OVERLAP_SECS};
use crate::mailbox::{Ping, Stop};
use crate::store::tables::{META, WEBHOOK_DELIVERIES, WEBHOOKS, counter};
use crate::store::{Store, get_record};

mod delivery;
pub use delivery::{
    Attempted, DeliveryRow, ListDeliveries, Outcome, RecordAttempts, SkipTo, Verdict,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EndpointId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "enabled" => Some(EndpointStatus::Enabled),
            "disabled" => Some(EndpointStatus::Disabled),
            _ => None,
        }
    }
}

/// A signing secret; an old one keeps signing beside the new one until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub key: [u8; 32],
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRow {
    pub url: String,
    pub events: Vec<TypeFilter>,
    pub description: Option<String>,
    pub status: EndpointStatus,
    /// Why it was disabled (by an admin, a 410, or retries exhausted).
    pub disabled_reason: Option<String>,
    /// The newest first.
    pub secrets: Vec<Secret>,
    pub created_at: Timestamp,
    /// The seq of the last event delivered (or skipped by the filter).
    pub cursor: u64,
    /// Failed attempts at the event after the cursor.
    pub failures: u32,
    /// When the event after the cursor was first attempted (for the retry horizon).
    pub first_failure_at: Option<Timestamp>,
    /// Not before this time, after a failure.
    pub retry_at: Option<Timestamp>,
    /// Attempts logged so far (numbers the delivery log).
    pub attempts_logged: u64,
}

impl Record for EndpointRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "webhook_endpoint";
}

impl EndpointRow {
    pub fn wants(&self, kind: crate::events::EventType) -> bool {
        self.events.iter().any(|f| f.matches(kind))
    }

    /// The secrets that sign now.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<[u8; 32]> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|t| t > now))
            .map(|s| s.key)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub row: EndpointRow,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook endpoint with that id")]
    NotFound,
    #[error("at most {WEBHOOK_ENDPOINTS_MAX} webhook endpoints may exist")]
    TooMany,
    /// A success recorded for an event at or before the endpoint's cursor: some
    /// other deliverer (a node that took the lead while this one thought it still
    /// held it) has moved the cursor on. Nothing was written; this deliverer stops.
    #[error(
        "the endpoint's cursor is already at {cursor}: event {seq} was delivered by another deliverer"
    )]
    Superseded { seq: u64, cursor: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::common::lift_redb_errors!(WebhookError);

/// Owns the webhook endpoints and their delivery log.
pub struct Webhooks {
    store: Store,
    /// A commit without sync is waiting for [`Webhooks::sync`].
    unsynced: bool,
}

impl Webhooks {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            unsynced: false,
        }
    }

    /// A write transaction; `synced: false` commits without a sync to disk (only
    /// for what a crash may undo: a cursor moving forward, its log row).
    fn begin(
        &mut self,
        synced: bool,
        ctx: &mut Context<Self>,
    ) -> Result<redb::WriteTransaction, WebhookError> {
        let mut txn = self.store.db().begin_write().map_err(StoreError::from)?;
        if synced {
            self.unsynced = false;
        } else {
            txn.set_durability(Durability::None)
                .map_err(|e| StoreError::from(redb::Error::from(e)))?;
            if !self.unsynced {
                self.unsynced = true;
                ctx.run_later(Duration::from_millis(WEBHOOK_CURSOR_SYNC_MS), |act, _| {
                    act.sync()
                });
            }
        }
        Ok(txn)
    }

    /// An empty durable commit: it syncs every commit before it.
    fn sync(&mut self) {
        if !std::mem::take(&mut self.unsynced) {
            return;
        }
        let done = self
            .store
            .db()
            .begin_write()
            .map_err(redb::Error::from)
            .and_then(|txn| txn.commit().map_err(redb::Error::from));
        if let Err(error) = done {
            // Only a re-send is at stake; the next durable commit tries again.
            tracing::warn!(%error, "webhooks: syncing delivery cursors failed");
        }
    }

    fn change<T>(
        &mut self,
        id: EndpointId,
        synced: bool,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut EndpointRow) -> T,
    ) -> Result<(Endpoint, T), WebhookError> {
        let txn = self.begin(synced, ctx)?;
        let out = {
            let mut table = txn.open_table(WEBHOOKS)?;
            let mut row: EndpointRow = get_record(&table, id.0)?.ok_or(WebhookError::NotFound)?;
            let out = f(&mut row);
            table.insert(id.0, codec::encode(&row).as_slice())?;
            (Endpoint { id, row }, out)
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(out)
    }
}

impl Actor for Webhooks {
    type Context = Context<Self>;
}

/// Register an endpoint; it receives the events committed from now on.
#[derive(Debug, Message)]
#[rtype(result = "Result<Endpoint, WebhookError>")]
pub struct CreateEndpoint {
    pub url: String,
    pub events: Vec<TypeFilter>,
    pub description: Option<String>,
    pub secret: [u8; 32],
    /// The newest event's seq: the endpoint starts after it.
    pub cursor: u64,
}

impl CreateEndpoint {
    /// The endpoint as stored, created at `at`: enabled, with one secret.
    pub fn row(self, at: Timestamp) -> EndpointRow {
        EndpointRow {
            url: self.url,
            events: self.events,
            description: self.description,
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            secrets: vec![Secret {
                key: self.secret,
                expires_at: None,
            }],
            created_at: at,
            cursor: self.cursor,
            failures: 0,
            first_failure_at: None,
            retry_at: None,
            attempts_logged: 0,
        }
    }
}

impl Handler<CreateEndpoint> for Webhooks {
    type Result = Result<Endpoint, WebhookError>;
    fn handle(&mut self, msg: CreateEndpoint, ctx: &mut Self::Context) -> Self::Result {
        let txn = self.begin(true, ctx)?;
        let endpoint = {
            let mut table = txn.open_table(WEBHOOKS)?;
            if usize::try_from(table.len()?).unwrap_or(usize::MAX) >= WEBHOOK_ENDPOINTS_MAX {
                return Err(WebhookError::TooMany);
            }
            let mut meta = txn.open_table(META)?;
            let id = meta.get(counter::NEXT_WEBHOOK_ID)?.map_or(1, |v| v.value());
            meta.insert(counter::NEXT_WEBHOOK_ID, id + 1)?;
            let row = msg.row(Timestamp::now());
            table.insert(id, codec::encode(&row).as_slice())?;
            Endpoint {
                id: EndpointId(id),
                row,
            }
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(endpoint)
    }
}

/// Every endpoint, by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Endpoint>, WebhookError>")]
pub struct ListEndpoints;

impl Handler<ListEndpoints> for Webhooks {
    type Result = Result<Vec<Endpoint>, WebhookError>;
    fn handle(&mut self, _: ListEndpoints, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read().map_err(StoreError::from)?;
        let table = txn.open_table(WEBHOOKS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (id, bytes) = entry?;
            out.push(Endpoint {
                id: EndpointId(id.value()),
                row: codec::decode(bytes.value())?,
            });
        }
        Ok(out)
    }
}

/// One endpoint.
#[derive(Debug, Message)]
#[rtype(result = "Result<Endpoint, WebhookError>")]
pub struct GetEndpoint {
    pub id: EndpointId,
}

impl Handler<GetEndpoint> for Webhooks {
    type Result = Result<Endpoint, WebhookError>;
    fn handle(&mut self, msg: GetEndpoint, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read().map_err(StoreError::from)?;
        let table = txn.open_table(WEBHOOKS)?;
        let row = get_record(&table, msg.id.0)?.ok_or(WebhookError::NotFound)?;
        Ok(Endpoint { id: msg.id, row })
    }
}

/// Change an endpoint. Re-enabling resumes from its cursor: nothing is skipped.
#[derive(Debug, Message)]
#[rtype(result = "Result<Endpoint, WebhookError>")]
pub struct UpdateEndpoint {
    pub id: EndpointId,
    pub url: Option<String>,
    pub events: Option<Vec<TypeFilter>>,
    pub status: Option<EndpointStatus>,
}

impl Handler<UpdateEndpoint> for Webhooks {
    type Result = Result<Endpoint, WebhookError>;
    fn handle(&mut self, msg: UpdateEndpoint, ctx: &mut Self::Context) -> Self::Result {
        Ok(self.change(msg.id, true, ctx, |row| row.update(msg))?.0)
    }
}

impl EndpointRow {
    /// An admin's change: URL, event types, enabled or disabled.
    pub fn update(&mut self, msg: UpdateEndpoint) {
        let row = self;
        if let Some(url) = msg.url {
            row.url = url;
        }
        if let Some(events) = msg.events {
            row.events = events;
        }
        match msg.status {
            Some(EndpointStatus::Enabled) => {
                row.status = EndpointStatus::Enabled;
                row.disabled_reason = None;
                // A fresh start of the retry schedule for the same event.
                row.failures = 0;
                row.first_failure_at = None;
                row.retry_at = None;
            }
            Some(EndpointStatus::Disabled) => {
                row.status = EndpointStatus::Disabled;
                row.disabled_reason = Some("disabled by an admin".into());
            }
            None => {}
        }
    }

    /// A new signing secret at `now`; the old ones keep signing for the overlap.
    pub fn rotate(&mut self, secret: [u8; 32], now: Timestamp) {
        let row = self;
        let until = now.plus_secs(WEBHOOK_SECRET_OVERLAP_SECS);
        row.secrets.retain(|s| s.expires_at.is_none_or(|t| t > now));
        for s in &mut row.secrets {
            s.expires_at = Some(s.expires_at.map_or(until, |t| t.min(until)));
        }
        row.secrets.insert(
            0,
            Secret {
                key: secret,
                expires_at: None,
            },
        );
    }
}

#[derive(Debug, Message)]
#[rtype(result = "Result<(), WebhookError>")]
pub struct DeleteEndpoint {
    pub id: EndpointId,
}

impl Handler<DeleteEndpoint> for Webhooks {
    type Result = Result<(), WebhookError>;
    fn handle(&mut self, msg: DeleteEndpoint, ctx: &mut Self::Context) -> Self::Result {
        let txn = self.begin(true, ctx)?;
        {
            let mut table = txn.open_table(WEBHOOKS)?;
            table.remove(msg.id.0)?.ok_or(WebhookError::NotFound)?;
            let mut log = txn.open_table(WEBHOOK_DELIVERIES)?;
            log.retain_in((msg.id.0, 0)..=(msg.id.0, u64::MAX), |_, _| false)?;
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }
}

/// A new signing secret; the old ones keep signing for the overlap.
#[derive(Debug, Message)]
#[rtype(result = "Result<Endpoint, WebhookError>")]
pub struct RotateSecret {
    pub id: EndpointId,
    pub secret: [u8; 32],
}

impl Handler<RotateSecret> for Webhooks {
    type Result = Result<Endpoint, WebhookError>;
    fn handle(&mut self, msg: RotateSecret, ctx: &mut Self::Context) -> Self::Result {
        let now = Timestamp::now();
        Ok(self
            .change(msg.id, true, ctx, |row| row.rotate(msg.secret, now))?
            .0)
    }
}

impl Handler<Ping> for Webhooks {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        self.store.check_readable()
    }
}

impl Handler<Stop> for Webhooks {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        self.sync();
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}
