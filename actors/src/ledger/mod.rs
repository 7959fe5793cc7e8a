//! The order ledger: stock, stock movements, orders and idempotency keys.
//!
//!
//! Why one file: the ledger actor's messages and its group-commit loop; the rules are
//! in `rules` (over the `rows` traits; `records` are what they keep, `redb_rows` the embedded rows), transactions in `tx`, products in `products`.
//! # One transaction per batch, prices read inside it
//!
//! An order, its `sale` movements and the stock levels they change are written in
//! one redb write transaction, so they are on disk together or not at all. The price
//! on each line is read from the product row *inside that same transaction*. Every
//! write of the catalog is a ledger command too (`products.rs`: products and their
//! initial stock through the same [`rules::Rules`]), and the catalog actor only
//! reads; so the price charged is the catalog price at the moment the order
//! commits, and no two actors ever commit halves of one order. The ledger keeps no
//! cached copy of stock or prices between transactions.
//!
//! # Group commit
//!
//! Checkouts, cancels, status changes and stock adjustments are not committed one by
//! one. A handler queues the command and, the first time the queue becomes
//! non-empty, schedules a flush as an actor future. actix polls the actor's futures
//! only after it has drained every message waiting in the mailbox, so by the time
//! the flush runs it sees every command that arrived meanwhile. The flush applies
//! them in arrival order in one write transaction (each command checks before it
//! writes, so a refused command leaves no trace), commits once with immediate
//! durability, and only then answers each caller. While that commit waits for the
//! disk, new commands pile up in the mailbox and form the next batch: the busier the
//! ledger, the larger its batches. `--commit-batch-max` bounds a batch; at 1 the
//! ledger commits every command on its own, for comparison.
//!
//! The ledger runs on its own arbiter (thread), so its blocking commits never stall
//! the HTTP workers.

pub mod backup;
pub mod jobs;
pub mod products;
pub mod records;
pub mod redb_rows;
pub mod rows;
pub mod rules;
pub mod tx;
pub mod verify;

use std::time::{Duration, Instant};

use actix::prelude::*;
use redb::ReadableDatabase;
use tokio::sync::{oneshot, watch};

use crate::catalog::ProductCache;
use crate::catalog::cache::Touched;
use crate::common::Page;
use crate::common::{StoreError, codec};
use crate::domain::{Currency, OrderId, OrderStatus, Reason, Sku, StockDelta, Timestamp, UserId};
use crate::events::{PurgeCutoffs, RowEvents};
use crate::limits::{
    EVENT_RETENTION_DAYS_DEFAULT, JOURNAL_CHECKPOINT_MS, PURGE_BATCH_MAX, PURGE_INTERVAL_SECS,
};
use crate::search::Feed;
use crate::store::Store;
use crate::store::journal::{Journal, durable_empty_commit};
use crate::store::tables::{self, MOVEMENTS, ORDERS, ORDERS_BY_USER, PRODUCTS, counter};
use crate::telemetry::{BatchCommitted, Event, Telemetry};
pub use backup::TakeBackup;
pub use products::{ArchiveProduct, CreateProduct, PatchProduct, ReplaceProduct};
pub use records::{
    Caller, CheckoutError, IdempotencyRow, Level, Movement, MovementDraft, MovementRow, Order,
    OrderError, OrderLine, OrderRequest, OrderRow, Placed, Shortage, Source, StockError,
};
use records::{KeysInFlight, count_checkout};
pub use redb_rows::Book;
pub use rules::Rules;
pub use tx::Tx;
pub use verify::VerifyReport;
pub use verify::verify;

/// Called once the batch's commit has succeeded (`Ok`) or failed (`Err`, nothing
/// was written); it answers the command's caller.
pub type Responder = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// How a command's batch may reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Through the journal, if the ledger has one and every command of the batch
    /// may: checkouts, status changes and stock adjustments, which write only the
    /// book's tables.
    Journaled,
    /// Straight into redb with immediate durability: product commands, imports,
    /// purges (whatever may write past the journal's tables).
    Durable,
}

/// What a queued command does inside the batch transaction. It returns its
/// responder and whether it hit a storage error mid-write (which poisons the batch:
/// the transaction is then abandoned and every caller told so).
pub type Work = Box<dyn for<'a, 'txn> FnOnce(&mut Tx<'a, 'txn>) -> (Responder, bool) + Send>;

