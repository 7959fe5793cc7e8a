//! Orders: checkout, history, cancel, and the admin's lifecycle changes.

use actix_web::http::header::HeaderName;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::json;
use super::routes::Routes;
use super::strict::{QueryParams, RawQuery, StrictJson};
use crate::auth::{Acting, Admin, Authenticated, scope};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::domain::{
    IdempotencyKey, OrderId, OrderLines, OrderStatus, Quantity, Sku, UserId,
};
use orderflow_actors::ledger::{ChangeStatus, GetOrder, ListOrders, PlaceOrder};
use orderflow_actors::ledger::{OrderRequest, Source};
use orderflow_actors::limits::ORDER_LINES_MAX;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(checkout, list, get, cancel, set_status), components(schemas(json::PageJson<json::OrderJson>)))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/orders", |m| m.post(checkout).get(list));
    r.add("/orders/{id}", |m| m.get(get));
    r.add("/orders/{id}/cancel", |m| m.post(cancel));
    r.add("/orders/{id}/status", |m| m.post(set_status));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]+$"
    )]
    sku: Option<String>,
    #[schema(required = true, nullable = false, minimum = 1, maximum = 1000)]
    quantity: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// Repeated SKUs are merged; prices come from the catalog.
    #[schema(required = true, nullable = false, min_items = 1, max_items = 100)]
    items: Option<Vec<LineBody>>,
}

fn order_lines(body: CheckoutBody) -> Result<OrderLines, ApiError> {
    let items = body
        .items
        .ok_or_else(|| ApiError::field("items", "is required"))?;
    if items.is_empty() || items.len() > ORDER_LINES_MAX {
        return Err(ApiError::field(
            "items",
            format!("must contain 1 to {ORDER_LINES_MAX} lines"),
        ));
    }
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, line) in items.iter().enumerate() {
        let sku = match line.sku.as_deref() {
            None => Err("is required".to_owned()),
            Some(raw) => Sku::parse(raw).map_err(|e| e.to_string()),
        };
        let quantity = match line.quantity {
            None => Err("is required".to_owned()),
            Some(q) => Quantity::new(q).map_err(|e| e.to_string()),
        };
        match (sku, quantity) {
            (Ok(s), Ok(q)) => lines.push((s, q)),
            (s, q) => {
                if let Err(m) = s {
                    errors.push(FieldError::new(format!("items[{i}].sku"), m));
                }
                if let Err(m) = q {
                    errors.push(FieldError::new(format!("items[{i}].quantity"), m));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    OrderLines::merge(lines).map_err(|e| ApiError::field("items", e.to_string()))
}

fn path_order(raw: &str) -> Result<OrderId, ApiError> {
    raw.parse::<u64>()
        .map(OrderId)
        .map_err(|_| ApiError::not_found("no such order"))
}

#[utoipa::path(post, operation_id = "orders_checkout", summary = "Place an order (checkout)", path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), request_body = CheckoutBody,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Same key and body: the same order again, not a second one")),
    responses((status = 201, description = "Placed and durable (or replayed: header `Idempotent-Replayed: true`)", body = json::OrderJson,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"), ("Location" = String, description = "The order's URL")),
            links(("GetOrder" = (operation_id = "orders_get", parameters(("id" = "$response.body#/id")))),
                ("CancelOrder" = (operation_id = "orders_cancel", parameters(("id" = "$response.body#/id")))))),
        (status = 409, description = "Insufficient stock (`shortages` names each SKU) or the same key still in flight", content_type = "application/problem+json", body = crate::error::Problem),
        crate::error::responses::Invalid, crate::error::responses::NeedsToken, crate::error::responses::Unavailable))]
pub async fn checkout(
    who: Authenticated,
    req: HttpRequest,
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<CheckoutBody>,
) -> Result<HttpResponse, ApiError> {
    let idempotency_key = match req.headers().get(&IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| IdempotencyKey::parse(s).ok())
                .ok_or_else(|| {
                    ApiError::field(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    )
                })?,
        ),
    };
    let lines = order_lines(body)?;
    let request = OrderRequest {
        user: who.user,
        lines,
        idempotency_key,
        source: Source::Api,
        external_ref: None,
        expected_prices: Vec::new(),
    };
    let placed = state.ledger.ask_write(PlaceOrder { request }).await??;
    let mut res = HttpResponse::Created();
    res.insert_header(("Location", format!("/api/v1/orders/{}", placed.order.id.0)));
    if placed.replayed {
        res.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    Ok(res.json(json::order(&placed.order)))
}

