//! Events to NATS JetStream (`--events-nats URL`, contract §6): a relay reads the
//! outbox in seq order and publishes each event to the stream `ORDERFLOW_EVENTS`
//! (created if missing, `--events-nats-replicas` copies), subject
//! `orderflow.events.<type>`, with `Nats-Msg-Id` = the event's id.
//!
//! - **Order.** One event at a time, each publish acknowledged by the stream before
//!   the next is sent: the stream holds the events in seq order.
//! - **Durable position, in the stream itself.** Every message carries its seq in
//!   the header `Orderflow-Seq`; a relay that (re)starts reads the stream's last
//!   message and goes on after it. The position is as durable as the stream (R3:
//!   on three servers) and the same on both backends.
//! - **No duplicates.** A message whose publish was cut off is published again with
//!   the same `Nats-Msg-Id`, and JetStream drops it inside its duplicate window (2
//!   minutes by default); so do the messages of a second relay during a takeover.
//! - **One relay at a time on PostgreSQL**: the node holding a session advisory
//!   lock (like the webhook deliverer); another takes over within a second of it
//!   stopping.
//! - Lag (events committed but not yet in the stream) is the metric
//!   `orderflow_nats_relay_lag_events`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use orderflow_actors::domain::Currency;
use orderflow_actors::events::{EventsReader, TypeFilter};
use orderflow_actors::limits::{NATS_RELAY_PAGE_MAX, NATS_RETRY_MS};
use orderflow_actors::pg::PgEvents;
use orderflow_actors::room::Room;
use orderflow_actors::telemetry::{Event as _, NatsRelayed, Telemetry};
use tokio::sync::{Notify, watch};

use crate::api::json;
use crate::follow::{Next, next_after};
use crate::leader::while_leading;

/// The stream the relay publishes to.
pub const STREAM: &str = "ORDERFLOW_EVENTS";
/// The subjects of the stream: `orderflow.events.<type>`.
pub const SUBJECT_PREFIX: &str = "orderflow.events";
/// The header carrying each message's event seq (the relay's durable position).
pub const SEQ_HEADER: &str = "Orderflow-Seq";
/// The session advisory lock whose holder relays, on PostgreSQL ("relaynat").
const RELAY_LOCK: i64 = 0x7265_6c61_796e_6174;

/// The relay of one node.
#[derive(Clone)]
pub struct Relay {
    /// One or more server URLs, comma-separated.
    pub url: String,
    pub replicas: usize,
    pub events: Room<EventsReader, PgEvents>,
    /// On PostgreSQL, the database URL: only the holder of the relay lock relays.
    pub leader_lock: Option<String>,
    pub newest: watch::Receiver<u64>,
    pub currency: Currency,
    pub telemetry: Telemetry,
}

impl Relay {
    /// Relays until `stop` fires (on PostgreSQL, only while this node holds the
    /// relay lock).
    pub async fn run(self, stop: Arc<Notify>) {
        let lock = self.leader_lock.clone();
        while_leading(lock, RELAY_LOCK, "events relay", stop, move |inner| {
            self.clone().relay(inner)
        })
        .await;
    }

    /// Relays until `stop` fires, connecting again after a pause whenever NATS is
    /// out of reach.
    async fn relay(self, stop: Arc<Notify>) {
        loop {
            let failed = tokio::select! {
                () = stop.notified() => return,
                failed = self.session() => failed,
            };
            tracing::warn!(error = %failed, "events relay: NATS out of reach; trying again");
            tokio::select! {
                () = stop.notified() => return,
                () = tokio::time::sleep(Duration::from_millis(NATS_RETRY_MS)) => {}
            }
        }
    }

    /// One connection's worth of relaying; ends only with what went wrong.
    async fn session(&self) -> String {
        match self.publish_all().await {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    async fn publish_all(&self) -> Result<std::convert::Infallible, String> {
        let servers = self
            .url
            .split(',')
            .map(|u| u.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--events-nats: {e}"))?;
        let client = async_nats::connect(servers)
            .await
            .map_err(|e| e.to_string())?;
        let js = jetstream::new(client);
        let mut stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec![format!("{SUBJECT_PREFIX}.>")],
                num_replicas: self.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("stream {STREAM}: {e}"))?;
        let mut position = relayed_through(&mut stream).await?;
        tracing::info!(after = position, "events relay: publishing");
        let mut newest = self.newest.clone();
        loop {
            let next =
                next_after(&self.events, position, TypeFilter::All, NATS_RELAY_PAGE_MAX).await?;
            let page = match next {
                Next::Page(page) => page,
                Next::Purged { through } => {
                    tracing::warn!(
                        after = position,
                        purged_through = through,
                        "events relay: events were purged before they were relayed; going on after them"
                    );
                    position = through;
                    continue;
                }
            };
            for event in &page.items {
                let body = json::event(event, &self.currency)
                    .map(|j| serde_json::to_vec(&j).expect("an event serializes"))
                    .map_err(|e| format!("event {}: {e}", event.seq))?;
                let message = PublishMessage::build()
                    .message_id(event.id())
                    .header(SEQ_HEADER, event.seq.to_string().as_str())
                    .payload(body.into());
                js.send_publish(
                    format!("{SUBJECT_PREFIX}.{}", event.row.kind.as_str()),
                    message,
                )
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
                position = event.seq;
                NatsRelayed {
                    seq: position,
                    newest: *newest.borrow(),
                }
                .emit(&self.telemetry);
            }
            NatsRelayed {
                seq: position,
                newest: *newest.borrow(),
            }
            .emit(&self.telemetry);
            if page.items.is_empty() {
                // Caught up: wait for the next commit, or look again in a while
                // (also when the commit notices are gone, so this never spins).
                let pause = Duration::from_millis(NATS_RETRY_MS);
                if let Ok(Err(_)) = tokio::time::timeout(pause, newest.changed()).await {
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// The seq of the last event in the stream (0 for an empty stream).
async fn relayed_through(stream: &mut stream::Stream) -> Result<u64, String> {
    let last = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(0);
    }
    let message = stream
        .get_raw_message(last)
        .await
        .map_err(|e| format!("the stream's last message: {e}"))?;
    message
        .headers
        .get(SEQ_HEADER)
        .and_then(|v| v.as_str().parse().ok())
        .ok_or_else(|| format!("the stream's last message has no {SEQ_HEADER} header"))
}