/// How the ledger writes and announces events (see [`crate::events`]).
#[derive(Debug)]
pub struct EventsConfig {
    /// `--import-events`.
    pub row_events: RowEvents,
    /// `--event-retention-days`: older events are purged.
    pub retention_days: u64,
    /// Woken with the newest seq after every commit that wrote events: the feed's
    /// long polls wait on it instead of polling the table.
    pub notify: watch::Sender<u64>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            row_events: RowEvents::default(),
            retention_days: EVENT_RETENTION_DAYS_DEFAULT,
            notify: watch::Sender::new(0),
        }
    }
}

pub struct Ledger {
    store: Store,
    currency: Currency,
    events: EventsConfig,
    batch_max: usize,
    telemetry: Telemetry,
    queue: Vec<(Work, Commit)>,
    flush_scheduled: bool,
    /// (user, key) of keyed checkouts queued but not yet committed: a second request
    /// with the same key meanwhile is "still in flight" (409).
    keys_in_flight: KeysInFlight,
    /// The commit log in front of redb (see [`crate::store::journal`]); none: every
    /// batch commits durably.
    journal: Option<Journal>,
    /// The catalog's read cache, whose entries each commit's changes make stale.
    product_cache: ProductCache,
    /// The search index's feed, told what each commit touched.
    search_feed: Option<Feed>,
}

impl Ledger {
    pub fn new(store: Store, currency: Currency, batch_max: usize, telemetry: Telemetry) -> Self {
        assert!(batch_max >= 1, "a batch holds at least one command");
        Self {
            store,
            currency,
            events: EventsConfig::default(),
            batch_max,
            telemetry,
            queue: Vec::new(),
            flush_scheduled: false,
            keys_in_flight: KeysInFlight::default(),
            journal: None,
            product_cache: ProductCache::default(),
            search_feed: None,
        }
    }

    /// The ledger that commits checkouts, status changes and stock adjustments
    /// through `journal` (see [`crate::store::journal`]).
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The ledger that, after each commit and before answering its writers,
    /// forgets in `cache` every product whose row or stock the commit wrote (the
    /// default: a cache of its own that nobody reads).
    pub fn with_product_cache(mut self, cache: ProductCache) -> Self {
        self.product_cache = cache;
        self
    }

    /// The ledger that hands each commit's touched SKUs to the search index.
    pub fn with_search_feed(mut self, feed: Feed) -> Self {
        self.search_feed = Some(feed);
        self
    }

    /// The ledger with these event settings (the default: row events off, 30 days
    /// kept, nobody woken).
    pub fn with_events(mut self, events: EventsConfig) -> Self {
        self.events = events;
        self
    }

    /// Starts the ledger on an arbiter (thread) of its own.
    pub fn start_on_own_thread(self) -> Addr<Self> {
        Ledger::start_in_arbiter(&Arbiter::new().handle(), |_| self)
    }

