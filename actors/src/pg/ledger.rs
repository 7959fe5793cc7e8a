//! The ledger on PostgreSQL: each node group-commits its own commands.
//!
//! Why one file: the queue, the batch's locking reads, its rules and its answers
//! are the steps of one transaction; the rows they pass along live in `staged`.
//!
//! One task per node owns one connection. Commands queue on a channel; while a
//! batch commits, the next one gathers, so the busier the node, the larger its
//! batches (as the redb ledger's). A batch is one PostgreSQL transaction:
//!
//! 1. lock, in one fixed order every node follows (so nodes never deadlock):
//!    advisory locks on the batch's idempotency keys and order references (sorted;
//!    a second request with the same key on another node waits here, then finds
//!    the first's order and replays it), the orders it changes (`FOR UPDATE`, by
//!    id), the products it reads (`FOR UPDATE`, by SKU), their stock (`FOR UPDATE`,
//!    by SKU). Every row lock is taken in the mode its write needs, so no lock is
//!    ever upgraded: a shared lock on a product that the batch then writes would
//!    wait for another node's batch holding the same shared lock while that one
//!    waits for this batch's stock lock (a deadlock). Client-chosen strings lock in
//!    a space of their own ([`CLIENT_KEY_LOCK_SPACE`]), and every wait is bounded by
//!    `lock_timeout` ([`crate::limits::PG_LOCK_TIMEOUT_MS`]);
//! 2. run the ledger's rules ([`crate::ledger::rules::Rules`], the very code the redb
//!    backend runs) on those rows: each command checks, then writes, so a refused
//!    order leaves no trace and never fails its neighbours;
//! 3. write the batch back with one statement per table ([`super::staged`]), the
//!    event counter row last, and commit. Every caller is answered after the
//!    commit, or told that nothing was written.
//!
//! Events: their seqs come from the counter row, updated as the batch's last
//! statement and held until its commit. A batch on another node that writes events
//! waits for that row, so it takes larger seqs and becomes visible later: a reader
//! of `seq > N` never sees a seq while a smaller one is still to come.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Transaction};

use super::jobs::{StagedCustomers, StagedJobs};
use super::staged::{Staged, int, uint};
use super::staged_products::{StagedProducts, flush_products};
use crate::catalog::{CatalogError, Product, ProductRow};
use crate::common::{StoreError, codec};
use crate::domain::JobId;
use crate::domain::{
    Currency, GroupHandle, IdempotencyKey, OrderId, OrderRef, OrderStatus, Reason, Sku, StockDelta,
    Timestamp, UserId,
};
use crate::events::RowEvents;
use crate::inbox::jobs::{Job, JobRow, NewJob, Step};
use crate::inbox::load::{self, Applied, Batch, Target, Unit};
use crate::ledger::jobs::advance_announcing;
use crate::ledger::products::{self, ProductCommand};
use crate::ledger::records::{
    Caller, CheckoutError, IdempotencyRow, KeysInFlight, Level, Movement, Order, OrderError,
    OrderRequest, OrderRow, Placed, StockError, count_checkout,
};
use crate::ledger::rules::Rules;
use crate::search::Feed;
use crate::telemetry::{BatchCommitted, Event, Telemetry};

/// A command for the ledger, with where its answer goes.
enum Command {
    Place(OrderRequest, oneshot::Sender<Result<Placed, CheckoutError>>),
    Change(
        OrderId,
        OrderStatus,
        Caller,
        oneshot::Sender<Result<Order, OrderError>>,
    ),
    Adjust(
        Sku,
        StockDelta,
        Reason,
        oneshot::Sender<Result<Movement, StockError>>,
    ),
    /// A product write from the API (the same rules as on redb).
    Product(
        ProductCommand,
        oneshot::Sender<Result<(Product, bool), CatalogError>>,
    ),
    /// Creates or replaces a product with its stock level.
    /// A step of an import job (see [`JobCommand`]).
    Job(JobCommand, oneshot::Sender<Result<JobAnswer, StoreError>>),
}

