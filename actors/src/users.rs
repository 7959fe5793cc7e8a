//! The user store: accounts and refresh tokens.
//!
//! Passwords arrive here already hashed (argon2id, on the web layer's blocking pool)
//! so this actor never burns CPU on them. Refresh tokens arrive as SHA-256 digests;
//! the tokens themselves exist only in the client's hands.
//!
//! Refresh tokens rotate: using one marks it spent and issues the next in the same
//! family. Presenting a spent token again means it was copied, so the whole family
//! is revoked and the thief and the victim both have to log in again.
//!
//! Nothing here grows without bound: expired tokens and families that no live token
//! can belong to any more are purged every [`PURGE_INTERVAL_SECS`], oldest
//! first, at most [`PURGE_BATCH_MAX`] at a time.
//!
//! Why one file: accounts and refresh tokens share one actor and one transaction per
//! message; about 100 of its lines are unit tests.

use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::common::{Record, StoreError, codec};
use crate::domain::{Email, Role, Timestamp, UserId, Username};
use crate::limits::{PURGE_BATCH_MAX, PURGE_INTERVAL_SECS, REFRESH_TTL_SECS_MAX};
use crate::store::tables::{
    META, REFRESH_EXPIRY, REFRESH_TOKENS, REVOKED_FAMILIES, REVOKED_FAMILY_EXPIRY, USER_EMAILS,
    USER_NAMES, USERS, counter,
};
use crate::store::{Store, get_record};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub username: Username,
    pub email: Email,
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: Timestamp,
}

impl Record for UserRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "user";
}

/// A user as shown: never with the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub role: Role,
    pub created_at: Timestamp,
}

impl User {
    pub(crate) fn from_row(id: UserId, row: &UserRow) -> Self {
        Self {
            id,
            username: row.username.clone(),
            email: row.email.clone(),
            role: row.role,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRow {
    pub user: UserId,
    pub family: u128,
    pub expires_at: Timestamp,
    /// Spent by a rotation; presenting it again revokes the family.
    pub rotated: bool,
}

impl Record for RefreshRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "refresh_token";
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("username is taken")]
    UsernameTaken,
    #[error("email is taken")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("refresh token is unknown, expired or revoked")]
    Invalid,
    #[error("refresh token was already used; its family is revoked")]
    Reused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::common::lift_redb_errors!(UserError, RefreshError);

pub struct UserStore {
    store: Store,
}

impl UserStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn write<T, E: From<StoreError> + From<redb::TableError>>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.store.db().begin_write().map_err(StoreError::from)?;
        let out = f(&txn)?;
        txn.commit().map_err(StoreError::from)?;
        Ok(out)
    }
}

impl Actor for UserStore {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(Duration::from_secs(PURGE_INTERVAL_SECS), |act, _| {
            let purged =
                act.write(|txn| RefreshTables::open(txn)?.purge(Timestamp::now(), PURGE_BATCH_MAX));
            match purged {
                Ok(p) if p.tokens + p.families > 0 => {
                    tracing::info!(
                        tokens = p.tokens,
                        families = p.families,
                        "refresh tokens purged"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "refresh-token purge failed"),
            }
        });
    }
}

/// What a presented refresh token's row means at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// It may be rotated.
    Valid(RefreshRow),
    /// Unknown, expired, or of a revoked family.
    Invalid,
    /// Spent already and still unexpired: a copy is in use, and this family must
    /// be revoked (durably, even though the request is refused).
    Reused(u128),
}

/// The rotation rule, for both backends. Unknown, revoked and expired tokens are
/// invalid (spent or not: once expired, a token means nothing, and the purge may
/// already have removed it); a spent but unexpired one means a copy is in use.
pub fn judge(row: Option<RefreshRow>, family_revoked: bool, now: Timestamp) -> Judged {
    let Some(row) = row else {
        return Judged::Invalid;
    };
    if family_revoked || row.expires_at <= now {
        Judged::Invalid
    } else if row.rotated {
        Judged::Reused(row.family)
    } else {
        Judged::Valid(row)
    }
}

