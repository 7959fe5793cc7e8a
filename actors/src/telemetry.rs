//! Typed telemetry events, counted in Prometheus metrics.
//!
//! As in Vector's `internal_events`: one struct per thing that happened (an order
//! placed, a checkout refused, a batch committed, rows loaded, a row rejected, a
//! file finished), and one `emit` that writes its counter and, where one is due,
//! its log line together; call sites never build labels. The web layer registers
//! the metrics in its registry and serves `/metrics`. Label values are closed sets
//! (reason codes, outcomes), never free text, so cardinality stays bounded.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::common::StoreError;
use crate::domain::{CheckoutRejection, Kind, RejectCode};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// Something that happened, recorded in the metrics (and the log) by [`Event::emit`].
pub trait Event {
    fn emit(self, telemetry: &Telemetry);
}

/// The search index committed what it was fed.
#[derive(Debug)]
pub struct SearchCommitted {
    /// From the oldest change it took to its commit.
    pub lag_seconds: f64,
    pub documents: u64,
}

impl Event for SearchCommitted {
    fn emit(self, t: &Telemetry) {
        t.search_lag_seconds.set(self.lag_seconds);
        t.search_documents
            .set(i64::try_from(self.documents).unwrap_or(i64::MAX));
    }
}

/// The search index was built from the whole catalog.
#[derive(Debug)]
pub struct SearchRebuilt {
    pub documents: u64,
    pub seconds: f64,
}

impl Event for SearchRebuilt {
    fn emit(self, t: &Telemetry) {
        t.search_rebuilds.inc();
        t.search_documents
            .set(i64::try_from(self.documents).unwrap_or(i64::MAX));
        tracing::info!(
            documents = self.documents,
            seconds = self.seconds,
            "search index built"
        );
    }
}

/// The ledger committed a new order (not a replay).
#[derive(Debug)]
pub struct OrderPlaced;

impl Event for OrderPlaced {
    fn emit(self, t: &Telemetry) {
        t.orders_placed.inc();
    }
}

/// A checkout was refused.
#[derive(Debug)]
pub struct OrderRejected {
    pub reason: CheckoutRejection,
}

impl Event for OrderRejected {
    fn emit(self, t: &Telemetry) {
        t.orders_rejected
            .get_or_create(&ReasonLabel {
                reason: self.reason.as_str(),
            })
            .inc();
    }
}

/// The ledger applied a batch of commands and committed it (or abandoned it).
#[derive(Debug)]
pub struct BatchCommitted<'a> {
    pub commands: usize,
    pub seconds: f64,
    /// Why the batch was abandoned, if it was.
    pub abandoned: Option<&'a StoreError>,
}

impl Event for BatchCommitted<'_> {
    fn emit(self, t: &Telemetry) {
        if let Some(e) = self.abandoned {
            tracing::error!(error = %e, commands = self.commands, "ledger batch abandoned");
        }
        t.commit_batch_commands.observe(self.commands as f64);
        t.commit_seconds.observe(self.seconds);
    }
}

/// A batch of an import committed its rows and rejects.
#[derive(Debug)]
pub struct RowsCommitted<'a> {
    pub kind: Kind,
    pub loaded: u64,
    /// The code of each row rejected.
    pub rejected: &'a [RejectCode],
}

impl Event for RowsCommitted<'_> {
    fn emit(self, t: &Telemetry) {
        t.rows_loaded
            .get_or_create(&KindLabel {
                kind: self.kind.as_str(),
            })
            .inc_by(self.loaded);
        for code in self.rejected.iter().copied() {
            t.rows_rejected
                .get_or_create(&ReasonLabel {
                    reason: code.as_str(),
                })
                .inc();
        }
    }
}

/// An import job reached its end (completed, failed or duplicate).
#[derive(Debug)]
pub struct FileFinished<'a> {
    pub job: u64,
    pub file_name: &'a str,
    /// `completed`, `failed` or `duplicate` (`JobStatus::as_str`).
    pub status: &'static str,
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub error: Option<&'a str>,
}

impl Event for FileFinished<'_> {
    fn emit(self, t: &Telemetry) {
        t.files
            .get_or_create(&OutcomeLabel {
                outcome: self.status,
            })
            .inc();
        tracing::info!(
            job = self.job,
            file = %self.file_name,
            status = self.status,
            rows_read = self.rows_read,
            rows_loaded = self.rows_loaded,
            rows_rejected = self.rows_rejected,
            error = self.error.unwrap_or(""),
            "import finished"
        );
    }
}

/// The inbox watcher's view after a scan.
#[derive(Debug)]
pub struct InboxScanned {
    pub waiting: usize,
    pub oldest_secs: u64,
}

