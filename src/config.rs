//! The command line: every setting is a flag with an environment fallback, and
//! `--help` shows both with the default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use orderflow_actors::limits::{
    ACTOR_REPLY_TIMEOUT_MS, COMMIT_BATCH_DEFAULT, COMMIT_BATCH_MAX, EVENT_RETENTION_DAYS_DEFAULT,
    EVENT_RETENTION_DAYS_MAX, HTTP_SHUTDOWN_GRACE_SECS, LEDGER_INFLIGHT_MAX,
    LEDGER_WRITE_TIMEOUT_MS, NATS_REPLICAS_MAX, REFRESH_TTL_SECS_MAX,
    REGISTRATIONS_PER_CLIENT_DEFAULT, WEBHOOK_CONCURRENCY_DEFAULT, WEBHOOK_RETRY_UNIT_MS_DEFAULT,
};

#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about = "An order pipeline service for online shops", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything: the HTTP API, the actors and the inbox watcher.
    Serve(Box<ServeArgs>),
    /// Run files through the import pipeline once, without the server; exit 0 only if
    /// every file completed.
    Ingest(IngestArgs),
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Generate realistic data (deterministic for a seed) on standard output or to a file.
    Gen(GenArgs),
    /// Take a consistent backup of the data directory while it serves (asks the
    /// running service through `<data-dir>/control.sock`), or directly when none runs.
    Backup(BackupArgs),
    /// Restore a backup into an empty or missing data directory, after checking it
    /// against its manifest.
    Restore(RestoreArgs),
    /// Check a data directory offline: every SKU's stock against its movements, every
    /// order's total against its lines; exit 0 only with no problems.
    Verify(VerifyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The data directory to back up.
    #[arg(long, env = "ORDERFLOW_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Write the backup here (it must not exist; its manifest goes beside it as
    /// FILE.manifest.json). Default: `<data-dir>/backups/orderflow-<time>.redb`.
    #[arg(long)]
    pub to: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The backup file (its manifest, FILE.manifest.json, must be beside it).
    #[arg(long)]
    pub from: PathBuf,
    /// Where to restore: an empty or missing directory, never one with data.
    #[arg(long)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The data directory to check (no service may be running on it).
    #[arg(long, env = "ORDERFLOW_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// Settings every command that opens the data directory shares.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory holding the database and the generated JWT secret.
    #[arg(long, env = "ORDERFLOW_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The store's one currency (ISO 4217); fixed for a data directory once chosen.
    #[arg(long, env = "ORDERFLOW_CURRENCY", default_value = "EUR")]
    pub currency: String,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `orderflow=debug`.
    #[arg(long = "log", env = "ORDERFLOW_LOG", default_value = "info")]
    pub log: String,
    /// Log format.
    #[arg(long, env = "ORDERFLOW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Most orders (and other ledger commands) committed in one transaction; 1 commits
    /// each order on its own.
    #[arg(long, env = "ORDERFLOW_COMMIT_BATCH_MAX", default_value_t = COMMIT_BATCH_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=COMMIT_BATCH_MAX as u64))]
    pub commit_batch_max: u64,
    /// Most checkouts and other ledger commands queued at once; beyond it requests get
    /// 503 with Retry-After instead of waiting without bound.
    #[arg(long, env = "ORDERFLOW_LEDGER_QUEUE_MAX", default_value_t = LEDGER_INFLIGHT_MAX as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub ledger_queue_max: u64,
    /// How long a request waits for an actor's answer to a read before it gets 503
    /// with Retry-After, in milliseconds.
    #[arg(long, env = "ORDERFLOW_ACTOR_TIMEOUT_MS", default_value_t = ACTOR_REPLY_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub actor_timeout_ms: u64,
    /// Hard limit on waiting for the ledger's answer to a change it accepted (checkout,
    /// status, stock), in milliseconds. The ledger answers after every commit; past this
    /// limit the client is told the outcome is unknown, never to retry blindly.
    #[arg(long, env = "ORDERFLOW_LEDGER_WRITE_TIMEOUT_MS", default_value_t = LEDGER_WRITE_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub ledger_write_timeout_ms: u64,
    /// What products and inventory imports announce on the events feed: `summary`
    /// (only the job's `import.completed` / `import.failed`) or `rows` (also a
    /// product and a stock event per row). Orders from files always emit `order.placed`.
    #[arg(long, env = "ORDERFLOW_IMPORT_EVENTS", value_enum, default_value_t = ImportEvents::Summary)]
    pub import_events: ImportEvents,
    /// How the embedded ledger makes checkouts, status changes and stock
    /// adjustments durable: `on` appends each batch to a journal file and syncs
    /// that (redb then commits without waiting for the disk, durably every 100 ms);
    /// `off` commits every batch to redb durably. PostgreSQL ignores it.
    #[arg(long, env = "ORDERFLOW_LEDGER_JOURNAL", value_enum, default_value_t = LedgerJournal::On)]
    pub ledger_journal: LedgerJournal,
    /// With the journal on: `on` keeps the disk awake while the ledger builds a
    /// batch (direct reads of the journal's first block, at most 16 per batch), so
    /// the batch's sync does not pay for waking it; `off` does not. Worth it on disks
    /// whose flushes are slow after a pause (most virtual disks:
    /// `benches/scripts/flush_latency.py` tells); nothing is written by it.
    #[arg(long, env = "ORDERFLOW_LEDGER_JOURNAL_AWAKE", value_enum, default_value_t = JournalAwake::On)]
    pub ledger_journal_awake: JournalAwake,
    /// How long events are kept for `GET /api/v1/events`, in days.
    #[arg(long, env = "ORDERFLOW_EVENT_RETENTION_DAYS", default_value_t = EVENT_RETENTION_DAYS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=EVENT_RETENTION_DAYS_MAX))]
    pub event_retention_days: u64,
}

