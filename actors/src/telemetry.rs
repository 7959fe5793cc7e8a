//! Typed telemetry events, counted in Prometheus metrics.
//!
//! Actors and pipeline stages record what happened through these handles (an order
//! placed, a batch committed, a row rejected for a reason); the web layer registers
//! them in its registry and serves `/metrics`. Label values are closed sets (reason
//! codes, outcomes), never free text, so cardinality stays bounded.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

/// Every domain metric, shared by the actors and the pipeline. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Telemetry(Arc<Metrics>);

#[derive(Debug)]
pub struct Metrics {
    pub orders_placed: Counter,
    pub orders_rejected: Family<ReasonLabel, Counter>,
    pub commit_batch_commands: Histogram,
    pub commit_seconds: Histogram,
    pub rows_loaded: Family<KindLabel, Counter>,
    pub rows_rejected: Family<ReasonLabel, Counter>,
    pub files: Family<OutcomeLabel, Counter>,
    pub inbox_files_waiting: Gauge,
    pub inbox_oldest_file_age_seconds: Gauge,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self(Arc::new(Metrics {
            orders_placed: Counter::default(),
            orders_rejected: Family::default(),
            commit_batch_commands: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            rows_loaded: Family::default(),
            rows_rejected: Family::default(),
            files: Family::default(),
            inbox_files_waiting: Gauge::default(),
            inbox_oldest_file_age_seconds: Gauge::default(),
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
