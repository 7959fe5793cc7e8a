//! `/metrics`: the HTTP metrics, the domain telemetry and the actors' mailbox depths
//! in one Prometheus registry.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use orderflow_actors::limits::HTTP_METRIC_HANDLES_PER_THREAD_MAX;
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

/// One request's two series, as handles that share their values with the families.
struct RequestSeries {
    latency: Histogram,
    requests: Counter,
}

/// Tells one [`Metrics`] from another in the per-thread handles (tests run several
/// services in one process).
static NEXT_METRICS_ID: AtomicU64 = AtomicU64::new(0);

/// Key of [`SERIES`]: the metrics' id, then the addresses of the method and route
/// labels (both `&'static str`) and the status. Two equal labels at two addresses
/// only make two entries for one series, never a wrong one.
type SeriesKey = (u64, usize, usize, u16);

thread_local! {
    /// The series this HTTP worker has counted into. A family's lookup takes a lock
    /// both workers share and hashes the labels' text; this takes neither. At most
    /// [`HTTP_METRIC_HANDLES_PER_THREAD_MAX`] entries, then it starts afresh.
    static SERIES: RefCell<HashMap<SeriesKey, RequestSeries>> = RefCell::new(HashMap::new());
}

#[derive(Debug)]
pub struct Metrics {
    id: u64,
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
            id: NEXT_METRICS_ID.fetch_add(1, Ordering::Relaxed),
            registry,
            http_requests,
            http_latency,
            mailbox_depth,
            telemetry,
        })
    }

    /// Counts one answered request and its latency.
    pub fn observe_request(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let key = (
            self.id,
            method.as_ptr() as usize,
            route.as_ptr() as usize,
            status,
        );
        SERIES.with_borrow_mut(|all| {
            if all.len() >= HTTP_METRIC_HANDLES_PER_THREAD_MAX && !all.contains_key(&key) {
                all.clear();
            }
            let series = all.entry(key).or_insert_with(|| RequestSeries {
                latency: self
                    .http_latency
                    .get_or_create_owned(&RouteLabels { method, route }),
                requests: self.http_requests.get_or_create_owned(&RequestLabels {
                    method,
                    route,
                    status,
                }),
            });
            series.latency.observe(elapsed.as_secs_f64());
            series.requests.inc();
        });
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        encode(&mut out, &self.registry).expect("encoding metrics into a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(metrics: &Metrics, route: &'static str, status: u16) -> u64 {
        metrics
            .http_requests
            .get_or_create(&RequestLabels {
                method: "GET",
                route,
                status,
            })
            .get()
    }

    #[test]
    fn requests_counted_through_a_threads_handles_reach_the_families() {
        let a = Metrics::new(Telemetry::default());
        let b = Metrics::new(Telemetry::default());
        for _ in 0..3 {
            a.observe_request("GET", "/x", 200, Duration::from_millis(1));
        }
        a.observe_request("GET", "/x", 404, Duration::from_millis(1));
        b.observe_request("GET", "/x", 200, Duration::from_millis(1));
        std::thread::scope(|s| {
            s.spawn(|| a.observe_request("GET", "/x", 200, Duration::from_millis(1)));
        });
        assert_eq!(count(&a, "/x", 200), 4);
        assert_eq!(count(&a, "/x", 404), 1);
        assert_eq!(count(&b, "/x", 200), 1, "two services never share a series");
        let text = a.encode();
        assert!(
            text.contains(
                "orderflow_http_request_duration_seconds_count{method=\"GET\",route=\"/x\"} 5"
            ),
            "{text}"
        );
    }

    #[test]
    fn past_the_bound_the_handles_start_afresh_and_nothing_is_lost() {
        let m = Metrics::new(Telemetry::default());
        let statuses = u16::try_from(HTTP_METRIC_HANDLES_PER_THREAD_MAX).unwrap() + 10;
        for status in 0..statuses {
            m.observe_request("GET", "/y", status, Duration::from_millis(1));
        }
        m.observe_request("GET", "/y", 0, Duration::from_millis(1));
        assert!(SERIES.with_borrow(HashMap::len) <= HTTP_METRIC_HANDLES_PER_THREAD_MAX);
        assert_eq!(count(&m, "/y", 0), 2);
        assert_eq!(count(&m, "/y", statuses - 1), 1);
    }
}
