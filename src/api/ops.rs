//! Operations: liveness, readiness, metrics, the API's documentation page.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::routes::Routes;
use crate::error::ApiError;
use crate::metrics::ActorLabels;
use crate::state::AppState;
use orderflow_actors::mailbox::Ping;

/// How long `/readyz` waits for each actor.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics, docs, openapi))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/healthz", |m| m.get(healthz));
    r.add("/readyz", |m| m.get(readyz));
    r.add("/metrics", |m| m.get(metrics));
    r.add("/openapi.json", |m| m.get(openapi));
    r.add("/docs", |m| m.get(docs));
}

/// The documentation page: one self-contained file that renders `/openapi.json` in
/// the browser, so it works offline (no CDN, no assets built in).
const DOCS_HTML: &str = include_str!("docs.html");

/// The policy keeps the page to itself: its own inline script and style, and
/// requests to this origin only.
const DOCS_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'";

/// Human-readable API reference rendered from `/openapi.json`.
#[utoipa::path(get, operation_id = "ops_docs", path = "/docs", tag = "operations", security(),
    responses((status = 200, description = "HTML page rendering this document, without external assets", content_type = "text/html", body = String)))]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", DOCS_CSP))
        .body(DOCS_HTML)
}

#[utoipa::path(get, operation_id = "ops_healthz", summary = "Liveness", path = "/healthz", tag = "operations", security(),
    responses((status = 200, description = "The process is alive", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when every actor answers in time and the database reads.
#[utoipa::path(get, operation_id = "ops_readyz", path = "/readyz", tag = "operations", security(),
    responses((status = 200, description = "The database reads and every actor answers", body = Object),
        (status = 503, description = "Not ready; `checks` says what failed", content_type = "application/problem+json", body = crate::error::Problem)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The inbox is ready when its watcher answers and its job runner runs.
    let inbox = async {
        let answer = tokio::time::timeout(READY_TIMEOUT, state.inbox.ask(Ping)).await;
        matches!(answer, Ok(Ok(Ok(())))) && state.inbox_runner.get()
    };
    let (catalog, users, ledger, inbox) = tokio::join!(
        tokio::time::timeout(READY_TIMEOUT, state.catalog.ask(Ping)),
        tokio::time::timeout(READY_TIMEOUT, state.users.ask(Ping)),
        tokio::time::timeout(READY_TIMEOUT, state.ledger.ask(Ping)),
        inbox,
    );
    let ok = |r: Result<Result<Result<(), _>, _>, _>| matches!(r, Ok(Ok(Ok(()))));
    let checks =
        json!({"catalog": ok(catalog), "users": ok(users), "ledger": ok(ledger), "inbox": inbox});
    if checks
        .as_object()
        .is_some_and(|c| c.values().all(|v| v == true))
    {
        Ok(HttpResponse::Ok().json(json!({"status": "ready", "checks": checks})))
    } else {
        Err(ApiError::unavailable("not ready").with_checks(checks))
    }
}

#[utoipa::path(get, operation_id = "ops_metrics", summary = "Metrics (OpenMetrics)", path = "/metrics", tag = "operations", security(),
    responses((status = 200, description = "Prometheus / OpenMetrics text", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics;
    for (actor, depth) in [
        ("catalog", state.catalog.depth()),
        ("users", state.users.depth()),
        ("ledger", state.ledger.depth()),
        ("inbox", state.inbox.depth()),
    ] {
        m.mailbox_depth
            .get_or_create(&ActorLabels { actor })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.encode())
}

/// This document.
#[utoipa::path(get, operation_id = "ops_openapi", path = "/openapi.json", tag = "operations", security(),
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json", body = Object)))]
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi)
}
