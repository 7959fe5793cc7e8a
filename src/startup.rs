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
use tokio::sync::Notify;

use orderflow_actors::inbox::{Inbox, InboxConfig};
use orderflow_actors::limits::{
    HTTP_CONNECTIONS_PER_WORKER_MAX, HTTP_DISCONNECT_TIMEOUT_MS, HTTP_HEAD_TIMEOUT_MS,
    HTTP_KEEP_ALIVE_SECS, INBOX_INFLIGHT_MAX, WEBHOOK_DELIVERER_NICE,
};
use orderflow_actors::mailbox::Mailbox;

use crate::auth::jwt::{self, JwtKeys};
use crate::auth::throttle::{LoginThrottle, RegisterThrottle};
use crate::config::ServeArgs;
use crate::control;
use crate::metrics::Metrics;
use crate::relay::Relay;
use crate::search_service::SearchService;
use crate::services::{Backend, PgServices, Services, bootstrap_admin};
use crate::state::AppState;
use crate::webhooks::deliverer::{self, Deliverer};
use crate::{api, middleware};

pub struct Application {
    server: actix_web::dev::Server,
    address: SocketAddr,
    backend: Backend,
    /// The inbox (shared between nodes on PostgreSQL).
    inbox: Inbox,
    deliverer: Deliverer,
    /// `--events-nats`: the relay of events to NATS JetStream.
    relay: Option<Relay>,
    /// `<data-dir>/control.sock` (see `control`); `None` when it could not be bound.
    control: Option<tokio::net::UnixListener>,
    /// The search index, its readers and its indexer.
    search: SearchService,
}

