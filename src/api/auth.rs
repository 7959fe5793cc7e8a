//! Register, log in, refresh, log out, and "who am I".

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::extract::StrictJson;
use super::{json, method_not_allowed};
use crate::auth::{Authenticated, password};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::domain::{Email, Password, Role, Timestamp, Username};
use orderflow_actors::limits::PASSWORD_CHARS_MAX;
use orderflow_actors::users::{
    CreateUser, FindCredentials, GetUser, RevokeRefreshToken, RotateRefreshToken,
    StoreRefreshToken, User,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/auth/register")
            .route(web::post().to(register))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/auth/login")
            .route(web::post().to(login))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/auth/refresh")
            .route(web::post().to(refresh))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/auth/logout")
            .route(web::post().to(logout))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/me")
            .route(web::get().to(me))
            .default_service(method_not_allowed()),
    );
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

/// Collects a required field's parse result into `errors`.
pub(crate) fn required<T, E: std::fmt::Display>(
    field: &str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match raw {
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(raw) => parse(raw)
            .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
            .ok(),
    }
}

async fn register(
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
    let password_hash = password::hash(password).await?;
    let user = state
        .users
        .ask(CreateUser {
            username,
            email,
            password_hash,
            role: Role::Customer,
        })
        .await??;
    tracing::info!(user = user.id.0, "user registered");
    Ok(HttpResponse::Created().json(json::user(&user)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: Option<String>,
    password: Option<String>,
}

async fn login(
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
    let client = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or([0, 0, 0, 0].into());
    state
        .throttle
        .check(client, Instant::now())
        .map_err(ApiError::too_many_requests)?;

    // An over-long password cannot match and is not worth hashing.
    let found = if secret.chars().count() <= PASSWORD_CHARS_MAX && login.len() <= 254 {
        state.users.ask(FindCredentials { login }).await??
    } else {
        None
    };
    let (user, stored) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    if !password::verify(secret, stored).await? {
        state.throttle.failed(client, Instant::now());
        return Err(ApiError::invalid_credentials());
    }
    let user = user.expect("verify succeeds only with a stored hash");
    state.throttle.succeeded(client);
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: Option<String>,
}

fn presented(body: RefreshBody) -> Result<String, ApiError> {
    body.refresh_token
        .ok_or_else(|| ApiError::field("refresh_token", "is required"))
}

async fn refresh(
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

async fn logout(
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

async fn me(who: Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let user = state
        .users
        .ask(GetUser { id: who.user })
        .await??
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    Ok(HttpResponse::Ok().json(json::user(&user)))
}

fn token_pair(state: &AppState, user: &User, refresh_token: String) -> serde_json::Value {
    json!({
        "access_token": state.jwt.issue(user.id, user.role),
        "token_type": "Bearer",
        "expires_in": state.jwt.ttl_secs(),
        "refresh_token": refresh_token,
    })
}

/// 256 random bits; only its SHA-256 is stored.
fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
