//! Delivery records: each attempt's log row, and what it does to the endpoint's
//! cursor or retry state, in one transaction (see the parent module for why a
//! success may commit without a sync to disk).

use actix::{Handler, Message};
use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};

use super::{Endpoint, EndpointId, EndpointRow, EndpointStatus, WebhookError, Webhooks};
use crate::common::{Page, Record, StoreError, codec};
use crate::domain::Timestamp;
use crate::limits::WEBHOOK_DELIVERIES_KEPT_MAX;
use crate::store::get_record;
use crate::store::tables::{WEBHOOK_DELIVERIES, WEBHOOKS};

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

    /// The outcome named `s` (`succeeded`, `failed`), as the API spells it.
    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Succeeded, Outcome::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
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

/// One attempt, and what it does to the endpoint's state.
#[derive(Debug, Clone)]
pub struct Attempted {
    /// `None` for a test event (`webhook.test`): logged, the state untouched.
    pub advances: Option<Verdict>,
    pub delivery: DeliveryRow,
}

/// Log attempts of one endpoint, oldest first, and move its state accordingly, all
/// in one transaction. The deliverer sends the successes of a run in batches (a
/// crash may only re-send them), a failure at once.
#[derive(Debug, Message)]
#[rtype(result = "Result<Endpoint, WebhookError>")]
pub struct RecordAttempts {
    pub id: EndpointId,
    pub attempts: Vec<Attempted>,
}

impl Handler<RecordAttempts> for Webhooks {
    type Result = Result<Endpoint, WebhookError>;
    fn handle(&mut self, msg: RecordAttempts, ctx: &mut Self::Context) -> Self::Result {
        // Successes and test events only: a crash may undo them (sent again).
        let synced = msg
            .attempts
            .iter()
            .any(|a| !matches!(a.advances, None | Some(Verdict::Delivered)));
        let txn = self.begin(synced, ctx)?;
        let endpoint = {
            let mut table = txn.open_table(WEBHOOKS)?;
            let mut log = txn.open_table(WEBHOOK_DELIVERIES)?;
            let mut row: EndpointRow =
                get_record(&table, msg.id.0)?.ok_or(WebhookError::NotFound)?;
            for attempt in msg.attempts {
                let (n, forget) = row.record(attempt.advances, &attempt.delivery)?;
                log.insert((msg.id.0, n), codec::encode(&attempt.delivery).as_slice())?;
                if let Some(oldest) = forget {
                    log.remove((msg.id.0, oldest))?;
                }
            }
            table.insert(msg.id.0, codec::encode(&row).as_slice())?;
            Endpoint { id: msg.id, row }
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(endpoint)
    }
}

impl EndpointRow {
    /// Applies one attempt ([`Self::advance`]) and numbers it in the delivery
    /// log: answers its number, and the number of the entry that now falls out of
    /// the [`WEBHOOK_DELIVERIES_KEPT_MAX`] kept, if one does.
    pub fn record(
        &mut self,
        verdict: Option<Verdict>,
        delivery: &DeliveryRow,
    ) -> Result<(u64, Option<u64>), WebhookError> {
        self.advance(verdict, delivery)?;
        self.attempts_logged += 1;
        let n = self.attempts_logged;
        Ok((n, n.checked_sub(WEBHOOK_DELIVERIES_KEPT_MAX)))
    }

    /// Moves the cursor past events the endpoint does not want (never past one
    /// that is failing).
    pub fn skip_to(&mut self, seq: u64) {
        if seq > self.cursor && self.failures == 0 {
            self.cursor = seq;
        }
    }