impl Application {
    pub async fn build(args: ServeArgs) -> anyhow::Result<Self> {
        let (backend, secret) = start_backend(&args).await?;
        bootstrap_admin(&backend.users(), args.admin_password.clone()).await?;
        let inbox = Inbox::start(
            InboxConfig {
                root: args.inbox.clone(),
                settle: Duration::from_millis(args.settle_ms),
                scan_interval: Duration::from_millis(args.scan_interval_ms),
                poll: args.inbox_poll,
                truncated_wait: Duration::from_secs(args.truncated_wait_secs),
                // Nodes on one PostgreSQL database may share one inbox folder.
                shared: matches!(backend, Backend::Postgres(_)),
            },
            backend.ledger(),
            backend.currency(),
            backend.telemetry().clone(),
        )
        .with_context(|| format!("cannot prepare the inbox {}", args.inbox.display()))?;
        let timeout = Duration::from_millis(args.pipeline.actor_timeout_ms);
        let search = SearchService::start(
            &backend,
            &args.store.data_dir,
            usize::try_from(args.catalog_threads).unwrap_or(1),
            timeout,
        );
        let deliverer = deliverer_of(&args, &backend);
        let relay = relay_of(&args, &backend);

        let listener = TcpListener::bind(args.bind)
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let address = listener.local_addr()?;
        let state = web::Data::new(AppState {
            openapi: api::openapi::spec(),
            catalog: backend.catalog(),
            search: search.readers.clone(),
            product_cache: backend.product_cache(),
            users: backend.users(),
            ledger: backend.ledger(),
            events: backend.events(),
            api_keys: backend.api_keys(),
            webhooks: backend.webhooks(),
            webhook_allow_private: args.webhook_allow_private,
            deliverer: deliverer.clone(),
            newest_event: backend.newest_event(),
            jwt: JwtKeys::new(&secret, args.token_ttl_secs),
            refresh_ttl_secs: args.refresh_ttl_secs,
            currency: backend.currency(),
            throttle: LoginThrottle::default(),
            register_throttle: RegisterThrottle::new(args.registrations_per_client_max),
            metrics: Metrics::new(backend.telemetry().clone()),
            inbox: Mailbox::new(inbox.watcher.clone(), "inbox", INBOX_INFLIGHT_MAX, timeout),
            inbox_runner: inbox.runner_alive(),
            uploads: inbox.dirs.uploads.clone(),
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
        let control = backend.redb().and_then(|_| control_socket(&args));
        match &args.postgres {
            Some(_) => tracing::info!("listening on http://{address}"),
            None => {
                tracing::info!(data_dir = %args.store.data_dir.display(), inbox = %args.inbox.display(), "listening on http://{address}");
            }
        }
        Ok(Self {
            server,
            address,
            backend,
            inbox,
            deliverer,
            relay,
            control,
            search,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The running actors (tests use this to stop one and watch the service cope).
    pub fn backend(&self) -> &Backend {
        &self.backend
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
        let stop_relay = Arc::new(Notify::new());
        let relaying = self
            .relay
            .map(|relay| actix_web::rt::spawn(relay.run(Arc::clone(&stop_relay))));
        let stop_control = Rc::new(Notify::new());
        let control = match (self.control, self.backend.redb()) {
            (Some(listener), Some(services)) => Some(actix_web::rt::spawn(control::serve(
                listener,
                services.ledger.clone(),
                Rc::clone(&stop_control),
            ))),
            _ => None,
        };
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
        if let Some(relaying) = relaying {
            // What it did not publish yet, the next start publishes.
            stop_relay.notify_one();
            let _ = relaying.await;
        }
        delivery_thread.stop();
        if let (Some(control), Some(services)) = (control, self.backend.redb()) {
            stop_control.notify_one();
            let _ = control.await;
            let _ =
                std::fs::remove_file(services.store.path().with_file_name(control::SOCKET_NAME));
        }
        tracing::info!("shutting down: finishing the import batch in progress");
        self.inbox.shutdown().await;
        // The index writes what the last commits touched, through the catalog's
        // readers, before they stop.
        self.backend.stop_ledger().await;
        self.search.stop().await;
        self.backend.shutdown().await;
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

/// The backend the arguments choose, started, and the JWT secret it keeps.
async fn start_backend(args: &ServeArgs) -> anyhow::Result<(Backend, Vec<u8>)> {
    let catalog_threads = usize::try_from(args.catalog_threads).unwrap_or(1);
    Ok(match &args.postgres {
        Some(url) => {
            let services = PgServices::start(
                url,
                &args.store,
                &args.pipeline,
                catalog_threads,
                args.jwt_secret.as_deref(),
            )
            .await?;
            let secret = services.jwt_secret.clone();
            (Backend::Postgres(services), secret)
        }
        None => {
            let services = Services::start(&args.store, &args.pipeline, catalog_threads)?;
            let secret = jwt::load_secret(args.jwt_secret.as_deref(), &args.store.data_dir)?;
            (Backend::Redb(services), secret)
        }
    })
}

/// The webhook deliverer on this backend, as the arguments set it.
fn deliverer_of(args: &ServeArgs, backend: &Backend) -> Deliverer {
    Deliverer {
        webhooks: backend.webhooks(),
        events: backend.events(),
        leader_lock: backend.leader_lock(),
        newest: backend.newest_event(),
        currency: backend.currency(),
        telemetry: backend.telemetry().clone(),
        client: deliverer::client(args.webhook_allow_private),
        allow_private: args.webhook_allow_private,
        concurrency: usize::try_from(args.webhook_concurrency).unwrap_or(1),
        retry_unit: Duration::from_millis(args.webhook_retry_unit_ms),
    }
}

/// The NATS relay, if the arguments name a server.
fn relay_of(args: &ServeArgs, backend: &Backend) -> Option<Relay> {
    args.events_nats.clone().map(|url| Relay {
        url,
        replicas: usize::try_from(args.events_nats_replicas).unwrap_or(1),
        events: backend.events(),
        leader_lock: backend.leader_lock(),
        newest: backend.newest_event(),
        currency: backend.currency(),
        telemetry: backend.telemetry().clone(),
    })
}

/// The control socket `orderflow backup` talks to (redb only); a node that
/// cannot bind it runs without.
fn control_socket(args: &ServeArgs) -> Option<tokio::net::UnixListener> {
    match control::bind(&args.store.data_dir) {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "no control socket: `orderflow backup` cannot reach this service (POST /api/v1/admin/backup can)");
            None
        }
    }
}
