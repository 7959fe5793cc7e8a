//! Operations: liveness, readiness, metrics.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::method_not_allowed;
use crate::error::ApiError;
use crate::metrics::ActorLabels;
use crate::state::AppState;
use orderflow_actors::catalog::Ping;

/// How long `/readyz` waits for each actor.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(healthz))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readyz))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .default_service(method_not_allowed()),
    );
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when every actor answers in time and the database reads.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (catalog, users, ledger) = tokio::join!(
        tokio::time::timeout(READY_TIMEOUT, state.catalog.ask(Ping)),
        tokio::time::timeout(READY_TIMEOUT, state.users.ask(Ping)),
        tokio::time::timeout(READY_TIMEOUT, state.ledger.ask(Ping)),
    );
    let ok = |r: Result<Result<Result<(), _>, _>, _>| matches!(r, Ok(Ok(Ok(()))));
    let checks = json!({"catalog": ok(catalog), "users": ok(users), "ledger": ok(ledger)});
    if checks
        .as_object()
        .is_some_and(|c| c.values().all(|v| v == true))
    {
        Ok(HttpResponse::Ok().json(json!({"status": "ready", "checks": checks})))
    } else {
        Err(ApiError::unavailable("not ready").with_extension("checks", checks))
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics;
    for (actor, depth) in [
        ("catalog", state.catalog.depth()),
        ("users", state.users.depth()),
        ("ledger", state.ledger.depth()),
    ] {
        m.mailbox_depth
            .get_or_create(&ActorLabels { actor })
            .set(depth as i64);
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.encode())
}
