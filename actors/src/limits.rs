//! Every bound the service enforces, in one place.
//!
//! TigerBeetle's rule: put a limit on everything, name it with the unit last, and keep
//! the names together so an operator can see at a glance what the service will accept
//! and how much it can queue. Anything not listed here is a bug.

/// Longest SKU, in characters (`[A-Za-z0-9._-]`).
pub const SKU_CHARS_MAX: usize = 64;
/// Longest product name after trimming, in characters.
pub const PRODUCT_NAME_CHARS_MAX: usize = 200;
/// Longest level of a category path after trimming, in characters.
pub const CATEGORY_CHARS_MAX: usize = 64;
/// Most levels of a category path (`Apparel > Men > T-Shirts` has three).
pub const CATEGORY_LEVELS_MAX: usize = 5;
/// Longest category path: its levels and the ` > ` between them, in characters.
pub const CATEGORY_PATH_CHARS_MAX: usize =
    CATEGORY_LEVELS_MAX * CATEGORY_CHARS_MAX + (CATEGORY_LEVELS_MAX - 1) * 3;
/// Longest product description, in characters.
pub const DESCRIPTION_CHARS_MAX: usize = 4_000;
/// Longest variant group handle (`[a-z0-9-]`), in characters.
pub const GROUP_HANDLE_CHARS_MAX: usize = 64;
/// Most active products one variant group holds (Shopify's variant limit): the
/// rule that keeps a group's variants distinct reads them all on each write.
pub const GROUP_VARIANTS_MAX: usize = 2_048;
/// Most options (Size, Color, …) a product of a group has.
pub const OPTIONS_MAX: usize = 3;
/// Longest option name, in characters.
pub const OPTION_NAME_CHARS_MAX: usize = 32;
/// Longest option value, in characters.
pub const OPTION_VALUE_CHARS_MAX: usize = 64;
/// Heaviest product, in grams (ten tonnes).
pub const WEIGHT_GRAMS_MAX: u64 = 10_000_000;
/// Longest tax class (`[a-z0-9_-]`), in characters.
pub const TAX_CLASS_CHARS_MAX: usize = 32;
/// Shortest and longest barcode (a GTIN), in digits.
pub const BARCODE_DIGITS_MIN: usize = 8;
pub const BARCODE_DIGITS_MAX: usize = 14;
/// Highest unit price in minor units (one billion major units).
pub const PRICE_CENTS_MAX: u64 = 100_000_000_000;
/// Highest stock level of one SKU.
pub const STOCK_UNITS_MAX: u64 = 1_000_000_000;
/// Largest quantity of one order line.
pub const LINE_QUANTITY_MAX: u32 = 1_000;
/// Most distinct lines in one order (after merging repeated SKUs).
pub const ORDER_LINES_MAX: usize = 100;
/// Shortest username, in characters.
pub const USERNAME_CHARS_MIN: usize = 3;
/// Longest username, in characters.
pub const USERNAME_CHARS_MAX: usize = 32;
/// Longest email address, in bytes (RFC 5321 path limit).
pub const EMAIL_BYTES_MAX: usize = 254;
/// Shortest password, in characters.
pub const PASSWORD_CHARS_MIN: usize = 8;
/// Longest password, in characters (argon2 input is bounded so a login cannot be a DoS).
pub const PASSWORD_CHARS_MAX: usize = 128;
/// Longest `Idempotency-Key` header, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 255;
/// How long an idempotency key is kept, in seconds (the contract says at least 24 h).
pub const IDEMPOTENCY_KEY_TTL_SECS: u64 = 48 * 3600;
/// Longest refresh-token lifetime `--refresh-ttl-secs` accepts, in seconds. A revoked
/// token family is remembered this long, which outlives every token of the family
/// whatever the flag was when they were issued.
pub const REFRESH_TTL_SECS_MAX: u64 = 365 * 86_400;
/// Entries one purge removes at most (expired idempotency keys, refresh tokens,
/// forgotten token families), so a purge is a short transaction however much has
/// piled up.
pub const PURGE_BATCH_MAX: usize = 10_000;
/// How often the ledger and the user store purge what has expired, in seconds.
pub const PURGE_INTERVAL_SECS: u64 = 600;
/// Longest free-text reason on a stock adjustment, in characters.
pub const REASON_CHARS_MAX: usize = 200;
/// Longest external order reference in an orders file, in characters.
pub const ORDER_REF_CHARS_MAX: usize = 64;

