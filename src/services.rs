//! Where a node keeps its state, and the actors over it: [`Services`] on the
//! embedded redb file, [`PgServices`] on PostgreSQL (`--postgres`), and [`Backend`],
//! which is either and hands the handlers' [`Room`]s out.

use std::time::Duration;

use actix::Actor as _;
use anyhow::Context as _;
use tokio::sync::watch;

use orderflow_actors::apikeys::ApiKeys;
use orderflow_actors::catalog::{Catalog, ProductCache};
use orderflow_actors::common::StoreError;
use orderflow_actors::domain::{Currency, Email, Password, Role, Username};
use orderflow_actors::events::{self, EventsReader, RowEvents};
use orderflow_actors::ledger::{self, EventsConfig, Ledger};
use orderflow_actors::limits::{
    API_KEYS_INFLIGHT_MAX, CATALOG_INFLIGHT_MAX, EVENTS_INFLIGHT_MAX, EVENTS_READER_THREADS,
    PG_POOL_CONNECTIONS_MAX, USERS_INFLIGHT_MAX, WEBHOOKS_INFLIGHT_MAX,
};
use orderflow_actors::mailbox::{Mailbox, start_pool};
use orderflow_actors::pg::{
    self, PgApiKeys, PgCatalog, PgEvents, PgLedger, PgLedgerActor, PgUsers, PgWebhooks,
};
use orderflow_actors::room::Room;
use orderflow_actors::search::Feed;
use orderflow_actors::store::Journal;
use orderflow_actors::store::Store;
use orderflow_actors::telemetry::Telemetry;
use orderflow_actors::users::{AdminBootstrapped, BootstrapAdmin, CreateUser, UserStore};
use orderflow_actors::webhooks::Webhooks;

use crate::auth::jwt;
use crate::auth::password;
use crate::config::{ImportEvents, JournalAwake, LedgerJournal, PipelineArgs, StoreArgs};

/// The actors over one open store. Used by `serve`, `ingest` and `users create`.
pub struct Services {
    pub store: Store,
    pub currency: Currency,
    pub telemetry: Telemetry,
    pub catalog: Mailbox<Catalog>,
    pub users: Mailbox<UserStore>,
    pub ledger: Mailbox<Ledger>,
    /// The events feed's readers.
    pub events: Mailbox<EventsReader>,
    /// The API keys.
    pub api_keys: Mailbox<ApiKeys>,
    /// The webhook endpoints and their delivery state.
    pub webhooks: Mailbox<Webhooks>,
    /// The newest committed event's seq, updated by the ledger after each commit.
    pub newest_event: watch::Receiver<u64>,
    /// Recently read products' response bytes; the ledger forgets what it commits.
    pub product_cache: ProductCache,
    /// What the ledger's commits touched, for the search index.
    pub search_feed: Feed,
}

