//! Building and running the service: open the store, start the actors, bind, serve,
//! and stop in order on SIGTERM / Ctrl-C.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use tokio::sync::{Notify, watch};

use orderflow_actors::apikeys::ApiKeys;
use orderflow_actors::catalog::Catalog;
use orderflow_actors::domain::{Currency, Email, Password, Role, Username};
use orderflow_actors::events::{self, EventsReader, RowEvents};
use orderflow_actors::inbox::watcher::{Inbox, InboxConfig};
use orderflow_actors::ledger::{self, EventsConfig, Ledger};
use orderflow_actors::limits::{
    API_KEYS_INFLIGHT_MAX, CATALOG_INFLIGHT_MAX, EVENTS_INFLIGHT_MAX, EVENTS_READER_THREADS,
    HTTP_CONNECTIONS_PER_WORKER_MAX, HTTP_DISCONNECT_TIMEOUT_MS, HTTP_HEAD_TIMEOUT_MS,
    HTTP_KEEP_ALIVE_SECS, INBOX_INFLIGHT_MAX, USERS_INFLIGHT_MAX, WEBHOOK_DELIVERER_NICE,
    WEBHOOKS_INFLIGHT_MAX,
};
use orderflow_actors::mailbox::{Mailbox, Stop, start_pool};
use orderflow_actors::store::Store;
use orderflow_actors::telemetry::Telemetry;
use orderflow_actors::users::{AdminBootstrapped, BootstrapAdmin, CreateUser, UserStore};
use orderflow_actors::webhooks::Webhooks;

