//! The events feed on PostgreSQL: the message of [`crate::events::reader`].
//!
//! Seqs are gapless and in commit order across nodes (see [`super::ledger`]), so a
//! reader of `seq > after` never sees a seq while a smaller one is still to come.
//! Events are not purged on this backend yet: every `after` is still kept.

use actix::{Actor, Context, Handler, ResponseFuture};

use super::staged::{int, uint};
use super::{Pool, client};
use crate::events::reader::{EventPage, EventsError, ListEvents, page};
use crate::limits::EVENTS_SCAN_ROWS_MAX;
use crate::mailbox::{Ping, Stop};
use crate::store::{StoreError, codec};

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
            let after = msg.after.unwrap_or(0);
            let db = client(&pool).await?;
            let rows = db
                .query(
                    "SELECT seq, record FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&int(after)?, &int(EVENTS_SCAN_ROWS_MAX as u64)?],
                )
                .await
                .map_err(StoreError::from)?;
            let scanned = rows
                .iter()
                .map(|r| Ok((uint(r.get(0))?, codec::decode(r.get::<_, &[u8]>(1))?)));
            page(after, scanned, &msg.filter, msg.limit)
        })
    }
}

impl Handler<Ping> for PgEvents {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move { super::ping(&pool).await })
    }
}

impl Handler<Stop> for PgEvents {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}
