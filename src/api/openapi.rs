//! The OpenAPI 3 description of every route, generated from the handlers'
//! annotations: each resource declares its own fragment (`Doc`) next to its routes,
//! and this module only merges them. Served at `GET /openapi.json` (built once at
//! start-up, kept in the app state). A test compares its paths with the routes the
//! server registers (both ways) and schemathesis checks live responses against it.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    apikeys, auth, backup, console, events, groups, imports, ops, orders, products, search,
    webhooks,
};
use crate::error::{FieldError, Problem, Shortage};

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

/// The document's frame: title, security scheme, tags and the problem schemas.
/// The paths come from each resource's own `Doc`, merged in [`spec`].
#[derive(OpenApi)]
#[openapi(
    info(title = "orderflow", description = "An order pipeline service for online shops. Errors are RFC 9457 problem details; money is integer minor units."),
    servers((url = "/", description = "This service (paths are relative to where it answers)")),
    modifiers(&Bearer),
    components(schemas(Problem, FieldError, Shortage)),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "catalog", description = "Products, stock and the ledger audit"),
        (name = "orders", description = "Checkout and the order lifecycle"),
        (name = "imports", description = "Files into the inbox pipeline"),
        (name = "events", description = "Every change, in commit order, for the systems a shop connects"),
        (name = "webhooks", description = "Events pushed to the shop's other systems, signed per Standard Webhooks"),
        (name = "api-keys", description = "Keys for other systems, each opening the admin routes of its scopes"),
        (name = "operations", description = "Health, readiness, metrics, this document and a page that renders it (`/docs`)"),
    )
)]
pub struct ApiDoc;

