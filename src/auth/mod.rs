//! Authentication: who is calling, and may they.
//!
//! [`Authenticated`], [`Admin`] and [`Acting`] are extractors: a handler that lists
//! one of them first cannot run for a caller without a valid bearer token (401) or,
//! for [`Admin`], without the admin role (403), and it checks this before the body
//! is even read. The bearer may be an API key (`ofk_…`) instead of an access
//! token: `Admin<S>` and `Acting<S>` name the scope `S` that lets a key in, so every
//! admin route says in its signature which scope opens it; [`Authenticated`] is for
//! users only (a key is not a customer).

pub mod jwt;
pub mod password;
pub mod throttle;

use std::future::{Ready, ready};
use std::marker::PhantomData;

use futures_util::future::{Either, LocalBoxFuture};
use sha2::Digest;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::error::ApiError;
use crate::state::AppState;
use orderflow_actors::apikeys::{AuthenticateKey, KeyHolder};
use orderflow_actors::domain::{Role, UserId};
use orderflow_actors::ledger::Caller;

/// A caller with a valid access token.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub user: UserId,
    pub role: Role,
}

impl Authenticated {
    pub fn caller(&self) -> Caller {
        Caller {
            user: self.user,
            is_admin: self.role == Role::Admin,
        }
    }
}

/// A user only: an API key is not a customer (it cannot check out, nor be "me").
impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future =
        Either<Ready<Result<Self, ApiError>>, LocalBoxFuture<'static, Result<Self, ApiError>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let is_key = bearer(req).is_ok_and(|t| t.starts_with(API_KEY_PREFIX));
        if !is_key {
            return Either::Left(ready(authenticate(req)));
        }
        // A key is looked up all the same, so an unknown one is a 401 here too.
        let req = req.clone();
        Either::Right(Box::pin(async move {
            principal(req).await?;
            Err(ApiError::forbidden_because(
                "an API key cannot act as a user; this route needs a user's access token",
            ))
        }))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let token = bearer(req)?;
    let identity = state
        .jwt
        .verify(&token)
        .ok_or_else(|| ApiError::unauthorized("the access token is invalid or expired"))?;
    Ok(Authenticated {
        user: identity.user,
        role: identity.role,
    })
}

/// The prefix of every API key: tells a key from a JWT at a glance.
pub const API_KEY_PREFIX: &str = "ofk_";

/// Who is calling: a user with an access token, or an API key.
#[derive(Debug, Clone)]
pub enum Principal {
    User(Authenticated),
    Key(KeyHolder),
}

impl Principal {
    /// The caller as the ledger sees it: a key acts with an admin's view of orders.
    pub fn caller(&self) -> Caller {
        match self {
            Principal::User(who) => who.caller(),
            Principal::Key(_) => Caller {
                user: UserId(0),
                is_admin: true,
            },
        }
    }
}

/// The bearer credential of a request.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer <token>'"))
}

/// The SHA-256 an API key is stored under.
pub fn key_hash(key: &str) -> [u8; 32] {
    sha2::Sha256::digest(key.as_bytes()).into()
}

/// Who a request comes from: an access token is checked here, an API key by the
/// key store (so a revoked key is refused from the next request on).
async fn principal(req: HttpRequest) -> Result<Principal, ApiError> {
    let token = bearer(&req)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    if token.starts_with(API_KEY_PREFIX) {
        let hash = key_hash(&token);
        return state
            .api_keys
            .ask(AuthenticateKey { hash })
            .await??
            .map(Principal::Key)
            .ok_or_else(|| ApiError::unauthorized("the API key is unknown or revoked"));
    }
    authenticate(&req).map(Principal::User)
}

/// Which API key scope opens a route; [`NoKey`] for routes no key opens.
pub mod scope {
    use orderflow_actors::domain::Scope;

    pub trait KeyScope {
        const SCOPE: Option<Scope>;
    }

    /// Admin users only: no API key opens the route.
    #[derive(Debug)]
    pub struct NoKey;
    impl KeyScope for NoKey {
        const SCOPE: Option<Scope> = None;
    }

    macro_rules! scopes {
        ($($name:ident $scope:literal),*) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl KeyScope for $name {
                const SCOPE: Option<Scope> = Some(Scope::$name);
            }
        )*};
    }
    orderflow_actors::with_scopes!(scopes);
}

use scope::{KeyScope, NoKey};

/// Refuses a key that lacks the route's scope.
fn key_allowed<S: KeyScope>(key: &KeyHolder) -> Result<(), ApiError> {
    match S::SCOPE {
        Some(needed) if key.may(needed) => Ok(()),
        Some(needed) => Err(ApiError::forbidden_because(format!(
            "this API key lacks the scope {}",
            needed.as_str()
        ))),
        None => Err(ApiError::forbidden_because(
            "API keys cannot use this route; log in as an admin",
        )),
    }
}

/// An admin user, or an API key with the scope `S` (none for [`NoKey`]).
#[derive(Debug)]
pub struct Admin<S: KeyScope = NoKey> {
    pub who: Principal,
    scope: PhantomData<S>,
}

impl<S: KeyScope> Admin<S> {
    pub fn caller(&self) -> Caller {
        self.who.caller()
    }
}

impl<S: KeyScope + 'static> FromRequest for Admin<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let who = principal(req).await?;
            match &who {
                Principal::User(u) if u.role == Role::Admin => {}
                Principal::User(_) => return Err(ApiError::forbidden()),
                Principal::Key(key) => key_allowed::<S>(key)?,
            }
            Ok(Admin {
                who,
                scope: PhantomData,
            })
        })
    }
}

/// Any user (a customer sees only their own), or an API key with the scope `S`
/// (which sees as an admin does).
#[derive(Debug)]
pub struct Acting<S: KeyScope> {
    pub who: Principal,
    scope: PhantomData<S>,
}

impl<S: KeyScope> Acting<S> {
    pub fn caller(&self) -> Caller {
        self.who.caller()
    }
}

impl<S: KeyScope + 'static> FromRequest for Acting<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let who = principal(req).await?;
            if let Principal::Key(key) = &who {
                key_allowed::<S>(key)?;
            }
            Ok(Acting {
                who,
                scope: PhantomData,
            })
        })
    }
}