impl Event for InboxScanned {
    fn emit(self, t: &Telemetry) {
        t.inbox_files_waiting
            .set(i64::try_from(self.waiting).unwrap_or(i64::MAX));
        t.inbox_oldest_file_age_seconds
            .set(i64::try_from(self.oldest_secs).unwrap_or(i64::MAX));
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

/// A webhook delivery attempt ended.
#[derive(Debug)]
pub struct WebhookAttempted {
    pub outcome: &'static str,
}

impl Event for WebhookAttempted {
    fn emit(self, t: &Telemetry) {
        t.webhook_deliveries
            .get_or_create(&OutcomeLabel {
                outcome: self.outcome,
            })
            .inc();
    }
}

/// Where a webhook endpoint stands: events behind the newest, and the age of the
/// oldest one it has not received.
#[derive(Debug)]
pub struct WebhookLag {
    pub endpoint: u64,
    pub events_behind: u64,
    pub oldest_undelivered_secs: u64,
}

impl Event for WebhookLag {
    fn emit(self, t: &Telemetry) {
        let label = EndpointLabel {
            endpoint: self.endpoint.to_string(),
        };
        t.webhook_lag_events
            .get_or_create(&label)
            .set(i64::try_from(self.events_behind).unwrap_or(i64::MAX));
        t.webhook_oldest_undelivered_seconds
            .get_or_create(&label)
            .set(i64::try_from(self.oldest_undelivered_secs).unwrap_or(i64::MAX));
    }
}

/// The NATS relay published events up to `seq`; `newest` is the newest committed.
#[derive(Debug)]
pub struct NatsRelayed {
    pub seq: u64,
    pub newest: u64,
}

impl Event for NatsRelayed {
    fn emit(self, t: &Telemetry) {
        t.nats_relay_lag_events
            .set(i64::try_from(self.newest.saturating_sub(self.seq)).unwrap_or(i64::MAX));
        t.nats_relayed_seq
            .set(i64::try_from(self.seq).unwrap_or(i64::MAX));
    }
}

/// Every domain metric, shared by the actors and the pipeline. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Telemetry(Arc<Metrics>);

#[derive(Debug)]
pub struct Metrics {
    pub orders_placed: Counter,
    pub orders_rejected: Family<ReasonLabel, Counter>,
    pub commit_batch_commands: Histogram,
    pub commit_seconds: Histogram,
    pub journal_awake_reads: Counter,
    pub rows_loaded: Family<KindLabel, Counter>,
    pub rows_rejected: Family<ReasonLabel, Counter>,
    pub files: Family<OutcomeLabel, Counter>,
    pub inbox_files_waiting: Gauge,
    pub inbox_oldest_file_age_seconds: Gauge,
    pub webhook_deliveries: Family<OutcomeLabel, Counter>,
    pub webhook_lag_events: Family<EndpointLabel, Gauge>,
    pub webhook_oldest_undelivered_seconds: Family<EndpointLabel, Gauge>,
    pub nats_relay_lag_events: Gauge,
    pub nats_relayed_seq: Gauge,
    pub search_lag_seconds: Gauge<f64, AtomicU64>,
    pub search_documents: Gauge,
    pub search_rebuilds: Counter,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self(Arc::new(Metrics {
            orders_placed: Counter::default(),
            orders_rejected: Family::default(),
            commit_batch_commands: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            journal_awake_reads: Counter::default(),
            rows_loaded: Family::default(),
            rows_rejected: Family::default(),
            files: Family::default(),
            inbox_files_waiting: Gauge::default(),
            inbox_oldest_file_age_seconds: Gauge::default(),
            webhook_deliveries: Family::default(),
            webhook_lag_events: Family::default(),
            webhook_oldest_undelivered_seconds: Family::default(),
            nats_relay_lag_events: Gauge::default(),
            nats_relayed_seq: Gauge::default(),
            search_lag_seconds: Gauge::default(),
            search_documents: Gauge::default(),
            search_rebuilds: Counter::default(),
        }))
    }
}

impl std::ops::Deref for Telemetry {
    type Target = Metrics;
    fn deref(&self) -> &Metrics {
        &self.0
    }
}

impl Telemetry {
    /// Adds every metric to `registry` (names get the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        let m = &self.0;
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            m.webhook_deliveries.clone(),
        );
        registry.register(
            "webhook_lag_events",
            "Events a webhook endpoint has not received yet",
            m.webhook_lag_events.clone(),
        );
        registry.register(
            "webhook_oldest_undelivered_seconds",
            "Age of the oldest event a webhook endpoint has not received",
            m.webhook_oldest_undelivered_seconds.clone(),
        );
        registry.register(
            "nats_relay_lag_events",
            "Events committed but not yet in the NATS stream (on the relaying node)",
            m.nats_relay_lag_events.clone(),
        );
        registry.register(
            "search_lag_seconds",
            "Time from a commit to the search index's commit of it, at the index's last commit",
            m.search_lag_seconds.clone(),
        );
        registry.register(
            "search_documents",
            "Products the search index holds",
            m.search_documents.clone(),
        );
        registry.register(
            "search_rebuilds",
            "Times the search index was built from the whole catalog",
            m.search_rebuilds.clone(),
        );
        registry.register(
            "nats_relayed_seq",
            "Seq of the last event this node's relay put in the NATS stream",
            m.nats_relayed_seq.clone(),
        );
        registry.register(
            "orders_placed",
            "Orders committed by the ledger",
            m.orders_placed.clone(),
        );
        registry.register(
            "orders_rejected",
            "Checkouts refused, by reason",
            m.orders_rejected.clone(),
        );
        registry.register(
            "ledger_commit_batch_commands",
            "Commands folded into one ledger transaction",
            m.commit_batch_commands.clone(),
        );
        registry.register(
            "ledger_commit_seconds",
            "Time to apply and durably commit one ledger batch",
            m.commit_seconds.clone(),
        );
        registry.register(
            "ledger_journal_awake_reads",
            "Direct reads of the journal made to keep the disk awake for its syncs",
            m.journal_awake_reads.clone(),
        );
        registry.register(
            "import_rows_loaded",
            "Import rows loaded, by file kind",
            m.rows_loaded.clone(),
        );
        registry.register(
            "import_rows_rejected",
            "Import rows rejected, by reason",
            m.rows_rejected.clone(),
        );
        registry.register(
            "import_files",
            "Import files finished, by outcome",
            m.files.clone(),
        );
        registry.register(
            "inbox_files_waiting",
            "Files in the inbox not yet claimed",
            m.inbox_files_waiting.clone(),
        );
        registry.register(
            "inbox_oldest_file_age_seconds",
            "Age of the oldest unclaimed inbox file",
            m.inbox_oldest_file_age_seconds.clone(),
        );
    }
}