impl Services {
    /// Opens the data directory (refusing a second owner) and starts the actors, each
    /// on threads of its own so blocking on redb never stalls the HTTP workers.
    pub fn start(
        args: &StoreArgs,
        pipeline: &PipelineArgs,
        catalog_threads: usize,
    ) -> anyhow::Result<Self> {
        let commit_batch_max = usize::try_from(pipeline.commit_batch_max).unwrap_or(usize::MAX);
        let currency = Currency::parse(&args.currency)
            .map_err(|e| anyhow::anyhow!("--currency {}: {e}", args.currency))?;
        let store = Store::open(&args.data_dir)?;
        store.ensure_currency(currency)?;
        let telemetry = Telemetry::default();
        let timeout = Duration::from_millis(pipeline.actor_timeout_ms);

        let s = store.clone();
        let catalog = start_pool(catalog_threads, move || Catalog::new(s.clone()));
        let s = store.clone();
        let users = start_pool(1, move || UserStore::new(s.clone()));
        let (notify, newest_event) = watch::channel(events::reader::newest_seq(&store)?);
        let product_cache = ProductCache::default();
        let search_feed = Feed::default();
        let mut ledger = Ledger::new(store.clone(), currency, commit_batch_max, telemetry.clone());
        if pipeline.ledger_journal == LedgerJournal::On {
            let mut journal = Journal::open(&store, &args.data_dir)?;
            if pipeline.ledger_journal_awake == JournalAwake::On {
                journal =
                    journal.keep_disk_awake(&args.data_dir, telemetry.journal_awake_reads.clone());
            }
            ledger = ledger.with_journal(journal);
        }
        let ledger = ledger
            .with_product_cache(product_cache.clone())
            .with_search_feed(search_feed.clone())
            .with_events(EventsConfig {
                row_events: match pipeline.import_events {
                    ImportEvents::Summary => RowEvents::Summary,
                    ImportEvents::Rows => RowEvents::Rows,
                },
                retention_days: pipeline.event_retention_days,
                notify,
            })
            .start_on_own_thread();
        let s = store.clone();
        let published = newest_event.clone();
        let events = start_pool(EVENTS_READER_THREADS, move || {
            EventsReader::new(s.clone(), published.clone())
        });
        let s = store.clone();
        // One thread: it is the only writer of keys' `last_used_at`.
        let api_keys = start_pool(1, move || ApiKeys::new(s.clone()));
        let s = store.clone();
        let webhooks = start_pool(1, move || Webhooks::new(s.clone()));
        Ok(Self {
            store,
            currency,
            telemetry,
            catalog: Mailbox::pool(catalog, "catalog", CATALOG_INFLIGHT_MAX, timeout),
            users: Mailbox::pool(users, "users", USERS_INFLIGHT_MAX, timeout),
            ledger: Mailbox::new(
                ledger,
                "ledger",
                usize::try_from(pipeline.ledger_queue_max).unwrap_or(usize::MAX),
                timeout,
            )
            .with_write_timeout(Duration::from_millis(pipeline.ledger_write_timeout_ms)),
            events: Mailbox::pool(events, "events", EVENTS_INFLIGHT_MAX, timeout),
            api_keys: Mailbox::pool(api_keys, "api_keys", API_KEYS_INFLIGHT_MAX, timeout),
            webhooks: Mailbox::pool(webhooks, "webhooks", WEBHOOKS_INFLIGHT_MAX, timeout),
            newest_event,
            product_cache,
            search_feed,
        })
    }