/// Longest text filter on a product list (`category`, `q`), in characters.
pub const LIST_FILTER_CHARS_MAX: usize = 200;
/// Largest page a list endpoint returns.
pub const PAGE_ITEMS_MAX: usize = 200;
/// Page size when the client does not ask for one.
pub const PAGE_ITEMS_DEFAULT: usize = 50;
/// Most rows a single list request may scan while filtering; a page that hits this
/// bound is returned short, with a cursor to continue, so one request never scans
/// the whole catalog.
pub const LIST_SCAN_ROWS_MAX: usize = 20_000;
/// Products whose response bytes the read cache keeps at most (about 0.5 KiB
/// each: a few MiB). See `catalog::cache`.
pub const PRODUCT_CACHE_ENTRIES_MAX: usize = 16_384;
/// SKUs one commit may change before the read cache is emptied whole instead of
/// SKU by SKU (an import batch changes thousands).
pub const PRODUCT_CACHE_TOUCHED_MAX: usize = 1_024;
/// SKUs a commit's list of what it changed holds at most (four full import
/// batches); past it the commit counts as changing everything, and the search
/// index re-reads the whole catalog.
pub const TOUCHED_SKUS_MAX: usize = 4 * IMPORT_BATCH_ROWS_MAX;

/// Largest page of search hits.
pub const SEARCH_LIMIT_MAX: usize = 100;
/// Search hits a client may page through (offset of the last one), like a
/// search engine's result window: deeper pages are not answered.
pub const SEARCH_DEPTH_MAX: usize = 10_000;
/// How long a search's cursor keeps reading the snapshot its first page read.
pub const SEARCH_CURSOR_SECS: u64 = 600;
/// Snapshots kept for cursors at most (the oldest is let go first).
pub const SEARCH_SNAPSHOTS_MAX: usize = 64;
/// Longest search text, in characters.
pub const SEARCH_TEXT_CHARS_MAX: usize = 200;
/// Words of a search that are matched (the rest are ignored).
pub const SEARCH_WORDS_MAX: usize = 12;
/// Words of this many characters match with one typo (contract §7).
pub const SEARCH_TYPO_CHARS_MIN: usize = 5;
/// Words of this many characters match with two typos (contract §7).
pub const SEARCH_TWO_TYPOS_CHARS_MIN: usize = 9;
/// Facets one search may ask for.
pub const SEARCH_FACETS_MAX: usize = 6;
/// Values a facet answers at most (the most frequent first).
pub const SEARCH_FACET_VALUES_MAX: usize = 100;
/// How often the search index commits what it was fed, in milliseconds (a
/// committed change is searchable within about this, and within 1 s).
pub const SEARCH_COMMIT_INTERVAL_MS: u64 = 200;
/// SKUs the search index's feed lists at most; past it (an import outran the
/// indexer) the whole catalog is read again instead, so the list's memory stays
/// bounded (a few MB).
pub const FEED_SKUS_MAX: usize = 65_536;
/// SKUs the index re-reads and writes per commit at most: an import's many
/// thousands go in parts, so a commit's deletes and documents stay small.
pub const SEARCH_STEP_SKUS_MAX: usize = 16_384;
/// Products read per catalog request while the index is built or refreshed.
pub const SEARCH_READ_BATCH: usize = 4_096;
/// Memory the index's writer buffers before it writes a segment, in bytes (one
/// indexing thread; tantivy's least is 15 MB).
pub const SEARCH_WRITER_BYTES: usize = 24 * 1024 * 1024;
/// The same for the writer that builds the index from the whole catalog (split
/// between its threads, one per core).
pub const SEARCH_BUILD_WRITER_BYTES: usize = 128 * 1024 * 1024;
/// Nice value of the search indexer's threads (see `WEBHOOK_DELIVERER_NICE`): a
/// busy machine serves sales and imports first, and the index catches up.
pub const SEARCH_INDEXER_NICE: i32 = 10;
/// `Retry-After` of a search answered while the index is being built, in seconds.
pub const SEARCH_RETRY_AFTER_SECS: u64 = 2;

