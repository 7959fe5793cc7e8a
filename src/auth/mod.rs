//! Authentication: who is calling, and may they.
//!
//! [`Authenticated`] and [`Admin`] are extractors: a handler that lists one of them
//! first cannot run for a caller without a valid bearer token (401) or, for
//! [`Admin`], without the admin role (403), and it checks this before the body is
//! even read.

pub mod jwt;
pub mod password;
pub mod throttle;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::error::ApiError;
use crate::state::AppState;
use orderflow_actors::domain::{Role, UserId};
use orderflow_actors::ledger::book::Caller;

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

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be 'Bearer <token>'")
        })?;
    let identity = state
        .jwt
        .verify(token)
        .ok_or_else(|| ApiError::unauthorized("the access token is invalid or expired"))?;
    Ok(Authenticated {
        user: identity.user,
        role: identity.role,
    })
}

/// A caller with a valid access token and the admin role.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Authenticated);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|who| {
            if who.role == Role::Admin {
                Ok(Admin(who))
            } else {
                Err(ApiError::forbidden())
            }
        }))
    }
}
