//! Errors as clients see them: RFC 9457 problem details, and the only place that
//! picks HTTP status codes.
//!
//! Every failure a handler can meet becomes an [`ApiError`] with a stable `type`
//! (`/problems/<slug>`), a human title and detail, optional per-field `errors`, and
//! the request's id. Domain errors from the actors are mapped here, in one `From`
//! each, so a status code is never chosen anywhere else. Storage and other internal
//! failures are logged with their detail and shown to the client as a bare 500: no
//! paths, panics or database text leak.
//!
//! Why one file: it is the only place that picks status codes, so every mapping from a
//! domain error to a problem lives here by design.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;

use orderflow_actors::apikeys::ApiKeyError;
use orderflow_actors::catalog::{CatalogError, VariantConflict};
use orderflow_actors::common::StoreError;
use orderflow_actors::events::EventsError;
use orderflow_actors::ledger::{CheckoutError, OrderError, StockError};
use orderflow_actors::limits::STOCK_UNITS_MAX;
use orderflow_actors::mailbox::AskError;
use orderflow_actors::search::SearchError;
use orderflow_actors::store::BackupError;
use orderflow_actors::users::{RefreshError, UserError};
use orderflow_actors::webhooks::WebhookError;

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware so that
    /// problem bodies and log lines can repeat it.
    pub static REQUEST_ID: String;
}

/// The current request's id as a log field: `tracing::info!(request_id = %RequestId, ..)`.
/// Written only when the line is (no per-request span to open and close); `-` outside
/// a request.
pub struct RequestId;

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        REQUEST_ID
            .try_with(|id| f.write_str(id))
            .unwrap_or_else(|_| f.write_str("-"))
    }
}

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The most field errors one problem lists.
pub use orderflow_actors::limits::PROBLEM_FIELD_ERRORS_MAX;

/// One invalid input: which field (or query parameter, or header) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

// One type renders every error body and (through utoipa) documents it, so the two
// cannot drift apart.
/// RFC 9457 problem details; every error response is one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable and machine-readable, e.g. `/problems/insufficient-stock`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// One entry per invalid field, query parameter or header (422).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
    /// The request's `X-Request-Id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = true, value_type = String)]
    pub request_id: Option<String>,
    /// For `/problems/insufficient-stock` on checkout: each short SKU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortages: Option<Vec<Shortage>>,
    /// For `/problems/insufficient-stock` on a stock adjustment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    /// For `/problems/stock-above-maximum`: the SKU whose stock would pass the cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// For `/problems/unavailable` on `/readyz`: which part did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checks: Option<Value>,
}

/// A SKU a checkout could not take enough of, as a problem shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Shortage {
    pub sku: String,
    pub requested: u32,
    pub available: u64,
}

/// A problem on its way to the client. Boxed so that `Result<T, ApiError>` stays
/// one pointer wide on the happy path.
#[derive(Debug)]
pub struct ApiError(Box<Failure>);

#[derive(Debug)]
struct Failure {
    status: StatusCode,
    slug: &'static str,
    problem: Problem,
    retry_after_secs: Option<u64>,
    /// For 405: the methods the route takes (RFC 9110 requires `Allow`).
    allow: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.slug,
            self.0.problem.detail
        )
    }
}