/// The refresh-token tables of one write transaction, kept in step with their
/// expiry indexes.
pub struct RefreshTables<'txn> {
    tokens: Table<'txn, &'static [u8; 32], &'static [u8]>,
    expiry: Table<'txn, (i64, &'static [u8; 32]), ()>,
    revoked: Table<'txn, u128, u8>,
    revoked_expiry: Table<'txn, (i64, u128), ()>,
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    pub tokens: usize,
    pub families: usize,
}

/// The refresh-token rows the rotation rules read and write, on either backend:
/// redb's [`RefreshTables`], or the rows a PostgreSQL transaction read and
/// locked (`crate::pg::users`).
pub trait RefreshRows {
    fn token(&self, digest: &[u8; 32]) -> Result<Option<RefreshRow>, StoreError>;
    fn is_revoked(&self, family: u128) -> Result<bool, StoreError>;
    /// Stores (or rewrites) a token.
    fn put_token(&mut self, digest: &[u8; 32], row: &RefreshRow) -> Result<(), StoreError>;
    /// Revokes a family for as long as any of its tokens could live.
    fn revoke_family(&mut self, family: u128, now: Timestamp) -> Result<(), StoreError>;
}

impl RefreshRows for RefreshTables<'_> {
    fn token(&self, digest: &[u8; 32]) -> Result<Option<RefreshRow>, StoreError> {
        self.get(digest)
    }
    fn is_revoked(&self, family: u128) -> Result<bool, StoreError> {
        RefreshTables::is_revoked(self, family)
    }
    fn put_token(&mut self, digest: &[u8; 32], row: &RefreshRow) -> Result<(), StoreError> {
        self.put(digest, row)
    }
    fn revoke_family(&mut self, family: u128, now: Timestamp) -> Result<(), StoreError> {
        self.revoke(family, now)
    }
}

/// Whether `presented` may be rotated at `now` ([`judge`]): its row if so. A
/// reused token's family is revoked here, and the caller must commit that even
/// though it refuses the request.
pub fn judge_presented(
    rows: &mut impl RefreshRows,
    presented: &[u8; 32],
    now: Timestamp,
) -> Result<Result<RefreshRow, RefreshError>, StoreError> {
    let row = rows.token(presented)?;
    let revoked = match &row {
        Some(r) => rows.is_revoked(r.family)?,
        None => false,
    };
    Ok(match judge(row, revoked, now) {
        Judged::Valid(row) => Ok(row),
        Judged::Invalid => Err(RefreshError::Invalid),
        Judged::Reused(family) => {
            rows.revoke_family(family, now)?;
            Err(RefreshError::Reused)
        }
    })
}

/// Rotation, for both backends: the presented token is judged
/// ([`judge_presented`]); a valid one whose owner still exists is spent and
/// `successor` joins its family. Answers the owner. Whatever it wrote, a
/// refusal included (a reuse revokes the family), must be committed.
pub fn rotate(
    rows: &mut impl RefreshRows,
    msg: &RotateRefreshToken,
    now: Timestamp,
    owner_exists: impl FnOnce(UserId) -> Result<bool, StoreError>,
) -> Result<Result<UserId, RefreshError>, StoreError> {
    let mut row = match judge_presented(rows, &msg.presented, now)? {
        Ok(row) => row,
        Err(refused) => return Ok(Err(refused)),
    };
    if !owner_exists(row.user)? {
        return Ok(Err(RefreshError::Invalid));
    }
    row.rotated = true;
    rows.put_token(&msg.presented, &row)?;
    let next = RefreshRow {
        user: row.user,
        family: row.family,
        expires_at: msg.expires_at,
        rotated: false,
    };
    rows.put_token(&msg.successor, &next)?;
    Ok(Ok(row.user))
}