/// What an import job asks of the ledger: the messages of
/// [`crate::inbox::jobs`], with the same rules as on redb.
#[derive(Debug)]
pub enum JobCommand {
    Create {
        new: NewJob,
        claim: Option<String>,
    },
    Advance {
        id: JobId,
        step: Step<'static>,
    },
    Settle {
        id: JobId,
    },
    Load {
        id: JobId,
        batch: Batch,
        dry_run: bool,
    },
}

impl JobCommand {
    fn job(&self) -> Option<JobId> {
        match self {
            JobCommand::Create { .. } => None,
            JobCommand::Advance { id, .. }
            | JobCommand::Settle { id }
            | JobCommand::Load { id, .. } => Some(*id),
        }
    }
}

/// What a job command answered.
#[derive(Debug)]
pub enum JobAnswer {
    Created(Job),
    Row(JobRow),
    Settled,
    Loaded(Applied),
}

/// What a command answered inside the batch, before the commit decides.
enum Answer {
    Place(Result<Placed, CheckoutError>),
    Change(Result<Order, OrderError>),
    Adjust(Result<Movement, StockError>),
    Product(Result<(Product, bool), CatalogError>),
    Job(Result<JobAnswer, StoreError>),
}

/// The first key of the two-`int4` advisory locks on client-chosen strings
/// (idempotency keys, order references): a lock space of their own.
/// PostgreSQL keeps the one-`bigint` and the two-`int4` forms apart (pg_locks'
/// `objsubid` 1 and 2), and every lock the service itself holds (migrations,
/// webhook delivery, the NATS relay, API key creation) is a `bigint`: no string a
/// client sends can name one of those, whatever it hashes to.
pub const CLIENT_KEY_LOCK_SPACE: i32 = 0x6b65_7973; // "keys"

/// The second key of the lock on client-chosen string `key`: 32 bits of its
/// SHA-256. Two strings that share them only make their batches wait for each
/// other, for a batch's time at most (and `lock_timeout` bounds every wait).
pub fn client_key_lock(key: &str) -> i32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    i32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The string whose lock guards idempotency key `key` of `user`.
pub fn idempotency_lock(user: UserId, key: &IdempotencyKey) -> String {
    format!("k:{}:{}", user.0, key.as_str())
}

/// Settings of one node's ledger.
#[derive(Debug, Clone)]
pub struct Settings {
    pub currency: Currency,
    pub batch_max: usize,
    pub row_events: RowEvents,
    /// Where batches and orders are counted (the `/metrics` of this node).
    pub telemetry: Telemetry,
    /// Where to connect again when the connection is lost (`None`: the ledger
    /// answers every later command with the loss).
    pub reconnect: Option<String>,
    /// This node's name in the leases of import jobs (unique per process).
    pub node: String,
    /// The search index's feed, told each committed batch's SKUs.
    pub search_feed: Option<Feed>,
}

/// Where a node's handlers send ledger commands.
#[derive(Clone)]
pub struct PgLedger {
    queue: mpsc::UnboundedSender<Queued>,
    node: String,
}

fn stopped() -> StoreError {
    StoreError::Aborted("the ledger stopped".into())
}

impl PgLedger {
    /// Starts the ledger's task on the current tokio runtime, owning `client`.
    pub fn start(client: Client, settings: Settings) -> Self {
        assert!(
            settings.batch_max >= 1,
            "a batch holds at least one command"
        );
        // Unbounded here: what may queue is bounded by the ledger's mailbox.
        let (queue, commands) = mpsc::unbounded_channel();
        let node = settings.node.clone();
        tokio::spawn(run(client, settings, commands));
        Self { queue, node }
    }

    /// This node's name in the leases of import jobs.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Answers once the ledger's task takes its next commands: a task stuck in a
    /// batch (or gone) does not answer, and `/readyz` says so.
    pub fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + use<> {
        let (reply, answer) = oneshot::channel();
        let sent = self.queue.send(Queued::Ping(reply)).is_ok();
        async move {
            if !sent {
                return Err(stopped());
            }
            answer.await.map_err(|_| stopped())
        }
    }

