//! Accounts and refresh tokens on PostgreSQL: the messages of [`crate::users`],
//! answered by any node under the same rules.
//!
//! Uniqueness of usernames and emails (case-folded) is the database's: two nodes
//! registering the same name at once get one account and one 409. A rotation locks
//! the presented token's row (`FOR UPDATE`): a second rotation of the same token,
//! on any node, waits for the first, then finds it spent and revokes the family
//! ([`crate::users::judge`], the rule both backends follow).

use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, ResponseFuture};
use tokio_postgres::error::SqlState;

use super::staged::{int, uint};
use super::{Pool, client};
use crate::common::{StoreError, codec};
use crate::domain::{Timestamp, UserId};
use crate::limits::{PURGE_BATCH_MAX, PURGE_INTERVAL_SECS, REFRESH_TTL_SECS_MAX};
use crate::users::{
    ADMIN_BOOTSTRAPPED, AdminBootstrapped, BootstrapAdmin, CheckAvailable, CreateUser,
    FindCredentials, GetUser, LoginKey, RefreshError, RefreshRows, RevokeRefreshToken,
    RotateRefreshToken, StoreRefreshToken, User, UserError, UserRow, rotate,
};

/// The user store of one node on PostgreSQL.
pub struct PgUsers {
    pool: Pool,
}

impl PgUsers {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

impl Actor for PgUsers {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(Duration::from_secs(PURGE_INTERVAL_SECS), |act, ctx| {
            let pool = act.pool.clone();
            ctx.spawn(actix::fut::wrap_future(async move {
                match purge(&pool, Timestamp::now()).await {
                    Ok((0, 0)) => {}
                    Ok((tokens, families)) => {
                        tracing::info!(tokens, families, "refresh tokens purged");
                    }
                    Err(e) => tracing::warn!(error = %e, "refresh-token purge failed"),
                }
            }));
        });
    }
}

/// Removes expired tokens and families whose time is up, at most
/// [`PURGE_BATCH_MAX`] of each, oldest first.
async fn purge(pool: &Pool, now: Timestamp) -> Result<(u64, u64), StoreError> {
    let db = client(pool).await?;
    let max = int(PURGE_BATCH_MAX as u64)?;
    let tokens = db
        .execute(
            "DELETE FROM refresh_tokens WHERE digest IN (SELECT digest FROM refresh_tokens \
             WHERE expires_ms < $1 ORDER BY expires_ms LIMIT $2)",
            &[&now.millis(), &max],
        )
        .await?;
    let families = db
        .execute(
            "DELETE FROM revoked_families WHERE family IN (SELECT family FROM revoked_families \
             WHERE forget_ms < $1 ORDER BY forget_ms LIMIT $2)",
            &[&now.millis(), &max],
        )
        .await?;
    Ok((tokens, families))
}

fn user_of(id: i64, record: &[u8]) -> Result<(User, UserRow), StoreError> {
    let row: UserRow = codec::decode(record)?;
    Ok((User::from_row(UserId(uint(id)?), &row), row))
}

/// Which unique key a violation hit, from the constraint's name.
fn taken(e: &tokio_postgres::Error) -> Option<UserError> {
    let db = e.as_db_error()?;
    if db.code() != &SqlState::UNIQUE_VIOLATION {
        return None;
    }
    match db.constraint() {
        Some(c) if c.contains("email") => Some(UserError::EmailTaken),
        _ => Some(UserError::UsernameTaken),
    }
}

async fn create(
    db: &impl tokio_postgres::GenericClient,
    msg: CreateUser,
) -> Result<User, UserError> {
    let row = msg.row(Timestamp::now());
    let inserted = db
        .query_one(
            "INSERT INTO users (id, name_key, email_key, record) \
             VALUES (nextval('user_ids'), $1, $2, $3) RETURNING id",
            &[
                &row.username.folded(),
                &row.email.folded(),
                &codec::encode(&row),
            ],
        )
        .await;
    match inserted {
        Ok(r) => Ok(User::from_row(UserId(uint(r.get(0))?), &row)),
        Err(e) => Err(taken(&e).unwrap_or_else(|| StoreError::from(e).into())),
    }
}

impl Handler<CreateUser> for PgUsers {
    type Result = ResponseFuture<Result<User, UserError>>;
    fn handle(&mut self, msg: CreateUser, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move { create(&**client(&pool).await?, msg).await })
    }
}

