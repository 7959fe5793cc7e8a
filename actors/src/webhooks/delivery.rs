//! Delivery records: each attempt's log row, and what it does to the endpoint's
//! cursor or retry state, in one transaction (see the parent module for why a
//! success may commit without a sync to disk).

use actix::{Handler, Message};
use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};

use super::{Endpoint, EndpointId, EndpointRow, EndpointStatus, WebhookError, Webhooks};
use crate::domain::Timestamp;
use crate::limits::WEBHOOK_DELIVERIES_KEPT_MAX;
use crate::store::tables::{WEBHOOK_DELIVERIES, WEBHOOKS};
use crate::store::{Record, StoreError, codec, get_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
}

/// One attempt at delivering one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub event_id: String,
    pub seq: u64,
    pub kind: String,
    pub attempt: u32,
    pub outcome: Outcome,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: Timestamp,
}

impl Record for DeliveryRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "webhook_delivery";
}

/// What became of an attempt, for [`RecordAttempt`].
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Delivered: the cursor moves to its seq.
    Delivered,
    /// Failed: retry not before `retry_at`.
    Retry { retry_at: Timestamp },
    /// Failed for good (410, or retries exhausted): the endpoint is disabled.
    Disable { reason: String },
}

/// Log an attempt and move the endpoint's state accordingly, in one transaction.
#[derive(Debug, Message)]
#[rtype(result = "Result<Endpoint, WebhookError>")]
pub struct RecordAttempt {
    pub id: EndpointId,
    /// `None` for a test event (`webhook.test`): logged, the state untouched.
    pub advances: Option<Verdict>,
    pub delivery: DeliveryRow,
}

impl Handler<RecordAttempt> for Webhooks {
    type Result = Result<Endpoint, WebhookError>;
    fn handle(&mut self, msg: RecordAttempt, ctx: &mut Self::Context) -> Self::Result {
        // A success or a test event: a crash may undo it (the event is sent again).
        let synced = !matches!(msg.advances, None | Some(Verdict::Delivered));
        let txn = self.begin(synced, ctx)?;
        let endpoint = {
            let mut table = txn.open_table(WEBHOOKS)?;
            let mut row: EndpointRow =
                get_record(&table, msg.id.0)?.ok_or(WebhookError::NotFound)?;
            let at = msg.delivery.at;
            match msg.advances {
                None => {}
                Some(Verdict::Delivered) => {
                    // The pair of the deliverer's choice: it only sends the event
                    // after the cursor.
                    assert!(msg.delivery.seq > row.cursor, "delivered out of order");
                    row.cursor = msg.delivery.seq;
                    row.failures = 0;
                    row.first_failure_at = None;
                    row.retry_at = None;
                }
                Some(Verdict::Retry { retry_at }) => {
                    row.failures += 1;
                    row.first_failure_at.get_or_insert(at);
                    row.retry_at = Some(retry_at);
                }
                Some(Verdict::Disable { reason }) => {
                    row.failures += 1;
                    row.first_failure_at.get_or_insert(at);
                    row.status = EndpointStatus::Disabled;
                    row.disabled_reason = Some(reason);
                    row.retry_at = None;
                }
            }
            row.attempts_logged += 1;
            let n = row.attempts_logged;
            table.insert(msg.id.0, codec::encode(&row).as_slice())?;
            let mut log = txn.open_table(WEBHOOK_DELIVERIES)?;
            log.insert((msg.id.0, n), codec::encode(&msg.delivery).as_slice())?;
            if let Some(oldest) = n.checked_sub(WEBHOOK_DELIVERIES_KEPT_MAX) {
                log.remove((msg.id.0, oldest))?;
            }
            Endpoint { id: msg.id, row }
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(endpoint)
    }
}

/// Skip events the endpoint does not want: its cursor moves past them.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WebhookError>")]
pub struct SkipTo {
    pub id: EndpointId,
    pub seq: u64,
}

impl Handler<SkipTo> for Webhooks {
    type Result = Result<(), WebhookError>;
    fn handle(&mut self, msg: SkipTo, ctx: &mut Self::Context) -> Self::Result {
        // Moving past unwanted events: a crash may undo it (they are skipped again).
        self.change(msg.id, false, ctx, |row| {
            if msg.seq > row.cursor && row.failures == 0 {
                row.cursor = msg.seq;
            }
        })?;
        Ok(())
    }
}

/// An endpoint's attempts, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<DeliveryRow>, WebhookError>")]
pub struct ListDeliveries {
    pub id: EndpointId,
    pub limit: usize,
}

impl Handler<ListDeliveries> for Webhooks {
    type Result = Result<Vec<DeliveryRow>, WebhookError>;
    fn handle(&mut self, msg: ListDeliveries, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read().map_err(StoreError::from)?;
        if txn.open_table(WEBHOOKS)?.get(msg.id.0)?.is_none() {
            return Err(WebhookError::NotFound);
        }
        let log = txn.open_table(WEBHOOK_DELIVERIES)?;
        let mut out = Vec::new();
        for entry in log
            .range((msg.id.0, 0)..=(msg.id.0, u64::MAX))?
            .rev()
            .take(msg.limit)
        {
            let (_, bytes) = entry?;
            out.push(codec::decode(bytes.value())?);
        }
        Ok(out)
    }
}