    /// A step of an import job.
    pub fn job(
        &self,
        command: JobCommand,
    ) -> impl Future<Output = Result<JobAnswer, StoreError>> + use<> {
        self.ask(move |r| Command::Job(command, r), || Err(stopped()))
    }

    /// Queues a command at once (so commands run in the order they were sent)
    /// and answers a future of its answer.
    fn ask<T, F: FnOnce(oneshot::Sender<T>) -> Command>(
        &self,
        command: F,
        lost: fn() -> T,
    ) -> impl Future<Output = T> + use<T, F> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .queue
            .send(Queued::Command(Box::new(command(reply))))
            .is_ok();
        async move {
            if !sent {
                return lost();
            }
            answer.await.unwrap_or_else(|_| lost())
        }
    }

    pub fn place_order(
        &self,
        request: OrderRequest,
    ) -> impl Future<Output = Result<Placed, CheckoutError>> + use<> {
        self.ask(
            move |r| Command::Place(request, r),
            || Err(stopped().into()),
        )
    }

    pub fn change_status(
        &self,
        id: OrderId,
        next: OrderStatus,
        caller: Caller,
    ) -> impl Future<Output = Result<Order, OrderError>> + use<> {
        self.ask(
            move |r| Command::Change(id, next, caller, r),
            || Err(stopped().into()),
        )
    }

    pub fn adjust(
        &self,
        sku: Sku,
        delta: StockDelta,
        reason: Reason,
    ) -> impl Future<Output = Result<Movement, StockError>> + use<> {
        self.ask(
            move |r| Command::Adjust(sku, delta, reason, r),
            || Err(stopped().into()),
        )
    }

    /// Applies a product write (create, replace, patch, archive).
    pub fn product(
        &self,
        command: ProductCommand,
    ) -> impl Future<Output = Result<(Product, bool), CatalogError>> + use<> {
        self.ask(
            move |r| Command::Product(command, r),
            || Err(stopped().into()),
        )
    }
}

/// What the ledger's task takes from its queue: a command, or a ping it answers
/// as soon as it takes it.
enum Queued {
    Command(Box<Command>),
    Ping(oneshot::Sender<()>),
}

async fn run(mut client: Client, settings: Settings, mut queued: mpsc::UnboundedReceiver<Queued>) {
    let mut gathered = Vec::with_capacity(settings.batch_max);
    while queued.recv_many(&mut gathered, settings.batch_max).await > 0 {
        let commands: Vec<Command> = gathered
            .drain(..)
            .filter_map(|q| match q {
                Queued::Command(command) => Some(*command),
                Queued::Ping(reply) => {
                    let _ = reply.send(());
                    None
                }
            })
            .collect();
        // A dry run's load is a batch of its own, whose rules' writes are dropped.
        let mut rest = commands.into_iter().peekable();
        while rest.peek().is_some() {
            let mut batch = Vec::new();
            let dry = rest.peek().is_some_and(is_dry_run);
            if dry {
                batch.extend(rest.next());
            } else {
                while let Some(command) = rest.next_if(|c| !is_dry_run(c)) {
                    batch.push(command);
                }
            }
            commit_batch(&mut client, &settings, batch, dry).await;
        }
    }
}

fn is_dry_run(command: &Command) -> bool {
    matches!(
        command,
        Command::Job(JobCommand::Load { dry_run: true, .. }, _)
    )
}

