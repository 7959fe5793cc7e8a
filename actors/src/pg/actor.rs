//! The ledger's actor on PostgreSQL: the messages of [`crate::ledger`], answered by
//! this node's group-committing [`PgLedger`] (writes) and its pool (reads).
//!
//! Reads see what any node committed. [`VerifyLedger`] rechecks the raw rows on
//! one repeatable-read snapshot with the checks the redb backend uses.

use std::collections::BTreeMap;

use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, ResponseFuture};

use super::ledger::{JobAnswer, JobCommand, PgLedger};
use super::staged::{int, uint};
use super::{Pool, client};
use crate::catalog::{CatalogError, Product, ProductRow};
use crate::common::{Page, StoreError, codec};
use crate::domain::{OrderId, Timestamp};
use crate::events::PurgeCutoffs;
use crate::inbox::jobs::{Job, JobRow};
use crate::inbox::load::Applied;
use crate::inbox::messages::{AdvanceJob, CreateJob, LoadBatch, SettleJob};
use crate::ledger::products::ProductCommand;
use crate::ledger::records::{
    CheckoutError, Movement, MovementRow, Order, OrderError, OrderRow, Placed, StockError,
    orders_page,
};
use crate::ledger::verify::{Groups, VerifyReport, check_groups, check_order, check_sku};
use crate::ledger::{
    AdjustStock, ArchiveProduct, ChangeStatus, CreateProduct, GetOrder, ListMovements, ListOrders,
    PatchProduct, PlaceOrder, ReplaceProduct, Shutdown, VerifyLedger,
};
use crate::limits::{
    EVENT_RETENTION_DAYS_DEFAULT, LIST_SCAN_ROWS_MAX, PURGE_BATCH_MAX, PURGE_INTERVAL_SECS,
};

/// The ledger of one node on PostgreSQL.
pub struct PgLedgerActor {
    ledger: PgLedger,
    pub(super) pool: Pool,
    /// `--event-retention-days`.
    retention_days: u64,
    /// This node's name in the leases of import jobs and inbox claims (the
    /// ledger's own, [`PgLedger::node`]).
    pub(super) node: String,
}

impl PgLedgerActor {
    pub fn new(ledger: PgLedger, pool: Pool) -> Self {
        Self {
            node: ledger.node().to_owned(),
            ledger,
            pool,
            retention_days: EVENT_RETENTION_DAYS_DEFAULT,
        }
    }

    /// Events older than this many days are purged (by default
    /// [`EVENT_RETENTION_DAYS_DEFAULT`]).
    pub fn with_retention_days(mut self, days: u64) -> Self {
        self.retention_days = days;
        self
    }
}

impl Actor for PgLedgerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Keep this node's import jobs and inbox claims leased while it lives.
        ctx.run_interval(super::jobs::renew_every(), |act, ctx| {
            let pool = act.pool.clone();
            let node = act.node.clone();
            ctx.spawn(actix::fut::wrap_future(async move {
                if let Err(e) = super::jobs::renew_leases(&pool, &node).await {
                    tracing::warn!(error = %e, "could not renew the import leases");
                }
            }));
        });
        // Forget idempotency keys past their time and events past the retention,
        // a bounded number at a time (every node does; the purge is idempotent).
        ctx.run_interval(Duration::from_secs(PURGE_INTERVAL_SECS), |act, ctx| {
            let pool = act.pool.clone();
            let cutoffs = PurgeCutoffs::at(Timestamp::now(), act.retention_days);
            ctx.spawn(actix::fut::wrap_future(async move {
                let purged = async {
                    let mut db = client(&pool).await?;
                    super::purge(&mut db, cutoffs, PURGE_BATCH_MAX).await
                };
                match purged.await {
                    Ok(p) if p.keys + p.events > 0 => {
                        tracing::info!(keys = p.keys, events = p.events, "purged");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "the purge failed"),
                }
            }));
        });
    }
}

impl Handler<PlaceOrder> for PgLedgerActor {
    type Result = ResponseFuture<Result<Placed, CheckoutError>>;
    fn handle(&mut self, msg: PlaceOrder, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.ledger.place_order(msg.request))
    }
}

impl Handler<ChangeStatus> for PgLedgerActor {
    type Result = ResponseFuture<Result<Order, OrderError>>;
    fn handle(&mut self, msg: ChangeStatus, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.ledger.change_status(msg.order, msg.next, msg.caller))
    }
}

impl Handler<AdjustStock> for PgLedgerActor {
    type Result = ResponseFuture<Result<Movement, StockError>>;
    fn handle(&mut self, msg: AdjustStock, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.ledger.adjust(msg.sku, msg.delta, msg.reason))
    }
}

/// Queues a product command on the ledger (in the order of the messages) and
/// shapes its answer as the message's.
fn product<T: 'static>(
    ledger: &PgLedger,
    command: ProductCommand,
    answer: impl FnOnce((Product, bool)) -> T + 'static,
) -> ResponseFuture<Result<T, CatalogError>> {
    let answered = ledger.product(command);
    Box::pin(async move { answered.await.map(answer) })
}