use crate::auth::jwt::{self, JwtKeys};
use crate::auth::password;
use crate::auth::throttle::{LoginThrottle, RegisterThrottle};
use crate::config::{ImportEvents, PipelineArgs, ServeArgs, StoreArgs};
use crate::control;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::webhooks::deliverer::{self, Deliverer};
use crate::{api, middleware};

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
        let ledger = Ledger::new(store.clone(), currency, commit_batch_max, telemetry.clone())
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
        let events = start_pool(EVENTS_READER_THREADS, move || EventsReader::new(s.clone()));
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
        })
    }

    /// Commits what the ledger has queued, stops the actors and waits (bounded) for
    /// every database handle to close, so the file is closed cleanly.
    pub async fn shutdown(self) {
        for addr in self.ledger.addrs() {
            let _ = addr.send(ledger::Shutdown).await;
        }
        for addr in self.catalog.addrs() {
            let _ = addr.send(Stop).await;
        }
        for addr in self.users.addrs() {
            let _ = addr.send(Stop).await;
        }
        for addr in self.events.addrs() {
            let _ = addr.send(Stop).await;
        }
        for addr in self.api_keys.addrs() {
            let _ = addr.send(Stop).await;
        }
        for addr in self.webhooks.addrs() {
            let _ = addr.send(Stop).await;
        }
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

/// Creates the `admin` user on first start. Its password is the given one, else a
/// random one printed once to the log.
pub async fn bootstrap_admin(
    users: &Mailbox<UserStore>,
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
    users
        .ask(BootstrapAdmin { user })
        .await?
        .map_err(|e| anyhow::anyhow!("cannot create the admin user: {e}"))?;
    if generated {
        tracing::warn!(username = "admin", password = %secret, "created the admin user; this password is shown once");
    } else {
        tracing::info!(
            username = "admin",
            "created the admin user with ORDERFLOW_ADMIN_PASSWORD"
        );
    }
    Ok(())
}

pub struct Application {
    server: actix_web::dev::Server,
    address: SocketAddr,
    services: Services,
    inbox: Inbox,
    deliverer: Deliverer,
    /// `<data-dir>/control.sock` (see `control`); `None` when it could not be bound.
    control: Option<tokio::net::UnixListener>,
}

impl Application {
    pub async fn build(args: ServeArgs) -> anyhow::Result<Self> {
        let catalog_threads = usize::try_from(args.catalog_threads).unwrap_or(1);
        let services = Services::start(&args.store, &args.pipeline, catalog_threads)?;
        let secret = jwt::load_secret(args.jwt_secret.as_deref(), &args.store.data_dir)?;
        bootstrap_admin(&services.users, args.admin_password.clone()).await?;
        let inbox = Inbox::start(
            InboxConfig {
                root: args.inbox.clone(),
                settle: Duration::from_millis(args.settle_ms),
                scan_interval: Duration::from_millis(args.scan_interval_ms),
                poll: args.inbox_poll,
                truncated_wait: Duration::from_secs(args.truncated_wait_secs),
            },
            services.ledger.clone(),
            services.currency,
            services.telemetry.clone(),
        )
        .with_context(|| format!("cannot prepare the inbox {}", args.inbox.display()))?;

        let listener = TcpListener::bind(args.bind)
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let address = listener.local_addr()?;
        let deliverer = Deliverer {
            webhooks: services.webhooks.clone(),
            events: services.events.clone(),
            newest: services.newest_event.clone(),
            currency: services.currency,
            telemetry: services.telemetry.clone(),
            client: deliverer::client(args.webhook_allow_private),
            allow_private: args.webhook_allow_private,
            concurrency: usize::try_from(args.webhook_concurrency).unwrap_or(1),
            retry_unit: Duration::from_millis(args.webhook_retry_unit_ms),
        };
        let state = web::Data::new(AppState {
            openapi: api::openapi::spec(),
            catalog: services.catalog.clone(),
            users: services.users.clone(),
            ledger: services.ledger.clone(),
            events: services.events.clone(),
            api_keys: services.api_keys.clone(),
            webhooks: services.webhooks.clone(),
            webhook_allow_private: args.webhook_allow_private,
            deliverer: deliverer.clone(),
            newest_event: services.newest_event.clone(),
            jwt: JwtKeys::new(&secret, args.token_ttl_secs),
            refresh_ttl_secs: args.refresh_ttl_secs,
            currency: services.currency,
            throttle: LoginThrottle::default(),
            register_throttle: RegisterThrottle::new(args.registrations_per_client_max),
            metrics: Metrics::new(services.telemetry.clone()),
            inbox: Mailbox::new(
                inbox.watcher.clone(),
                "inbox",
                INBOX_INFLIGHT_MAX,
                Duration::from_millis(args.pipeline.actor_timeout_ms),
            ),
            uploads: inbox.dirs.uploads.clone(),
            inbox_runner: inbox.runner_alive(),
        });
        let workers = args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(middleware::observe))
                .configure(api::routes)
                .default_service(web::to(api::not_found))
        })
        .workers(workers)
        .max_connections(HTTP_CONNECTIONS_PER_WORKER_MAX)
        .keep_alive(Duration::from_secs(HTTP_KEEP_ALIVE_SECS))
        .client_request_timeout(Duration::from_millis(HTTP_HEAD_TIMEOUT_MS))
        .client_disconnect_timeout(Duration::from_millis(HTTP_DISCONNECT_TIMEOUT_MS))
        .shutdown_timeout(args.shutdown_grace_secs)
        .disable_signals()
        .listen(listener)?
        .run();
        let control = match control::bind(&args.store.data_dir) {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "no control socket: `orderflow backup` cannot reach this service (POST /api/v1/admin/backup can)");
                None
            }
        };
        tracing::info!(data_dir = %args.store.data_dir.display(), inbox = %args.inbox.display(), "listening on http://{address}");
        Ok(Self {
            server,
            address,
            services,
            inbox,
            deliverer,
            control,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The running actors (tests use this to stop one and watch the service cope).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `stop` resolves (a signal, or a test's trigger), then stops in
    /// order: stop accepting, let in-flight requests finish, commit the ledger's
    /// queue, close the store.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let handle = self.server.handle();
        // Deliveries run on a thread of their own, at a lowered priority.
        let stop_deliveries = Arc::new(Notify::new());
        let (delivered_all, deliveries) = tokio::sync::oneshot::channel::<()>();
        let delivery_thread = actix::Arbiter::new();
        {
            let (deliverer, stop) = (self.deliverer, Arc::clone(&stop_deliveries));
            delivery_thread.spawn_fn(move || {
                orderflow_actors::priority::lower_this_thread(WEBHOOK_DELIVERER_NICE);
                actix::spawn(async move {
                    deliverer.run(stop).await;
                    let _ = delivered_all.send(());
                });
            });
        }
        let stop_control = Rc::new(Notify::new());
        let control = self.control.map(|listener| {
            actix_web::rt::spawn(control::serve(
                listener,
                self.services.ledger.clone(),
                Rc::clone(&stop_control),
            ))
        });
        let server = self.server;
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => result?,
            () = stop => {
                tracing::info!("shutting down: finishing in-flight requests");
                // The server future does the stopping, so it must keep being polled.
                let (_, result) = tokio::join!(handle.stop(true), &mut server);
                result?;
            }
        }
        // A delivery cut here is redone after the restart: its cursor had not moved.
        stop_deliveries.notify_one();
        let _ = deliveries.await;
        delivery_thread.stop();
        if let Some(control) = control {
            stop_control.notify_one();
            let _ = control.await;
            let _ = std::fs::remove_file(
                self.services
                    .store
                    .path()
                    .with_file_name(control::SOCKET_NAME),
            );
        }
        tracing::info!("shutting down: finishing the import batch in progress");
        self.inbox.shutdown().await;
        self.services.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Installs the SIGTERM and Ctrl-C handlers now (so a signal that arrives before
/// the server is up is not lost to the default action) and resolves when one comes.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
}
