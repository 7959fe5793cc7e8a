//! Register, log in, refresh, log out, and "who am I".

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::json;
use super::routes::Routes;
use super::strict::{StrictJson, required};
use crate::auth::throttle::Account;
use crate::auth::{Authenticated, password};
use crate::error::ApiError;
use crate::state::AppState;
use orderflow_actors::domain::{Email, Password, Role, Timestamp, Username};
use orderflow_actors::limits::{EMAIL_BYTES_MAX, PASSWORD_CHARS_MAX};
use orderflow_actors::users::{
    CheckAvailable, CreateUser, FindCredentials, GetUser, RevokeRefreshToken, RotateRefreshToken,
    StoreRefreshToken, User,
};

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, login, refresh, logout, me))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/auth/register", |m| m.post(register));
    r.add("/auth/login", |m| m.post(login));
    r.add("/auth/refresh", |m| m.post(refresh));
    r.add("/auth/logout", |m| m.post(logout));
    r.add("/me", |m| m.get(me));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// 3–32 of `A-Z a-z 0-9 _ . -`; unique without regard to case.
    #[schema(
        required = true,
        nullable = false,
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.-]+$"
    )]
    username: Option<String>,
    /// Unique without regard to case.
    #[schema(
        required = true,
        nullable = false,
        format = "email",
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+([.][A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    )]
    email: Option<String>,
    #[schema(required = true, nullable = false, min_length = 8, max_length = 128)]
    password: Option<String>,
}

