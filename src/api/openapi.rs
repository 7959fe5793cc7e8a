//! `GET /openapi.json`: the OpenAPI 3 description of every route, generated from
//! the handlers' annotations. A test compares its paths with the routes the server
//! registers (both ways) and schemathesis checks live responses against it.

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use super::{auth, imports, json, ops, orders, products};
use crate::error::FieldError;

/// RFC 9457 problem details; every error response is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable and machine-readable, e.g. `/problems/insufficient-stock`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request's `X-Request-Id`.
    pub request_id: String,
    /// One entry per invalid field, query parameter or header (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// For `/problems/insufficient-stock` on checkout: each short SKU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortages: Option<Vec<Shortage>>,
    /// For `/problems/insufficient-stock` on a stock adjustment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    /// For `/problems/unavailable` on `/readyz`: which actor did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checks: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Shortage {
    pub sku: String,
    pub requested: u32,
    pub available: u64,
}

/// Errors of any request that carries a body or a query string.
#[derive(IntoResponses)]
pub enum Invalid {
    /// Malformed JSON, or a body nested too deep.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body is larger than allowed.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json")]
    MediaType(Problem),
    /// A field, parameter or header is invalid, unknown or missing; `errors` names each.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
}

/// Errors of any request that needs a valid bearer token.
#[derive(IntoResponses)]
pub enum NeedsToken {
    /// No token, or an invalid or expired one.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
}

/// Errors of admin-only requests.
#[derive(IntoResponses)]
pub enum AdminOnly {
    /// No token, or an invalid or expired one.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token is valid but not an admin's.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// The resource does not exist (or belongs to someone else).
#[derive(IntoResponses)]
pub enum Missing {
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// The request conflicts with the current state (see the problem `type`).
#[derive(IntoResponses)]
pub enum Conflict {
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
}

/// Errors any request may get when the service is overloaded or failing.
#[derive(IntoResponses)]
pub enum Unavailable {
    /// An actor is at capacity, stopping, or too slow; retry after `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(Problem),
    /// Something failed on our side; the request id finds it in the logs.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "orderflow", description = "An order pipeline service for online shops. Errors are RFC 9457 problem details; money is integer minor units."),
    modifiers(&Bearer),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::me,
        products::list, products::create, products::get, products::replace, products::patch, products::archive,
        products::adjust_stock, products::movements, products::categories, products::verify,
        orders::checkout, orders::list, orders::get, orders::cancel, orders::set_status,
        imports::upload, imports::list, imports::get, imports::rejects,
        ops::healthz, ops::readyz, ops::metrics, ops::docs, serve,
    ),
    components(schemas(Problem, FieldError, Shortage, json::PageJson<json::ProductJson>, json::PageJson<json::OrderJson>, json::PageJson<json::MovementJson>, json::PageJson<orderflow_actors::inbox::jobs::JobView>, json::PageJson<json::RejectJson>)),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "catalog", description = "Products, stock and the ledger audit"),
        (name = "orders", description = "Checkout and the order lifecycle"),
        (name = "imports", description = "Files into the inbox pipeline"),
        (name = "operations", description = "Health, readiness, metrics, this document and a page that renders it (`/docs`)"),
    )
)]
pub struct ApiDoc;

/// The spec, built once.
pub fn spec() -> &'static str {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        let mut doc =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        fix_link_keys(&mut doc);
        doc.to_string()
    })
}

/// utoipa 5 writes Link Objects' fields in snake case (`operation_id`); OpenAPI
/// spells them `operationId`, `operationRef`, `requestBody`.
fn fix_link_keys(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    if let serde_json::Value::Object(link) = link {
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(value) = link.remove(from) {
                                link.insert(to.to_owned(), value);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(fix_link_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fix_link_keys),
        _ => {}
    }
}

/// This document.
#[utoipa::path(get, operation_id = "ops_openapi", path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json", body = Object)))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_registered_route_is_documented_and_every_documented_route_exists() {
        let doc: serde_json::Value = serde_json::from_str(spec()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let registered: BTreeSet<(String, String)> = crate::api::route_table()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_owned(), p))
            .collect();
        assert_eq!(documented, registered, "routes and OpenAPI paths differ");
        assert!(registered.len() >= 28, "{registered:?}");
    }

    #[test]
    fn the_document_declares_the_bearer_scheme_and_the_problem_type() {
        let doc: serde_json::Value = serde_json::from_str(spec()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let problem = &doc["components"]["schemas"]["Problem"]["properties"];
        for key in ["type", "title", "status", "detail", "request_id", "errors"] {
            assert!(problem.get(key).is_some(), "Problem lacks {key}");
        }
        let checkout = &doc["paths"]["/api/v1/orders"]["post"];
        assert_eq!(
            checkout["responses"]["201"]["links"]["GetOrder"]["operationId"],
            "orders_get"
        );
        assert_eq!(checkout["security"][0]["bearer"], serde_json::json!([]));
        assert!(checkout["responses"]["409"]["content"]["application/problem+json"].is_object());
    }

    /// The Problem schema names every member ApiError can produce.
    #[test]
    fn problem_bodies_fit_the_schema() {
        let doc: serde_json::Value = serde_json::from_str(spec()).unwrap();
        let props = doc["components"]["schemas"]["Problem"]["properties"]
            .as_object()
            .unwrap()
            .clone();
        let samples = [
            crate::error::ApiError::field("x", "bad"),
            crate::error::ApiError::unavailable("busy")
                .with_extension("checks", serde_json::json!({})),
            crate::error::ApiError::conflict("insufficient-stock", "t", "d")
                .with_extension("shortages", serde_json::json!([])),
            crate::error::ApiError::conflict("insufficient-stock", "t", "d")
                .with_extension("available", serde_json::json!(1)),
        ];
        for e in samples {
            let body = crate::error::REQUEST_ID.sync_scope("r".to_owned(), || e.body());
            for key in body.as_object().unwrap().keys() {
                assert!(
                    props.contains_key(key),
                    "{key} is not in the Problem schema"
                );
            }
        }
    }
}