    /// Commits what the ledger has queued, stops the actors and waits (bounded) for
    /// every database handle to close, so the file is closed cleanly.
    pub async fn shutdown(self) {
        for addr in self.ledger.addrs() {
            let _ = addr.send(ledger::Shutdown).await;
        }
        self.catalog.stop_all().await;
        self.users.stop_all().await;
        self.events.stop_all().await;
        self.api_keys.stop_all().await;
        self.webhooks.stop_all().await;
        let Services {
            store,
            catalog,
            users,
            ledger,
            events,
            api_keys,
            webhooks,
            ..
        } = self;
        drop((catalog, users, ledger, events, api_keys, webhooks));
        for _ in 0..500 {
            if store.handle_count() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!("store closed");
    }
}

/// The actors of a node whose state is in PostgreSQL (`--postgres`).
pub struct PgServices {
    pub currency: Currency,
    pub telemetry: Telemetry,
    pub catalog: Mailbox<PgCatalog>,
    pub users: Mailbox<PgUsers>,
    pub ledger: Mailbox<PgLedgerActor>,
    pub events: Mailbox<PgEvents>,
    pub api_keys: Mailbox<PgApiKeys>,
    pub webhooks: Mailbox<PgWebhooks>,
    /// The database URL (the webhook deliverer's lock is taken there).
    pub url: String,
    /// The newest event seq any node committed (see [`pg::follow_events`]).
    pub newest_event: watch::Receiver<u64>,
    /// The JWT secret every node of the database signs with.
    pub jwt_secret: Vec<u8>,
    /// What this node's ledger commits, for its search index.
    pub search_feed: Feed,
}

impl PgServices {
    /// Migrates the database (or refuses a newer one), checks its currency, and
    /// starts this node's actors: the ledger with a connection of its own, the
    /// readers over a small pool, each on threads of their own.
    pub async fn start(
        url: &str,
        args: &StoreArgs,
        pipeline: &PipelineArgs,
        catalog_threads: usize,
        jwt_secret: Option<&str>,
    ) -> anyhow::Result<Self> {
        let commit_batch_max = usize::try_from(pipeline.commit_batch_max).unwrap_or(usize::MAX);
        let currency = Currency::parse(&args.currency)
            .map_err(|e| anyhow::anyhow!("--currency {}: {e}", args.currency))?;
        let timeout = Duration::from_millis(pipeline.actor_timeout_ms);
        let telemetry = Telemetry::default();
        let mut setup = pg::connect(url)
            .await
            .context("cannot connect to PostgreSQL (--postgres)")?;
        pg::migrate(&mut setup).await?;
        pg::ensure_currency(&setup, currency).await?;
        let jwt_secret = match jwt_secret {
            Some(given) => jwt::check_secret(given)?,
            None => {
                let fresh: [u8; 64] = rand::random();
                pg::meta_once(&setup, "jwt_secret", &fresh).await?
            }
        };
        let (notify, newest_event) = watch::channel(pg::newest_seq(&setup).await?);
        drop(setup);
        let search_feed = Feed::default();
        actix_web::rt::spawn(pg::follow_events(url.to_owned(), notify));

        let pool = pg::pool(url, PG_POOL_CONNECTIONS_MAX)?;
        actix_web::rt::spawn(pg::follow_primary(&pool));
        let settings = pg::LedgerSettings {
            currency,
            batch_max: commit_batch_max.max(1),
            row_events: match pipeline.import_events {
                ImportEvents::Summary => RowEvents::Summary,
                ImportEvents::Rows => RowEvents::Rows,
            },
            telemetry: telemetry.clone(),
            reconnect: Some(url.to_owned()),
            node: node_name(),
            search_feed: Some(search_feed.clone()),
        };
        let (url_owned, p) = (url.to_owned(), pool.clone());
        let retention_days = pipeline.event_retention_days;
        let ledger = pg::on_own_thread(move || async move {
            let client = pg::connect(&url_owned).await?;
            let ledger = PgLedger::start(client, settings);
            Ok::<_, StoreError>(
                PgLedgerActor::new(ledger, p)
                    .with_retention_days(retention_days)
                    .start(),
            )
        })
        .await??;
        let p = pool.clone();
        let catalog = start_pool(catalog_threads, move || PgCatalog::new(p.clone()));
        let p = pool.clone();
        let users = start_pool(1, move || PgUsers::new(p.clone()));
        let p = pool.clone();
        let events = start_pool(1, move || PgEvents::new(p.clone()));
        let p = pool.clone();
        let api_keys = start_pool(1, move || PgApiKeys::new(p.clone()));
        let p = pool;
        let webhooks = start_pool(1, move || PgWebhooks::new(p.clone()));
        tracing::info!("state is in PostgreSQL");
        Ok(Self {
            currency,
            telemetry,
            catalog: Mailbox::pool(catalog, "catalog", CATALOG_INFLIGHT_MAX, timeout),
            users: Mailbox::pool(users, "users", USERS_INFLIGHT_MAX, timeout),
            ledger: Mailbox::new(
                ledger,
                "ledger",
                usize::try_from(pipeline.ledger_queue_max).unwrap_or(usize::MAX),
                timeout,
            )
            .with_write_timeout(Duration::from_millis(pipeline.ledger_write_timeout_ms)),
            events: Mailbox::pool(events, "events", EVENTS_INFLIGHT_MAX, timeout),
            api_keys: Mailbox::pool(api_keys, "api_keys", API_KEYS_INFLIGHT_MAX, timeout),
            webhooks: Mailbox::pool(webhooks, "webhooks", WEBHOOKS_INFLIGHT_MAX, timeout),
            url: url.to_owned(),
            newest_event,
            jwt_secret,
            search_feed,
        })
    }

    /// Lets the ledger commit what it has queued, then stops the actors.
    pub async fn shutdown(self) {
        for addr in self.ledger.addrs() {
            let _ = addr.send(ledger::Shutdown).await;
        }
        self.catalog.stop_all().await;
        self.users.stop_all().await;
        self.events.stop_all().await;
        self.api_keys.stop_all().await;
        self.webhooks.stop_all().await;
        tracing::info!("PostgreSQL actors stopped");
    }
}

/// Where this node keeps its state.
pub enum Backend {
    Redb(Services),
    Postgres(PgServices),
}

impl Backend {
    pub fn currency(&self) -> Currency {
        match self {
            Self::Redb(s) => s.currency,
            Self::Postgres(s) => s.currency,
        }
    }

    pub fn telemetry(&self) -> &Telemetry {
        match self {
            Self::Redb(s) => &s.telemetry,
            Self::Postgres(s) => &s.telemetry,
        }
    }

    /// The product read cache: on redb, where this node's ledger is the only
    /// writer and forgets what it commits. On PostgreSQL other nodes write too,
    /// so every read goes to the database.
    pub fn product_cache(&self) -> Option<ProductCache> {
        match self {
            Self::Redb(s) => Some(s.product_cache.clone()),
            Self::Postgres(_) => None,
        }
    }

    /// What the ledger's commits touched, for the search index.
    pub fn search_feed(&self) -> Feed {
        match self {
            Self::Redb(s) => s.search_feed.clone(),
            Self::Postgres(s) => s.search_feed.clone(),
        }
    }

