//! Webhook endpoints: register (secret shown once), list, change, delete, rotate
//! the secret, send a test event, read the delivery log.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::json;
use super::routes::Routes;
use super::strict::{QueryParams, RawQuery, StrictJson};
use crate::auth::{Admin, scope};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use crate::webhooks::{guard, sign};
use orderflow_actors::domain::Timestamp;
use orderflow_actors::events::TypeFilter;
use orderflow_actors::limits::{
    WEBHOOK_DESCRIPTION_CHARS_MAX, WEBHOOK_FILTERS_MAX, WEBHOOK_URL_BYTES_MAX,
};
use orderflow_actors::webhooks::{
    Attempted, CreateEndpoint, DeleteEndpoint, DeliveryRow, Endpoint, EndpointId, EndpointStatus,
    GetEndpoint, ListDeliveries, ListEndpoints, Outcome, RecordAttempts, RotateSecret,
    UpdateEndpoint,
};

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create, list, get, update, delete, rotate, test, deliveries),
    components(schemas(
        EndpointBody,
        PatchBody,
        EndpointJson,
        EndpointWithSecretJson,
        EndpointListJson,
        DeliveryJson,
        DeliveryListJson
    ))
)]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/webhooks", |m| m.post(create).get(list));
    r.add("/webhooks/{id}", |m| {
        m.get(get).patch(update).delete(delete)
    });
    r.add("/webhooks/{id}/rotate-secret", |m| m.post(rotate));
    r.add("/webhooks/{id}/test", |m| m.post(test));
    r.add("/webhooks/{id}/deliveries", |m| m.get(deliveries));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    /// `http` or `https`; not an address inside the service's network.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 2048)]
    url: Option<String>,
    /// Event types (`order.placed`), families (`order.*`) or `*`.
    #[schema(required = true, nullable = false, min_items = 1, max_items = 32, value_type = Option<Vec<crate::api::events::TypeParam>>)]
    events: Option<Vec<String>>,
    #[schema(max_length = 200)]
    description: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[schema(nullable = false, min_length = 1, max_length = 2048)]
    url: Option<String>,
    #[schema(nullable = false, min_items = 1, max_items = 32, value_type = Option<Vec<crate::api::events::TypeParam>>)]
    events: Option<Vec<String>>,
    /// `enabled` resumes from the first undelivered event; `disabled` pauses.
    #[schema(nullable = false, pattern = "^(enabled|disabled)$")]
    status: Option<String>,
}

/// An endpoint (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointJson {
    id: u64,
    url: String,
    events: Vec<String>,
    description: Option<String>,
    /// `enabled` or `disabled`.
    status: &'static str,
    /// Why it is disabled.
    disabled_reason: Option<String>,
    /// The seq of the last event it received (or skipped: not in `events`).
    delivered_through: u64,
    /// Failed attempts at the next event.
    failures: u32,
    created_at: String,
}

/// A new endpoint, or one with a new secret: `secret` appears only here.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecretJson {
    #[serde(flatten)]
    endpoint: EndpointJson,
    /// `whsec_…`: verify deliveries with a Standard Webhooks library.
    secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointListJson {
    items: Vec<EndpointJson>,
}

/// One delivery attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryJson {
    event_id: String,
    seq: u64,
    #[serde(rename = "type")]
    kind: String,
    attempt: u32,
    /// `succeeded` or `failed`.
    outcome: &'static str,
    response_status: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
    at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryListJson {
    /// Newest first.
    items: Vec<DeliveryJson>,
    /// Opaque; pass it back as `cursor` for the next page (null on the last).
    next_cursor: Option<String>,
}

fn shown(e: &Endpoint) -> EndpointJson {
    EndpointJson {
        id: e.id.0,
        url: e.row.url.clone(),
        events: e.row.events.iter().map(TypeFilter::as_string).collect(),
        description: e.row.description.clone(),
        status: e.row.status.as_str(),
        disabled_reason: e.row.disabled_reason.clone(),
        delivered_through: e.row.cursor,
        failures: e.row.failures,
        created_at: e.row.created_at.to_rfc3339(),
    }
}

fn delivery(d: &DeliveryRow) -> DeliveryJson {
    DeliveryJson {
        event_id: d.event_id.clone(),
        seq: d.seq,
        kind: d.kind.clone(),
        attempt: d.attempt,
        outcome: d.outcome.as_str(),
        response_status: d.response_status,
        error: d.error.clone(),
        duration_ms: d.duration_ms,
        at: d.at.to_rfc3339(),
    }
}

