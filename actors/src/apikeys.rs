//! API keys: how a shop's other systems call the admin routes without a user.
//!
//! A key is `ofk_` and 43 characters of URL-safe base64 (32 random bytes), made by
//! the web layer and shown once; only its SHA-256 reaches this actor and is stored
//! (a random 256-bit key needs no slow hash: there is nothing to guess). Each key
//! holds a set of scopes; revoking deletes it, so the next request with it is
//! refused. `last_used_at` is written at most every
//! [`API_KEY_LAST_USED_WRITE_SECS`], so a busy key costs no write per request.

use std::collections::HashMap;

use actix::{Actor, Context, Handler, Message};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::common::{Record, StoreError, codec};
use crate::domain::{KeyName, Scope, Timestamp};
use crate::limits::{API_KEY_LAST_USED_WRITE_SECS, API_KEYS_MAX};
use crate::mailbox::{Ping, Stop};
use crate::store::tables::{API_KEYS, API_KEYS_BY_HASH, META, counter};
use crate::store::{Store, get_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ApiKeyId(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub name: KeyName,
    /// Sorted, without repeats.
    pub scopes: Vec<Scope>,
    pub hash: [u8; 32],
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl Record for ApiKeyRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "api_key";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub row: ApiKeyRow,
}

/// Who a presented key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHolder {
    pub id: ApiKeyId,
    pub scopes: Vec<Scope>,
}

impl KeyHolder {
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("no API key with that id")]
    NotFound,
    #[error("at most {API_KEYS_MAX} API keys may exist; revoke one first")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::common::lift_redb_errors!(ApiKeyError);

/// Owns the API keys.
pub struct ApiKeys {
    store: Store,
    /// When each key's `last_used_at` was last written (this actor runs on one
    /// thread, so this is the only writer of that column).
    last_written: HashMap<ApiKeyId, Timestamp>,
}

impl ApiKeys {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            last_written: HashMap::new(),
        }
    }
}

impl Actor for ApiKeys {
    type Context = Context<Self>;
}

/// Store a new key (its hash only).
#[derive(Debug, Message)]
#[rtype(result = "Result<ApiKey, ApiKeyError>")]
pub struct CreateApiKey {
    pub name: KeyName,
    /// At least one.
    pub scopes: Vec<Scope>,
    /// SHA-256 of the key the caller will be shown.
    pub hash: [u8; 32],
}