impl Handler<CheckAvailable> for PgUsers {
    type Result = ResponseFuture<Result<(), UserError>>;
    fn handle(&mut self, msg: CheckAvailable, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let row = db
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE name_key = $1), \
                     EXISTS (SELECT 1 FROM users WHERE email_key = $2)",
                    &[&msg.username.folded(), &msg.email.folded()],
                )
                .await
                .map_err(StoreError::from)?;
            if row.get(0) {
                Err(UserError::UsernameTaken)
            } else if row.get(1) {
                Err(UserError::EmailTaken)
            } else {
                Ok(())
            }
        })
    }
}

impl Handler<FindCredentials> for PgUsers {
    type Result = ResponseFuture<Result<Option<(User, String)>, StoreError>>;
    fn handle(&mut self, msg: FindCredentials, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let (sql, folded) = match msg.key() {
                LoginKey::Email(folded) => {
                    ("SELECT id, record FROM users WHERE email_key = $1", folded)
                }
                LoginKey::Username(folded) => {
                    ("SELECT id, record FROM users WHERE name_key = $1", folded)
                }
            };
            let db = client(&pool).await?;
            match db.query_opt(sql, &[&folded]).await? {
                Some(r) => {
                    let (user, row) = user_of(r.get(0), r.get(1))?;
                    Ok(Some((user, row.password_hash)))
                }
                None => Ok(None),
            }
        })
    }
}

impl Handler<GetUser> for PgUsers {
    type Result = ResponseFuture<Result<Option<User>, StoreError>>;
    fn handle(&mut self, msg: GetUser, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let row = db
                .query_opt(
                    "SELECT id, record FROM users WHERE id = $1",
                    &[&int(msg.id.0)?],
                )
                .await?;
            row.map(|r| user_of(r.get(0), r.get(1)).map(|(user, _)| user))
                .transpose()
        })
    }
}

impl Handler<AdminBootstrapped> for PgUsers {
    type Result = ResponseFuture<Result<bool, StoreError>>;
    fn handle(&mut self, _: AdminBootstrapped, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            Ok(db
                .query_opt("SELECT 1 FROM meta WHERE name = $1", &[&ADMIN_BOOTSTRAPPED])
                .await?
                .is_some())
        })
    }
}

impl Handler<BootstrapAdmin> for PgUsers {
    type Result = ResponseFuture<Result<Option<User>, UserError>>;
    fn handle(&mut self, msg: BootstrapAdmin, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut db = client(&pool).await?;
            let tx = db.transaction().await.map_err(StoreError::from)?;
            // Nodes starting together: the second waits on this row's key until the
            // first commits, then inserts nothing and leaves the admin to it.
            let first = tx
                .execute(
                    "INSERT INTO meta VALUES ($1, '\\x01') ON CONFLICT (name) DO NOTHING",
                    &[&ADMIN_BOOTSTRAPPED],
                )
                .await
                .map_err(StoreError::from)?;
            if first == 0 {
                return Ok(None);
            }
            let user = create(&*tx, msg.user).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(Some(user))
        })
    }
}

/// A family id as stored.
fn family_bytes(family: u128) -> Vec<u8> {
    family.to_be_bytes().to_vec()
}

fn family_of(raw: &[u8]) -> Result<u128, StoreError> {
    let bytes: [u8; 16] = raw
        .try_into()
        .map_err(|_| StoreError::Corrupt("a stored token family is not 16 bytes".into()))?;
    Ok(u128::from_be_bytes(bytes))
}

impl Handler<StoreRefreshToken> for PgUsers {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: StoreRefreshToken, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            db.execute(
                "INSERT INTO refresh_tokens (digest, user_id, family, expires_ms, rotated) \
                 VALUES ($1, $2, $3, $4, false)",
                &[
                    &msg.digest.as_slice(),
                    &int(msg.user.0)?,
                    &family_bytes(msg.family),
                    &msg.expires_at.millis(),
                ],
            )
            .await?;
            Ok(())
        })
    }
}

/// Revokes a family (idempotently) for as long as any of its tokens could live.
async fn revoke(
    tx: &tokio_postgres::Transaction<'_>,
    family: u128,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO revoked_families VALUES ($1, $2) ON CONFLICT (family) DO NOTHING",
        &[
            &family_bytes(family),
            &now.plus_secs(REFRESH_TTL_SECS_MAX).millis(),
        ],
    )
    .await?;
    Ok(())
}