/// Commits one batch and answers its callers.
async fn commit_batch(
    client: &mut Client,
    settings: &Settings,
    mut batch: Vec<Command>,
    dry: bool,
) {
    if client.is_closed() {
        match reconnect(settings).await {
            Some(fresh) => *client = fresh,
            None => {
                // No database: the batch is refused at once (503, retryable),
                // and the next one tries again after a pause.
                let lost = StoreError::Aborted("no connection to PostgreSQL".into());
                for command in batch.drain(..) {
                    answer_one(command, Err(&lost));
                }
                let pause = Duration::from_millis(crate::limits::PG_RECONNECT_DELAY_MS);
                tokio::time::sleep(pause).await;
                return;
            }
        }
    }
    let started = Instant::now();
    let outcome = apply(client, settings, &mut batch, dry).await;
    BatchCommitted {
        commands: batch.len(),
        seconds: started.elapsed().as_secs_f64(),
        abandoned: outcome.as_ref().err(),
    }
    .emit(&settings.telemetry);
    match outcome {
        Ok(answers) => {
            for (command, answer) in batch.drain(..).zip(answers) {
                if let Answer::Place(placed) = &answer {
                    count_checkout(&settings.telemetry, placed);
                }
                answer_one(command, Ok(answer));
            }
        }
        Err(e) => {
            for command in batch.drain(..) {
                answer_one(command, Err(&e));
            }
            if not_the_primary(&e) {
                // The server is (or became) read-only or is shutting down: look for
                // the primary now (`target_session_attrs=read-write` skips standbys).
                if let Some(fresh) = reconnect(settings).await {
                    *client = fresh;
                }
            }
        }
    }
}