impl Handler<CreateApiKey> for ApiKeys {
    type Result = Result<ApiKey, ApiKeyError>;
    fn handle(&mut self, msg: CreateApiKey, _: &mut Self::Context) -> Self::Result {
        let scopes = normalised(msg.scopes);
        let txn = self.store.db().begin_write().map_err(StoreError::from)?;
        let key = {
            let mut keys = txn.open_table(API_KEYS)?;
            if usize::try_from(keys.len()?).unwrap_or(usize::MAX) >= API_KEYS_MAX {
                return Err(ApiKeyError::TooMany);
            }
            let mut meta = txn.open_table(META)?;
            let id = meta.get(counter::NEXT_API_KEY_ID)?.map_or(1, |v| v.value());
            meta.insert(counter::NEXT_API_KEY_ID, id + 1)?;
            let row = ApiKeyRow {
                name: msg.name,
                scopes,
                hash: msg.hash,
                created_at: Timestamp::now(),
                last_used_at: None,
            };
            keys.insert(id, codec::encode(&row).as_slice())?;
            txn.open_table(API_KEYS_BY_HASH)?.insert(&msg.hash, id)?;
            ApiKey {
                id: ApiKeyId(id),
                row,
            }
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(key)
    }
}

/// Every key, oldest first (key material is never kept, so never shown).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ApiKey>, ApiKeyError>")]
pub struct ListApiKeys;

impl Handler<ListApiKeys> for ApiKeys {
    type Result = Result<Vec<ApiKey>, ApiKeyError>;
    fn handle(&mut self, _: ListApiKeys, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read().map_err(StoreError::from)?;
        let keys = txn.open_table(API_KEYS)?;
        let mut out = Vec::new();
        for entry in keys.iter()? {
            let (id, bytes) = entry?;
            out.push(ApiKey {
                id: ApiKeyId(id.value()),
                row: codec::decode(bytes.value())?,
            });
        }
        Ok(out)
    }
}

/// Revoke (delete) a key: refused from the next request on.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ApiKeyError>")]
pub struct RevokeApiKey {
    pub id: ApiKeyId,
}

impl Handler<RevokeApiKey> for ApiKeys {
    type Result = Result<(), ApiKeyError>;
    fn handle(&mut self, msg: RevokeApiKey, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_write().map_err(StoreError::from)?;
        {
            let mut keys = txn.open_table(API_KEYS)?;
            let row: ApiKeyRow = get_record(&keys, msg.id.0)?.ok_or(ApiKeyError::NotFound)?;
            keys.remove(msg.id.0)?;
            txn.open_table(API_KEYS_BY_HASH)?.remove(&row.hash)?;
        }
        txn.commit().map_err(StoreError::from)?;
        self.last_written.remove(&msg.id);
        Ok(())
    }
}

/// Who holds the key with this hash, if anyone; notes its use.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<KeyHolder>, ApiKeyError>")]
pub struct AuthenticateKey {
    /// SHA-256 of the presented key.
    pub hash: [u8; 32],
}

impl Handler<AuthenticateKey> for ApiKeys {
    type Result = Result<Option<KeyHolder>, ApiKeyError>;
    fn handle(&mut self, msg: AuthenticateKey, _: &mut Self::Context) -> Self::Result {
        let (id, row) = {
            let txn = self.store.db().begin_read().map_err(StoreError::from)?;
            let Some(id) = txn
                .open_table(API_KEYS_BY_HASH)?
                .get(&msg.hash)?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            let keys = txn.open_table(API_KEYS)?;
            let row: ApiKeyRow = get_record(&keys, id)?
                .ok_or_else(|| StoreError::Corrupt(format!("api key {id} vanished")))?;
            (ApiKeyId(id), row)
        };
        let now = Timestamp::now();
        if last_used_due(self.last_written.get(&id).copied(), row.last_used_at, now) {
            // A failed write of `last_used_at` must not refuse the caller.
            match self.touch(id, now) {
                Ok(()) => {
                    self.last_written.insert(id, now);
                }
                Err(e) => tracing::warn!(error = %e, key = id.0, "last_used_at not written"),
            }
        }
        Ok(Some(KeyHolder {
            id,
            scopes: row.scopes,
        }))
    }
}

/// Whether a key's `last_used_at` should be written now: at most once every
/// [`API_KEY_LAST_USED_WRITE_SECS`] (`written`: when this node last wrote it;
/// `last_used_at`: the key's stored value).
pub fn last_used_due(
    written: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    written
        .or(last_used_at)
        .is_none_or(|t| t <= now.minus_secs(API_KEY_LAST_USED_WRITE_SECS))
}

/// The scopes of a new key: sorted, without repeats, at least one.
pub fn normalised(mut scopes: Vec<Scope>) -> Vec<Scope> {
    scopes.sort();
    scopes.dedup();
    assert!(!scopes.is_empty(), "a key has a scope");
    scopes
}

impl ApiKeys {
    fn touch(&self, id: ApiKeyId, at: Timestamp) -> Result<(), ApiKeyError> {
        let txn = self.store.db().begin_write().map_err(StoreError::from)?;
        {
            let mut keys = txn.open_table(API_KEYS)?;
            // Revoked meanwhile: nothing to note.
            if let Some(mut row) = get_record::<u64, ApiKeyRow>(&keys, id.0)? {
                row.last_used_at = Some(at);
                keys.insert(id.0, codec::encode(&row).as_slice())?;
            }
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }
}

impl Handler<Ping> for ApiKeys {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        self.store.check_readable()
    }
}

impl Handler<Stop> for ApiKeys {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}
