//! The deliverer: sends each endpoint its events, in seq order, at least once.
//!
//! One loop wakes on every commit that wrote events (the ledger's watch), when a
//! delivery ends, and at least every [`WEBHOOK_POLL_MS`]. It starts one delivery
//! run per due endpoint that has none in flight, up to `--webhook-concurrency`
//! across all endpoints, so a slow receiver holds one slot and never delays another
//! endpoint's queue beyond that bound. A run reads the events after the endpoint's
//! cursor that it wants, and for each in turn signs it, posts it, and records the
//! outcome with the webhooks actor (which moves the cursor or the retry state in
//! the same transaction as the log row). The next event goes only after the
//! previous one succeeded; a failure ends the run (the retry is due later).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};

use super::guard::{self, GuardedResolver};
use super::sign;
use crate::api::json;
use crate::follow::{Next, next_after};
use orderflow_actors::domain::{Currency, Timestamp};
use orderflow_actors::events::{Event, EventsReader, TypeFilter};
use orderflow_actors::limits::{
    WEBHOOK_ATTEMPT_TIMEOUT_MS, WEBHOOK_CONNECT_TIMEOUT_MS, WEBHOOK_POLL_MS,
    WEBHOOK_PREFETCH_EVENTS, WEBHOOK_RECORD_BATCH_MAX, WEBHOOK_RECORD_BATCH_MS,
    WEBHOOK_RESPONSE_BYTES_MAX, WEBHOOK_RETRY_HORIZON_UNITS, WEBHOOK_RETRY_UNITS,
    WEBHOOK_RUN_EVENTS_MAX,
};
use orderflow_actors::pg::{DELIVERY_LOCK, PgEvents, PgWebhooks};
use orderflow_actors::room::Room;
use orderflow_actors::telemetry::{Event as _, Telemetry, WebhookAttempted, WebhookLag};
use orderflow_actors::webhooks::{
    Attempted, DeliveryRow, Endpoint, EndpointId, EndpointStatus, ListEndpoints, Outcome,
    RecordAttempts, SkipTo, Verdict, Webhooks,
};

/// What the deliverer needs.
#[derive(Clone)]
pub struct Deliverer {
    pub webhooks: Room<Webhooks, PgWebhooks>,
    pub events: Room<EventsReader, PgEvents>,
    /// On PostgreSQL, the database URL: only the node holding the delivery lock
    /// delivers (one delivery stream per endpoint across nodes).
    pub leader_lock: Option<String>,
    pub newest: watch::Receiver<u64>,
    pub currency: Currency,
    pub telemetry: Telemetry,
    pub client: reqwest::Client,
    pub allow_private: bool,
    pub concurrency: usize,
    /// `--webhook-retry-unit-ms`: the retry schedule's unit.
    pub retry_unit: Duration,
}

/// The HTTP client of deliveries: no redirects, bounded waits, name look-ups
/// through the SSRF guard, and no proxy: a proxy named by `HTTP_PROXY` or
/// `HTTPS_PROXY` would resolve and connect to the target itself, and the guard
/// would never see the address.
pub fn client(allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_millis(WEBHOOK_CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(WEBHOOK_ATTEMPT_TIMEOUT_MS))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .user_agent(concat!("orderflow-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook client builds")
}

/// What one attempt came to.
pub struct Attempt {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration: Duration,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn outcome(&self) -> Outcome {
        if self.succeeded() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        }
    }

    /// This attempt as a row of the endpoint's delivery log.
    pub fn into_row(
        self,
        event_id: String,
        seq: u64,
        kind: String,
        attempt: u32,
        at: Timestamp,
    ) -> DeliveryRow {
        DeliveryRow {
            event_id,
            seq,
            kind,
            attempt,
            outcome: self.outcome(),
            response_status: self.status,
            error: self.error,
            duration_ms: u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            at,
        }
    }
}

