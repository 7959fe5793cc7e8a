//! The PostgreSQL backend (`--postgres`, contract §6), beside the embedded redb
//! default: several nodes on one database acting as one service.
//!
//! - [`schema`]: the tables, migrated at start under an advisory lock;
//! - [`ledger`]: group commit per node, the same rules as on redb run on rows read
//!   and locked for the batch ([`staged`]), set-based writes, event seqs gapless in
//!   commit order across nodes; [`actor`] is its actor ([`PgLedgerActor`]),
//!   which also reads orders and movements;
//! - [`jobs`] and [`job_reads`]: import jobs and the shared inbox's claims and
//!   leases;
//! - [`users`], [`catalog`], [`events`], [`apikeys`], [`webhooks`]: the actors
//!   answering the same messages as their redb twins, over a small connection
//!   pool ([`pool`]); the webhook deliverer runs where [`try_lock`] succeeds.
//!
//! Each node learns of events other nodes commit through `LISTEN`
//! ([`follow_events`]), so the feed's long polls wake on any node's commit.

/// `Ping` for a PostgreSQL actor with a `pool`: a connection can be had and answers.
macro_rules! ping_handler {
    ($actor:ty) => {
        impl actix::Handler<crate::mailbox::Ping> for $actor {
            type Result = actix::ResponseFuture<Result<(), crate::common::StoreError>>;
            fn handle(&mut self, _: crate::mailbox::Ping, _: &mut Self::Context) -> Self::Result {
                let pool = self.pool.clone();
                Box::pin(async move { crate::pg::ping(&pool).await })
            }
        }
    };
}

/// [`ping_handler!`], and `Stop` for an actor alone on its arbiter (thread): both end.
macro_rules! ping_and_stop {
    ($actor:ty) => {
        crate::pg::ping_handler!($actor);

        impl actix::Handler<crate::mailbox::Stop> for $actor {
            type Result = ();
            fn handle(&mut self, _: crate::mailbox::Stop, ctx: &mut Self::Context) {
                actix::ActorContext::stop(ctx);
                actix::Arbiter::current().stop();
            }
        }
    };
}

pub(crate) use {ping_and_stop, ping_handler};

pub mod actor;
pub mod apikeys;
pub mod catalog;
pub mod events;
pub mod job_reads;
pub mod jobs;
pub mod ledger;
pub mod schema;
pub mod staged;
pub mod staged_products;
mod tls;
pub mod users;
pub mod webhooks;

// The backend's front: the actors and the task the web layer starts.
pub use actor::PgLedgerActor;
pub use apikeys::PgApiKeys;
pub use catalog::PgCatalog;
pub use events::PgEvents;
pub use ledger::{PgLedger, Settings as LedgerSettings};
pub use schema::migrate;
pub use users::PgUsers;
pub use webhooks::{DELIVERY_LOCK, PgWebhooks};

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::common::StoreError;

/// Connects to `url` (a libpq URL; several hosts and `target_session_attrs` allowed)
/// and drives the connection on the current tokio runtime.
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, mut messages) = Target::parse(url)?.open().await?;
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            if let Err(e) = message {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
                break;
            }
        }
    });
    Ok(client)
}

/// What a connection sends besides query answers (notifications, notices), ending
/// with the connection; polling it drives the connection.
type Messages = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>,
>;

/// Where and how a node connects: the settings of its URL and, when the URL asks
/// for TLS, rustls.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Target {
    /// The settings of `url`, with a `lock_timeout` of [`PG_LOCK_TIMEOUT_MS`]
    /// added to its options (no statement of this service waits for a lock for
    /// ever: a stuck batch fails and its callers are told nothing was written)
    /// and TCP keepalives; and TLS when the URL says `sslmode=require`,
    /// `verify-ca` or `verify-full` (see [`tls`]).
    ///
    /// [`PG_LOCK_TIMEOUT_MS`]: crate::limits::PG_LOCK_TIMEOUT_MS
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let (url, root_cert) = tls::split_options(url);
        let mut config = tokio_postgres::Config::from_str(&url)?;
        let timeout = format!("-c lock_timeout={}", crate::limits::PG_LOCK_TIMEOUT_MS);
        let options = match config.get_options() {
            Some(given) if !given.trim().is_empty() => format!("{given} {timeout}"),
            _ => timeout,
        };
        config.options(&options);
        // A connection whose peer vanished without a word (a cut network, a frozen
        // host) is found dead in under a minute, not after the kernel's two hours:
        // a node holding a session lock (delivery, relay) must learn it lost it.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(crate::limits::PG_KEEPALIVE_IDLE_SECS))
            .keepalives_interval(Duration::from_secs(
                crate::limits::PG_KEEPALIVE_INTERVAL_SECS,
            ))
            .keepalives_retries(crate::limits::PG_KEEPALIVE_RETRIES);
        let tls = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Require => Some(tls::connector(root_cert.as_deref())?),
            _ => None,
        };
        Ok(Self { config, tls })
    }

    /// Opens one connection: its client, and the messages that drive it.
    async fn open(&self) -> Result<(Client, Messages), StoreError> {
        Ok(match &self.tls {
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                (client, messages(connection))
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                (client, messages(connection))
            }
        })
    }
}