    fn enqueue(&mut self, work: Work, commit: Commit, ctx: &mut Context<Self>) {
        self.queue.push((work, commit));
        if self.queue.len() >= self.batch_max {
            self.flush();
        } else if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.spawn(fut::wrap_future::<_, Self>(async {}).map(|(), act, _| {
                act.flush_scheduled = false;
                act.flush();
            }));
        }
    }

    /// Applies every queued command in one write transaction, commits once, then
    /// answers each caller.
    fn flush(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.queue);
        let size = batch.len();
        let started = Instant::now();
        let mut responders = Vec::with_capacity(size);
        let outcome = self.apply(batch, &mut responders);
        if let Some(journal) = &self.journal {
            journal.batch_ended();
        }
        for respond in responders {
            respond(outcome.as_ref().map(|_| ()));
        }
        self.keys_in_flight.clear();
        BatchCommitted {
            commands: size,
            seconds: started.elapsed().as_secs_f64(),
            abandoned: outcome.as_ref().err(),
        }
        .emit(&self.telemetry);
    }

    /// The batch in one transaction, committed durably: into redb, or into redb
    /// without waiting for the disk and then into the journal, synced.
    fn apply(
        &mut self,
        batch: Vec<(Work, Commit)>,
        responders: &mut Vec<Responder>,
    ) -> Result<(), StoreError> {
        let journaled =
            self.journal.is_some() && batch.iter().all(|(_, c)| *c == Commit::Journaled);
        if let Some(journal) = self.journal.as_ref().filter(|_| journaled) {
            journal.batch_started();
        }
        let mut txn = self.store.db().begin_write()?;
        let Ran {
            poisoned,
            newest,
            touched,
            payload,
        } = tx::within(&txn, self.currency, self.events.row_events, |tx| {
            let ran = run_commands(tx, batch, responders, journaled);
            let stands = !ran.poisoned;
            (ran, stands)
        })?;
        if poisoned {
            txn.abort()?;
            return Err(StoreError::Aborted(
                "a command in the batch failed to write".into(),
            ));
        }
        // Journaled when every write went through the journal's tables and the
        // journal takes it now (room left, checkpoint not due).
        let logged = match (&self.journal, &payload) {
            (Some(journal), Some(payload)) => {
                journal.takes(payload.len()).then(|| journal.next_seq())
            }
            _ => None,
        };
        if let Some(seq) = logged {
            txn.set_durability(redb::Durability::None)?;
            txn.open_table(tables::META)?
                .insert(counter::JOURNAL_SEQ, seq)?;
        }
        let committed = txn.commit();
        // Forgotten even when the commit reports an error: what it wrote may still
        // have become visible, and forgetting is never wrong.
        if !touched.is_empty() {
            if let Some(feed) = &self.search_feed {
                feed.touched(&touched);
            }
            self.product_cache.forget(touched);
        }
        // A commit that reports an error may still be on disk (redb had written
        // its pages when the sync failed): "nothing was written, retry" would let
        // a retry without a key write the change twice.
        committed.map_err(|e| StoreError::OutcomeUnknown(format!("the commit failed: {e}")))?;
        match (&mut self.journal, logged.and(payload)) {
            (Some(journal), Some(payload)) => journal.append(&payload).or_else(|e| {
                // The batch is in redb, not yet durably: a durable commit makes it so.
                tracing::error!(error = %e, "the ledger journal failed; committing durably");
                durable_empty_commit(&self.store).map_err(|e| {
                    StoreError::OutcomeUnknown(format!(
                        "the journal failed, then the database: {e}"
                    ))
                })
            })?,
            // A durable commit holds every journaled batch before it.
            (Some(journal), None) => journal.checkpointed(),
            (None, _) => {}
        }
        if let Some(seq) = newest {
            self.events.notify.send_replace(seq);
        }
        Ok(())
    }

    /// Makes every journaled batch durable in redb with an empty durable commit
    /// (when one is due, or `always`), so the journal starts again from its start.
    fn checkpoint(&mut self, always: bool) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if !(always || journal.due()) {
            return;
        }
        match durable_empty_commit(&self.store) {
            Ok(()) => journal.checkpointed(),
            Err(e) => {
                tracing::warn!(error = %e, "ledger checkpoint failed; the journal keeps its records")
            }
        }
    }

    pub(crate) fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        Ok(self.store.db().begin_read()?)
    }
}

impl Actor for Ledger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A quiet ledger still makes its journaled batches durable in redb soon,
        // so a restart has little to replay.
        if self.journal.is_some() {
            ctx.run_interval(Duration::from_millis(JOURNAL_CHECKPOINT_MS), |act, _| {
                act.checkpoint(false);
            });
        }
        // Forget idempotency keys past their time, a bounded number at a time.
        ctx.run_interval(Duration::from_secs(PURGE_INTERVAL_SECS), |act, ctx| {
            let retention_days = act.events.retention_days;
            let work: Work = Box::new(move |tx| {
                let cutoffs = PurgeCutoffs::at(Timestamp::now(), retention_days);
                let failed = tx
                    .book
                    .purge_idempotency(cutoffs.keys, PURGE_BATCH_MAX)
                    .is_err()
                    || tx
                        .book
                        .rows
                        .outbox
                        .purge(cutoffs.events, PURGE_BATCH_MAX)
                        .is_err();
                (Box::new(|_| {}), failed)
            });
            act.enqueue(work, Commit::Durable, ctx);
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        // Never leave a caller without an answer: commit what is queued.
        self.flush();
        self.checkpoint(true);
        Running::Stop
    }
}

