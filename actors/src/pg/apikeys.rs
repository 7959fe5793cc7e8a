//! API keys on PostgreSQL: the messages of [`crate::apikeys`], answered by any node.
//!
//! A key created or revoked on one node is known or refused on every other from
//! its next request (each authentication reads the table). Creations take one
//! advisory lock so that nodes creating keys at once never pass
//! [`API_KEYS_MAX`] together.

use std::collections::HashMap;

use actix::{Actor, AsyncContext, Context, Handler, ResponseFuture, WrapFuture};

use super::staged::{int, uint};
use super::{Pool, client};
use crate::apikeys::{
    ApiKey, ApiKeyError, ApiKeyId, ApiKeyRow, AuthenticateKey, CreateApiKey, KeyHolder,
    ListApiKeys, RevokeApiKey, last_used_due, normalised,
};
use crate::common::{StoreError, codec};
use crate::domain::Timestamp;
use crate::limits::API_KEYS_MAX;

/// The advisory lock key creations hold ("apikeys" in ASCII).
const CREATE_LOCK: i64 = 0x0061_7069_6b65_7973;

/// The API keys of one node on PostgreSQL.
pub struct PgApiKeys {
    pool: Pool,
    /// When this node last wrote each key's `last_used_at`.
    last_written: HashMap<ApiKeyId, Timestamp>,
}

impl PgApiKeys {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            last_written: HashMap::new(),
        }
    }
}

impl Actor for PgApiKeys {
    type Context = Context<Self>;
}

fn key_of(id: i64, record: &[u8]) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: ApiKeyId(uint(id)?),
        row: codec::decode::<ApiKeyRow>(record)?,
    })
}

impl Handler<CreateApiKey> for PgApiKeys {
    type Result = ResponseFuture<Result<ApiKey, ApiKeyError>>;
    fn handle(&mut self, msg: CreateApiKey, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let row = ApiKeyRow {
                name: msg.name,
                scopes: normalised(msg.scopes),
                hash: msg.hash,
                created_at: Timestamp::now(),
                last_used_at: None,
            };
            let mut db = client(&pool).await?;
            let tx = db.transaction().await.map_err(StoreError::from)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CREATE_LOCK])
                .await
                .map_err(StoreError::from)?;
            let count: i64 = tx
                .query_one("SELECT count(*) FROM api_keys", &[])
                .await
                .map_err(StoreError::from)?
                .get(0);
            if uint(count)? >= API_KEYS_MAX as u64 {
                return Err(ApiKeyError::TooMany);
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO api_keys VALUES (nextval('api_key_ids'), $1, $2) RETURNING id",
                    &[&row.hash.as_slice(), &codec::encode(&row)],
                )
                .await
                .map_err(StoreError::from)?
                .get(0);
            tx.commit().await.map_err(StoreError::from)?;
            Ok(ApiKey {
                id: ApiKeyId(uint(id)?),
                row,
            })
        })
    }
}

impl Handler<ListApiKeys> for PgApiKeys {
    type Result = ResponseFuture<Result<Vec<ApiKey>, ApiKeyError>>;
    fn handle(&mut self, _: ListApiKeys, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let rows = db
                .query("SELECT id, record FROM api_keys ORDER BY id", &[])
                .await
                .map_err(StoreError::from)?;
            Ok(rows
                .iter()
                .map(|r| key_of(r.get(0), r.get(1)))
                .collect::<Result<_, _>>()?)
        })
    }
}

impl Handler<RevokeApiKey> for PgApiKeys {
    type Result = ResponseFuture<Result<(), ApiKeyError>>;
    fn handle(&mut self, msg: RevokeApiKey, _: &mut Self::Context) -> Self::Result {
        self.last_written.remove(&msg.id);
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let gone = db
                .execute("DELETE FROM api_keys WHERE id = $1", &[&int(msg.id.0)?])
                .await
                .map_err(StoreError::from)?;
            if gone == 0 {
                return Err(ApiKeyError::NotFound);
            }
            Ok(())
        })
    }
}

impl Handler<AuthenticateKey> for PgApiKeys {
    type Result = ResponseFuture<Result<Option<KeyHolder>, ApiKeyError>>;
    fn handle(&mut self, msg: AuthenticateKey, ctx: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let me = ctx.address();
        Box::pin(async move {
            let db = client(&pool).await?;
            let Some(found) = db
                .query_opt(
                    "SELECT id, record FROM api_keys WHERE hash = $1",
                    &[&msg.hash.as_slice()],
                )
                .await
                .map_err(StoreError::from)?
            else {
                return Ok(None);
            };
            let key = key_of(found.get(0), found.get(1))?;
            // Noted after the answer, off the request's path; a failure only
            // leaves `last_used_at` older.
            me.do_send(Used {
                id: key.id,
                last_used_at: key.row.last_used_at,
                at: Timestamp::now(),
            });
            Ok(Some(KeyHolder {
                id: key.id,
                scopes: key.row.scopes,
            }))
        })
    }
}

/// A key was used at `at`; its stored `last_used_at` was as given. The actor
/// writes the new time when it is due ([`last_used_due`]).
#[derive(actix::Message)]
#[rtype(result = "()")]
struct Used {
    id: ApiKeyId,
    last_used_at: Option<Timestamp>,
    at: Timestamp,
}

impl Handler<Used> for PgApiKeys {
    type Result = ();
    fn handle(&mut self, msg: Used, ctx: &mut Self::Context) {
        let written = self.last_written.get(&msg.id).copied();
        if last_used_due(written, msg.last_used_at, msg.at) {
            self.last_written.insert(msg.id, msg.at);
            let pool = self.pool.clone();
            ctx.spawn(
                async move {
                    if let Err(e) = touch(&pool, msg.id, msg.at).await {
                        tracing::warn!(error = %e, key = msg.id.0, "last_used_at not written");
                    }
                }
                .into_actor(self),
            );
        }
    }
}

async fn touch(pool: &Pool, id: ApiKeyId, at: Timestamp) -> Result<(), StoreError> {
    let mut db = client(pool).await?;
    let tx = db.transaction().await?;
    // Revoked meanwhile: nothing to note.
    if let Some(r) = tx
        .query_opt(
            "SELECT record FROM api_keys WHERE id = $1 FOR UPDATE",
            &[&int(id.0)?],
        )
        .await?
    {
        let mut row: ApiKeyRow = codec::decode(r.get::<_, &[u8]>(0))?;
        row.last_used_at = Some(at);
        tx.execute(
            "UPDATE api_keys SET record = $2 WHERE id = $1",
            &[&int(id.0)?, &codec::encode(&row)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

super::ping_and_stop!(PgApiKeys);