fn messages<S, T>(mut connection: tokio_postgres::Connection<S, T>) -> Messages
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(futures_util::stream::poll_fn(move |cx| {
        connection.poll_message(cx)
    }))
}

/// The channel a committing batch notifies with its last event seq.
pub const EVENTS_CHANNEL: &str = "orderflow_events";

/// A pool of connections, shared by a node's PostgreSQL actors.
pub type Pool = deadpool_postgres::Pool;

/// A pool of at most `size` connections to `url`; none is opened before it is
/// needed, and a broken one is replaced.
pub fn pool(url: &str, size: usize) -> Result<Pool, StoreError> {
    let Target { config, tls } = Target::parse(url)?;
    let manager_config = deadpool_postgres::ManagerConfig {
        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
    };
    let manager = match tls {
        None => deadpool_postgres::Manager::from_config(config, NoTls, manager_config),
        Some(tls) => deadpool_postgres::Manager::from_config(config, tls, manager_config),
    };
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Aborted(format!("PostgreSQL pool: {e}")))
}

/// A connection from the pool.
pub async fn client(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
        other => StoreError::Aborted(format!("no PostgreSQL connection: {other}")),
    })
}

/// Keeps the pool on the primary: every [`PG_PRIMARY_CHECK_MS`] it asks one of its
/// connections whether its server takes writes, and if not (a standby, or a
/// demoted primary that kept its connections open) drops every idle connection,
/// so the next ones are opened where `target_session_attrs=read-write` finds the
/// primary. Closed connections the pool replaces by itself. Ends when the pool
/// is gone (the node stopped).
pub fn follow_primary(pool: &Pool) -> impl Future<Output = ()> + use<> {
    use crate::limits::PG_PRIMARY_CHECK_MS;
    let weak = pool.weak();
    async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(PG_PRIMARY_CHECK_MS)).await;
            let Some(pool) = weak.upgrade() else {
                return;
            };
            let Ok(db) = client(&pool).await else {
                continue;
            };
            let read_only = db
                .query_one(
                    "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
                    &[],
                )
                .await
                .is_ok_and(|r| r.get::<_, bool>(0));
            if read_only {
                // This connection leaves the pool for good, and so do the idle others.
                drop(deadpool_postgres::Object::take(db));
                let dropped = pool.retain(|_, _| false).removed.len() + 1;
                tracing::warn!(
                    connections = dropped,
                    "the pool's server does not take writes; its connections were dropped"
                );
            }
        }
    }
}

/// Runs `make` on an arbiter (thread) of its own and answers what it made: what it
/// spawns (a connection's task, an actor) lives on that thread.
pub async fn on_own_thread<T, F, Fut>(make: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let arbiter = actix::Arbiter::new();
    arbiter.spawn_fn(move || {
        actix::spawn(async move {
            let _ = tx.send(make().await);
        });
    });
    rx.await
        .map_err(|_| StoreError::Aborted("a PostgreSQL thread stopped while starting".into()))
}

/// The newest event seq committed by any node.
pub async fn newest_seq(client: &Client) -> Result<u64, StoreError> {
    let value: i64 = client
        .query_one("SELECT value FROM counters WHERE name = 'event_seq'", &[])
        .await?
        .get(0);
    staged::uint(value)
}

/// Keeps `newest` at the newest event seq committed by any node: listens on
/// [`EVENTS_CHANNEL`] on a connection of its own, and reconnects (after reading
/// the counter again, so nothing committed meanwhile is missed) when it is lost.
/// Returns when every receiver is gone.
pub async fn follow_events(url: String, newest: watch::Sender<u64>) {
    let retry = Duration::from_millis(crate::limits::PG_RECONNECT_DELAY_MS);
    while !newest.is_closed() {
        if let Err(e) = listen_once(&url, &newest).await {
            tracing::warn!(error = %e, "listening for events failed; reconnecting");
        }
        tokio::time::sleep(retry).await;
    }
}