impl Ledger {
    /// Queues `run` for the next batch transaction and answers with its result once
    /// the batch has committed durably (or with the commit's error). Errors for
    /// which `poisons` is true are storage failures mid-write: they abandon the
    /// batch. A ledger that stops before answering becomes a storage error, not a
    /// hang.
    pub(crate) fn submit<T, E>(
        &mut self,
        ctx: &mut Context<Self>,
        poisons: fn(&E) -> bool,
        run: impl for<'a, 'txn> FnOnce(&mut Tx<'a, 'txn>) -> Result<T, E> + Send + 'static,
    ) -> ResponseFuture<Result<T, E>>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit_as(ctx, Commit::Durable, poisons, run)
    }

    /// [`Self::submit`], committed as `commit` says: [`Commit::Journaled`] only for
    /// a command that writes nothing but the book's tables.
    fn submit_as<T, E>(
        &mut self,
        ctx: &mut Context<Self>,
        commit: Commit,
        poisons: fn(&E) -> bool,
        run: impl for<'a, 'txn> FnOnce(&mut Tx<'a, 'txn>) -> Result<T, E> + Send + 'static,
    ) -> ResponseFuture<Result<T, E>>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let work: Work = Box::new(move |tx| {
            let result = run(tx);
            let failed = result.as_ref().is_err_and(poisons);
            let respond: Responder = Box::new(move |commit| {
                let answer = match commit {
                    Ok(()) => result,
                    // A journaled batch whose journal failed is in redb, and
                    // maybe on disk: its outcome is unknown, not abandoned.
                    Err(StoreError::OutcomeUnknown(why)) => {
                        Err(E::from(StoreError::OutcomeUnknown(why.clone())))
                    }
                    Err(e) => Err(E::from(StoreError::Aborted(e.to_string()))),
                };
                let _ = reply.send(answer);
            });
            (respond, failed)
        });
        self.enqueue(work, commit, ctx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(E::from(StoreError::Aborted("ledger stopped".into()))))
        })
    }
}

/// What running a batch's commands in its transaction left for the commit.
struct Ran {
    /// A command failed to write (or panicked): the batch is abandoned.
    poisoned: bool,
    /// The last event seq the batch appended.
    newest: Option<u64>,
    /// Products and levels the read cache must forget.
    touched: Touched,
    /// The journal record of what the batch wrote, if it recorded one.
    payload: Option<Vec<u8>>,
}

/// Runs each command of a batch in `tx`, pushing its responder; stops trying
/// after a storage error (the rest are told the batch was abandoned).
fn run_commands(
    tx: &mut Tx<'_, '_>,
    batch: Vec<(Work, Commit)>,
    responders: &mut Vec<Responder>,
    journaled: bool,
) -> Ran {
    if journaled {
        tx.book.rows.capture.start();
    }
    let mut poisoned = false;
    for (work, _) in batch {
        if poisoned {
            responders.push(Box::new(|_| {}));
            continue;
        }
        // A command that panics must not take the ledger (and every later
        // checkout) with it: the batch is abandoned as for a storage error, and
        // that command's caller, whose reply went with it, is told the ledger
        // did not answer.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(tx))) {
            Ok((respond, failed)) => {
                responders.push(respond);
                poisoned |= failed;
            }
            Err(_) => {
                tracing::error!("a ledger command panicked; its batch is abandoned");
                poisoned = true;
            }
        }
    }
    let catalog_rows = tx.catalog.take_touched();
    if !catalog_rows.is_empty() {
        // The catalog's tables are not logged: a batch that wrote one commits
        // durably (no journaled command does today).
        tx.book.rows.capture.spoil();
    }
    Ran {
        poisoned,
        newest: tx.book.rows.outbox.last_appended(),
        touched: catalog_rows.and(std::mem::take(&mut tx.book.rows.touched)),
        payload: tx.book.rows.capture.take(),
    }
}

/// Place an order (checkout). Answered only once the order is durable.
#[derive(Debug, Message)]
#[rtype(result = "Result<Placed, CheckoutError>")]
pub struct PlaceOrder {
    /// The validated checkout.
    pub request: OrderRequest,
}

impl Handler<PlaceOrder> for Ledger {
    type Result = ResponseFuture<Result<Placed, CheckoutError>>;

    fn handle(&mut self, msg: PlaceOrder, ctx: &mut Self::Context) -> Self::Result {
        let request = msg.request;
        if let Err(e) = self.keys_in_flight.take(&request) {
            let refused = Err(e);
            count_checkout(&self.telemetry, &refused);
            return Box::pin(async { refused });
        }
        let telemetry = self.telemetry.clone();
        let poisons = |e: &CheckoutError| matches!(e, CheckoutError::Store(_));
        self.submit_as(ctx, Commit::Journaled, poisons, move |tx| {
            let result = tx
                .book
                .place_order(tx.catalog, &request, tx.currency, tx.at);
            count_checkout(&telemetry, &result);
            result
        })
    }
}