/// The spec, built once.
pub fn spec() -> &'static str {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        let mut api = ApiDoc::openapi();
        for part in [
            auth::Doc::openapi(),
            products::Doc::openapi(),
            groups::Doc::openapi(),
            search::Doc::openapi(),
            orders::Doc::openapi(),
            imports::Doc::openapi(),
            events::Doc::openapi(),
            apikeys::Doc::openapi(),
            webhooks::Doc::openapi(),
            backup::Doc::openapi(),
            ops::Doc::openapi(),
            console::Doc::openapi(),
        ] {
            api.merge(part);
        }
        let mut doc = serde_json::to_value(api).expect("the OpenAPI document serializes");
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

    /// What Redocly's recommended rules ask (`.ci/openapi-lint` runs the linter
    /// itself): a server, and every operation with a summary and a declared
    /// security (`[]` on public ones).
    #[test]
    fn every_operation_has_a_summary_and_declares_its_security() {
        let doc: serde_json::Value = serde_json::from_str(spec()).unwrap();
        assert!(!doc["servers"].as_array().unwrap().is_empty());
        let mut public = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(!summary.is_empty(), "{method} {path} has no summary");
                let security = op["security"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{method} {path} declares no security"));
                if security.is_empty() {
                    public.push(format!("{method} {path}"));
                }
            }
        }
        assert_eq!(public.len(), 15, "{public:?}");
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
            crate::error::ApiError::unavailable("busy").with_checks(serde_json::json!({})),
            crate::error::ApiError::conflict("insufficient-stock", "t", "d")
                .with_shortages(Vec::new()),
            crate::error::ApiError::conflict("insufficient-stock", "t", "d").with_available(1),
            crate::error::ApiError::conflict("stock-above-maximum", "t", "d").with_sku("S"),
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

    /// The bound the service enforces for a documented field or parameter, from
    /// `limits.rs`; `None` for anything that should carry no bound.
    fn enforced(place: &str, name: &str, keyword: &str) -> Option<i128> {
        use orderflow_actors::limits::*;
        let n = |v: usize| i128::try_from(v).unwrap();
        let u = i128::from;
        Some(match (place, name, keyword) {
            ("RegisterBody", "username", "minLength") => n(USERNAME_CHARS_MIN),
            ("RegisterBody", "username", "maxLength") => n(USERNAME_CHARS_MAX),
            ("RegisterBody", "email", "maxLength") => n(EMAIL_BYTES_MAX),
            ("RegisterBody", "password", "minLength") => n(PASSWORD_CHARS_MIN),
            ("RegisterBody", "password", "maxLength") => n(PASSWORD_CHARS_MAX),
            ("CheckoutBody", "items", "maxItems") => n(ORDER_LINES_MAX),
            ("LineBody", "quantity", "maximum") => i128::from(LINE_QUANTITY_MAX),
            ("LineBody" | "ProductBody" | "param", "sku", "maxLength") => n(SKU_CHARS_MAX),
            ("PatchBody" | "ProductBody", "category", "maxLength") => n(CATEGORY_PATH_CHARS_MAX),
            ("PatchBody" | "ProductBody", "description", "maxLength") => n(DESCRIPTION_CHARS_MAX),
            ("PatchBody" | "ProductBody", "name", "maxLength") => n(PRODUCT_NAME_CHARS_MAX),
            ("PatchBody" | "ProductBody", "weight_grams", "maximum") => u(WEIGHT_GRAMS_MAX),
            ("PatchBody" | "ProductBody", "tax_class", "maxLength") => n(TAX_CLASS_CHARS_MAX),
            ("PatchBody" | "ProductBody", "barcode", "minLength") => n(BARCODE_DIGITS_MIN),
            ("PatchBody" | "ProductBody", "barcode", "maxLength") => n(BARCODE_DIGITS_MAX),
            (
                "PatchBody" | "ProductBody" | "param",
                "price_cents" | "min_price_cents" | "max_price_cents",
                "maximum",
            ) => u(PRICE_CENTS_MAX),
            ("ProductBody", "stock", "maximum")
            | ("StockBody", "delta", "maximum")
            | ("param", "max_stock", "maximum") => u(STOCK_UNITS_MAX),
            ("StockBody", "delta", "minimum") => -u(STOCK_UNITS_MAX),
            ("StockBody", "reason", "maxLength") => n(REASON_CHARS_MAX),
            ("param", "limit", "maximum") => n(PAGE_ITEMS_MAX),
            ("KeyBody", "name", "maxLength") => n(API_KEY_NAME_CHARS_MAX),
            ("EndpointBody" | "PatchBody", "url", "maxLength") => n(WEBHOOK_URL_BYTES_MAX),
            ("EndpointBody" | "PatchBody", "events", "maxItems") => n(WEBHOOK_FILTERS_MAX),
            ("EndpointBody", "description", "maxLength") => n(WEBHOOK_DESCRIPTION_CHARS_MAX),
            ("KeyBody", "scopes", "maxItems") => n(orderflow_actors::domain::Scope::ALL.len()),
            ("events-param", "limit", "maximum") => n(EVENTS_PAGE_MAX),
            ("search-param", "limit", "maximum") => n(SEARCH_LIMIT_MAX),
            ("search-param", "q", "maxLength") => n(SEARCH_TEXT_CHARS_MAX),
            ("search-param", "category", "maxLength") => n(CATEGORY_PATH_CHARS_MAX),
            ("search-param", "group", "maxLength") => n(GROUP_HANDLE_CHARS_MAX),
            ("search-param", "option.{name}", "maxLength") => n(OPTION_VALUE_CHARS_MAX),
            ("search-param", "min_price_cents" | "max_price_cents", "maximum") => {
                u(PRICE_CENTS_MAX)
            }
            ("search-param", "limit", "minimum") => 1,
            ("events-param", "limit", "minimum") => 1,
            ("events-param", "wait", "maximum") => i128::from(EVENTS_WAIT_SECS_MAX),
            ("param", "name", "maxLength") => n(FILE_NAME_BYTES_MAX),
            // The shortest name with a format: one character and `.csv`.
            ("param", "name", "minLength") => 5,
            ("param", "Idempotency-Key", "maxLength") => n(IDEMPOTENCY_KEY_BYTES_MAX),
            ("param", "q", "maxLength") => n(LIST_FILTER_CHARS_MAX),
            ("param", "category" | "parent", "maxLength") => n(CATEGORY_PATH_CHARS_MAX),
            ("param" | "ProductBody", "group" | "handle", "maxLength") => n(GROUP_HANDLE_CHARS_MAX),
            ("param", "option.{name}", "maxLength") => n(OPTION_VALUE_CHARS_MAX),
            ("CategoryJson", "depth", "maximum") => n(CATEGORY_LEVELS_MAX),
            ("CategoryJson", "depth", "minimum") => 1,
            // A value must be there at all: one item, one character, one unit.
            (_, _, "minLength" | "minItems") => 1,
            ("param", "limit" | "user", "minimum")
            | ("LineBody", "quantity", "minimum")
            | ("PatchBody" | "ProductBody", "price_cents", "minimum") => 1,
            _ => return None,
        })
    }

    /// Every minimum, maximum and length the document states is the one the
    /// service enforces, taken from `limits.rs` (utoipa takes only literals, so
    /// this test is what keeps them equal). Bounds that only restate a type (an
    /// unsigned integer's minimum 0, an i64's maximum) are left to the type.
    #[test]
    fn every_documented_bound_is_the_enforced_limit() {
        let doc: serde_json::Value = serde_json::from_str(spec()).unwrap();
        let keywords = [
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
        ];
        let mut checked = 0;
        let mut check = |place: &str, name: &str, schema: &serde_json::Value| {
            for keyword in keywords {
                let Some(value) = schema.get(keyword).and_then(serde_json::Value::as_i64) else {
                    continue;
                };
                let value = i128::from(value);
                if (keyword == "minimum" && value == 0)
                    || (keyword == "maximum" && value == i128::from(i64::MAX))
                {
                    continue;
                }
                assert_eq!(
                    enforced(place, name, keyword),
                    Some(value),
                    "{place}.{name} documents {keyword} {value}"
                );
                checked += 1;
            }
        };
        for (schema, body) in doc["components"]["schemas"].as_object().unwrap() {
            if let Some(props) = body["properties"].as_object() {
                for (name, prop) in props {
                    check(schema, name, prop);
                }
            }
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            // The feed and search page by their own bounds.
            let place = if path.starts_with("/api/v1/events") {
                "events-param"
            } else if path.starts_with("/api/v1/search") {
                "search-param"
            } else {
                "param"
            };
            for op in item.as_object().unwrap().values() {
                for param in op["parameters"].as_array().into_iter().flatten() {
                    check(place, param["name"].as_str().unwrap(), &param["schema"]);
                }
            }
        }
        assert!(checked >= 60, "only {checked} bounds found");
    }
}
