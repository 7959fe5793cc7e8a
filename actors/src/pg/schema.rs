//! The PostgreSQL schema, versioned in the binary and applied at start.
//!
//! Migrations run under a session advisory lock, so nodes starting together apply
//! each one exactly once (the others wait, then find it applied). A database whose
//! schema is newer than this build knows is refused before anything is written.
//!
//! Rows keep the columns SQL needs (keys, stock units under `CHECK (units >= 0)`,
//! status, references) beside `record`: the row as the redb backend stores it (a
//! version byte, then postcard), decoded through the same codec, so both backends
//! answer byte for byte the same resources.

use tokio_postgres::Client;

use crate::common::StoreError;

/// The schema this build writes.
pub const SCHEMA_VERSION: i32 = 3;

/// The advisory lock migrations hold ("orderflo" in ASCII).
const MIGRATION_LOCK: i64 = 0x6f72_6465_7266_6c6f;

/// Each version's statements, in order; a version is applied in one transaction.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2), (3, V3)];

/// Variant groups (contract §7): a product's group and its option values (case
/// folded, as the filters compare them) beside its record. The unique index is
/// the database's own guard behind the ledger's rule that two active products of
/// a group never have the same values; the rule refuses first, with a 409.
const V3: &str = "
ALTER TABLE products ADD COLUMN group_handle text COLLATE \"C\",
    ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX products_variant ON products (group_handle, options)
    WHERE NOT archived AND group_handle IS NOT NULL;
CREATE INDEX products_by_group ON products (group_handle, sku)
    WHERE NOT archived AND group_handle IS NOT NULL;
";

/// The `options` column's text for folded option values (`Options::values_key`):
/// a JSON object of name to value. A product's row stores it, and the
/// `option.NAME=` filter asks `options @>` the same text of the wanted pairs.
pub(crate) fn options_column(values: &[(String, String)]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// Imports and the shared inbox: jobs (with the lease of the node running one),
/// their kept rejects, the hashes of completed loads, and the claims that decide
/// which node takes an inbox file.
const V2: &str = "
CREATE SEQUENCE job_ids;
CREATE TABLE jobs (
    id bigint PRIMARY KEY,
    record bytea NOT NULL,
    open boolean NOT NULL,
    inbox boolean NOT NULL,
    lease_node text,
    lease_until timestamptz
);
CREATE INDEX jobs_open ON jobs (id) WHERE open;
CREATE TABLE job_rejects (
    job bigint NOT NULL REFERENCES jobs (id),
    line bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (job, line)
);
CREATE TABLE job_shas (sha256 bytea PRIMARY KEY, job bigint NOT NULL);
CREATE TABLE inbox_claims (
    name text COLLATE \"C\" PRIMARY KEY,
    work_path text NOT NULL,
    node text NOT NULL,
    lease_until timestamptz NOT NULL
);
";

const V1: &str = "
CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO counters VALUES ('event_seq', 0), ('events_purged_through', 0);
CREATE TABLE meta (name text PRIMARY KEY, value bytea NOT NULL);
CREATE SEQUENCE order_ids;
CREATE SEQUENCE user_ids;
CREATE TABLE products (
    sku text COLLATE \"C\" PRIMARY KEY,
    name text NOT NULL,
    name_key text COLLATE \"C\" NOT NULL,
    category text COLLATE \"C\" NOT NULL,
    category_key text COLLATE \"C\" NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    archived boolean NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX products_by_price ON products (price_cents, sku) WHERE NOT archived;
CREATE INDEX products_by_name ON products (name_key, sku) WHERE NOT archived;
CREATE INDEX products_by_category ON products (category) WHERE NOT archived;
CREATE TABLE stock (
    sku text COLLATE \"C\" PRIMARY KEY,
    units bigint NOT NULL CHECK (units >= 0),
    last_seq bigint NOT NULL
);
CREATE TABLE movements (
    sku text COLLATE \"C\" NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    delta bigint NOT NULL,
    stock_after bigint NOT NULL CHECK (stock_after >= 0),
    order_id bigint,
    at_ms bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (sku, seq)
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL,
    status text NOT NULL,
    total_cents bigint NOT NULL,
    external_ref text UNIQUE,
    created_ms bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE TABLE idempotency (
    user_id bigint NOT NULL,
    key text NOT NULL,
    created_ms bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_by_age ON idempotency (created_ms);
CREATE TABLE events (
    seq bigint PRIMARY KEY,
    type text NOT NULL,
    at_ms bigint NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE users (
    id bigint PRIMARY KEY,
    name_key text NOT NULL UNIQUE,
    email_key text NOT NULL UNIQUE,
    record bytea NOT NULL
);
CREATE TABLE refresh_tokens (
    digest bytea PRIMARY KEY,
    user_id bigint NOT NULL,
    family bytea NOT NULL,
    expires_ms bigint NOT NULL,
    rotated boolean NOT NULL
);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_ms);
CREATE TABLE revoked_families (
    family bytea PRIMARY KEY,
    forget_ms bigint NOT NULL
);
CREATE INDEX revoked_families_by_expiry ON revoked_families (forget_ms);
CREATE SEQUENCE api_key_ids;
CREATE TABLE api_keys (
    id bigint PRIMARY KEY,
    hash bytea NOT NULL UNIQUE,
    record bytea NOT NULL
);
CREATE SEQUENCE webhook_ids;
CREATE TABLE webhooks (id bigint PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE webhook_deliveries (
    endpoint bigint NOT NULL,
    n bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (endpoint, n)
);
";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the database has schema version {found}; this build knows up to {SCHEMA_VERSION}: \
         run a newer release"
    )]
    Newer { found: i32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Store(e.into())
    }
}

/// Brings the database to [`SCHEMA_VERSION`], or refuses a newer one. Answers the
/// version found before.
///
/// Nodes starting together wait for each other's migrations here, polling the
/// lock (every connection's `lock_timeout` would end a plain wait after a few
/// seconds, and a migration may take longer), for at most
/// [`PG_MIGRATION_WAIT_SECS`](crate::limits::PG_MIGRATION_WAIT_SECS).
pub async fn migrate(client: &mut Client) -> Result<i32, MigrateError> {
    let until = std::time::Instant::now()
        + std::time::Duration::from_secs(crate::limits::PG_MIGRATION_WAIT_SECS);
    loop {
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?
            .get(0);
        if got {
            break;
        }
        if std::time::Instant::now() >= until {
            return Err(MigrateError::Store(StoreError::Aborted(format!(
                "another node held the migration lock for {} s",
                crate::limits::PG_MIGRATION_WAIT_SECS
            ))));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let outcome = migrate_locked(client).await;
    // Released on every path; a lost connection releases it too.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let found = outcome?;
    unlocked?;
    Ok(found)
}

async fn migrate_locked(client: &mut Client) -> Result<i32, MigrateError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS orderflow_schema (version integer NOT NULL)")
        .await?;
    let found: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM orderflow_schema",
            &[],
        )
        .await?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(MigrateError::Newer { found });
    }
    for (version, statements) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let tx = client.transaction().await?;
        tx.batch_execute(statements).await?;
        tx.execute("INSERT INTO orderflow_schema VALUES ($1)", &[version])
            .await?;
        tx.commit().await?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    Ok(found)
}