/// Move an order along its lifecycle (cancel restocks).
#[derive(Debug, Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct ChangeStatus {
    /// The order.
    pub order: OrderId,
    /// The status it should have.
    pub next: OrderStatus,
    /// Who asks: a customer may only cancel their own orders.
    pub caller: Caller,
}

impl Handler<ChangeStatus> for Ledger {
    type Result = ResponseFuture<Result<Order, OrderError>>;

    fn handle(&mut self, msg: ChangeStatus, ctx: &mut Self::Context) -> Self::Result {
        let poisons = |e: &OrderError| matches!(e, OrderError::Store(_));
        self.submit_as(ctx, Commit::Journaled, poisons, move |tx| {
            tx.book
                .change_status(msg.order, msg.next, msg.caller, tx.at)
        })
    }
}

/// An admin's stock change through the ledger.
#[derive(Debug, Message)]
#[rtype(result = "Result<Movement, StockError>")]
pub struct AdjustStock {
    /// The product.
    pub sku: Sku,
    /// Units added (positive) or removed (negative).
    pub delta: StockDelta,
    /// Why, for the movement history.
    pub reason: Reason,
}

impl Handler<AdjustStock> for Ledger {
    type Result = ResponseFuture<Result<Movement, StockError>>;

    fn handle(&mut self, msg: AdjustStock, ctx: &mut Self::Context) -> Self::Result {
        let poisons = |e: &StockError| matches!(e, StockError::Store(_));
        self.submit_as(ctx, Commit::Journaled, poisons, move |tx| {
            tx.book
                .adjust(tx.catalog, &msg.sku, msg.delta, msg.reason, tx.at)
        })
    }
}

/// Run arbitrary work inside the next batch transaction (used by the import loader).
#[derive(Message)]
#[rtype(result = "Result<T, StoreError>")]
pub struct Transact<T: Send + 'static> {
    /// The work: it must check before it writes, like every ledger command.
    #[allow(clippy::type_complexity)]
    pub work: Box<dyn for<'a, 'txn> FnOnce(&mut Tx<'a, 'txn>) -> Result<T, StoreError> + Send>,
}

impl<T: Send + 'static> Handler<Transact<T>> for Ledger {
    type Result = ResponseFuture<Result<T, StoreError>>;

    fn handle(&mut self, msg: Transact<T>, ctx: &mut Self::Context) -> Self::Result {
        // Every error of the loader's work is a storage error.
        self.submit(ctx, |_| true, move |tx| (msg.work)(tx))
    }
}

/// Run work in a transaction of its own that is then abandoned: a dry run sees
/// exactly what a real load would do, and nothing is written.
#[derive(Message)]
#[rtype(result = "Result<T, StoreError>")]
pub struct DryRun<T: Send + 'static> {
    /// The work, as for [`Transact`].
    #[allow(clippy::type_complexity)]
    pub work: Box<dyn for<'a, 'txn> FnOnce(&mut Tx<'a, 'txn>) -> Result<T, StoreError> + Send>,
}

impl<T: Send + 'static> Handler<DryRun<T>> for Ledger {
    type Result = Result<T, StoreError>;

    fn handle(&mut self, msg: DryRun<T>, _: &mut Self::Context) -> Self::Result {
        // Commands queued before this one come first, as they would in a real load.
        self.flush();
        let txn = self.store.db().begin_write()?;
        // Nothing of a dry run stands: the transaction is abandoned (also when the
        // work panics, which must not stop the ledger).
        let result = tx::within(&txn, self.currency, self.events.row_events, |tx| {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (msg.work)(tx)));
            (run, false)
        })?;
        txn.abort()?;
        result.unwrap_or_else(|_| {
            tracing::error!("a dry run panicked in the ledger; it was abandoned");
            Err(StoreError::Aborted(
                "the dry run failed inside the ledger".into(),
            ))
        })
    }
}

/// One order, if the caller may see it.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Order>, StoreError>")]
pub struct GetOrder {
    /// The order.
    pub id: OrderId,
    /// Who asks: another customer's order is "not found".
    pub caller: Caller,
}

impl Handler<GetOrder> for Ledger {
    type Result = Result<Option<Order>, StoreError>;
    fn handle(&mut self, msg: GetOrder, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        let orders = txn.open_table(ORDERS)?;
        let row: Option<OrderRow> = crate::store::get_record(&orders, msg.id.0)?;
        Ok(row
            .filter(|r| msg.caller.may_see(r))
            .map(|row| Order { id: msg.id, row }))
    }
}