/// Most messages waiting for or being handled by one actor; beyond it callers get 503.
pub const CATALOG_INFLIGHT_MAX: usize = 4_096;
/// See [`CATALOG_INFLIGHT_MAX`].
pub const USERS_INFLIGHT_MAX: usize = 1_024;
/// See [`CATALOG_INFLIGHT_MAX`]. Bounds the checkouts queued behind one commit.
pub const LEDGER_INFLIGHT_MAX: usize = 8_192;
/// See [`CATALOG_INFLIGHT_MAX`]. Uploads waiting to be taken into the inbox.
pub const INBOX_INFLIGHT_MAX: usize = 64;
/// See [`CATALOG_INFLIGHT_MAX`]. Reads of the events feed (a long poll waits outside
/// the actor, so it holds no place here while it waits).
pub const EVENTS_INFLIGHT_MAX: usize = 1_024;
/// See [`CATALOG_INFLIGHT_MAX`]. Searches waiting for or being answered.
pub const SEARCH_INFLIGHT_MAX: usize = 1_024;
/// Threads reading the events feed.
pub const EVENTS_READER_THREADS: usize = 1;
/// Default for `--commit-batch-max`: most commands folded into one ledger transaction.
pub const COMMIT_BATCH_DEFAULT: usize = 1_024;
/// Upper bound accepted for `--commit-batch-max`.
pub const COMMIT_BATCH_MAX: usize = 16_384;
/// How long a caller waits for an actor's answer to a read before giving up with
/// 503, in ms.
pub const ACTOR_REPLY_TIMEOUT_MS: u64 = 30_000;
/// Hard limit on waiting for the ledger's answer to a write that it accepted, in ms;
/// past it the client is told the outcome is unknown (never to retry blindly). The
/// ledger answers every command after its commit, so this is only reached when the
/// disk stalls.
pub const LEDGER_WRITE_TIMEOUT_MS: u64 = 120_000;
/// Times an import job is run again after a step that wrote nothing (a batch
/// abandoned with its group commit, a ledger too busy), resuming from its last
/// committed batch, before the job fails.
pub const JOB_RUN_ATTEMPTS_MAX: u32 = 4;
/// Pause before such a retry (times the attempt number), in ms.
pub const JOB_RETRY_BACKOFF_MS: u64 = 100;
/// Times the import loader waits [`JOB_RETRY_BACKOFF_MS`] for a place in a full
/// ledger queue before its job fails (about a minute).
pub const LEDGER_BUSY_RETRIES_MAX: u32 = 600;