#[utoipa::path(get, operation_id = "orders_list", summary = "List orders", path = "/api/v1/orders", tag = "orders", security(("bearer" = ["orders:read"])),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"), ("cursor" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$", description = "`next_cursor` of the previous page"), ("user" = Option<u64>, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_i64, description = "Admin only: one user's orders"),
        ("status" = Option<String>, Query, pattern = "^(placed|paid|shipped|delivered|cancelled)$", description = "Only orders in this status (a page may come short after 20,000 orders scanned, with a cursor to go on)")),
    responses((status = 200, description = "Orders, newest first: the caller's, or everyone's for an admin", body = json::PageJson<json::OrderJson>),
        (status = 403, description = "A customer asked for another user's orders", content_type = "application/problem+json", body = crate::error::Problem),
        crate::error::responses::Invalid, crate::error::responses::NeedsToken, crate::error::responses::Unavailable))]
pub async fn list(
    who: Acting<scope::OrdersRead>,
    state: web::Data<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let params = QueryParams::parse(&raw, &["limit", "cursor", "user", "status"])?;
    let mut errors = Vec::new();
    let limit = params.page_limit(&mut errors);
    let status = params.get("status").and_then(|raw| {
        let parsed = OrderStatus::parse(raw);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "status",
                "must be placed, paid, shipped, delivered or cancelled",
            ));
        }
        parsed
    });
    let user_filter = params
        .integer("user", 1, i64::MAX as u64, &mut errors)
        .map(UserId);
    let before = params.cursor::<u64>(&mut errors).map(OrderId);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let caller = who.caller();
    let user = if caller.is_admin {
        user_filter
    } else {
        if user_filter.is_some_and(|u| u != caller.user) {
            return Err(ApiError::forbidden());
        }
        Some(caller.user)
    };
    let page = state
        .ledger
        .ask(ListOrders {
            user,
            before,
            limit,
            status,
        })
        .await??;
    let items = page.items.iter().map(json::order).collect();
    let next = page.next.map(|id| json::encode_cursor(&id.0));
    Ok(HttpResponse::Ok().json(json::page(items, next)))
}

#[utoipa::path(get, operation_id = "orders_get", summary = "Get an order", path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = ["orders:read"])), params(("id" = u64, Path, description = "The order's id")),
    responses((status = 200, description = "The order", body = json::OrderJson), crate::error::responses::Missing, crate::error::responses::NeedsToken, crate::error::responses::Unavailable))]
pub async fn get(
    who: Acting<scope::OrdersRead>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_order(&id)?;
    let order = state
        .ledger
        .ask(GetOrder {
            id,
            caller: who.caller(),
        })
        .await??
        .ok_or_else(|| ApiError::not_found("no such order"))?;
    Ok(HttpResponse::Ok().json(json::order(&order)))
}

#[utoipa::path(post, operation_id = "orders_cancel", summary = "Cancel an order", path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = ["orders:write"])), params(("id" = u64, Path, description = "The order's id")),
    responses((status = 200, description = "Cancelled; its stock came back", body = json::OrderJson), crate::error::responses::Missing, crate::error::responses::Conflict, crate::error::responses::NeedsToken, crate::error::responses::Unavailable))]
pub async fn cancel(
    who: Acting<scope::OrdersWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = path_order(&id)?;
    let order = state
        .ledger
        .ask_write(ChangeStatus {
            order,
            next: OrderStatus::Cancelled,
            caller: who.caller(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(json::order(&order)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `paid`, `shipped`, `delivered` or `cancelled` (following the lifecycle).
    #[schema(
        required = true,
        nullable = false,
        pattern = "^(placed|paid|shipped|delivered|cancelled)$"
    )]
    status: Option<String>,
}

#[utoipa::path(post, operation_id = "orders_set_status", summary = "Move an order to a new status", path = "/api/v1/orders/{id}/status", tag = "orders", security(("bearer" = ["orders:write"])), params(("id" = u64, Path, description = "The order's id")), request_body = StatusBody,
    responses((status = 200, description = "Moved along the lifecycle", body = json::OrderJson), crate::error::responses::Missing, crate::error::responses::Conflict, crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn set_status(
    who: Admin<scope::OrdersWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    StrictJson(body): StrictJson<StatusBody>,
) -> Result<HttpResponse, ApiError> {
    let order = path_order(&id)?;
    let next = body
        .status
        .as_deref()
        .and_then(OrderStatus::parse)
        .ok_or_else(|| {
            ApiError::field(
                "status",
                "must be one of placed, paid, shipped, delivered, cancelled",
            )
        })?;
    let order = state
        .ledger
        .ask_write(ChangeStatus {
            order,
            next,
            caller: who.caller(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(json::order(&order)))
}