    /// What one attempt does to the endpoint's cursor or retry state. The
    /// deliverer applies it to its copy as well, between two records of a batch.
    ///
    /// A success at or before the cursor is refused, not asserted: the deliverer
    /// only sends events after the cursor, in seq order, so such a record comes
    /// from a deliverer that lost the lead without knowing (another node moved the
    /// cursor on), and it must stop rather than take the actor down.
    pub fn advance(
        &mut self,
        verdict: Option<Verdict>,
        delivery: &DeliveryRow,
    ) -> Result<(), WebhookError> {
        let row = self;
        let at = delivery.at;
        match verdict {
            None => {}
            Some(Verdict::Delivered) => {
                if delivery.seq <= row.cursor {
                    return Err(WebhookError::Superseded {
                        seq: delivery.seq,
                        cursor: row.cursor,
                    });
                }
                row.cursor = delivery.seq;
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
        Ok(())
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
        self.change(msg.id, false, ctx, |row| row.skip_to(msg.seq))?;
        Ok(())
    }
}

/// A page of an endpoint's attempts, newest first: those numbered below
/// `before` (all, without it), of one `outcome` if given. `next` is the number to
/// pass as `before` for the next page.
#[derive(Debug, Message)]
#[rtype(result = "Result<Page<DeliveryRow, u64>, WebhookError>")]
pub struct ListDeliveries {
    pub id: EndpointId,
    pub limit: usize,
    pub outcome: Option<Outcome>,
    pub before: Option<u64>,
}

impl ListDeliveries {
    /// The page of `entries` (log numbers with their rows, newest first, all below
    /// `before`): the first `limit` of the wanted outcome, and the number to go on
    /// from if more remain. The one rule of both backends; the log keeps at most
    /// [`WEBHOOK_DELIVERIES_KEPT_MAX`] entries, so a filtered page reads at most
    /// that many.
    pub fn page(
        &self,
        entries: impl Iterator<Item = Result<(u64, DeliveryRow), StoreError>>,
    ) -> Result<Page<DeliveryRow, u64>, StoreError> {
        let mut items = Vec::with_capacity(self.limit);
        let mut last = None;
        for entry in entries {
            let (n, row) = entry?;
            if self.outcome.is_some_and(|wanted| row.outcome != wanted) {
                continue;
            }
            if items.len() == self.limit {
                return Ok(Page { items, next: last });
            }
            last = Some(n);
            items.push(row);
        }
        Ok(Page { items, next: None })
    }
}

impl Handler<ListDeliveries> for Webhooks {
    type Result = Result<Page<DeliveryRow, u64>, WebhookError>;
    fn handle(&mut self, msg: ListDeliveries, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read().map_err(StoreError::from)?;
        if txn.open_table(WEBHOOKS)?.get(msg.id.0)?.is_none() {
            return Err(WebhookError::NotFound);
        }
        let log = txn.open_table(WEBHOOK_DELIVERIES)?;
        let below = msg.before.unwrap_or(u64::MAX);
        let entries = log
            .range((msg.id.0, 0)..(msg.id.0, below))?
            .rev()
            .map(|entry| {
                let (key, bytes) = entry?;
                Ok((key.value().1, codec::decode(bytes.value())?))
            });
        Ok(msg.page(entries)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::EndpointStatus;

    fn endpoint(cursor: u64) -> EndpointRow {
        EndpointRow {
            url: "https://example.com/hook".into(),
            events: Vec::new(),
            description: None,
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            secrets: Vec::new(),
            created_at: Timestamp::now(),
            cursor,
            failures: 0,
            first_failure_at: None,
            retry_at: None,
            attempts_logged: 7,
        }
    }

    fn delivered(seq: u64) -> DeliveryRow {
        DeliveryRow {
            event_id: format!("evt_{seq}"),
            seq,
            kind: "order.created".into(),
            attempt: 1,
            outcome: Outcome::Succeeded,
            response_status: Some(200),
            error: None,
            duration_ms: 1,
            at: Timestamp::now(),
        }
    }

    /// A deliverer that lost the lead without knowing records a success another
    /// node already moved the cursor past: refused (it once tripped an assert
    /// and took the webhooks actor down), and the endpoint is untouched.
    #[test]
    fn a_success_at_or_before_the_cursor_is_refused_and_changes_nothing() {
        for seq in [3, 10] {
            let mut row = endpoint(10);
            let refused = row.record(Some(Verdict::Delivered), &delivered(seq));
            assert!(
                matches!(refused, Err(WebhookError::Superseded { seq: s, cursor: 10 }) if s == seq),
                "{refused:?}"
            );
            assert_eq!((row.cursor, row.attempts_logged), (10, 7));
        }
        let mut row = endpoint(10);
        assert_eq!(
            row.record(Some(Verdict::Delivered), &delivered(11))
                .unwrap(),
            (8, None)
        );
        assert_eq!(row.cursor, 11);
    }
}