/// redb page cache, in bytes. redb defaults to 1 GiB, which would own the RSS budget.
pub const DB_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Rows of an import committed in one transaction (with the file's read position).
/// Larger batches amortise the listing indexes' page writes (a 1M-row import ran at
/// 68k rows/s with 8,192 and 121k rows/s with 32,768, at 100 and 116 MB peak RSS);
/// the cost is that a crash redoes up to this many rows and a checkout arriving
/// during an import waits for the batch's commit.
pub const IMPORT_BATCH_ROWS_MAX: usize = 32_768;
/// Stored rows (products, stock levels, movements) an import batch reads past, one
/// by one, between two of its keys before it seeks instead (a seek costs about a
/// descent); also the most stored rows between two written ones that it writes
/// again to keep a stretch of new rows in one sorted run (see `store::sorted`).
pub const SORTED_SCAN_STEPS_MAX: usize = 4;
/// Bytes a listing block and its first key take at most (see `store::listing`): a
/// few hundred entries, small enough that a listing read decodes little beyond what
/// it shows, large enough that a run is few blocks. It is one redb leaf page (4,096
/// bytes) less what the leaf spends on one pair besides the block and its first key
/// (a 4-byte header, two 4-byte offsets, the key's 1-byte index and 8-byte run id).
/// A block one byte longer would be stored in a two-page allocation, half of it
/// empty: blocks closed *after* crossing 4,096 bytes took 8 KiB each until
/// 2026-12-05, so the listings wrote twice the pages they needed.
pub const LISTING_BLOCK_BYTES_MAX: usize = 4_096 - 4 - 2 * 4 - 1 - 8;
/// Runs of one level a listing merge takes at once, and the ratio of one level's
/// run size to the next: each entry is rewritten once per level it passes.
pub const LISTING_MERGE_FANOUT: usize = 4;
/// Source entries a transaction merges per listing change it writes. Above the
/// number of levels an entry passes (a 32,768-row batch's run is level 7, a
/// 14M-row catalog level 11), so merges keep up with writes.
pub const LISTING_MERGE_ENTRIES_PER_CHANGE: u64 = 8;
/// Source entries a transaction that changes listings merges at least, so small
/// writes (the API's) finish the merges they start.
pub const LISTING_MERGE_ENTRIES_MIN: u64 = 16_384;
/// Records passed between pipeline stages in one message.
pub const IMPORT_CHUNK_ROWS: usize = 1_024;
/// Chunks waiting in each channel between stages (so at most this many times
/// [`IMPORT_CHUNK_ROWS`] records are parsed ahead of the loader, per stage).
pub const IMPORT_CHANNEL_CHUNKS_MAX: usize = 8;
/// Largest single row (CSV record, JSON Lines line, JSON array element), in bytes; a
/// larger one is rejected without being buffered whole.
pub const IMPORT_ROW_BYTES_MAX: usize = 64 * 1024;
/// Largest file accepted into the inbox or by upload, in bytes.
pub const IMPORT_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;
/// Rejects kept per job (the report still counts every one).
pub const IMPORT_REJECTS_KEPT_MAX: u64 = 100_000;
/// Longest raw text kept for a rejected row, in bytes.
pub const REJECT_RAW_BYTES_MAX: usize = 2_048;
/// Files waiting in the inbox that the watcher tracks at once.
pub const INBOX_TRACKED_FILES_MAX: usize = 10_000;
/// Longest file name accepted in the inbox or on upload, in bytes.
pub const FILE_NAME_BYTES_MAX: usize = 200;
/// Bytes read at each end of an inbox file to see whether it looks cut.
pub const TRUNCATION_PROBE_BYTES: u64 = 4096;
/// Minimum time between two inbox scans triggered by file-system notifications, in
/// ms (a file being written produces a notification per write).
pub const INBOX_SCAN_DEBOUNCE_MS: u64 = 50;
/// An upload in `.uploads/` that nobody has written to for this long is abandoned
/// (a crash, a vanished client) and removed, in seconds.
pub const UPLOAD_IDLE_SECS_MAX: u64 = 600;
/// Interval between progress log lines of a long import, in ms.
pub const PROGRESS_LOG_INTERVAL_MS: u64 = 5_000;

// HTTP ---------------------------------------------------------------------------

/// Largest JSON request body, in bytes.
pub const JSON_BODY_BYTES_MAX: usize = 64 * 1024;
/// Deepest nesting of arrays and objects accepted in a JSON body.
pub const JSON_DEPTH_MAX: usize = 16;
/// Largest request head (request line and headers), in bytes.
pub const HTTP_HEAD_BYTES_MAX: usize = 16 * 1024;
/// Time a client has to send its request head, in ms (slowloris guard).
pub const HTTP_HEAD_TIMEOUT_MS: u64 = 5_000;
/// Time a client has to finish disconnecting, in ms.
pub const HTTP_DISCONNECT_TIMEOUT_MS: u64 = 2_000;
/// Idle time after which a keep-alive connection is closed, in seconds.
pub const HTTP_KEEP_ALIVE_SECS: u64 = 30;
/// Open connections per HTTP worker.
pub const HTTP_CONNECTIONS_PER_WORKER_MAX: usize = 10_000;
/// Time in-flight requests get to finish on shutdown, in seconds.
pub const HTTP_SHUTDOWN_GRACE_SECS: u64 = 30;
/// Longest accepted client `X-Request-Id`, in bytes (longer ones are replaced).
pub const REQUEST_ID_BYTES_MAX: usize = 128;
/// (method, route, status) series whose metric handles each HTTP worker thread keeps,
/// so that counting a request takes no shared lock. Past it, it starts afresh.
pub const HTTP_METRIC_HANDLES_PER_THREAD_MAX: usize = 1024;
/// Failed logins from one client address (against any accounts) before it is
/// throttled; an attempt counts once it has failed.
pub const LOGIN_FAILURES_MAX: u32 = 10;
/// Logins from one client address whose password is being checked at once
/// (contract §11): an office behind one address logging in at 9:00 is not
/// refused, and a burst of guesses is still bounded (by this, on top of the
/// failures counted so far).
pub const LOGINS_IN_FLIGHT_PER_CLIENT_MAX: u32 = 64;
/// Failed logins against one account (from all clients) before it is throttled;
/// an attempt counts as failed from before its hash until it succeeds, so a burst
/// of guesses at one account cannot overshoot it.
pub const LOGIN_ACCOUNT_FAILURES_MAX: u32 = 20;
/// Window over which failed logins are counted, in seconds.
pub const LOGIN_FAILURE_WINDOW_SECS: u64 = 300;
/// Client addresses the login throttle remembers at once.
pub const LOGIN_THROTTLE_CLIENTS_MAX: usize = 100_000;
/// Accounts (and unknown names) the login throttle remembers at once.
pub const LOGIN_THROTTLE_ACCOUNTS_MAX: usize = 100_000;
/// Default for `--registrations-per-client-max`: registrations one client address
/// may attempt in [`REGISTRATION_WINDOW_SECS`] (each may cost a password hash).
pub const REGISTRATIONS_PER_CLIENT_DEFAULT: u32 = 30;
/// Window over which registrations are counted, in seconds.
pub const REGISTRATION_WINDOW_SECS: u64 = 600;
/// Registrations hashing a password at once (of [`PASSWORD_HASH_QUEUE_MAX`]
/// places); beyond it registrations get 503, so a burst of them cannot crowd out
/// logins.
pub const REGISTRATION_HASHES_INFLIGHT_MAX: usize = 32;
/// Leeway on JWT `exp` and `nbf`, in seconds (clock skew between hosts).
pub const JWT_LEEWAY_SECS: u64 = 5;
/// Shortest `ORDERFLOW_JWT_SECRET`, in bytes.
pub const JWT_SECRET_BYTES_MIN: usize = 32;
/// Access tokens whose signature each HTTP worker thread remembers having checked
/// (about 300 bytes each). Past it the expired ones go, then all of them.
pub const JWT_VERIFIED_CACHE_ENTRIES: usize = 4096;
/// Bytes of log lines gathered for the writer thread; beyond it lines are dropped
/// (and counted), not queued. About 20,000 access-log lines.
pub const LOG_BUFFER_BYTES_MAX: usize = 4 * 1024 * 1024;
/// How often the writer thread writes the gathered log lines, in milliseconds.
pub const LOG_FLUSH_INTERVAL_MS: u64 = 20;
/// Threads that hash passwords (argon2id needs 19 MiB each while it runs).
pub const PASSWORD_HASH_THREADS: usize = 2;
/// Password hashes waiting for a thread; beyond it logins and registrations get 503.
pub const PASSWORD_HASH_QUEUE_MAX: usize = 256;
/// Largest record the CSV reader will assemble, in bytes; beyond it the file fails
/// (an unclosed quote would otherwise swallow the rest of the file into memory).
pub const IMPORT_RECORD_BYTES_HARD_MAX: u64 = 1024 * 1024;
/// Read buffer of the import stages, in bytes.
pub const IMPORT_READ_BUFFER_BYTES: usize = 64 * 1024;

/// Largest page of `GET /events`.
pub const EVENTS_PAGE_MAX: usize = 1_000;
/// Page size of `GET /events` when the client does not ask for one.
pub const EVENTS_PAGE_DEFAULT: usize = 100;
/// Most stored events one `GET /events` scans while filtering by type; the page
/// then ends short with a `next_after` past what was scanned.
pub const EVENTS_SCAN_ROWS_MAX: usize = 10_000;
/// Longest long poll of `GET /events?wait=`, in seconds.
pub const EVENTS_WAIT_SECS_MAX: u64 = 30;
/// How long events are kept when `--event-retention-days` is not given, in days.
pub const EVENT_RETENTION_DAYS_DEFAULT: u64 = 30;
/// Longest `--event-retention-days` accepted, in days (ten years).
pub const EVENT_RETENTION_DAYS_MAX: u64 = 3_650;
/// Longest event type filter (`type=`), in bytes.
pub const EVENT_TYPE_FILTER_BYTES_MAX: usize = 64;
/// Longest API key name after trimming, in characters.
pub const API_KEY_NAME_CHARS_MAX: usize = 100;
/// Most API keys that may exist at once.
pub const API_KEYS_MAX: usize = 1_000;
/// `last_used_at` of an API key is written at most this often, in seconds: a busy
/// key costs no write per request.
pub const API_KEY_LAST_USED_WRITE_SECS: u64 = 60;
/// See [`CATALOG_INFLIGHT_MAX`]. Key look-ups and key management.
pub const API_KEYS_INFLIGHT_MAX: usize = 4_096;
/// Most webhook endpoints that may exist at once.
pub const WEBHOOK_ENDPOINTS_MAX: usize = 100;
/// Attempts kept in each endpoint's delivery log (older ones are forgotten).
pub const WEBHOOK_DELIVERIES_KEPT_MAX: u64 = 1_000;
/// How long a rotated-out secret keeps signing beside the new one, in seconds.
pub const WEBHOOK_SECRET_OVERLAP_SECS: u64 = 24 * 3600;
/// Longest webhook URL, in bytes.
pub const WEBHOOK_URL_BYTES_MAX: usize = 2_048;
/// Most event filters on one endpoint.
pub const WEBHOOK_FILTERS_MAX: usize = 32;
/// Longest endpoint description, in characters.
pub const WEBHOOK_DESCRIPTION_CHARS_MAX: usize = 200;
/// Connect timeout of a delivery, in milliseconds.
pub const WEBHOOK_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Whole-attempt timeout of a delivery, in milliseconds.
pub const WEBHOOK_ATTEMPT_TIMEOUT_MS: u64 = 10_000;
/// Most bytes of a receiver's answer read.
pub const WEBHOOK_RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// Default of `--webhook-concurrency`: deliveries in flight at once, across endpoints.
pub const WEBHOOK_CONCURRENCY_DEFAULT: usize = 16;
/// Retry delays after each failed attempt, in units of `--webhook-retry-unit-ms`
/// (5 s by default: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then every 3 h).
pub const WEBHOOK_RETRY_UNITS: [u64; 7] = [1, 6, 24, 120, 360, 720, 2_160];
/// Retries stop, and the endpoint is disabled, once the first failed attempt of an
/// event is this many units old (3 days at the default unit).
pub const WEBHOOK_RETRY_HORIZON_UNITS: u64 = 51_840;
/// Default of `--webhook-retry-unit-ms`, in milliseconds.
pub const WEBHOOK_RETRY_UNIT_MS_DEFAULT: u64 = 5_000;
/// How often the deliverer looks for due work when no commit woke it, in milliseconds.
pub const WEBHOOK_POLL_MS: u64 = 1_000;
/// A successful delivery moves the endpoint's cursor in a commit that is not synced
/// to disk (a redelivery after a crash is allowed, a lost event is not); the next
/// durable commit of anyone syncs it, and the webhooks actor makes one itself at
/// most this long after, in milliseconds. It bounds what a crash re-sends.
pub const WEBHOOK_CURSOR_SYNC_MS: u64 = 1_000;
/// Events the deliverer reads at once for one endpoint (sent one at a time).
pub const WEBHOOK_PREFETCH_EVENTS: usize = 64;
/// Deliveries one endpoint makes before its slot goes back to the queue of due
/// endpoints (fair turns when more endpoints are due than `--webhook-concurrency`).
pub const WEBHOOK_RUN_EVENTS_MAX: usize = 1_024;
/// Successful deliveries of one endpoint recorded in one transaction, at most (a
/// failure is recorded at once, with the successes before it).
pub const WEBHOOK_RECORD_BATCH_MAX: usize = 64;
/// A batch of successes is recorded once it is this old, in milliseconds, full or
/// not: what a crash can re-send, and how stale the delivery log may look.
pub const WEBHOOK_RECORD_BATCH_MS: u64 = 100;
/// See [`CATALOG_INFLIGHT_MAX`]. Endpoint management and delivery records.
pub const WEBHOOKS_INFLIGHT_MAX: usize = 4_096;
/// Entries a backup copies per (unsynced) commit into the new file: bounds the
/// memory of a backup of any size.
pub const BACKUP_COMMIT_ENTRIES: usize = 100_000;
/// The niceness of a backup's thread (0 normal … 19 lowest): a backup is
/// background work and yields the CPU to checkouts and imports while they keep it
/// busy; on an idle machine it runs at full speed all the same.
pub const BACKUP_NICE: i32 = 10;
/// The niceness of the webhook deliverer's thread (see [`BACKUP_NICE`]): on a
/// saturated machine deliveries fall behind for a while rather than slow
/// checkouts; the lag is a metric (`orderflow_webhook_lag_events`).
pub const WEBHOOK_DELIVERER_NICE: i32 = 19;
/// Longest request line on the control socket (`<data-dir>/control.sock`), in bytes.
pub const CONTROL_REQUEST_BYTES_MAX: usize = 64 * 1024;

/// How long any statement of the PostgreSQL backend waits for a lock before it
/// fails (milliseconds; the `lock_timeout` of every connection it opens). A batch
/// that waits longer is refused as a whole ("nothing was written, retry"), and
/// the node's ledger goes on with the next one.
pub const PG_LOCK_TIMEOUT_MS: u64 = 5_000;

/// How long a starting node waits for another node's schema migration before it
/// gives up (seconds).
pub const PG_MIGRATION_WAIT_SECS: u64 = 600;

/// TCP keepalives on every PostgreSQL connection: first probe after this many
/// idle seconds, then one every `PG_KEEPALIVE_INTERVAL_SECS`, dead after
/// `PG_KEEPALIVE_RETRIES` unanswered (so a silent peer is found in about 30 s).
pub const PG_KEEPALIVE_IDLE_SECS: u64 = 15;
pub const PG_KEEPALIVE_INTERVAL_SECS: u64 = 5;
pub const PG_KEEPALIVE_RETRIES: u32 = 3;

/// How long the PostgreSQL backend waits before opening a lost listening
/// connection again (milliseconds).
pub const PG_RECONNECT_DELAY_MS: u64 = 500;

/// How often a node checks that its PostgreSQL pool still leads to the primary
/// (a server that takes writes), in milliseconds.
pub const PG_PRIMARY_CHECK_MS: u64 = 1_000;

/// Connections in a node's PostgreSQL pool (its readers and account writes; the
/// ledger and the events listener have one each besides).
pub const PG_POOL_CONNECTIONS_MAX: usize = 8;

/// How often a node that does not hold the webhook delivery lock (PostgreSQL
/// backend) tries to take it, in milliseconds: how long deliveries pause after
/// the delivering node dies.
pub const WEBHOOK_LEADER_RETRY_MS: u64 = 1_000;

/// Events the NATS relay reads from the outbox at a time (`--events-nats`).
pub const NATS_RELAY_PAGE_MAX: usize = 256;

/// How long the NATS relay waits before connecting again, and at most between two
/// looks at the outbox when no commit woke it, in milliseconds.
pub const NATS_RETRY_MS: u64 = 500;

/// Copies of the `ORDERFLOW_EVENTS` stream at most (`--events-nats-replicas`;
/// JetStream's own limit).
pub const NATS_REPLICAS_MAX: u64 = 5;

/// How long a node's lease on an import job or an inbox claim lasts without being
/// renewed (PostgreSQL's shared inbox), in milliseconds: a node that dies loses its
/// jobs to another node this long after its last renewal.
pub const INBOX_LEASE_MS: u64 = 5_000;

/// How often a node renews its leases and looks for jobs and claims whose lease
/// ran out, in milliseconds.
pub const INBOX_LEASE_RENEW_MS: u64 = 1_000;

/// Jobs or claims one look for expired leases takes over at most.
pub const INBOX_TAKEOVER_MAX: i64 = 8;
/// Size of the ledger's journal file, in bytes: written in place from its start,
/// it starts again from the start after each checkpoint.
pub const JOURNAL_BYTES: u64 = 16 * 1024 * 1024;
/// Longest time between two checkpoints of the ledger's journal, in milliseconds:
/// a batch past it commits to redb durably (which makes every journaled batch before
/// it durable there, and lets redb reuse the pages they freed).
pub const JOURNAL_CHECKPOINT_MS: u64 = 100;
/// Most direct reads of the journal's first block made while one batch is built,
/// to keep the disk awake for its sync (see `store::awake`): a bound on the reads
/// a metered disk is charged for, whatever the batch takes.
pub const JOURNAL_AWAKE_READS_MAX: u32 = 16;
/// Size of each of those reads, in bytes (also their buffer's alignment, which
/// `O_DIRECT` wants; 4 KiB suits every common block size).
pub const JOURNAL_AWAKE_READ_BYTES: usize = 4096;

/// The most field errors one problem+json answer lists (its detail still counts
/// them all).
pub const PROBLEM_FIELD_ERRORS_MAX: usize = 50;

/// How long a client of the control socket has to send its request line
/// (milliseconds): an idle client cannot hold the socket, which answers one
/// connection at a time.
pub const CONTROL_READ_TIMEOUT_MS: u64 = 2_000;
