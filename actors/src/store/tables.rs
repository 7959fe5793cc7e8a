//! Every redb table, typed, in one place.
//!
//! Values that are records are postcard bytes behind a version byte (see `codec`);
//! keys are plain redb types so ranges and ordering work on them directly.
//! Who writes what: the catalog actor writes product rows and their indexes; the
//! ledger writes stock, movements, orders, idempotency keys, order references and
//! import jobs (and product rows arriving in import files, inside its own
//! transactions); the user store writes users and refresh tokens. Anyone may read.

use redb::{Key, TableDefinition, Value};

use crate::common::StoreError;

/// Small values: schema version and id counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// sku → `ProductRow`.
pub const PRODUCTS: TableDefinition<&str, &[u8]> = TableDefinition::new("products");
/// (index, run id, first key of the block) → a block of the run's entries: the
/// listings by price and by name, as sorted runs (see `catalog::listing`).
pub const LISTING_BLOCKS: TableDefinition<(u8, u64, &[u8]), &[u8]> =
    TableDefinition::new("listing_blocks");
/// (index, run id) → `RunRow`: the runs of each listing index.
pub const LISTING_RUNS: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("listing_runs");
/// The listing runs' counters (see [`listing_meta`]).
pub const LISTING_META: TableDefinition<&str, u64> = TableDefinition::new("listing_meta");

/// Names of the counters kept in `LISTING_META`.
pub mod listing_meta {
    /// The id the next listing run takes (from 1).
    pub const NEXT_RUN: &str = "next_run";
}

/// Tables of older schemas, read only to upgrade them.
pub mod legacy {
    use redb::TableDefinition;

    /// Schema 1: (price_cents, sku) → () for listing by price; active products only.
    pub const PRODUCTS_BY_PRICE: TableDefinition<(u64, &str), ()> =
        TableDefinition::new("products_by_price");
    /// Schema 1: (lower-case name, sku) → () for listing by name; active products only.
    pub const PRODUCTS_BY_NAME: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("products_by_name");
}
/// category → number of active products in it.
pub const CATEGORIES: TableDefinition<&str, u64> = TableDefinition::new("categories");
/// (variant group handle, sku) → () for each active product of a group.
pub const GROUP_MEMBERS: TableDefinition<(&str, &str), ()> = TableDefinition::new("group_members");

/// sku → (units on hand, seq of the last movement). Owned by the ledger.
pub const STOCK: TableDefinition<&str, (u64, u64)> = TableDefinition::new("stock");
/// (sku, seq) → `MovementRow`: the append-only history of each SKU's stock.
pub const MOVEMENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("movements");
/// order id → `OrderRow`.
pub const ORDERS: TableDefinition<u64, &[u8]> = TableDefinition::new("orders");
/// (user id, order id) → () so a customer's orders list is one range scan.
pub const ORDERS_BY_USER: TableDefinition<(u64, u64), ()> = TableDefinition::new("orders_by_user");
/// (user id, idempotency key) → `IdempotencyRow`.
pub const IDEMPOTENCY: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("idempotency");
/// (created ms, user id, key) → () so expired keys are purged oldest first.
pub const IDEMPOTENCY_EXPIRY: TableDefinition<(i64, u64, &str), ()> =
    TableDefinition::new("idempotency_expiry");
/// external order reference (from orders files) → order id.
pub const ORDER_REFS: TableDefinition<&str, u64> = TableDefinition::new("order_refs");

/// user id → `UserRow`.
pub const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// lower-case username → user id.
pub const USER_NAMES: TableDefinition<&str, u64> = TableDefinition::new("user_names");
/// lower-case email → user id.
pub const USER_EMAILS: TableDefinition<&str, u64> = TableDefinition::new("user_emails");
/// SHA-256 of a refresh token → `RefreshRow` (the token itself is never stored).
pub const REFRESH_TOKENS: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("refresh_tokens");
/// refresh-token family id → 1 when the family was revoked (logout or reuse detected).
pub const REVOKED_FAMILIES: TableDefinition<u128, u8> = TableDefinition::new("revoked_families");
/// (expiry ms, token digest) → () so expired refresh tokens are purged oldest first.
pub const REFRESH_EXPIRY: TableDefinition<(i64, &[u8; 32]), ()> =
    TableDefinition::new("refresh_expiry");
/// (forget-after ms, family id) → () so revoked families are forgotten once none of
/// their tokens can still be alive.
pub const REVOKED_FAMILY_EXPIRY: TableDefinition<(i64, u128), ()> =
    TableDefinition::new("revoked_family_expiry");