impl Deliverer {
    /// Delivers until `stop` fires; on PostgreSQL, only while this node holds the
    /// delivery lock (another node takes it over when this one's connection goes).
    pub async fn run(self, stop: Arc<Notify>) {
        let lock = self.leader_lock.clone();
        crate::leader::while_leading(lock, DELIVERY_LOCK, "webhooks", stop, move |inner| {
            self.clone().deliver(inner)
        })
        .await;
    }

    /// Delivers until `stop` fires.
    async fn deliver(self, stop: Arc<Notify>) {
        let slots = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let in_flight: Rc<RefCell<HashSet<EndpointId>>> = Rc::default();
        let ended = Rc::new(Notify::new());
        let mut newest = self.newest.clone();
        loop {
            match self.webhooks.ask(ListEndpoints).await {
                Ok(Ok(endpoints)) => self.start_due(endpoints, &slots, &in_flight, &ended),
                Ok(Err(e)) => tracing::warn!(error = %e, "webhooks: endpoints not read"),
                Err(e) => tracing::warn!(error = %e, "webhooks: endpoints not read"),
            }
            let poll = tokio::time::sleep(Duration::from_millis(WEBHOOK_POLL_MS));
            tokio::select! {
                () = stop.notified() => return,
                changed = newest.changed() => {
                    // The ledger is gone (shutting down): wait for the stop.
                    if changed.is_err() {
                        stop.notified().await;
                        return;
                    }
                }
                () = ended.notified() => {}
                () = poll => {}
            }
        }
    }