async fn listen_once(url: &str, newest: &watch::Sender<u64>) -> Result<(), StoreError> {
    let (client, mut stream) = Target::parse(url)?.open().await?;
    let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // Drives the connection and hands its notifications over; ends with it.
    let pump = tokio::spawn(async move {
        while let Some(message) = stream.next().await {
            if tx.send(message).is_err() {
                break;
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}"))
        .await?;
    let raise = |seq: u64| {
        newest.send_if_modified(|now| {
            let newer = seq > *now;
            if newer {
                *now = seq;
            }
            newer
        });
    };
    raise(newest_seq(&client).await?);
    while let Some(message) = messages.recv().await {
        if let AsyncMessage::Notification(n) = message?
            && let Ok(seq) = n.payload().parse()
        {
            raise(seq);
        }
        if newest.is_closed() {
            break;
        }
    }
    pump.abort();
    Ok(())
}

/// Whether a connection can be had and answers.
pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
    client(pool).await?.simple_query("SELECT 1").await?;
    Ok(())
}

/// Stores `value` under `name` in `meta` unless a value is there already, and
/// answers the value that stands: nodes starting together agree on one.
pub async fn meta_once(client: &Client, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
    client
        .execute(
            "INSERT INTO meta VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )
        .await?;
    Ok(client
        .query_one("SELECT value FROM meta WHERE name = $1", &[&name])
        .await?
        .get(0))
}

/// The database's currency, fixed by the first node that started on it.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the database holds amounts in {stored}; this node was started with {asked}")]
    CurrencyMismatch { stored: String, asked: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuses a currency other than the one the database was started with.
pub async fn ensure_currency(
    client: &Client,
    currency: crate::domain::Currency,
) -> Result<(), SetupError> {
    let stored = meta_once(client, "currency", currency.code().as_bytes()).await?;
    if stored != currency.code().as_bytes() {
        return Err(SetupError::CurrencyMismatch {
            stored: String::from_utf8_lossy(&stored).into_owned(),
            asked: currency.code().to_owned(),
        });
    }
    Ok(())
}

/// A session advisory lock held on a connection of its own.
pub struct HeldLock {
    _client: Client,
    /// Resolves when the connection, and with it the lock, is gone.
    pub lost: tokio::sync::oneshot::Receiver<()>,
}

/// Takes the session advisory lock `key` if no other session holds it. Dropping
/// the answer (or losing its connection) releases it.
pub async fn try_lock(url: &str, key: i64) -> Result<Option<HeldLock>, StoreError> {
    let (client, mut messages) = Target::parse(url)?.open().await?;
    let (gone, lost) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        while let Some(Ok(_)) = messages.next().await {}
        let _ = gone.send(());
    });
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?
        .get(0);
    Ok(got.then_some(HeldLock {
        _client: client,
        lost,
    }))
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    pub keys: u64,
    pub events: u64,
}

/// Forgets idempotency keys used before `key_cutoff` and events older than
/// `event_cutoff` (only the oldest run of them, in seq order, so the feed's
/// `purged_through` means "every seq up to here"), at most `max` of each. Nodes
/// may purge at once: both deletes are idempotent, the mark only moves forward.
pub async fn purge(
    client: &mut Client,
    cutoffs: crate::events::PurgeCutoffs,
    max: usize,
) -> Result<Purged, StoreError> {
    let max = staged::int(max as u64)?;
    let keys = client
        .execute(
            "DELETE FROM idempotency WHERE (user_id, key) IN (SELECT user_id, key \
             FROM idempotency WHERE created_ms < $1 ORDER BY created_ms LIMIT $2)",
            &[&cutoffs.keys.millis(), &max],
        )
        .await?;
    let oldest = client
        .query(
            "SELECT seq, at_ms FROM events ORDER BY seq LIMIT $1",
            &[&max],
        )
        .await?;
    let oldest = oldest.iter().map(|r| {
        Ok::<_, StoreError>((staged::uint(r.get(0))?, crate::domain::Timestamp(r.get(1))))
    });
    let through = crate::events::expired_prefix(oldest, cutoffs.events)?
        .last()
        .map(|&seq| staged::int(seq))
        .transpose()?;
    let mut events = 0;
    if let Some(through) = through {
        let tx = client.transaction().await?;
        events = tx
            .execute("DELETE FROM events WHERE seq <= $1", &[&through])
            .await?;
        tx.execute(
            "UPDATE counters SET value = greatest(value, $1) WHERE name = 'events_purged_through'",
            &[&through],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(Purged { keys, events })
}