/// Orders newest first: one user's, or everyone's.
#[derive(Debug, Message)]
#[rtype(result = "Result<Page<Order, OrderId>, StoreError>")]
pub struct ListOrders {
    /// Only this user's orders; `None` lists all (admin).
    pub user: Option<UserId>,
    /// Continue below this order id (the previous page's cursor).
    pub before: Option<OrderId>,
    /// Page size, already bounded.
    pub limit: usize,
    /// Only orders in this status. The scan stops after [`crate::limits::LIST_SCAN_ROWS_MAX`]
    /// orders: a page may then come short, with a cursor to go on.
    pub status: Option<OrderStatus>,
}

impl Handler<ListOrders> for Ledger {
    type Result = Result<Page<Order, OrderId>, StoreError>;
    fn handle(&mut self, msg: ListOrders, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        let orders = txn.open_table(ORDERS)?;
        let by_user = txn.open_table(ORDERS_BY_USER)?;
        let before = msg.before.map_or(u64::MAX, |id| id.0);
        // Newest first: one user's through the index, or all.
        let ids: Box<dyn Iterator<Item = Result<u64, redb::StorageError>>> = match msg.user {
            Some(user) => Box::new(
                by_user
                    .range((user.0, 0)..(user.0, before))?
                    .rev()
                    .map(|e| e.map(|(k, _)| k.value().1)),
            ),
            None => Box::new(
                orders
                    .range(..before)?
                    .rev()
                    .map(|e| e.map(|(k, _)| k.value())),
            ),
        };
        let rows = ids.map(|id| {
            let id = id?;
            let row: OrderRow = crate::store::get_record(&orders, id)?
                .ok_or_else(|| StoreError::Corrupt(format!("order {id} is indexed but missing")))?;
            let matches = msg.status.is_none_or(|s| row.status == s);
            let order = matches.then_some(Order {
                id: OrderId(id),
                row,
            });
            Ok::<_, StoreError>((OrderId(id), order))
        });
        records::orders_page(rows, msg.limit)
    }
}

/// A SKU's movements, oldest first; `None` when the product is unknown or archived.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Page<Movement, u64>>, StoreError>")]
pub struct ListMovements {
    /// The product.
    pub sku: Sku,
    /// Continue after this movement seq.
    pub after: Option<u64>,
    /// Page size, already bounded.
    pub limit: usize,
}

impl Handler<ListMovements> for Ledger {
    type Result = Result<Option<Page<Movement, u64>>, StoreError>;
    fn handle(&mut self, msg: ListMovements, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        let products = txn.open_table(PRODUCTS)?;
        let known = match products.get(msg.sku.as_str())? {
            Some(v) => !codec::decode::<crate::catalog::ProductRow>(v.value())?.archived,
            None => false,
        };
        if !known {
            return Ok(None);
        }
        let movements = txn.open_table(MOVEMENTS)?;
        let from = msg.after.map_or(1, |s| s.saturating_add(1));
        let sku = msg.sku.as_str();
        let items = movements
            .range((sku, from)..=(sku, u64::MAX))?
            .take(msg.limit.saturating_add(1))
            .map(|entry| {
                let (k, v) = entry?;
                Ok(Movement {
                    sku: msg.sku.clone(),
                    seq: k.value().1,
                    row: codec::decode::<MovementRow>(v.value())?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(Page::from_overfetch(items, msg.limit, |m| m.seq)))
    }
}

/// Recompute every SKU's stock from its movements and every order's total from its
/// lines, on a read snapshot, off the ledger's thread.
#[derive(Debug, Message)]
#[rtype(result = "Result<VerifyReport, StoreError>")]
pub struct VerifyLedger;

impl Handler<VerifyLedger> for Ledger {
    type Result = ResponseFuture<Result<VerifyReport, StoreError>>;
    fn handle(&mut self, _: VerifyLedger, _: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || verify::verify(&store))
                .await
                .unwrap_or_else(|e| Err(StoreError::Aborted(format!("verification failed: {e}"))))
        })
    }
}

impl Handler<crate::mailbox::Ping> for Ledger {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: crate::mailbox::Ping, _: &mut Self::Context) -> Self::Result {
        self.store.check_readable()
    }
}

/// Stop the ledger after committing whatever is queued.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for Ledger {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        self.flush();
        ctx.stop();
        Arbiter::current().stop();
    }
}
