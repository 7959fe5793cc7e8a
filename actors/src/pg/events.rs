//! The events feed on PostgreSQL: the message of [`crate::events::reader`].
//!
//! Seqs are gapless and in commit order across nodes (see [`super::ledger`]), so a
//! reader of `seq > after` never sees a seq while a smaller one is still to come.
//! Events older than `--event-retention-days` are purged ([`super::purge`]); a page
//! reads where the purge stands and the events in one statement (one snapshot), so
//! it is either expired or complete, never silently short of purged events.

use actix::{Actor, Context, Handler, ResponseFuture};

use super::staged::{int, uint};
use super::{Pool, client};
use crate::common::{StoreError, codec};
use crate::events::reader::{EventPage, EventsError, ListEvents, page, start_after};
use crate::limits::EVENTS_SCAN_ROWS_MAX;

/// The feed's readers of one node on PostgreSQL.
pub struct PgEvents {
    pool: Pool,
}

impl PgEvents {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

impl Actor for PgEvents {
    type Context = Context<Self>;
}

impl Handler<ListEvents> for PgEvents {
    type Result = ResponseFuture<Result<EventPage, EventsError>>;
    fn handle(&mut self, msg: ListEvents, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            list(&db, msg).await
        })
    }
}

/// A page of the feed.
pub async fn list(db: &tokio_postgres::Client, msg: ListEvents) -> Result<EventPage, EventsError> {
    let asked = msg.after.map(int).transpose()?;
    let rows = db
        .query(
            "SELECT p.value, e.seq, e.record \
             FROM (SELECT value FROM counters WHERE name = 'events_purged_through') p \
             LEFT JOIN LATERAL (SELECT seq, record FROM events \
             WHERE seq > greatest(coalesce($1::int8, 0), p.value) ORDER BY seq LIMIT $2) e ON true",
            &[&asked, &int(EVENTS_SCAN_ROWS_MAX as u64)?],
        )
        .await
        .map_err(StoreError::from)?;
    let purged_through = match rows.first() {
        Some(r) => uint(r.get(0))?,
        None => {
            return Err(
                StoreError::Corrupt("the events_purged_through counter is missing".into()).into(),
            );
        }
    };
    let after = start_after(msg.after, purged_through)?;
    let scanned = rows.iter().filter_map(|r| {
        let seq: Option<i64> = r.get(1);
        seq.map(|seq| Ok((uint(seq)?, codec::decode(r.get::<_, &[u8]>(2))?)))
    });
    page(after, scanned, &msg.filter, msg.limit)
}

super::ping_and_stop!(PgEvents);