/// `n` new values of the sequence `sequence`, in one statement.
async fn draw_ids(
    tx: &tokio_postgres::Transaction<'_>,
    sequence: &'static str,
    n: i64,
) -> Result<Vec<i64>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    Ok(tx
        .query(
            &format!("SELECT nextval('{sequence}') FROM generate_series(1, $1::int8)"),
            &[&n],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// An error that says this connection's server is not a primary that can take
/// the ledger's writes (a standby, a demoted primary, a server shutting down).
fn not_the_primary(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    let StoreError::Postgres(e) = e else {
        return false;
    };
    e.code().is_some_and(|code| {
        [
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code)
    })
}

/// A new connection for the ledger, if it may and can have one.
async fn reconnect(settings: &Settings) -> Option<Client> {
    let url = settings.reconnect.as_deref()?;
    match super::connect(url).await {
        Ok(client) => {
            tracing::info!("the ledger connected to PostgreSQL again");
            Some(client)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the ledger cannot reach PostgreSQL");
            None
        }
    }
}

/// Answers a command with what it answered in a committed batch, or with the
/// batch's failure (nothing of it was written).
fn answer_one(command: Command, outcome: Result<Answer, &StoreError>) {
    // What the callers are told: unknown stays unknown; anything else means
    // nothing of the batch was written.
    let aborted = |e: &StoreError| match e {
        StoreError::OutcomeUnknown(why) => StoreError::OutcomeUnknown(why.clone()),
        other => StoreError::Aborted(other.to_string()),
    };
    match (command, outcome) {
        (Command::Place(_, r), Ok(Answer::Place(a))) => drop(r.send(a)),
        (Command::Change(.., r), Ok(Answer::Change(a))) => drop(r.send(a)),
        (Command::Adjust(.., r), Ok(Answer::Adjust(a))) => drop(r.send(a)),
        (Command::Product(_, r), Ok(Answer::Product(a))) => drop(r.send(a)),
        (Command::Job(_, r), Ok(Answer::Job(a))) => drop(r.send(a)),
        (Command::Job(_, r), Err(e)) => drop(r.send(Err(aborted(e)))),
        (Command::Product(_, r), Err(e)) => drop(r.send(Err(aborted(e).into()))),
        (Command::Place(_, r), Err(e)) => drop(r.send(Err(aborted(e).into()))),
        (Command::Change(.., r), Err(e)) => drop(r.send(Err(aborted(e).into()))),
        (Command::Adjust(.., r), Err(e)) => drop(r.send(Err(aborted(e).into()))),
        (_, Ok(_)) => unreachable!("answers are made in the order of their commands"),
    }
}

/// The rows a batch reads, collected from its commands before any is read.
#[derive(Default)]
struct Needs {
    locks: BTreeSet<String>,
    jobs: BTreeSet<JobId>,
    shas: Vec<[u8; 32]>,
    new_jobs: i64,
    orders: BTreeSet<i64>,
    skus: BTreeSet<Sku>,
    /// Variant groups a product joins or changes its options in.
    groups: BTreeSet<GroupHandle>,
    keys: Vec<(UserId, IdempotencyKey)>,
    refs: Vec<OrderRef>,
    new_orders: i64,
}

impl Needs {
    /// What the commands of `batch` will read, before any is read.
    fn of(batch: &[Command]) -> Result<Self, StoreError> {
        let mut needs = Needs::default();
        for command in batch {
            match command {
                Command::Job(job, _) => needs.add_job(job),
                Command::Place(request, _) => needs.add_checkout(request),
                Command::Change(id, ..) => {
                    needs.orders.insert(int(id.0)?);
                }
                Command::Adjust(sku, ..) => {
                    needs.skus.insert(sku.clone());
                }
                Command::Product(command, _) => {
                    needs.skus.insert(command.sku().clone());
                    if let Some(group) = command.group() {
                        needs.add_group(group);
                    }
                }
            }
        }
        Ok(needs)
    }

    fn add_checkout(&mut self, request: &OrderRequest) {
        self.skus
            .extend(request.lines.iter().map(|(s, _)| s.clone()));
        if let Some(key) = &request.idempotency_key {
            self.locks.insert(idempotency_lock(request.user, key));
            self.keys.push((request.user, key.clone()));
        }
        if let Some(reference) = &request.external_ref {
            self.locks.insert(format!("r:{}", reference.as_str()));
            self.refs.push(reference.clone());
        }
        self.new_orders += 1;
    }

    /// A variant group the batch writes into: its lock, and its members to read.
    fn add_group(&mut self, group: &GroupHandle) {
        self.locks.insert(format!("g:{}", group.as_str()));
        self.groups.insert(group.clone());
    }

    fn add_job(&mut self, job: &JobCommand) {
        self.jobs.extend(job.job());
        match job {
            JobCommand::Create { .. } => self.new_jobs += 1,
            JobCommand::Advance {
                step: Step::Started { sha256, .. },
                ..
            } => self.shas.push(*sha256),
            JobCommand::Load { batch, .. } => self.add_load(batch),
            JobCommand::Advance { .. } | JobCommand::Settle { .. } => {}
        }
    }

    fn add_load(&mut self, batch: &Batch) {
        for piece in &batch.pieces {
            match &piece.unit {
                Unit::Product { sku, draft, .. } => {
                    self.skus.insert(sku.clone());
                    if let Some(group) = &draft.attributes.group {
                        self.add_group(group);
                    }
                }
                Unit::Inventory { sku, .. } => {
                    self.skus.insert(sku.clone());
                }
                Unit::Order {
                    order_ref, lines, ..
                } => {
                    self.skus.extend(lines.iter().map(|l| l.sku.clone()));
                    self.locks.insert(format!("r:{}", order_ref.as_str()));
                    self.refs.push(order_ref.clone());
                    self.new_orders += 1;
                }
                Unit::Rejected(_) | Unit::Skipped => {}
            }
        }
    }
}

/// One batch in one transaction: lock and read, run the rules, write, commit.
async fn apply(
    client: &mut Client,
    settings: &Settings,
    batch: &mut [Command],
    dry: bool,
) -> Result<Vec<Answer>, StoreError> {
    let mut needs = Needs::of(batch)?;
    let tx = client.transaction().await?;
    lock_client_keys(&tx, &needs.locks).await?;
    let mut jobs = StagedJobs::new(&settings.node);
    jobs.read(&tx, &needs.jobs, &needs.shas).await?;
    let job_ids = draw_ids(&tx, "job_ids", needs.new_jobs).await?;
    let ids = draw_ids(&tx, "order_ids", needs.new_orders).await?;
    let mut staged = Staged::new(settings.row_events, ids);
    read_orders(&tx, &mut needs, &mut staged).await?;
    let mut products = read_products(&tx, &needs.skus, &mut staged).await?;
    read_groups(&tx, &needs.groups, &mut products).await?;
    read_keys(&tx, &needs.keys, &mut staged).await?;
    read_refs(&tx, std::mem::take(&mut needs.refs), &mut staged).await?;
    let customers = StagedCustomers::read(
        &tx,
        batch.iter().filter_map(|c| match c {
            Command::Job(JobCommand::Load { batch, .. }, _) => Some(batch),
            _ => None,
        }),
    )
    .await?;
    let mut rules = Rules { rows: staged };
    let mut place = Placing {
        jobs: &mut jobs,
        job_ids: job_ids.into_iter(),
        rules: &mut rules,
        products: &mut products,
        customers: &customers,
        currency: settings.currency,
        at: Timestamp::now(),
    };
    let answers = place.run(batch)?;
    jobs.flush(&tx).await?;
    if !dry {
        flush_products(&tx, &products).await?;
        rules.rows.flush(&tx).await?;
    }
    let committed = commit(tx).await;
    // Told even when the commit reports an error: it may have committed, and a
    // needless re-read is harmless.
    if let Some(feed) = settings.search_feed.as_ref().filter(|_| !dry) {
        feed.skus(&needs.skus);
    }
    committed?;
    Ok(answers)
}

/// Takes the batch's client-key locks (idempotency keys, order references):
/// sorted and without repeats (a set of the lock numbers, so every node takes
/// them in one order); unnest keeps the array's order.
async fn lock_client_keys(tx: &Transaction<'_>, keys: &BTreeSet<String>) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let locks: Vec<i32> = keys
        .iter()
        .map(|k| client_key_lock(k))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k",
        &[&CLIENT_KEY_LOCK_SPACE, &locks],
    )
    .await?;
    Ok(())
}

/// Reads and locks the orders the batch changes; their lines' SKUs join the
/// SKUs to read (a cancel restocks them).
async fn read_orders(
    tx: &Transaction<'_>,
    needs: &mut Needs,
    staged: &mut Staged,
) -> Result<(), StoreError> {
    if needs.orders.is_empty() {
        return Ok(());
    }
    let wanted: Vec<i64> = needs.orders.iter().copied().collect();
    let rows = tx
        .query(
            "SELECT id, record FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&wanted],
        )
        .await?;
    let mut found = HashSet::new();
    for row in rows {
        let id = OrderId(uint(row.get(0))?);
        let order: OrderRow = codec::decode(row.get::<_, &[u8]>(1))?;
        needs
            .skus
            .extend(order.lines.iter().map(|line| line.sku.clone()));
        found.insert(id);
        staged.read_order(id, Some(order));
    }
    for id in wanted {
        let id = OrderId(uint(id)?);
        if !found.contains(&id) {
            staged.read_order(id, None);
        }
    }
    Ok(())
}

/// Reads and locks the products and stock levels of `skus`, in SKU order.
/// Reads the active products of the variant groups the batch writes into (the
/// batch holds each group's lock, so no other batch changes who is in it).
async fn read_groups(
    tx: &Transaction<'_>,
    groups: &BTreeSet<GroupHandle>,
    products: &mut StagedProducts,
) -> Result<(), StoreError> {
    if groups.is_empty() {
        return Ok(());
    }
    let handles: Vec<&str> = groups.iter().map(GroupHandle::as_str).collect();
    for group in groups {
        products.groups.insert(group.clone(), BTreeSet::new());
    }
    for row in tx
        .query(
            "SELECT group_handle, sku, record FROM products \
             WHERE group_handle = ANY($1) AND NOT archived ORDER BY sku",
            &[&handles],
        )
        .await?
    {
        let group = GroupHandle::parse(row.get(0))
            .map_err(|e| StoreError::Corrupt(format!("a stored group handle {e}")))?;
        let sku = stored_sku(row.get(1))?;
        let product: ProductRow = codec::decode(row.get::<_, &[u8]>(2))?;
        products.rows.entry(sku.clone()).or_insert(Some(product));
        products.groups.entry(group).or_default().insert(sku);
    }
    Ok(())
}

async fn read_products(
    tx: &Transaction<'_>,
    skus: &BTreeSet<Sku>,
    staged: &mut Staged,
) -> Result<StagedProducts, StoreError> {
    let mut products = StagedProducts::default();
    if skus.is_empty() {
        return Ok(products);
    }
    let names: Vec<&str> = skus.iter().map(Sku::as_str).collect();
    for sku in skus {
        products.rows.insert(sku.clone(), None);
        staged.read_level(sku.clone(), Level::default());
    }
    for row in tx
        .query(
            "SELECT sku, record FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
            &[&names],
        )
        .await?
    {
        let sku = stored_sku(row.get(0))?;
        let product: ProductRow = codec::decode(row.get::<_, &[u8]>(1))?;
        products.rows.insert(sku, Some(product));
    }
    for row in tx
        .query(
            "SELECT sku, units, last_seq FROM stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
            &[&names],
        )
        .await?
    {
        let level = Level {
            units: uint(row.get(1))?,
            last_seq: uint(row.get(2))?,
        };
        staged.read_level(stored_sku(row.get(0))?, level);
    }
    Ok(products)
}

/// Reads the idempotency keys the batch's checkouts carry.
async fn read_keys(
    tx: &Transaction<'_>,
    wanted: &[(UserId, IdempotencyKey)],
    staged: &mut Staged,
) -> Result<(), StoreError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let users: Vec<i64> = wanted
        .iter()
        .map(|(u, _)| int(u.0))
        .collect::<Result<_, _>>()?;
    let keys: Vec<&str> = wanted.iter().map(|(_, k)| k.as_str()).collect();
    for (user, key) in wanted {
        staged.read_key(*user, key.clone(), None);
    }
    for row in tx
        .query(
            "SELECT i.user_id, i.key, i.record FROM idempotency i \
             JOIN unnest($1::int8[], $2::text[]) AS w(user_id, key) \
             ON i.user_id = w.user_id AND i.key = w.key",
            &[&users, &keys],
        )
        .await?
    {
        let user = UserId(uint(row.get(0))?);
        let key = IdempotencyKey::parse(row.get::<_, &str>(1))
            .map_err(|e| StoreError::Corrupt(format!("stored idempotency key: {e}")))?;
        let remembered: IdempotencyRow = codec::decode(row.get::<_, &[u8]>(2))?;
        staged.read_key(user, key, Some(remembered));
    }
    Ok(())
}

