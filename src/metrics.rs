//! `/metrics`: the HTTP metrics, the domain telemetry and the actors' mailbox depths
//! in one Prometheus registry.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use orderflow_actors::telemetry::Telemetry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabels {
    pub actor: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub mailbox_depth: Family<ActorLabels, Gauge>,
    pub telemetry: Telemetry,
}

impl Metrics {
    pub fn new(telemetry: Telemetry) -> Arc<Self> {
        let mut registry = Registry::with_prefix("orderflow");
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_latency =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let mailbox_depth = Family::<ActorLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            http_latency.clone(),
        );
        registry.register(
            "actor_mailbox_depth",
            "Requests queued at or being handled by each actor",
            mailbox_depth.clone(),
        );
        registry.register(
            "password_hashes",
            "argon2id hashes computed, by purpose (login, registration, new_password)",
            crate::auth::password::hashes().clone(),
        );
        telemetry.register(&mut registry);
        Arc::new(Self {
            registry,
            http_requests,
            http_latency,
            mailbox_depth,
            telemetry,
        })
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        encode(&mut out, &self.registry).expect("encoding metrics into a String");
        out
    }
}