impl Handler<CreateProduct> for PgLedgerActor {
    type Result = ResponseFuture<Result<Product, CatalogError>>;
    fn handle(&mut self, msg: CreateProduct, _: &mut Self::Context) -> Self::Result {
        product(&self.ledger, ProductCommand::Create(msg), |(p, _)| p)
    }
}

impl Handler<ReplaceProduct> for PgLedgerActor {
    type Result = ResponseFuture<Result<(Product, bool), CatalogError>>;
    fn handle(&mut self, msg: ReplaceProduct, _: &mut Self::Context) -> Self::Result {
        product(&self.ledger, ProductCommand::Replace(msg), |answer| answer)
    }
}

impl Handler<PatchProduct> for PgLedgerActor {
    type Result = ResponseFuture<Result<Product, CatalogError>>;
    fn handle(&mut self, msg: PatchProduct, _: &mut Self::Context) -> Self::Result {
        product(&self.ledger, ProductCommand::Patch(msg), |(p, _)| p)
    }
}

impl Handler<ArchiveProduct> for PgLedgerActor {
    type Result = ResponseFuture<Result<(), CatalogError>>;
    fn handle(&mut self, msg: ArchiveProduct, _: &mut Self::Context) -> Self::Result {
        product(&self.ledger, ProductCommand::Archive(msg), |_| ())
    }
}

fn order_of(id: i64, record: &[u8]) -> Result<Order, StoreError> {
    Ok(Order {
        id: OrderId(uint(id)?),
        row: codec::decode::<OrderRow>(record)?,
    })
}

impl Handler<GetOrder> for PgLedgerActor {
    type Result = ResponseFuture<Result<Option<Order>, StoreError>>;
    fn handle(&mut self, msg: GetOrder, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let row = db
                .query_opt(
                    "SELECT id, record FROM orders WHERE id = $1",
                    &[&int(msg.id.0)?],
                )
                .await?;
            Ok(row
                .map(|r| order_of(r.get(0), r.get(1)))
                .transpose()?
                .filter(|o| msg.caller.may_see(&o.row)))
        })
    }
}

impl Handler<ListOrders> for PgLedgerActor {
    type Result = ResponseFuture<Result<Page<Order, OrderId>, StoreError>>;
    fn handle(&mut self, msg: ListOrders, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let before = msg.before.map_or(Ok(i64::MAX), |id| int(id.0))?;
            let user = msg.user.map(|u| int(u.0)).transpose()?;
            let status = msg.status.map(|s| s.as_str());
            // As on redb: at most LIST_SCAN_ROWS_MAX orders looked at per page,
            // the status filter applied to them (records of the others not sent).
            let scan = int(LIST_SCAN_ROWS_MAX as u64 + 1)?;
            let db = client(&pool).await?;
            let rows = db
                .query(
                    "SELECT id, CASE WHEN $3::text IS NULL OR status = $3 THEN record END \
                     FROM orders WHERE id < $1 AND ($2::int8 IS NULL OR user_id = $2) \
                     ORDER BY id DESC LIMIT $4",
                    &[&before, &user, &status, &scan],
                )
                .await?;
            let rows = rows.iter().map(|r| {
                let id: i64 = r.get(0);
                let order = r
                    .get::<_, Option<&[u8]>>(1)
                    .map(|record| order_of(id, record))
                    .transpose()?;
                Ok::<_, StoreError>((OrderId(uint(id)?), order))
            });
            orders_page(rows, msg.limit)
        })
    }
}

impl Handler<ListMovements> for PgLedgerActor {
    type Result = ResponseFuture<Result<Option<Page<Movement, u64>>, StoreError>>;
    fn handle(&mut self, msg: ListMovements, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let known = db
                .query_opt(
                    "SELECT 1 FROM products WHERE sku = $1 AND NOT archived",
                    &[&msg.sku.as_str()],
                )
                .await?
                .is_some();
            if !known {
                return Ok(None);
            }
            let after = int(msg.after.unwrap_or(0))?;
            let limit = int(msg.limit as u64 + 1)?;
            let rows = db
                .query(
                    "SELECT seq, record FROM movements WHERE sku = $1 AND seq > $2 \
                     ORDER BY seq LIMIT $3",
                    &[&msg.sku.as_str(), &after, &limit],
                )
                .await?;
            let items = rows
                .iter()
                .map(|r| {
                    Ok(Movement {
                        sku: msg.sku.clone(),
                        seq: uint(r.get(0))?,
                        row: codec::decode(r.get::<_, &[u8]>(1))?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some(Page::from_overfetch(items, msg.limit, |m| m.seq)))
        })
    }
}

impl Handler<VerifyLedger> for PgLedgerActor {
    type Result = ResponseFuture<Result<VerifyReport, StoreError>>;
    fn handle(&mut self, _: VerifyLedger, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move { verify(&pool).await })
    }
}