impl ApiError {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(Failure {
            status,
            slug,
            problem: Problem {
                problem_type: format!("/problems/{slug}"),
                title,
                status: status.as_u16(),
                detail: detail.into(),
                errors: Vec::new(),
                request_id: None,
                shortages: None,
                available: None,
                sku: None,
                checks: None,
            },
            retry_after_secs: None,
            allow: None,
        }))
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn slug(&self) -> &'static str {
        self.0.slug
    }

    /// 422: the request was well-formed but some values are not acceptable. At
    /// most [`PROBLEM_FIELD_ERRORS_MAX`] are listed (the detail counts them all):
    /// a request that repeats one bad parameter thousands of times gets a short
    /// answer, not one error per repeat.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many if many.len() > PROBLEM_FIELD_ERRORS_MAX => format!(
                "{} fields are invalid; the first {PROBLEM_FIELD_ERRORS_MAX} are listed",
                many.len()
            ),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            detail,
        )
        .with_errors(errors)
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            detail,
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!("the body must be {expected}"),
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid-credentials",
            "Invalid credentials",
            "the username or password is wrong",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "this route is for admins",
        )
    }

    /// 403 with a reason of its own (an API key without the route's scope).
    pub fn forbidden_because(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", what)
    }

    pub fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route-not-found",
            "Not found",
            "no such route",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this route does not accept that method",
        )
    }

    /// 405 naming the methods the route does take.
    pub fn method_not_allowed_but(allow: &str) -> Self {
        let mut e = Self::method_not_allowed();
        e.0.problem.detail = format!("this route takes {allow}");
        e.0.allow = Some(allow.to_owned());
        e
    }

    /// 410: the events after the asked seq are no longer kept.
    pub fn events_expired(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "events-expired", "Events expired", detail)
    }

    pub fn conflict(slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, title, detail)
    }

    pub fn payload_too_large(limit_bytes: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the body is larger than {limit_bytes} bytes"),
        )
    }

    pub fn head_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header-fields-too-large",
            "Request header fields too large",
            format!("the request line and headers exceed {limit_bytes} bytes"),
        )
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            "too many failed attempts; try again later",
        );
        e.0.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        e.0.retry_after_secs = Some(1);
        e
    }

    /// 500 for a write that was accepted but whose answer never came: it may still
    /// 501: the route exists, but not on the backend this node runs (online
    /// backups, which PostgreSQL takes with its own tools).
    pub fn not_on_this_backend(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "not-on-this-backend",
            "Not available on this backend",
            format!(
                "{what} are not taken by orderflow on the PostgreSQL backend: back the \
                 database up with PostgreSQL's own tools (pg_basebackup for the cluster, \
                 pg_dump for one database)"
            ),
        )
    }

    /// 503: the search index is being built (at start, or after damage).
    pub fn search_unavailable(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "search-unavailable",
            "Search unavailable",
            detail,
        );
        e.0.retry_after_secs = Some(orderflow_actors::limits::SEARCH_RETRY_AFTER_SECS);
        e
    }

    /// 500 for a write that was accepted but whose answer never came: it may still
    /// take effect, so the client must look before repeating it (no `Retry-After`).
    pub fn outcome_unknown() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "outcome-unknown",
            "Outcome unknown",
            "the change was accepted but its result did not come in time; it may still take effect. Look before repeating it (GET /api/v1/orders for a checkout), or repeat it with the same Idempotency-Key",
        )
    }

    /// 500. `cause` is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(request_id = %RequestId, error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "something went wrong on our side; the request id identifies it in our logs",
        )
    }

    /// A generic problem for a status that reached the client without one (the
    /// middleware's safety net).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::route_not_found(),
            StatusCode::METHOD_NOT_ALLOWED => Self::method_not_allowed(),
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                status,
                "payload-too-large",
                "Payload too large",
                "the request is too large",
            ),
            s if s.is_server_error() => Self::new(
                s,
                "internal",
                "Internal server error",
                "something went wrong on our side",
            ),
            s => Self::new(
                s,
                "bad-request",
                "Bad request",
                s.canonical_reason().unwrap_or("bad request"),
            ),
        }
    }

    pub fn with_errors(mut self, mut errors: Vec<FieldError>) -> Self {
        errors.truncate(PROBLEM_FIELD_ERRORS_MAX);
        self.0.problem.errors = errors;
        self
    }

    pub fn with_shortages(mut self, shortages: Vec<Shortage>) -> Self {
        self.0.problem.shortages = Some(shortages);
        self
    }

    pub fn with_available(mut self, available: u64) -> Self {
        self.0.problem.available = Some(available);
        self
    }

    pub fn with_sku(mut self, sku: &str) -> Self {
        self.0.problem.sku = Some(sku.to_owned());
        self
    }

    pub fn with_checks(mut self, checks: Value) -> Self {
        self.0.problem.checks = Some(checks);
        self
    }

    /// The problem document, with the current request's id if one is set.
    pub fn problem(&self) -> Problem {
        let mut p = self.0.problem.clone();
        p.request_id = REQUEST_ID.try_with(Clone::clone).ok();
        p
    }

    /// [`Self::problem`] as JSON.
    pub fn body(&self) -> Value {
        serde_json::to_value(self.problem()).expect("a problem serializes")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.0.status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        ));
        if let Some(secs) = self.0.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(allow) = &self.0.allow {
            res.insert_header((header::ALLOW, allow.clone()));
        }
        if self.0.status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.body(self.body().to_string())
    }
}