impl<'txn> RefreshTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            tokens: txn.open_table(REFRESH_TOKENS)?,
            expiry: txn.open_table(REFRESH_EXPIRY)?,
            revoked: txn.open_table(REVOKED_FAMILIES)?,
            revoked_expiry: txn.open_table(REVOKED_FAMILY_EXPIRY)?,
        })
    }

    pub fn get(&self, digest: &[u8; 32]) -> Result<Option<RefreshRow>, StoreError> {
        get_record::<&[u8; 32], RefreshRow>(&self.tokens, digest)
    }

    /// Stores (or rewrites) a token; its expiry never changes once stored.
    pub fn put(&mut self, digest: &[u8; 32], row: &RefreshRow) -> Result<(), StoreError> {
        self.tokens.insert(digest, codec::encode(row).as_slice())?;
        self.expiry.insert((row.expires_at.millis(), digest), ())?;
        Ok(())
    }

    pub fn is_revoked(&self, family: u128) -> Result<bool, StoreError> {
        Ok(self.revoked.get(family)?.is_some())
    }

    /// [`judge_presented`] on these tables.
    pub fn judge(
        &mut self,
        presented: &[u8; 32],
        now: Timestamp,
    ) -> Result<Result<RefreshRow, RefreshError>, StoreError> {
        judge_presented(self, presented, now)
    }

    /// Revokes a family and remembers it for [`REFRESH_TTL_SECS_MAX`]: no token of
    /// it, issued before `now` under any allowed lifetime, can outlive that.
    pub fn revoke(&mut self, family: u128, now: Timestamp) -> Result<(), StoreError> {
        if self.revoked.insert(family, 1)?.is_none() {
            let forget = now.plus_secs(REFRESH_TTL_SECS_MAX).millis();
            self.revoked_expiry.insert((forget, family), ())?;
        }
        Ok(())
    }

    /// Removes tokens that expired before `now` and revoked families whose time is
    /// up, at most `max` of each, oldest first.
    pub fn purge(&mut self, now: Timestamp, max: usize) -> Result<Purged, StoreError> {
        let expired: Vec<(i64, [u8; 32])> = self
            .expiry
            .range(..(now.millis(), &[0u8; 32]))?
            .take(max)
            .map(|e| e.map(|(k, _)| (k.value().0, *k.value().1)))
            .collect::<Result<_, _>>()?;
        for (ms, digest) in &expired {
            self.expiry.remove((*ms, digest))?;
            self.tokens.remove(digest)?;
        }
        let forgotten: Vec<(i64, u128)> = self
            .revoked_expiry
            .range(..(now.millis(), 0u128))?
            .take(max)
            .map(|e| e.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for (ms, family) in &forgotten {
            self.revoked_expiry.remove((*ms, *family))?;
            self.revoked.remove(*family)?;
        }
        Ok(Purged {
            tokens: expired.len(),
            families: forgotten.len(),
        })
    }

    /// Entries in the token table.
    pub fn token_count(&self) -> Result<u64, StoreError> {
        Ok(self.tokens.len()?)
    }
}

/// Register a user (role decided by the caller, never by the request body).
#[derive(Debug, Message)]
#[rtype(result = "Result<User, UserError>")]
pub struct CreateUser {
    /// Unique without regard to case.
    pub username: Username,
    /// Unique without regard to case.
    pub email: Email,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Customer for registrations; admin only from the CLI or the bootstrap.
    pub role: Role,
}

impl CreateUser {
    /// The account as stored, created at `at`.
    pub fn row(self, at: Timestamp) -> UserRow {
        UserRow {
            username: self.username,
            email: self.email,
            role: self.role,
            password_hash: self.password_hash,
            created_at: at,
        }
    }
}

impl Handler<CreateUser> for UserStore {
    type Result = Result<User, UserError>;
    fn handle(&mut self, msg: CreateUser, _: &mut Self::Context) -> Self::Result {
        self.write(|txn| create_user(txn, msg))
    }
}

