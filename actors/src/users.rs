//! The user store: accounts and refresh tokens.
//!
//! Passwords arrive here already hashed (argon2id, on the web layer's blocking pool)
//! so this actor never burns CPU on them. Refresh tokens arrive as SHA-256 digests;
//! the tokens themselves exist only in the client's hands.
//!
//! Refresh tokens rotate: using one marks it spent and issues the next in the same
//! family. Presenting a spent token again means it was copied, so the whole family
//! is revoked and the thief and the victim both have to log in again.

use actix::{Actor, Context, Handler, Message};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::domain::{Email, Role, Timestamp, UserId, Username};
use crate::store::tables::{
    META, REFRESH_TOKENS, REVOKED_FAMILIES, USER_EMAILS, USER_NAMES, USERS, counter,
};
use crate::store::{Record, Store, StoreError, codec, get_record};

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
    fn from_row(id: UserId, row: &UserRow) -> Self {
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
#[non_exhaustive]
pub enum UserError {
    #[error("username is taken")]
    UsernameTaken,
    #[error("email is taken")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    #[error("refresh token is unknown, expired or revoked")]
    Invalid,
    #[error("refresh token was already used; its family is revoked")]
    Reused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::store::lift_redb_errors!(UserError, RefreshError);

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
    let row = UserRow {
        username: msg.username,
        email: msg.email,
        role: msg.role,
        password_hash: msg.password_hash,
        created_at: Timestamp::now(),
    };
    txn.open_table(USERS)?
        .insert(id.0, codec::encode(&row).as_slice())?;
    names.insert(name_key.as_str(), id.0)?;
    emails.insert(email_key.as_str(), id.0)?;
    Ok(User::from_row(id, &row))
}

/// Look a user up by username or email for a login; returns the stored hash.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<(User, String)>, StoreError>")]
pub struct FindCredentials {
    /// A username, or an email address (anything containing `@`).
    pub login: String,
}

impl Handler<FindCredentials> for UserStore {
    type Result = Result<Option<(User, String)>, StoreError>;
    fn handle(&mut self, msg: FindCredentials, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read()?;
        let folded = msg.login.to_ascii_lowercase();
        let index = if folded.contains('@') {
            USER_EMAILS
        } else {
            USER_NAMES
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

const ADMIN_BOOTSTRAPPED: &str = "admin_bootstrapped";

impl Handler<AdminBootstrapped> for UserStore {
    type Result = Result<bool, StoreError>;
    fn handle(&mut self, _: AdminBootstrapped, _: &mut Self::Context) -> Self::Result {
        let txn = self.store.db().begin_read()?;
        Ok(txn.open_table(META)?.get(ADMIN_BOOTSTRAPPED)?.is_some())
    }
}

/// Create the first-start admin and remember that it was done, in one transaction.
#[derive(Debug, Message)]
#[rtype(result = "Result<User, UserError>")]
pub struct BootstrapAdmin {
    /// The admin account to create.
    pub user: CreateUser,
}

impl Handler<BootstrapAdmin> for UserStore {
    type Result = Result<User, UserError>;
    fn handle(&mut self, msg: BootstrapAdmin, _: &mut Self::Context) -> Self::Result {
        self.write(|txn| {
            let user = create_user(txn, msg.user)?;
            txn.open_table(META)?.insert(ADMIN_BOOTSTRAPPED, 1)?;
            Ok(user)
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
            txn.open_table(REFRESH_TOKENS)?
                .insert(&msg.digest, codec::encode(&row).as_slice())?;
            Ok::<_, StoreError>(())
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
            let mut tokens = txn.open_table(REFRESH_TOKENS)?;
            let mut revoked = txn.open_table(REVOKED_FAMILIES)?;
            let Some(mut row) = get_record::<&[u8; 32], RefreshRow>(&tokens, &msg.presented)?
            else {
                return Ok(Err(RefreshError::Invalid));
            };
            if revoked.get(row.family)?.is_some() {
                return Ok(Err(RefreshError::Invalid));
            }
            if row.rotated {
                revoked.insert(row.family, 1)?;
                return Ok(Err(RefreshError::Reused));
            }
            if row.expires_at <= Timestamp::now() {
                return Ok(Err(RefreshError::Invalid));
            }
            let user_row: Option<UserRow> = get_record(&txn.open_table(USERS)?, row.user.0)?;
            let Some(user_row) = user_row else {
                return Ok(Err(RefreshError::Invalid));
            };
            row.rotated = true;
            tokens.insert(&msg.presented, codec::encode(&row).as_slice())?;
            let next = RefreshRow {
                user: row.user,
                family: row.family,
                expires_at: msg.expires_at,
                rotated: false,
            };
            tokens.insert(&msg.successor, codec::encode(&next).as_slice())?;
            Ok(Ok(User::from_row(row.user, &user_row)))
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
            let tokens = txn.open_table(REFRESH_TOKENS)?;
            let row: Option<RefreshRow> = get_record(&tokens, &msg.presented)?;
            if let Some(row) = row {
                txn.open_table(REVOKED_FAMILIES)?.insert(row.family, 1)?;
            }
            Ok::<_, StoreError>(())
        })
    }
}

impl Handler<crate::catalog::Ping> for UserStore {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: crate::catalog::Ping, _: &mut Self::Context) -> Self::Result {
        self.store.check_readable()
    }
}

impl Handler<crate::catalog::Stop> for UserStore {
    type Result = ();
    fn handle(&mut self, _: crate::catalog::Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}