/// `--ledger-journal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LedgerJournal {
    On,
    Off,
}

/// `--ledger-journal-awake`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JournalAwake {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportEvents {
    Summary,
    Rows,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Address to listen on; port 0 picks a free port (the log line says which).
    #[arg(long, env = "ORDERFLOW_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The drop folder watched for import files.
    #[arg(long, env = "ORDERFLOW_INBOX", default_value = "./inbox")]
    pub inbox: PathBuf,
    /// Keep all state in PostgreSQL instead of the embedded file (a libpq URL, e.g.
    /// `postgresql://orderflow@db1,db2/shop?target_session_attrs=read-write`):
    /// several nodes on one database act as one service, imports and a shared
    /// inbox folder included; online backups answer 501 on this backend (use
    /// PostgreSQL's own tools; see the README's "Running several nodes"). Prefer
    /// the environment variable: the URL may hold a password.
    #[arg(long, env = "ORDERFLOW_POSTGRES_URL", hide_env_values = true)]
    pub postgres: Option<String>,
    /// HS256 signing secret, at least 32 bytes; by default one is generated and kept in
    /// the data directory. Prefer the environment variable: flags show up in `ps`.
    #[arg(long, env = "ORDERFLOW_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Password of the `admin` user created on first start; by default a random one is
    /// printed once to the log.
    #[arg(long, env = "ORDERFLOW_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "ORDERFLOW_TOKEN_TTL_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub token_ttl_secs: u64,
    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "ORDERFLOW_REFRESH_TTL_SECS", default_value_t = 30 * 86_400,
          value_parser = clap::value_parser!(u64).range(60..=REFRESH_TTL_SECS_MAX))]
    pub refresh_ttl_secs: u64,
    /// Registrations one client address may attempt in ten minutes (each may cost a
    /// password hash); beyond it, 429 with Retry-After.
    #[arg(long, env = "ORDERFLOW_REGISTRATIONS_PER_CLIENT_MAX", default_value_t = REGISTRATIONS_PER_CLIENT_DEFAULT,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub registrations_per_client_max: u32,
    /// How long an inbox file's size and modification time must stay unchanged before it
    /// is taken, in milliseconds.
    #[arg(long, env = "ORDERFLOW_SETTLE_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub settle_ms: u64,
    /// Rescan the inbox on a timer only, without file-system notifications (for network
    /// file systems, where notifications do not arrive).
    #[arg(long, env = "ORDERFLOW_INBOX_POLL")]
    pub inbox_poll: bool,
    /// Interval between inbox rescans, in milliseconds (notifications only hint between them).
    #[arg(long, env = "ORDERFLOW_SCAN_INTERVAL_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub scan_interval_ms: u64,
    /// How long a file that looks truncated (JSON array not closed, last line cut) is
    /// waited for before it fails, in seconds.
    #[arg(long, env = "ORDERFLOW_TRUNCATED_WAIT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub truncated_wait_secs: u64,
    /// HTTP worker threads (default: one per CPU).
    #[arg(long, env = "ORDERFLOW_WORKERS")]
    pub workers: Option<usize>,
    /// Threads serving catalog reads.
    #[arg(long, env = "ORDERFLOW_CATALOG_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub catalog_threads: u64,
    /// Seconds in-flight requests get to finish on SIGTERM / Ctrl-C.
    #[arg(long, env = "ORDERFLOW_SHUTDOWN_GRACE_SECS", default_value_t = HTTP_SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,
    /// Let webhooks point at loopback, private and link-local addresses (tests, and
    /// receivers on the shop's own network). Off: such URLs are refused.
    #[arg(long, env = "ORDERFLOW_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// Webhook deliveries in flight at once, across endpoints (each endpoint has at
    /// most one: its events go in order).
    #[arg(long, env = "ORDERFLOW_WEBHOOK_CONCURRENCY", default_value_t = WEBHOOK_CONCURRENCY_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub webhook_concurrency: u64,
    /// Also publish every event to NATS JetStream: one or more server URLs,
    /// comma-separated (stream ORDERFLOW_EVENTS, subjects orderflow.events.<type>).
    #[arg(long, env = "ORDERFLOW_EVENTS_NATS")]
    pub events_nats: Option<String>,
    /// Copies of the ORDERFLOW_EVENTS stream when the relay creates it (1 to 5;
    /// 3 on a three-server cluster).
    #[arg(long, env = "ORDERFLOW_EVENTS_NATS_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=NATS_REPLICAS_MAX))]
    pub events_nats_replicas: u64,
    /// The unit of the webhook retry schedule, in milliseconds: retries come after
    /// 1, 6, 24, 120, 360, 720 units, then every 2,160, for 51,840 units (the
    /// default 5,000 gives 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, every 3 h, 3 days).
    #[arg(long, env = "ORDERFLOW_WEBHOOK_RETRY_UNIT_MS", default_value_t = WEBHOOK_RETRY_UNIT_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub webhook_retry_unit_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Validate and report (counts, rejects by reason) without loading anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Files to import; kind and format come from each name (see the README).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password (8–128 characters) comes from the ORDERFLOW_PASSWORD
    /// environment variable, else from the first line of standard input.
    Create(CreateUserArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// 3–32 of A-Z a-z 0-9 _ . -
    #[arg(long)]
    pub username: String,
    /// A valid email address.
    #[arg(long)]
    pub email: String,
    /// Give the user the admin role.
    #[arg(long)]
    pub admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenKind {
    Products,
    Orders,
    Inventory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenFormat {
    Csv,
    Jsonl,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    /// What to generate.
    #[arg(value_enum)]
    pub kind: GenKind,
    /// Rows to write.
    #[arg(long)]
    pub count: u64,
    /// For products: the number of the first row, which names its SKU (`P-000001`
    /// for 1). A file starting past an earlier file's last row adds new products to
    /// the catalog that file loaded.
    #[arg(long, default_value_t = 1)]
    pub first: u64,
    /// Percentage of rows that are deliberately bad (every kind the pipeline rejects).
    #[arg(long, default_value_t = 0.0)]
    pub dirty: f64,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// For products: contract §7's catalog — variant groups of one to six sizes
    /// in one colour, a three-level category tree, weights and longer
    /// descriptions (for search). Without it, the flat rows the ingest benchmarks
    /// have always measured.
    #[arg(long)]
    pub catalog_depth: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GenFormat::Csv)]
    pub format: GenFormat,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// For orders: customers to spread orders over (usernames customer1..N).
    #[arg(long, default_value_t = 100)]
    pub customers: u64,
    /// For orders and inventory: how many product SKUs (from `gen products`) to reference.
    #[arg(long, default_value_t = 1000)]
    pub products: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_shows_every_setting_with_env_and_default() {
        let mut cmd = Cli::command();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_long_help().to_string();
        for needle in [
            "--bind",
            "ORDERFLOW_BIND",
            "127.0.0.1:8080",
            "--data-dir",
            "ORDERFLOW_DATA_DIR",
            "--inbox",
            "ORDERFLOW_INBOX",
            "ORDERFLOW_JWT_SECRET",
            "ORDERFLOW_ADMIN_PASSWORD",
            "ORDERFLOW_LOG",
            "--commit-batch-max",
            "--settle-ms",
            "--currency",
            "--token-ttl-secs",
        ] {
            assert!(help.contains(needle), "serve --help lacks {needle}");
        }
    }
}
