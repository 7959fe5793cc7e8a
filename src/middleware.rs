//! The one middleware every request passes: request id, access log, metrics, and the
//! problem+json safety net.
//!
//! - `X-Request-Id`: the client's if it is sane (1–128 visible ASCII characters),
//!   else a fresh random one; set on the response, repeated in problem bodies (via a
//!   task-local read by `ApiError`) and carried by the request's log line and by
//!   every line logged while it is served (`error::RequestId`, a field, not a span:
//!   without the span per request, cached GETs ran 1.04x, docs/benchmarks.md).
//! - One access-log line per request, with method, route template, status, latency.
//! - `http_requests` and `http_request_duration_seconds` by route template, so
//!   `/products/{sku}` is one series however many SKUs there are.
//! - A request line and headers larger than `HTTP_HEAD_BYTES_MAX` get 431 before
//!   any handler runs (actix itself stops reading a head at 128 KiB).
//! - Any error response that is not already problem+json (a 404 for an unknown
//!   route, a 405, anything actix produced on its own) is replaced by one.
//! - Every response says `X-Content-Type-Options: nosniff`; a response to a request
//!   that carries credentials (an `Authorization` header, or anything under
//!   `/auth/`, where passwords and refresh tokens travel and tokens come back) says
//!   `Cache-Control: no-store`, so no cache keeps tokens or a customer's orders.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::error::{ApiError, PROBLEM_CONTENT_TYPE, REQUEST_ID};
use crate::state::AppState;
use orderflow_actors::limits::{HTTP_HEAD_BYTES_MAX, REQUEST_ID_BYTES_MAX};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= REQUEST_ID_BYTES_MAX
                && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .unwrap_or_else(new_request_id)
}

/// A fresh request id: 32 hex digits. Each HTTP worker thread numbers its requests
/// and scrambles the number with two keys it drew at random once (a bijection, so
/// no two ids of one thread are equal, and ids of two threads collide with odds of
/// 2^-64). It needs no secrecy, only uniqueness: with 16 random bytes drawn from
/// `rand` for every request, `request_id_of` was 1.2 % of a cached GET's samples.
fn new_request_id() -> String {
    thread_local! {
        static IDS: std::cell::Cell<(u64, u64, u64)> =
            std::cell::Cell::new((rand::random(), rand::random(), 0));
    }
    let (k1, k2, n) = IDS.get();
    IDS.set((k1, k2, n.wrapping_add(1)));
    let id = u128::from(scramble(n ^ k1)) << 64 | u128::from(scramble(n ^ k2));
    orderflow_actors::text::hex(&id.to_be_bytes())
}

/// splitmix64's finaliser: a bijection of `u64` that spreads every input bit.
fn scramble(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether the request sends credentials or asks for tokens: its response must not
/// be stored by any cache.
fn carries_credentials(req: &ServiceRequest) -> bool {
    req.headers().contains_key(header::AUTHORIZATION) || req.path().starts_with("/api/v1/auth/")
}

/// The request line and headers, in bytes (what a client can make the server hold
/// before any handler runs).
fn head_bytes(req: &ServiceRequest) -> usize {
    let uri = req.uri().path().len() + req.uri().query().map_or(0, str::len);
    uri + req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

/// HTTP methods as static labels; anything unusual is one label, not one each.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id_of(&req);
    let started = Instant::now();
    let method = req.method().clone();
    let private = carries_credentials(&req);
    let mut res = if head_bytes(&req) > HTTP_HEAD_BYTES_MAX {
        let problem = REQUEST_ID.sync_scope(id.clone(), || {
            ApiError::head_too_large(HTTP_HEAD_BYTES_MAX).error_response()
        });
        req.into_response(problem)
    } else {
        let outcome = REQUEST_ID.scope(id.clone(), next.call(req)).await;
        // Handlers' and extractors' errors arrive as responses; an `Err` here could
        // only come from an inner middleware, and there is none.
        outcome?.map_into_boxed_body()
    };

    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes() == PROBLEM_CONTENT_TYPE.as_bytes());
    if (status.is_client_error() || status.is_server_error()) && !is_problem {
        let problem = REQUEST_ID.sync_scope(id.clone(), || {
            ApiError::from_status(status).error_response()
        });
        res = res.into_response(problem);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }

    let route = res
        .request()
        .match_name()
        .and_then(crate::api::routes::template)
        .unwrap_or("unmatched");
    let elapsed = started.elapsed();
    crate::logging::access(&crate::logging::Access {
        request_id: &id,
        method: method.as_str(),
        path: res.request().path(),
        route,
        status: status.as_u16(),
        latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    });
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        state
            .metrics
            .observe_request(method_label(&method), route, status.as_u16(), elapsed);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_request_ids_are_32_hex_digits_and_never_repeat() {
        let mut seen = std::collections::HashSet::new();
        let mine: Vec<String> = (0..20_000).map(|_| new_request_id()).collect();
        let other: Vec<String> =
            std::thread::spawn(|| (0..20_000).map(|_| new_request_id()).collect())
                .join()
                .unwrap();
        for id in mine.into_iter().chain(other) {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
            assert!(seen.insert(id.clone()), "{id} given twice");
        }
    }

    #[test]
    fn scramble_is_a_bijection_on_a_sample() {
        let outs: std::collections::HashSet<u64> = (0..100_000u64).map(scramble).collect();
        assert_eq!(outs.len(), 100_000);
        assert_ne!(scramble(1), 1);
    }
}