/// Reads which of the batch's external order references are taken.
async fn read_refs(
    tx: &Transaction<'_>,
    refs: Vec<OrderRef>,
    staged: &mut Staged,
) -> Result<(), StoreError> {
    if refs.is_empty() {
        return Ok(());
    }
    let wanted: Vec<&str> = refs.iter().map(OrderRef::as_str).collect();
    let taken: HashSet<String> = tx
        .query(
            "SELECT external_ref FROM orders WHERE external_ref = ANY($1)",
            &[&wanted],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for reference in refs {
        let is_taken = taken.contains(reference.as_str());
        staged.read_ref(reference, is_taken);
    }
    Ok(())
}

/// Commits the batch. A failure here may come after the server committed (the
/// connection lost with the answer): the callers must not be told that nothing
/// was written.
async fn commit(tx: Transaction<'_>) -> Result<(), StoreError> {
    tx.commit().await.map_err(|e| {
        if e.is_closed() {
            StoreError::OutcomeUnknown(e.to_string())
        } else {
            StoreError::Aborted(e.to_string())
        }
    })
}

/// The rules of one batch over the rows it read: each command answered in
/// turn, as the redb ledger answers them in its transaction.
struct Placing<'a, I> {
    jobs: &'a mut StagedJobs,
    job_ids: I,
    rules: &'a mut Rules<Staged>,
    products: &'a mut StagedProducts,
    customers: &'a StagedCustomers,
    currency: Currency,
    at: Timestamp,
}