/// The problem responses the handlers' OpenAPI annotations share.
pub mod responses {
    use utoipa::IntoResponses;

    use super::Problem;

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
}

impl From<AskError> for ApiError {
    fn from(e: AskError) -> Self {
        tracing::warn!(request_id = %RequestId, error = %e, "actor unavailable");
        match e {
            AskError::Overloaded(_) => {
                ApiError::unavailable("the service is at capacity; retry shortly")
            }
            AskError::Stopped(_) => {
                ApiError::unavailable("the service is shutting down or restarting")
            }
            AskError::Timeout(_) => {
                ApiError::unavailable("the service did not answer in time; retry shortly")
            }
            AskError::OutcomeUnknown(_) => ApiError::outcome_unknown(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Aborted(_) => {
                tracing::error!(request_id = %RequestId, error = %e, "transaction abandoned");
                ApiError::unavailable(
                    "the change could not be committed; nothing was written, retry",
                )
            }
            StoreError::OutcomeUnknown(_) => {
                tracing::error!(request_id = %RequestId, error = %e, "a commit's outcome is unknown");
                ApiError::outcome_unknown()
            }
            StoreError::LeaseLost(_) => ApiError::unavailable(
                "another node runs this import now; nothing was written, retry",
            ),
            StoreError::Postgres(_) => {
                tracing::error!(request_id = %RequestId, error = %e, "PostgreSQL failed");
                ApiError::unavailable("the database did not answer; retry shortly")
            }
            StoreError::Redb(_)
            | StoreError::Codec(_)
            | StoreError::Corrupt(_)
            | StoreError::Io(_) => ApiError::internal(e),
        }
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(s) => s.into(),
            other @ (BackupError::Exists(_)
            | BackupError::Io { .. }
            | BackupError::UnknownTable(_)) => ApiError::internal(other),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::NotFound => ApiError::not_found("no API key with that id"),
            ApiKeyError::TooMany => {
                ApiError::conflict("too-many-api-keys", "Too many API keys", e.to_string())
            }
            ApiKeyError::Store(s) => s.into(),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotFound => ApiError::not_found("no webhook endpoint with that id"),
            WebhookError::TooMany => ApiError::conflict(
                "too-many-webhooks",
                "Too many webhook endpoints",
                e.to_string(),
            ),
            WebhookError::Superseded { .. } => ApiError::conflict(
                "webhook-superseded",
                "Delivered by another deliverer",
                e.to_string(),
            ),
            WebhookError::Store(s) => s.into(),
        }
    }
}

impl From<EventsError> for ApiError {
    fn from(e: EventsError) -> Self {
        match e {
            EventsError::Expired { .. } => ApiError::events_expired(format!(
                "{e}; start again without `after` (from the oldest event kept)"
            )),
            EventsError::Store(s) => s.into(),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Unavailable => {
                ApiError::search_unavailable(format!("{e}; searches are answered once it is built"))
            }
            SearchError::CursorMismatch => ApiError::field(
                "cursor",
                "belongs to another search (other text, filters or facets)",
            ),
            SearchError::Index(detail) => ApiError::internal(detail),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Exists(sku) => ApiError::conflict(
                "product-exists",
                "Product exists",
                format!("a product with SKU {sku} already exists (use PUT to replace it)"),
            ),
            CatalogError::NotFound(sku) => {
                ApiError::not_found(format!("no product with SKU {sku}"))
            }
            CatalogError::CursorMismatch => {
                ApiError::field("cursor", "does not belong to this sort order")
            }
            CatalogError::StockAboveMax => ApiError::field("stock", "would exceed the maximum"),
            CatalogError::Variant(v) => v.into(),
            CatalogError::Store(s) => s.into(),
        }
    }
}