/// job id → `JobRow`.
pub const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// (job id, line) → `RejectRow`.
pub const JOB_REJECTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("job_rejects");
/// Jobs not yet settled (file not yet moved / summary not yet given): what a
/// restart must look at.
pub const JOBS_OPEN: TableDefinition<u64, ()> = TableDefinition::new("jobs_open");
/// SHA-256 of a file's bytes → the job that loaded it (completed jobs only).
pub const JOBS_BY_SHA: TableDefinition<&[u8; 32], u64> = TableDefinition::new("jobs_by_sha");

/// seq → `EventRow`: the outbox, in commit order (see `events`).
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// The outbox's own counters (see [`events_meta`]), apart from `META` so the
/// outbox can be open beside the book in one transaction.
pub const EVENTS_META: TableDefinition<&str, u64> = TableDefinition::new("events_meta");

/// Names of the counters kept in `EVENTS_META`.
pub mod events_meta {
    /// The seq the next event takes (from 1).
    pub const NEXT_SEQ: &str = "next_seq";
    /// The highest seq forgotten by the retention purge (0 before any): an `after`
    /// below it asks for events no longer kept.
    pub const PURGED_THROUGH: &str = "purged_through";
}

/// API key id → `ApiKeyRow`.
pub const API_KEYS: TableDefinition<u64, &[u8]> = TableDefinition::new("api_keys");
/// SHA-256 of a key → its id: how a presented key is found.
pub const API_KEYS_BY_HASH: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("api_keys_by_hash");

/// Webhook endpoint id → `EndpointRow` (with its cursor and retry state).
pub const WEBHOOKS: TableDefinition<u64, &[u8]> = TableDefinition::new("webhooks");
/// (endpoint id, attempt number) → `DeliveryRow`: the last attempts of each endpoint.
pub const WEBHOOK_DELIVERIES: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("webhook_deliveries");

/// Names of the counters kept in `META`.
pub mod counter {
    pub const SCHEMA: &str = "schema_version";
    pub const NEXT_USER_ID: &str = "next_user_id";
    pub const NEXT_ORDER_ID: &str = "next_order_id";
    pub const NEXT_JOB_ID: &str = "next_job_id";
    pub const NEXT_API_KEY_ID: &str = "next_api_key_id";
    pub const NEXT_WEBHOOK_ID: &str = "next_webhook_id";
    /// The store currency's three letters packed into a u64.
    pub const CURRENCY: &str = "currency";
    /// The ledger journal's identity (random, taken the first time it is opened):
    /// a journal file is replayed only into the database it was written for.
    pub const JOURNAL_ID: &str = "journal_id";
    /// The seq of the last journal record this database holds: replay starts after it.
    pub const JOURNAL_SEQ: &str = "journal_seq";
}

/// Something done to every table, typed (see [`every_table`]).
pub trait TableVisitor {
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: TableDefinition<'static, K, V>,
    ) -> Result<(), StoreError>;
}

/// Visits every table above, once. Creation at open and the backup's copy both walk
/// this one list, and the backup refuses a database holding a table not on it, so
/// a table added above and forgotten here fails loudly, not silently.
pub fn every_table(v: &mut impl TableVisitor) -> Result<(), StoreError> {
    v.visit(META)?;
    v.visit(PRODUCTS)?;
    v.visit(LISTING_BLOCKS)?;
    v.visit(LISTING_RUNS)?;
    v.visit(LISTING_META)?;
    v.visit(CATEGORIES)?;
    v.visit(GROUP_MEMBERS)?;
    v.visit(STOCK)?;
    v.visit(MOVEMENTS)?;
    v.visit(ORDERS)?;
    v.visit(ORDERS_BY_USER)?;
    v.visit(IDEMPOTENCY)?;
    v.visit(IDEMPOTENCY_EXPIRY)?;
    v.visit(ORDER_REFS)?;
    v.visit(USERS)?;
    v.visit(USER_NAMES)?;
    v.visit(USER_EMAILS)?;
    v.visit(REFRESH_TOKENS)?;
    v.visit(REVOKED_FAMILIES)?;
    v.visit(REFRESH_EXPIRY)?;
    v.visit(REVOKED_FAMILY_EXPIRY)?;
    v.visit(JOBS)?;
    v.visit(JOB_REJECTS)?;
    v.visit(JOBS_BY_SHA)?;
    v.visit(JOBS_OPEN)?;
    v.visit(EVENTS)?;
    v.visit(EVENTS_META)?;
    v.visit(API_KEYS)?;
    v.visit(API_KEYS_BY_HASH)?;
    v.visit(WEBHOOKS)?;
    v.visit(WEBHOOK_DELIVERIES)?;
    Ok(())
}