impl<I: Iterator<Item = i64>> Placing<'_, I> {
    fn run(&mut self, batch: &mut [Command]) -> Result<Vec<Answer>, StoreError> {
        let mut answers = Vec::with_capacity(batch.len());
        let mut in_flight = KeysInFlight::default();
        for command in batch.iter_mut() {
            let answer = self.one(command, &mut in_flight)?;
            if let Some(e) = storage_failure(&answer) {
                // A storage error mid-rules (a row not read, a record that does
                // not decode) abandons the batch, as on redb.
                return Err(StoreError::Aborted(e));
            }
            answers.push(answer);
        }
        Ok(answers)
    }

    fn one(
        &mut self,
        command: &mut Command,
        in_flight: &mut KeysInFlight,
    ) -> Result<Answer, StoreError> {
        let at = self.at;
        Ok(match command {
            Command::Job(job, _) => Answer::Job(self.job(job)?),
            Command::Place(request, _) => Answer::Place(match in_flight.take(request) {
                Err(e) => Err(e),
                Ok(()) => self
                    .rules
                    .place_order(&*self.products, request, self.currency, at),
            }),
            Command::Change(id, next, caller, _) => {
                Answer::Change(self.rules.change_status(*id, *next, *caller, at))
            }
            Command::Adjust(sku, delta, reason, _) => {
                Answer::Adjust(
                    self.rules
                        .adjust(&*self.products, sku, *delta, reason.clone(), at),
                )
            }
            Command::Product(command, _) => Answer::Product(products::apply(
                self.rules,
                self.products,
                command.clone(),
                at,
            )),
        })
    }

    /// A panic in an import's rules (a bug, or a test's failure point) abandons
    /// the batch, as on redb, and never the ledger's task.
    fn job(&mut self, job: &mut JobCommand) -> Result<Result<JobAnswer, StoreError>, StoreError> {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_job(
                job,
                self.jobs,
                &mut self.job_ids,
                self.rules,
                self.products,
                self.customers,
                self.currency,
                self.at,
            )
        }));
        run.map_err(|_| {
            tracing::error!("an import batch panicked in the ledger; it was abandoned");
            StoreError::Aborted("the import batch failed inside the ledger".into())
        })
    }
}