    /// Commits what the ledger has queued and stops it (the readers stay).
    pub async fn stop_ledger(&self) {
        match self {
            Self::Redb(s) => {
                for addr in s.ledger.addrs() {
                    let _ = addr.send(ledger::Shutdown).await;
                }
            }
            Self::Postgres(s) => {
                for addr in s.ledger.addrs() {
                    let _ = addr.send(ledger::Shutdown).await;
                }
            }
        }
    }

    pub fn newest_event(&self) -> watch::Receiver<u64> {
        match self {
            Self::Redb(s) => s.newest_event.clone(),
            Self::Postgres(s) => s.newest_event.clone(),
        }
    }

    /// One room's mailbox on this node's backend.
    fn room<R: actix::Actor, P: actix::Actor>(
        &self,
        redb: fn(&Services) -> &Mailbox<R>,
        postgres: fn(&PgServices) -> &Mailbox<P>,
    ) -> Room<R, P> {
        match self {
            Self::Redb(s) => Room::Redb(redb(s).clone()),
            Self::Postgres(s) => Room::Postgres(postgres(s).clone()),
        }
    }

    pub fn users(&self) -> Room<UserStore, PgUsers> {
        self.room(|s| &s.users, |s| &s.users)
    }

    pub fn catalog(&self) -> Room<Catalog, PgCatalog> {
        self.room(|s| &s.catalog, |s| &s.catalog)
    }

    pub fn ledger(&self) -> Room<Ledger, PgLedgerActor> {
        self.room(|s| &s.ledger, |s| &s.ledger)
    }

    pub fn events(&self) -> Room<EventsReader, PgEvents> {
        self.room(|s| &s.events, |s| &s.events)
    }

    pub fn api_keys(&self) -> Room<ApiKeys, PgApiKeys> {
        self.room(|s| &s.api_keys, |s| &s.api_keys)
    }

    pub fn webhooks(&self) -> Room<Webhooks, PgWebhooks> {
        self.room(|s| &s.webhooks, |s| &s.webhooks)
    }

    /// Where work that one node at a time does (webhook deliveries, the NATS
    /// relay) takes its lock: the database on PostgreSQL; `None` on redb, where a
    /// node is alone.
    pub fn leader_lock(&self) -> Option<String> {
        match self {
            Backend::Redb(_) => None,
            Backend::Postgres(s) => Some(s.url.clone()),
        }
    }

    /// The embedded store's actors, when this node runs on it.
    pub fn redb(&self) -> Option<&Services> {
        match self {
            Self::Redb(s) => Some(s),
            Self::Postgres(_) => None,
        }
    }

    pub async fn shutdown(self) {
        match self {
            Self::Redb(s) => s.shutdown().await,
            Self::Postgres(s) => s.shutdown().await,
        }
    }
}

/// Creates the `admin` user on first start. Its password is the given one, else a
/// random one printed once to the log.
pub async fn bootstrap_admin(
    users: &Room<UserStore, PgUsers>,
    given: Option<String>,
) -> anyhow::Result<()> {
    if users.ask(AdminBootstrapped).await?? {
        return Ok(());
    }
    let (secret, generated) = match given {
        Some(p) => (p, false),
        None => {
            let bytes: [u8; 18] = rand::random();
            use base64::Engine;
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                true,
            )
        }
    };
    let password =
        Password::parse(&secret).map_err(|e| anyhow::anyhow!("ORDERFLOW_ADMIN_PASSWORD {e}"))?;
    let hash = password::hash(password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = CreateUser {
        username: Username::parse("admin").expect("valid"),
        email: Email::parse("admin@orderflow.invalid").expect("valid"),
        password_hash: hash,
        role: Role::Admin,
    };
    let created = users
        .ask(BootstrapAdmin { user })
        .await?
        .map_err(|e| anyhow::anyhow!("cannot create the admin user: {e}"))?;
    if created.is_none() {
        tracing::info!("another node created the admin user");
    } else if generated {
        tracing::warn!(username = "admin", password = %secret, "created the admin user; this password is shown once");
    } else {
        tracing::info!(
            username = "admin",
            "created the admin user with ORDERFLOW_ADMIN_PASSWORD"
        );
    }
    Ok(())
}

/// This process's name in the leases of import jobs and inbox claims:
/// `host/pid/random`, unique per start (a restarted node takes over its old
/// jobs like any other node, once their lease runs out).
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".to_owned());
    let salt: u32 = rand::random();
    format!("{host}/{}/{salt:08x}", std::process::id())
}