/// Recomputes every SKU's stock from its movements and every order's total from
/// its lines, on one snapshot.
async fn verify(pool: &Pool) -> Result<VerifyReport, StoreError> {
    let mut db = client(pool).await?;
    let tx = db
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut report = VerifyReport::default();
    let mut levels = BTreeMap::new();
    for r in tx
        .query("SELECT sku, units, last_seq FROM stock ORDER BY sku", &[])
        .await?
    {
        levels.insert(r.get::<_, String>(0), (uint(r.get(1))?, uint(r.get(2))?));
    }
    let mut histories: BTreeMap<String, Vec<(u64, MovementRow)>> = BTreeMap::new();
    for r in tx
        .query(
            "SELECT sku, seq, record FROM movements ORDER BY sku, seq",
            &[],
        )
        .await?
    {
        histories
            .entry(r.get(0))
            .or_default()
            .push((uint(r.get(1))?, codec::decode(r.get::<_, &[u8]>(2))?));
    }
    for (sku, (level, last_seq)) in &levels {
        let history = histories.remove(sku).unwrap_or_default();
        check_sku(
            &mut report,
            sku,
            *level,
            *last_seq,
            history.into_iter().map(Ok),
        )?;
    }
    for sku in histories.keys() {
        report
            .problems
            .push(format!("{sku}: has movements but no stock level"));
    }
    for r in tx
        .query("SELECT id, record FROM orders ORDER BY id", &[])
        .await?
    {
        let order = order_of(r.get(0), r.get(1))?;
        check_order(&mut report, order.id.0, &order.row);
    }
    let mut groups = Groups::new();
    for r in tx
        .query(
            "SELECT sku, group_handle, record FROM products \
             WHERE group_handle IS NOT NULL AND NOT archived ORDER BY sku",
            &[],
        )
        .await?
    {
        let (sku, column): (String, String) = (r.get(0), r.get(1));
        let row: ProductRow = codec::decode(r.get::<_, &[u8]>(2))?;
        let group = row.attributes.group.map(|g| g.as_str().to_owned());
        if group.as_deref() != Some(column.as_str()) {
            report
                .problems
                .push(format!("{sku}: group column {column:?}, record {group:?}"));
        }
        let members = groups.entry(column).or_default();
        members.push((sku, row.attributes.options));
    }
    check_groups(&mut report, &groups);
    tx.commit().await?;
    Ok(report)
}

/// Ready when a connection answers and the ledger's task takes its queue: a task
/// stuck in a batch does not answer the ping, and `/readyz` (which waits a bounded
/// time) says the node is not ready.
impl Handler<crate::mailbox::Ping> for PgLedgerActor {
    type Result = actix::ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, _: crate::mailbox::Ping, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let task = self.ledger.ping();
        Box::pin(async move {
            super::ping(&pool).await?;
            task.await
        })
    }
}

impl Handler<Shutdown> for PgLedgerActor {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        // Commands already queued are committed by the ledger's task, which ends
        // once every handle to it is gone.
        ctx.stop();
    }
}

/// Sends an import job's command to this node's ledger and takes the answer it
/// expects (another kind of answer would be the ledger's bug).
fn job_command<T: Send + 'static>(
    ledger: &PgLedger,
    command: JobCommand,
    expected: fn(JobAnswer) -> Option<T>,
) -> ResponseFuture<Result<T, StoreError>> {
    let answer = ledger.job(command);
    Box::pin(async move {
        expected(answer.await?).ok_or_else(|| {
            StoreError::Corrupt("the ledger answered a job command with another's answer".into())
        })
    })
}

impl Handler<CreateJob> for PgLedgerActor {
    type Result = ResponseFuture<Result<Job, StoreError>>;
    fn handle(&mut self, msg: CreateJob, _: &mut Self::Context) -> Self::Result {
        let command = JobCommand::Create {
            new: msg.new,
            claim: msg.claim,
        };
        job_command(&self.ledger, command, |a| match a {
            JobAnswer::Created(job) => Some(job),
            _ => None,
        })
    }
}

impl Handler<AdvanceJob> for PgLedgerActor {
    type Result = ResponseFuture<Result<JobRow, StoreError>>;
    fn handle(&mut self, msg: AdvanceJob, _: &mut Self::Context) -> Self::Result {
        let command = JobCommand::Advance {
            id: msg.id,
            step: msg.step,
        };
        job_command(&self.ledger, command, |a| match a {
            JobAnswer::Row(row) => Some(row),
            _ => None,
        })
    }
}

impl Handler<SettleJob> for PgLedgerActor {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: SettleJob, _: &mut Self::Context) -> Self::Result {
        let command = JobCommand::Settle { id: msg.id };
        job_command(&self.ledger, command, |a| match a {
            JobAnswer::Settled => Some(()),
            _ => None,
        })
    }
}

impl Handler<LoadBatch> for PgLedgerActor {
    type Result = ResponseFuture<Result<Applied, StoreError>>;
    fn handle(&mut self, msg: LoadBatch, _: &mut Self::Context) -> Self::Result {
        let command = JobCommand::Load {
            id: msg.id,
            batch: msg.batch,
            dry_run: msg.dry_run,
        };
        job_command(&self.ledger, command, |a| match a {
            JobAnswer::Loaded(applied) => Some(applied),
            _ => None,
        })
    }
}