/// One import job command, on the rows the batch read: the job's state machine
/// and the loader's rules are the redb backend's.
#[allow(clippy::too_many_arguments)]
fn run_job(
    command: &mut JobCommand,
    jobs: &mut StagedJobs,
    ids: &mut impl Iterator<Item = i64>,
    rules: &mut Rules<Staged>,
    products: &mut StagedProducts,
    customers: &StagedCustomers,
    currency: Currency,
    at: Timestamp,
) -> Result<JobAnswer, StoreError> {
    if let Some(id) = command.job() {
        jobs.fence(id)?;
    }
    match command {
        JobCommand::Create { new, claim } => {
            let id = ids
                .next()
                .ok_or_else(|| StoreError::Corrupt("no job id was drawn for this batch".into()))?;
            Ok(JobAnswer::Created(jobs.create(
                JobId(uint(id)?),
                new.clone(),
                claim.take(),
            )))
        }
        JobCommand::Advance { id, step } => {
            let step = std::mem::replace(step, Step::Named(String::new()));
            let row = advance_announcing(jobs, rules, *id, step, at)?;
            Ok(JobAnswer::Row(row))
        }
        JobCommand::Settle { id } => {
            jobs.settle(*id)?;
            Ok(JobAnswer::Settled)
        }
        JobCommand::Load { id, batch, .. } => {
            let id = *id;
            let applied = load::apply_to(
                Target {
                    catalog: products,
                    rules,
                    customers,
                    currency,
                    at,
                },
                id,
                std::mem::take(batch),
            )?;
            load::record_progress(jobs, id, &applied)?;
            Ok(JobAnswer::Loaded(applied))
        }
    }
}

fn storage_failure(answer: &Answer) -> Option<String> {
    match answer {
        Answer::Place(Err(CheckoutError::Store(e)))
        | Answer::Change(Err(OrderError::Store(e)))
        | Answer::Adjust(Err(StockError::Store(e)))
        | Answer::Product(Err(CatalogError::Store(e))) => Some(e.to_string()),
        // A job another node took over is refused alone; the batch goes on.
        Answer::Job(Err(StoreError::LeaseLost(_))) => None,
        Answer::Job(Err(e)) => Some(e.to_string()),
        _ => None,
    }
}

fn stored_sku(raw: &str) -> Result<Sku, StoreError> {
    Sku::parse(raw).map_err(|e| StoreError::Corrupt(format!("stored SKU {raw:?}: {e}")))
}