fn path_id(raw: &str) -> Result<EndpointId, ApiError> {
    raw.parse::<u64>()
        .map(EndpointId)
        .map_err(|_| ApiError::not_found("no webhook endpoint with that id"))
}

async fn url_field(raw: &str, allow_private: bool, errors: &mut Vec<FieldError>) -> Option<String> {
    if raw.len() > WEBHOOK_URL_BYTES_MAX {
        errors.push(FieldError::new(
            "url",
            format!("must be at most {WEBHOOK_URL_BYTES_MAX} bytes"),
        ));
        return None;
    }
    match guard::check_url(raw, allow_private).await {
        Ok(url) => Some(url.to_string()),
        Err(e) => {
            errors.push(FieldError::new("url", e));
            None
        }
    }
}

fn events_field(raw: &[String], errors: &mut Vec<FieldError>) -> Vec<TypeFilter> {
    if raw.is_empty() || raw.len() > WEBHOOK_FILTERS_MAX {
        errors.push(FieldError::new(
            "events",
            format!("must list 1 to {WEBHOOK_FILTERS_MAX} event types"),
        ));
        return Vec::new();
    }
    raw.iter()
        .filter_map(|r| {
            TypeFilter::parse(orderflow_actors::text::cut(r, 64))
                .map_err(|e| errors.push(FieldError::new("events", e)))
                .ok()
        })
        .collect()
}

fn new_secret() -> [u8; 32] {
    rand::random()
}