#[utoipa::path(post, operation_id = "auth_register", summary = "Register a customer account", path = "/api/v1/auth/register", tag = "auth", security(), request_body = RegisterBody,
    responses((status = 201, description = "Registered as a customer", body = json::UserJson),
        (status = 409, description = "Username or email taken", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 429, description = "Too many registrations from this client", content_type = "application/problem+json", body = crate::error::Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        crate::error::responses::Invalid, crate::error::responses::Unavailable))]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let username = required(
        "username",
        body.username.as_deref(),
        Username::parse,
        &mut errors,
    );
    let email = required("email", body.email.as_deref(), Email::parse, &mut errors);
    let password = required(
        "password",
        body.password.as_deref(),
        Password::parse,
        &mut errors,
    );
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(ApiError::validation(errors));
    };
    state
        .register_throttle
        .take(client_of(&req), Instant::now())
        .map_err(ApiError::too_many_requests)?;
    // A taken name or email is refused before any hash is spent on it; the write
    // below checks again, and decides.
    state
        .users
        .ask(CheckAvailable {
            username: username.clone(),
            email: email.clone(),
        })
        .await??;
    let password_hash = password::hash_for_registration(password).await?;
    let user = state
        .users
        .ask(CreateUser {
            username,
            email,
            password_hash,
            role: Role::Customer,
        })
        .await??;
    tracing::info!(request_id = %crate::error::RequestId, user = user.id.0, "user registered");
    Ok(HttpResponse::Created().json(json::user(&user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// A username or an email address.
    #[schema(required = true, nullable = false)]
    username: Option<String>,
    #[schema(required = true, nullable = false)]
    password: Option<String>,
}

#[utoipa::path(post, operation_id = "auth_login", summary = "Log in", path = "/api/v1/auth/login", tag = "auth", security(), request_body = LoginBody,
    responses((status = 200, description = "Tokens", body = json::TokenPair),
        (status = 401, description = "Wrong username or password (the same answer for both)", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 429, description = "Too many failed logins from this client", content_type = "application/problem+json", body = crate::error::Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        crate::error::responses::Invalid, crate::error::responses::Unavailable))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let login = required(
        "username",
        body.username.as_deref(),
        |s| Ok::<_, String>(s.to_owned()),
        &mut errors,
    );
    let secret = required(
        "password",
        body.password.as_deref(),
        |s| Ok::<_, String>(s.to_owned()),
        &mut errors,
    );
    let (Some(login), Some(secret)) = (login, secret) else {
        return Err(ApiError::validation(errors));
    };
    let client = client_of(&req);
    // An over-long password cannot match and is not worth hashing.
    let plausible = secret.chars().count() <= PASSWORD_CHARS_MAX && login.len() <= EMAIL_BYTES_MAX;
    let found = if plausible {
        state
            .users
            .ask(FindCredentials {
                login: login.clone(),
            })
            .await??
    } else {
        None
    };
    let account = match &found {
        Some((user, _)) => Account::User(user.id),
        None => Account::Unknown(login.to_lowercase()),
    };
    // The attempt is counted before its hash runs (against the account; in
    // flight for the client): concurrent guesses at an account cannot overshoot
    // its limit, and a throttled one never reaches argon2.
    let attempt = state
        .throttle
        .reserve(client, account, Instant::now())
        .map_err(ApiError::too_many_requests)?;
    let (user, stored) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let verified = match password::verify(secret, stored).await {
        Ok(v) => v,
        Err(e) => {
            attempt.not_attempted(Instant::now());
            return Err(e);
        }
    };
    if !verified {
        // Dropped unreported, the attempt stands as a failure.
        return Err(ApiError::invalid_credentials());
    }
    let user = user.expect("verify succeeds only with a stored hash");
    attempt.succeeded(Instant::now());
    let refresh_token = new_refresh_token();
    let expires_at = Timestamp::now().plus_secs(state.refresh_ttl_secs);
    state
        .users
        .ask(StoreRefreshToken {
            digest: digest(&refresh_token),
            user: user.id,
            family: rand::random(),
            expires_at,
        })
        .await??;
    Ok(HttpResponse::Ok().json(token_pair(&state, &user, refresh_token)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    #[schema(required = true, nullable = false)]
    refresh_token: Option<String>,
}

fn presented(body: RefreshBody) -> Result<String, ApiError> {
    body.refresh_token
        .ok_or_else(|| ApiError::field("refresh_token", "is required"))
}

#[utoipa::path(post, operation_id = "auth_refresh", summary = "Exchange a refresh token for new tokens", path = "/api/v1/auth/refresh", tag = "auth", security(), request_body = RefreshBody,
    responses((status = 200, description = "New tokens; the presented refresh token stops working", body = json::TokenPair),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token (reuse revokes its family)", content_type = "application/problem+json", body = crate::error::Problem),
        crate::error::responses::Invalid, crate::error::responses::Unavailable))]
pub async fn refresh(
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let presented = presented(body)?;
    let successor = new_refresh_token();
    let user = state
        .users
        .ask(RotateRefreshToken {
            presented: digest(&presented),
            successor: digest(&successor),
            expires_at: Timestamp::now().plus_secs(state.refresh_ttl_secs),
        })
        .await??;
    Ok(HttpResponse::Ok().json(token_pair(&state, &user, successor)))
}

#[utoipa::path(post, operation_id = "auth_logout", summary = "Log out (revoke the refresh token's family)", path = "/api/v1/auth/logout", tag = "auth", security(), request_body = RefreshBody,
    responses((status = 204, description = "The refresh token's family is revoked"), crate::error::responses::Invalid, crate::error::responses::Unavailable))]
pub async fn logout(
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let presented = presented(body)?;
    state
        .users
        .ask(RevokeRefreshToken {
            presented: digest(&presented),
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, operation_id = "auth_me", summary = "Get the calling account", path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = json::UserJson), crate::error::responses::NeedsToken, crate::error::responses::Unavailable))]
pub async fn me(who: Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let user = state
        .users
        .ask(GetUser { id: who.user })
        .await??
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    Ok(HttpResponse::Ok().json(json::user(&user)))
}

fn token_pair(state: &AppState, user: &User, refresh_token: String) -> json::TokenPair {
    json::TokenPair {
        access_token: state.jwt.issue(user.id, user.role),
        token_type: "Bearer",
        expires_in: state.jwt.ttl_secs(),
        refresh_token,
    }
}

/// The client's address, for throttling.
fn client_of(req: &HttpRequest) -> std::net::IpAddr {
    req.peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

/// 256 random bits; only its SHA-256 is stored.
fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