    fn start_due(
        &self,
        endpoints: Vec<Endpoint>,
        slots: &Arc<Semaphore>,
        in_flight: &Rc<RefCell<HashSet<EndpointId>>>,
        ended: &Rc<Notify>,
    ) {
        let newest = *self.newest.borrow();
        let now = Timestamp::now();
        for endpoint in endpoints {
            if endpoint.row.status != EndpointStatus::Enabled {
                continue;
            }
            WebhookLag {
                endpoint: endpoint.id.0,
                events_behind: newest.saturating_sub(endpoint.row.cursor),
                oldest_undelivered_secs: endpoint
                    .row
                    .first_failure_at
                    .map_or(0, |t| u64::try_from((now.0 - t.0) / 1000).unwrap_or(0)),
            }
            .emit(&self.telemetry);
            let due = endpoint.row.cursor < newest
                && endpoint.row.retry_at.is_none_or(|t| t <= now)
                && !in_flight.borrow().contains(&endpoint.id);
            if !due {
                continue;
            }
            let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
                return;
            };
            in_flight.borrow_mut().insert(endpoint.id);
            let (this, in_flight, ended) = (self.clone(), Rc::clone(in_flight), Rc::clone(ended));
            actix_web::rt::spawn(async move {
                let id = endpoint.id;
                if let Err(e) = this.deliver_run(endpoint).await {
                    tracing::warn!(endpoint = id.0, error = %e, "webhook delivery not recorded");
                }
                in_flight.borrow_mut().remove(&id);
                drop(permit);
                ended.notify_one();
            });
        }
    }

    /// Sends the endpoint its wanted events after its cursor, one at a time in seq
    /// order, recording each attempt, until it is caught up, an attempt fails, the
    /// endpoint changed under it (disabled, deleted), or it sent
    /// [`WEBHOOK_RUN_EVENTS_MAX`]: then its slot goes back, so endpoints beyond
    /// `--webhook-concurrency` take turns. Events are read
    /// [`WEBHOOK_PREFETCH_EVENTS`] at a time.
    async fn deliver_run(&self, endpoint: Endpoint) -> Result<(), String> {
        let mut pending = Vec::new();
        let id = endpoint.id;
        let result = self.deliver_events(endpoint, &mut pending).await;
        // What was delivered is recorded however the run ended, and before any
        // skip: the cursor moves past unwanted or purged events only after the
        // deliveries before them.
        if !pending.is_empty() {
            self.record(id, pending).await?;
        }
        match result? {
            Some(seq) => self.skip(id, seq).await,
            None => Ok(()),
        }
    }

    /// The run itself; answers where the cursor is to skip to once what is
    /// pending is recorded (past unwanted events scanned, or purged ones).
    async fn deliver_events(
        &self,
        mut endpoint: Endpoint,
        pending: &mut Vec<Attempted>,
    ) -> Result<Option<u64>, String> {
        let mut sent = 0;
        let mut batch_started = Instant::now();
        while sent < WEBHOOK_RUN_EVENTS_MAX {
            // The reader scans for the events the endpoint wants (bounded), and
            // decodes only those in full.
            let next = next_after(
                &self.events,
                endpoint.row.cursor,
                TypeFilter::AnyOf(endpoint.row.events.clone()),
                WEBHOOK_PREFETCH_EVENTS,
            )
            .await?;
            let page = match next {
                Next::Page(page) => page,
                Next::Purged { through } => {
                    tracing::warn!(
                        endpoint = endpoint.id.0,
                        purged_through = through,
                        "webhook endpoint fell behind the event retention; it resumes with the oldest kept event"
                    );
                    return Ok(Some(through));
                }
            };
            if page.items.is_empty() {
                // Caught up, or only unwanted events were scanned: move past them.
                return Ok((page.next_after > endpoint.row.cursor).then_some(page.next_after));
            }
            for event in page.items {
                // The row is the one the last record answered: a filter changed
                // meanwhile applies from here on.
                if !endpoint.row.wants(event.row.kind) {
                    continue;
                }
                let attempt = self.send(&endpoint, &event).await;
                let verdict = self.verdict(&endpoint, &attempt);
                let delivered = matches!(verdict, Verdict::Delivered);
                if let Verdict::Disable { reason } = &verdict {
                    tracing::warn!(endpoint = endpoint.id.0, url = %endpoint.row.url, reason, "webhook endpoint disabled");
                }
                let attempt_no = endpoint.row.failures + 1;
                let attempted = self.attempted(Some(verdict), &event, attempt_no, attempt);
                if delivered {
                    // The copy moves on as the record will: the next page is read
                    // after this event, even before the batch is recorded.
                    endpoint
                        .row
                        .advance(Some(Verdict::Delivered), &attempted.delivery)
                        .map_err(|e| e.to_string())?;
                }
                pending.push(attempted);
                sent += 1;
                // Successes are recorded in batches (a crash may only re-send them),
                // a failure at once; every batch answers the endpoint as it now is.
                if !delivered
                    || pending.len() >= WEBHOOK_RECORD_BATCH_MAX
                    || batch_started.elapsed() >= Duration::from_millis(WEBHOOK_RECORD_BATCH_MS)
                {
                    endpoint = self.record(endpoint.id, std::mem::take(pending)).await?;
                    batch_started = Instant::now();
                    if !delivered || endpoint.row.status != EndpointStatus::Enabled {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(None)
    }

    async fn skip(&self, id: EndpointId, seq: u64) -> Result<(), String> {
        self.webhooks
            .ask(SkipTo { id, seq })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// What a failed attempt leads to: a retry on the schedule, or the end.
    fn verdict(&self, endpoint: &Endpoint, attempt: &Attempt) -> Verdict {
        if attempt.succeeded() {
            return Verdict::Delivered;
        }
        if attempt.status == Some(410) {
            return Verdict::Disable {
                reason: "the receiver answered 410 Gone".into(),
            };
        }
        let now = Timestamp::now();
        let first = endpoint.row.first_failure_at.unwrap_or(now);
        let unit_ms = u64::try_from(self.retry_unit.as_millis()).unwrap_or(u64::MAX);
        let horizon = first.0.saturating_add(
            i64::try_from(unit_ms.saturating_mul(WEBHOOK_RETRY_HORIZON_UNITS)).unwrap_or(i64::MAX),
        );
        if now.0 >= horizon {
            return Verdict::Disable {
                reason: format!(
                    "{} attempts failed over the retry period; the last: {}",
                    endpoint.row.failures + 1,
                    describe(attempt)
                ),
            };
        }
        let step = usize::try_from(endpoint.row.failures)
            .unwrap_or(usize::MAX)
            .min(WEBHOOK_RETRY_UNITS.len() - 1);
        let delay_ms = WEBHOOK_RETRY_UNITS[step].saturating_mul(unit_ms);
        Verdict::Retry {
            retry_at: Timestamp(
                now.0
                    .saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX)),
            ),
        }
    }

    /// One attempt, ready to record (and counted in the metrics).
    fn attempted(
        &self,
        advances: Option<Verdict>,
        event: &Event,
        attempt_no: u32,
        attempt: Attempt,
    ) -> Attempted {
        WebhookAttempted {
            outcome: attempt.outcome().as_str(),
        }
        .emit(&self.telemetry);
        let delivery = attempt.into_row(
            event.id(),
            event.seq,
            event.row.kind.as_str().to_owned(),
            attempt_no,
            Timestamp::now(),
        );
        Attempted { advances, delivery }
    }

    async fn record(&self, id: EndpointId, attempts: Vec<Attempted>) -> Result<Endpoint, String> {
        self.webhooks
            .ask(RecordAttempts { id, attempts })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Posts one event to the endpoint: the Standard Webhooks headers, the event's
    /// JSON as the body; at most [`WEBHOOK_RESPONSE_BYTES_MAX`] of the answer read.
    pub async fn send(&self, endpoint: &Endpoint, event: &Event) -> Attempt {
        let body = match json::event(event, &self.currency) {
            Ok(json) => serde_json::to_vec(&json).expect("an event serializes"),
            Err(e) => {
                return Attempt {
                    status: None,
                    error: Some(format!("the event could not be read: {e}")),
                    duration: Duration::ZERO,
                };
            }
        };
        self.post(endpoint, &event.id(), body).await
    }

    /// Posts a body signed as event `id`.
    pub async fn post(&self, endpoint: &Endpoint, id: &str, body: Vec<u8>) -> Attempt {
        let started = Instant::now();
        let failed = |error: String| Attempt {
            status: None,
            error: Some(error),
            duration: started.elapsed(),
        };
        // Checked again at every delivery: a literal address never reaches the
        // resolver, and a name is checked by it as the client connects.
        let url = match guard::check_url(&endpoint.row.url, true).await {
            Ok(url) => url,
            Err(e) => return failed(format!("the URL {e}")),
        };
        if !self.allow_private
            && let Some(ip) = literal_ip(&url)
            && let Some(why) = guard::forbidden(ip)
        {
            return failed(format!("refused: {ip} is {why}"));
        }
        let now = Timestamp::now();
        let timestamp = now.0 / 1000;
        let signature = sign::signature(&endpoint.row.signing_secrets(now), id, timestamp, &body);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return failed(describe_error(&e)),
        };
        let status = response.status().as_u16();
        // Read (and drop) a bounded part of the answer, so the connection can be
        // reused; a receiver that streams forever is cut at the limit.
        let mut read = 0usize;
        while read < WEBHOOK_RESPONSE_BYTES_MAX {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        Attempt {
            status: Some(status),
            error: (!(200..300).contains(&status)).then(|| format!("answered {status}")),
            duration: started.elapsed(),
        }
    }
}

fn literal_ip(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(ip.into()),
        url::Host::Ipv6(ip) => Some(ip.into()),
        url::Host::Domain(_) => None,
    }
}

fn describe(attempt: &Attempt) -> String {
    attempt
        .error
        .clone()
        .unwrap_or_else(|| "no answer".to_owned())
}

/// A transport error in words, without the URL (it is in the endpoint already).
fn describe_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirected (redirects are not followed)"
    } else {
        "failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", orderflow_actors::text::cut(&detail, 200))
    }
}