#[utoipa::path(post, operation_id = "webhooks_create", summary = "Register a webhook endpoint", path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = ["webhooks:write"])), request_body = EndpointBody,
    responses((status = 201, description = "Registered; it receives events committed from now on. The secret is shown this once", body = EndpointWithSecretJson),
        (status = 409, description = "Too many endpoints", content_type = "application/problem+json", body = crate::error::Problem),
        crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn create(
    _admin: Admin<scope::WebhooksWrite>,
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<EndpointBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let url = match body.url.as_deref() {
        None => {
            errors.push(FieldError::new("url", "is required"));
            None
        }
        Some(raw) => url_field(raw, state.webhook_allow_private, &mut errors).await,
    };
    let events = match body.events.as_deref() {
        None => {
            errors.push(FieldError::new("events", "is required"));
            Vec::new()
        }
        Some(raw) => events_field(raw, &mut errors),
    };
    let description = body.description.map(|d| d.trim().to_owned());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > WEBHOOK_DESCRIPTION_CHARS_MAX)
    {
        errors.push(FieldError::new(
            "description",
            format!("must be at most {WEBHOOK_DESCRIPTION_CHARS_MAX} characters"),
        ));
    }
    let (Some(url), true) = (url, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let secret = new_secret();
    let endpoint = state
        .webhooks
        .ask(CreateEndpoint {
            url,
            events,
            description,
            secret,
            cursor: *state.newest_event.borrow(),
        })
        .await??;
    tracing::info!(request_id = %crate::error::RequestId, endpoint = endpoint.id.0, url = %endpoint.row.url, "webhook endpoint registered");
    Ok(HttpResponse::Created().json(EndpointWithSecretJson {
        endpoint: shown(&endpoint),
        secret: sign::show_secret(&secret),
    }))
}

#[utoipa::path(get, operation_id = "webhooks_list", summary = "List webhook endpoints", path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = ["webhooks:write"])),
    responses((status = 200, description = "Every endpoint", body = EndpointListJson), crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn list(
    _admin: Admin<scope::WebhooksWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoints = state.webhooks.ask(ListEndpoints).await??;
    Ok(HttpResponse::Ok().json(EndpointListJson {
        items: endpoints.iter().map(shown).collect(),
    }))
}

#[utoipa::path(get, operation_id = "webhooks_get", summary = "Get a webhook endpoint", path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = ["webhooks:write"])), params(("id" = u64, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint", body = EndpointJson), crate::error::responses::Missing, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn get(
    _admin: Admin<scope::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let endpoint = state.webhooks.ask(GetEndpoint { id }).await??;
    Ok(HttpResponse::Ok().json(shown(&endpoint)))
}

#[utoipa::path(patch, operation_id = "webhooks_update", summary = "Change a webhook endpoint", path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = ["webhooks:write"])), params(("id" = u64, Path, description = "The endpoint's id")), request_body = PatchBody,
    responses((status = 200, description = "Changed; re-enabled, it resumes from the first event it has not received", body = EndpointJson),
        crate::error::responses::Missing, crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn update(
    _admin: Admin<scope::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    StrictJson(body): StrictJson<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let mut errors = Vec::new();
    let url = match body.url.as_deref() {
        None => None,
        Some(raw) => url_field(raw, state.webhook_allow_private, &mut errors).await,
    };
    let events = body
        .events
        .as_deref()
        .map(|raw| events_field(raw, &mut errors));
    let status = match body.status.as_deref() {
        None => None,
        Some(raw) => EndpointStatus::parse(raw).or_else(|| {
            errors.push(FieldError::new("status", "must be enabled or disabled"));
            None
        }),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let endpoint = state
        .webhooks
        .ask(UpdateEndpoint {
            id,
            url,
            events,
            status,
        })
        .await??;
    Ok(HttpResponse::Ok().json(shown(&endpoint)))
}

#[utoipa::path(delete, operation_id = "webhooks_delete", summary = "Delete a webhook endpoint", path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = ["webhooks:write"])), params(("id" = u64, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Deleted, with its delivery log"), crate::error::responses::Missing, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn delete(
    _admin: Admin<scope::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    state.webhooks.ask(DeleteEndpoint { id }).await??;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, operation_id = "webhooks_rotate_secret", summary = "Rotate a webhook endpoint's signing secret", path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = ["webhooks:write"])), params(("id" = u64, Path, description = "The endpoint's id")),
    responses((status = 200, description = "A new secret, shown this once; the old one keeps signing beside it for 24 h", body = EndpointWithSecretJson),
        crate::error::responses::Missing, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn rotate(
    _admin: Admin<scope::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let secret = new_secret();
    let endpoint = state.webhooks.ask(RotateSecret { id, secret }).await??;
    Ok(HttpResponse::Ok().json(EndpointWithSecretJson {
        endpoint: shown(&endpoint),
        secret: sign::show_secret(&secret),
    }))
}

#[utoipa::path(post, operation_id = "webhooks_test", summary = "Send a test event to a webhook endpoint", path = "/api/v1/webhooks/{id}/test", tag = "webhooks", security(("bearer" = ["webhooks:write"])), params(("id" = u64, Path, description = "The endpoint's id")),
    responses((status = 200, description = "A `webhook.test` event was sent once, now; the attempt, as logged", body = DeliveryJson),
        crate::error::responses::Missing, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn test(
    _admin: Admin<scope::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let endpoint = state.webhooks.ask(GetEndpoint { id }).await??;
    let event_id = format!(
        "evt_test_{}",
        orderflow_actors::text::hex(&rand::random::<[u8; 12]>())
    );
    let now = Timestamp::now();
    let body = serde_json::json!({
        "id": event_id,
        "seq": 0,
        "type": "webhook.test",
        "created_at": now.to_rfc3339(),
        "data": {"endpoint_id": id.0},
    });
    let attempt = state
        .deliverer
        .post(
            &endpoint,
            &event_id,
            serde_json::to_vec(&body).expect("JSON"),
        )
        .await;
    let row = attempt.into_row(event_id, 0, "webhook.test".into(), 1, now);
    let shown_row = delivery(&row);
    state
        .webhooks
        .ask(RecordAttempts {
            id,
            attempts: vec![Attempted {
                advances: None,
                delivery: row,
            }],
        })
        .await??;
    Ok(HttpResponse::Ok().json(shown_row))
}

#[utoipa::path(get, operation_id = "webhooks_deliveries", summary = "List a webhook endpoint's delivery attempts", path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = ["webhooks:write"])),
    params(("id" = u64, Path, description = "The endpoint's id"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"),
        ("outcome" = Option<String>, Query, pattern = "^(succeeded|failed)$", description = "Only attempts with this outcome"),
        ("cursor" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Attempts, newest first (the last 1,000 are kept)", body = DeliveryListJson),
        crate::error::responses::Missing, crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn deliveries(
    _admin: Admin<scope::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let params = QueryParams::parse(&raw, &["limit", "outcome", "cursor"])?;
    let mut errors = Vec::new();
    let limit = params.page_limit(&mut errors);
    let before = params.cursor::<u64>(&mut errors);
    let outcome = params.get("outcome").and_then(|raw| {
        let parsed = Outcome::parse(raw);
        if parsed.is_none() {
            errors.push(FieldError::new("outcome", "must be succeeded or failed"));
        }
        parsed
    });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = state
        .webhooks
        .ask(ListDeliveries {
            id,
            limit,
            outcome,
            before,
        })
        .await??;
    Ok(HttpResponse::Ok().json(DeliveryListJson {
        items: page.items.iter().map(delivery).collect(),
        next_cursor: page.next.map(|n| json::encode_cursor(&n)),
    }))
}