impl Handler<RotateRefreshToken> for PgUsers {
    type Result = ResponseFuture<Result<User, RefreshError>>;
    fn handle(&mut self, msg: RotateRefreshToken, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let now = Timestamp::now();
            let mut db = client(&pool).await?;
            let tx = db.transaction().await.map_err(StoreError::from)?;
            // The presented token (locked), its family's revocation and its owner:
            // every row the rotation rule reads.
            let found = tx
                .query_opt(
                    "SELECT t.user_id, t.family, t.expires_ms, t.rotated, \
                     EXISTS (SELECT 1 FROM revoked_families r WHERE r.family = t.family), \
                     u.id, u.record \
                     FROM refresh_tokens t LEFT JOIN users u ON u.id = t.user_id \
                     WHERE t.digest = $1 FOR UPDATE OF t",
                    &[&msg.presented.as_slice()],
                )
                .await
                .map_err(StoreError::from)?;
            let mut staged = StagedRefresh::new(msg.presented);
            let mut owner = None;
            if let Some(r) = &found {
                staged.row = Some(crate::users::RefreshRow {
                    user: UserId(uint(r.get(0))?),
                    family: family_of(r.get(1))?,
                    expires_at: Timestamp(r.get(2)),
                    rotated: r.get(3),
                });
                staged.revoked = r.get(4);
                if let (Some(id), Some(record)) =
                    (r.get::<_, Option<i64>>(5), r.get::<_, Option<&[u8]>>(6))
                {
                    owner = Some(user_of(id, record)?.0);
                }
            }
            let verdict = rotate(&mut staged, &msg, now, |_| Ok(owner.is_some()))?;
            staged.write(&tx, now).await?;
            tx.commit().await.map_err(StoreError::from)?;
            verdict?;
            Ok(owner.expect("a rotation is answered only for an owner that exists"))
        })
    }
}

/// The refresh-token rows one rotation read, and what the rule wrote to them.
struct StagedRefresh {
    presented: [u8; 32],
    row: Option<crate::users::RefreshRow>,
    revoked: bool,
    written: Vec<([u8; 32], crate::users::RefreshRow)>,
    revoked_now: Option<u128>,
}

impl StagedRefresh {
    fn new(presented: [u8; 32]) -> Self {
        Self {
            presented,
            row: None,
            revoked: false,
            written: Vec::new(),
            revoked_now: None,
        }
    }

    /// Sends back what the rule wrote: the presented token spent, its successor
    /// added, a family revoked.
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for (digest, row) in &self.written {
            if *digest == self.presented {
                tx.execute(
                    "UPDATE refresh_tokens SET rotated = $2 WHERE digest = $1",
                    &[&digest.as_slice(), &row.rotated],
                )
                .await?;
            } else {
                tx.execute(
                    "INSERT INTO refresh_tokens (digest, user_id, family, expires_ms, rotated) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &digest.as_slice(),
                        &int(row.user.0)?,
                        &family_bytes(row.family),
                        &row.expires_at.millis(),
                        &row.rotated,
                    ],
                )
                .await?;
            }
        }
        if let Some(family) = self.revoked_now {
            revoke(tx, family, now).await?;
        }
        Ok(())
    }
}

impl RefreshRows for StagedRefresh {
    fn token(&self, digest: &[u8; 32]) -> Result<Option<crate::users::RefreshRow>, StoreError> {
        if let Some((_, row)) = self.written.iter().rev().find(|(d, _)| d == digest) {
            return Ok(Some(row.clone()));
        }
        if *digest == self.presented {
            return Ok(self.row.clone());
        }
        Err(StoreError::Corrupt(
            "a rotation read a refresh token it had not locked".into(),
        ))
    }
    fn is_revoked(&self, family: u128) -> Result<bool, StoreError> {
        let read = self.row.as_ref().is_some_and(|r| r.family == family) && self.revoked;
        Ok(read || self.revoked_now == Some(family))
    }
    fn put_token(
        &mut self,
        digest: &[u8; 32],
        row: &crate::users::RefreshRow,
    ) -> Result<(), StoreError> {
        self.written.push((*digest, row.clone()));
        Ok(())
    }
    fn revoke_family(&mut self, family: u128, _: Timestamp) -> Result<(), StoreError> {
        self.revoked_now = Some(family);
        Ok(())
    }
}

impl Handler<RevokeRefreshToken> for PgUsers {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: RevokeRefreshToken, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut db = client(&pool).await?;
            let tx = db.transaction().await?;
            let family = tx
                .query_opt(
                    "SELECT family FROM refresh_tokens WHERE digest = $1",
                    &[&msg.presented.as_slice()],
                )
                .await?;
            if let Some(r) = family {
                revoke(&tx, family_of(r.get(0))?, Timestamp::now()).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

super::ping_and_stop!(PgUsers);