fn create_user(txn: &WriteTransaction, msg: CreateUser) -> Result<User, UserError> {
    let mut names = txn.open_table(USER_NAMES)?;
    let mut emails = txn.open_table(USER_EMAILS)?;
    let name_key = msg.username.folded();
    let email_key = msg.email.folded();
    if names.get(name_key.as_str())?.is_some() {
        return Err(UserError::UsernameTaken);
    }
    if emails.get(email_key.as_str())?.is_some() {
        return Err(UserError::EmailTaken);
    }
    let id = UserId(crate::store::next_id(txn, counter::NEXT_USER_ID)?);
    let row = msg.row(Timestamp::now());
    txn.open_table(USERS)?
        .insert(id.0, codec::encode(&row).as_slice())?;
    names.insert(name_key.as_str(), id.0)?;
    emails.insert(email_key.as_str(), id.0)?;
    Ok(User::from_row(id, &row))
}

/// Whether a username and an email are both free (case-insensitively): checked
/// before a registration spends a password hash, and again by [`CreateUser`] in
/// its write, which is what decides.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), UserError>")]
pub struct CheckAvailable {
    /// The username asked for.
    pub username: Username,
    /// The email asked for.
    pub email: Email,
}

impl Handler<CheckAvailable> for UserStore {
    type Result = Result<(), UserError>;
    fn handle(&mut self, msg: CheckAvailable, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read().map_err(StoreError::from)?;
        if txn
            .open_table(USER_NAMES)?
            .get(msg.username.folded().as_str())?
            .is_some()
        {
            return Err(UserError::UsernameTaken);
        }
        if txn
            .open_table(USER_EMAILS)?
            .get(msg.email.folded().as_str())?
            .is_some()
        {
            return Err(UserError::EmailTaken);
        }
        Ok(())
    }
}

/// Look a user up by username or email for a login; returns the stored hash.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<(User, String)>, StoreError>")]
pub struct FindCredentials {
    /// A username, or an email address (anything containing `@`).
    pub login: String,
}

/// What a login names, folded as the account indexes keep it: an email address
/// (it holds `@`) or a username. Both backends look a login up so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginKey {
    Email(String),
    Username(String),
}

impl FindCredentials {
    pub fn key(&self) -> LoginKey {
        let folded = self.login.to_ascii_lowercase();
        if folded.contains('@') {
            LoginKey::Email(folded)
        } else {
            LoginKey::Username(folded)
        }
    }
}

impl Handler<FindCredentials> for UserStore {
    type Result = Result<Option<(User, String)>, StoreError>;
    fn handle(&mut self, msg: FindCredentials, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read()?;
        let (index, folded) = match msg.key() {
            LoginKey::Email(folded) => (USER_EMAILS, folded),
            LoginKey::Username(folded) => (USER_NAMES, folded),
        };
        let Some(id) = txn
            .open_table(index)?
            .get(folded.as_str())?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let row: Option<UserRow> = get_record(&txn.open_table(USERS)?, id)?;
        Ok(row.map(|row| (User::from_row(UserId(id), &row), row.password_hash)))
    }
}

/// One user by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<User>, StoreError>")]
pub struct GetUser {
    /// The user's id.
    pub id: UserId,
}

impl Handler<GetUser> for UserStore {
    type Result = Result<Option<User>, StoreError>;
    fn handle(&mut self, msg: GetUser, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read()?;
        let row: Option<UserRow> = get_record(&txn.open_table(USERS)?, msg.id.0)?;
        Ok(row.map(|row| User::from_row(msg.id, &row)))
    }
}

/// Whether the first-start admin was already created.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, StoreError>")]
pub struct AdminBootstrapped;

pub(crate) const ADMIN_BOOTSTRAPPED: &str = "admin_bootstrapped";

impl Handler<AdminBootstrapped> for UserStore {
    type Result = Result<bool, StoreError>;
    fn handle(&mut self, _: AdminBootstrapped, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read()?;
        Ok(txn.open_table(META)?.get(ADMIN_BOOTSTRAPPED)?.is_some())
    }
}

/// Create the first-start admin and remember that it was done, in one transaction.
/// `None` when another node sharing the database did it first.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<User>, UserError>")]
pub struct BootstrapAdmin {
    /// The admin account to create.
    pub user: CreateUser,
}