impl From<VariantConflict> for ApiError {
    fn from(e: VariantConflict) -> Self {
        match e {
            VariantConflict::Exists { group, holder } => ApiError::conflict(
                "variant-exists",
                "Variant exists",
                format!("product {holder} of group {group} already has these option values"),
            ),
            VariantConflict::OptionNames { group, expected } => ApiError::field(
                "options",
                format!("the products of group {group} have the options {expected:?}"),
            ),
            VariantConflict::Full { .. } => ApiError::field("group", e.to_string()),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::UnknownSkus(skus) => ApiError::validation(
                skus.iter()
                    .map(|s| FieldError::new("items", format!("unknown or archived SKU {s}")))
                    .collect(),
            ),
            CheckoutError::Insufficient(short) => {
                let detail = short
                    .iter()
                    .map(|s| {
                        format!(
                            "{} (requested {}, available {})",
                            s.sku, s.requested, s.available
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let shortages = short
                    .iter()
                    .map(|s| Shortage {
                        sku: s.sku.as_str().to_owned(),
                        requested: s.requested,
                        available: s.available,
                    })
                    .collect();
                let errors = short
                    .iter()
                    .map(|s| {
                        FieldError::new(
                            "items",
                            format!("{}: only {} available", s.sku, s.available),
                        )
                    })
                    .collect();
                ApiError::conflict(
                    "insufficient-stock",
                    "Insufficient stock",
                    format!("not enough stock for {detail}"),
                )
                .with_errors(errors)
                .with_shortages(shortages)
            }
            CheckoutError::KeyReused => ApiError::field(
                "Idempotency-Key",
                "was already used with a different request body",
            ),
            CheckoutError::InFlight => ApiError::conflict(
                "idempotency-in-flight",
                "Request in flight",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ),
            CheckoutError::DuplicateRef(r) => ApiError::conflict(
                "duplicate-order",
                "Duplicate order",
                format!("order reference {r} is already in the ledger"),
            ),
            CheckoutError::PriceMismatch { sku, .. } => ApiError::field(
                "items",
                format!("price of {sku} does not match the catalog"),
            ),
            CheckoutError::Store(s) => s.into(),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => ApiError::not_found("no such order"),
            OrderError::InvalidTransition { from, to } => ApiError::conflict(
                "invalid-transition",
                "Invalid status transition",
                format!(
                    "an order cannot go from {} to {}",
                    from.as_str(),
                    to.as_str()
                ),
            ),
            OrderError::RestockAboveMax { sku, would_be } => ApiError::conflict(
                "stock-above-maximum",
                "Stock above maximum",
                format!(
                    "cancelling would restock {sku} to {would_be}, above the maximum of {STOCK_UNITS_MAX}; reduce its stock first"
                ),
            )
            .with_sku(sku.as_str()),
            OrderError::Store(s) => s.into(),
        }
    }
}

impl From<StockError> for ApiError {
    fn from(e: StockError) -> Self {
        match e {
            StockError::UnknownSku => ApiError::not_found("no such product"),
            StockError::Insufficient { available } => ApiError::conflict(
                "insufficient-stock",
                "Insufficient stock",
                format!("stock cannot go below zero: {available} available"),
            )
            .with_available(available),
            StockError::AboveMax { would_be } => ApiError::field(
                "delta",
                format!("stock would be {would_be}, above the maximum"),
            ),
            StockError::Store(s) => s.into(),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::UsernameTaken => ApiError::conflict(
                "user-exists",
                "User exists",
                "that username is already registered",
            )
            .with_errors(vec![FieldError::new("username", "is already taken")]),
            UserError::EmailTaken => ApiError::conflict(
                "user-exists",
                "User exists",
                "that email is already registered",
            )
            .with_errors(vec![FieldError::new("email", "is already taken")]),
            UserError::Store(s) => s.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Invalid => {
                ApiError::unauthorized("the refresh token is invalid, expired or revoked")
            }
            RefreshError::Reused => ApiError::unauthorized(
                "the refresh token was already used; every token of this session is now revoked",
            ),
            RefreshError::Store(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_body_has_the_rfc9457_members_and_the_request_id() {
        let body = REQUEST_ID.sync_scope("req-1".to_owned(), || {
            ApiError::field("name", "must not be empty").body()
        });
        assert_eq!(body["type"], "/problems/validation");
        assert_eq!(body["status"], 422);
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(body["errors"][0]["field"], "name");
        assert!(body["title"].is_string() && body["detail"].is_string());
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = ApiError::internal("/secret/path/orderflow.redb: disk I/O error");
        assert!(!e.body().to_string().contains("secret"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