impl Handler<BootstrapAdmin> for UserStore {
    type Result = Result<Option<User>, UserError>;
    fn handle(&mut self, msg: BootstrapAdmin, _: &mut Self::Context) -> Self::Result {
        self.write(|txn| {
            let user = create_user(txn, msg.user)?;
            txn.open_table(META)?.insert(ADMIN_BOOTSTRAPPED, 1)?;
            Ok(Some(user))
        })
    }
}

/// Remember a new refresh token (by digest) in a new family.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct StoreRefreshToken {
    /// SHA-256 of the token.
    pub digest: [u8; 32],
    /// Its owner.
    pub user: UserId,
    /// A random id shared by every token rotated from this login.
    pub family: u128,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl Handler<StoreRefreshToken> for UserStore {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, msg: StoreRefreshToken, _: &mut Self::Context) -> Self::Result {
        self.write(|txn| {
            let row = RefreshRow {
                user: msg.user,
                family: msg.family,
                expires_at: msg.expires_at,
                rotated: false,
            };
            RefreshTables::open(txn)?.put(&msg.digest, &row)
        })
    }
}

/// Spend a refresh token and remember its successor; answers the owner.
#[derive(Debug, Message)]
#[rtype(result = "Result<User, RefreshError>")]
pub struct RotateRefreshToken {
    /// SHA-256 of the token presented.
    pub presented: [u8; 32],
    /// SHA-256 of the token that replaces it.
    pub successor: [u8; 32],
    /// When the successor stops working.
    pub expires_at: Timestamp,
}

impl Handler<RotateRefreshToken> for UserStore {
    type Result = Result<User, RefreshError>;
    fn handle(&mut self, msg: RotateRefreshToken, _: &mut Self::Context) -> Self::Result {
        // A detected reuse must revoke the family durably *and* refuse the request,
        // so the transaction commits in both cases and the verdict is returned after.
        self.write(|txn| -> Result<Result<User, RefreshError>, RefreshError> {
            let users = txn.open_table(USERS)?;
            let mut owner: Option<UserRow> = None;
            let rotated = rotate(
                &mut RefreshTables::open(txn)?,
                &msg,
                Timestamp::now(),
                |user| {
                    owner = get_record(&users, user.0)?;
                    Ok(owner.is_some())
                },
            )?;
            Ok(rotated
                .map(|user| User::from_row(user, owner.as_ref().expect("the owner was read"))))
        })?
    }
}

/// Revoke the family of a refresh token (logout). Unknown tokens are ignored.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RevokeRefreshToken {
    /// SHA-256 of the token presented.
    pub presented: [u8; 32],
}

impl Handler<RevokeRefreshToken> for UserStore {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, msg: RevokeRefreshToken, _: &mut Self::Context) -> Self::Result {
        self.write(|txn| {
            let mut tokens = RefreshTables::open(txn)?;
            if let Some(row) = tokens.get(&msg.presented)? {
                tokens.revoke(row.family, Timestamp::now())?;
            }
            Ok::<_, StoreError>(())
        })
    }
}

impl Handler<crate::mailbox::Ping> for UserStore {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: crate::mailbox::Ping, _: &mut Self::Context) -> Self::Result {
        self.store.check_readable()
    }
}

impl Handler<crate::mailbox::Stop> for UserStore {
    type Result = ();
    fn handle(&mut self, _: crate::mailbox::Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_ms: i64, family: u128) -> RefreshRow {
        RefreshRow {
            user: UserId(1),
            family,
            expires_at: Timestamp(expires_ms),
            rotated: false,
        }
    }

    fn with_tables<T>(store: &Store, f: impl FnOnce(&mut RefreshTables<'_>) -> T) -> T {
        let txn = store.db().begin_write().unwrap();
        let out = f(&mut RefreshTables::open(&txn).unwrap());
        txn.commit().unwrap();
        out
    }

    #[test]
    fn purge_removes_expired_tokens_oldest_first_and_keeps_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        with_tables(&store, |t| {
            for (i, ms) in [1_000, 2_000, 3_000, 9_000].into_iter().enumerate() {
                t.put(&[u8::try_from(i + 1).unwrap(); 32], &token(ms, 1))
                    .unwrap();
            }
            // Spending a token rewrites it without adding a second expiry entry.
            let mut spent = t.get(&[1; 32]).unwrap().unwrap();
            spent.rotated = true;
            t.put(&[1; 32], &spent).unwrap();
        });
        let purged = with_tables(&store, |t| t.purge(Timestamp(5_000), 2).unwrap());
        assert_eq!(purged.tokens, 2, "at most `max` at a time");
        let (purged, left) = with_tables(&store, |t| {
            let p = t.purge(Timestamp(5_000), 2).unwrap();
            (p, t.token_count().unwrap())
        });
        assert_eq!(purged.tokens, 1);
        assert_eq!(left, 1);
        with_tables(&store, |t| {
            assert!(t.get(&[3; 32]).unwrap().is_none());
            assert!(t.get(&[4; 32]).unwrap().is_some(), "not expired yet");
            assert_eq!(t.purge(Timestamp(9_000), 10).unwrap().tokens, 0);
            assert_eq!(t.purge(Timestamp(9_001), 10).unwrap().tokens, 1);
            assert_eq!(t.token_count().unwrap(), 0);
        });
    }

    #[test]
    fn a_spent_token_revokes_its_family_until_it_expires_and_is_merely_invalid_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let verdict = |t: &mut RefreshTables<'_>, digest: u8, now: i64| match t
            .judge(&[digest; 32], Timestamp(now))
            .unwrap()
        {
            Ok(_) => "ok",
            Err(RefreshError::Invalid) => "invalid",
            Err(RefreshError::Reused) => "reused",
            Err(RefreshError::Store(e)) => panic!("{e}"),
        };
        with_tables(&store, |t| {
            let mut spent = token(5_000, 1);
            spent.rotated = true;
            t.put(&[1; 32], &spent).unwrap();
            t.put(&[2; 32], &token(9_000, 1)).unwrap();
            let mut spent_elsewhere = token(5_000, 2);
            spent_elsewhere.rotated = true;
            t.put(&[3; 32], &spent_elsewhere).unwrap();
            t.put(&[4; 32], &token(9_000, 2)).unwrap();

            assert_eq!(verdict(t, 9, 1_000), "invalid", "unknown");
            assert_eq!(verdict(t, 2, 1_000), "ok");
            assert_eq!(verdict(t, 2, 9_000), "invalid", "expired at its instant");
            // Family 2: its spent token comes back after it expired — refused,
            // and the live successor keeps working.
            assert_eq!(verdict(t, 3, 5_000), "invalid");
            assert_eq!(verdict(t, 4, 5_000), "ok");
            // Family 1: its spent token comes back in time — the family goes.
            assert_eq!(verdict(t, 1, 4_999), "reused");
            assert!(t.is_revoked(1).unwrap());
            assert_eq!(verdict(t, 2, 5_000), "invalid", "successor revoked too");
            assert_eq!(verdict(t, 1, 5_000), "invalid");
        });
    }

    #[test]
    fn a_revoked_family_is_remembered_for_the_longest_token_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let revoked_at = Timestamp(1_000_000);
        let forget_at = revoked_at.plus_secs(REFRESH_TTL_SECS_MAX).millis();
        with_tables(&store, |t| {
            t.revoke(7, revoked_at).unwrap();
            // Revoking again (logout after reuse) does not move or duplicate it.
            t.revoke(7, Timestamp(2_000_000)).unwrap();
        });
        with_tables(&store, |t| {
            assert_eq!(t.purge(Timestamp(forget_at), 10).unwrap().families, 0);
            assert!(t.is_revoked(7).unwrap());
            assert_eq!(t.purge(Timestamp(forget_at + 1), 10).unwrap().families, 1);
            assert!(!t.is_revoked(7).unwrap());
            assert_eq!(t.purge(Timestamp(i64::MAX), 10).unwrap(), Purged::default());
        });
    }
}
