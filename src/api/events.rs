//! The events feed: every change another system may act on, oldest first, with a
//! long poll woken by the ledger's commit (never by polling the table).

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};

use super::json;
use super::routes::Routes;
use super::strict::{QueryParams, RawQuery};
use crate::auth::{Admin, scope};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::common::StoreError;
use orderflow_actors::events::{ListEvents, TypeFilter};
use orderflow_actors::limits::{
    EVENT_TYPE_FILTER_BYTES_MAX, EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX, EVENTS_WAIT_SECS_MAX,
};

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list),
    components(schemas(json::EventPageJson, json::EventJson, TypeParam))
)]
pub struct Doc;

/// The values `type=` takes, for the OpenAPI document: every event type, every
/// family (`order.*`) and `*`. A test keeps it equal to what the parser accepts.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub enum TypeParam {
    #[serde(rename = "*")]
    All,
    #[serde(rename = "product.*")]
    Products,
    #[serde(rename = "stock.*")]
    Stock,
    #[serde(rename = "order.*")]
    Orders,
    #[serde(rename = "import.*")]
    Imports,
    #[serde(rename = "product.created")]
    ProductCreated,
    #[serde(rename = "product.updated")]
    ProductUpdated,
    #[serde(rename = "product.archived")]
    ProductArchived,
    #[serde(rename = "stock.changed")]
    StockChanged,
    #[serde(rename = "order.placed")]
    OrderPlaced,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.shipped")]
    OrderShipped,
    #[serde(rename = "order.delivered")]
    OrderDelivered,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "import.completed")]
    ImportCompleted,
    #[serde(rename = "import.failed")]
    ImportFailed,
}

pub fn routes(r: &mut Routes) {
    r.add("/events", |m| m.get(list));
}

/// What a request for the feed asks, validated.
struct FeedQuery {
    after: Option<u64>,
    filter: TypeFilter,
    limit: usize,
    wait: Duration,
}

fn feed_query(raw: &str) -> Result<FeedQuery, ApiError> {
    let params = QueryParams::parse(raw, &["after", "type", "limit", "wait"])?;
    let mut errors = Vec::new();
    let after = params.integer("after", 0, i64::MAX.unsigned_abs(), &mut errors);
    let page_max = u64::try_from(EVENTS_PAGE_MAX).unwrap_or(u64::MAX);
    let limit = params
        .integer("limit", 1, page_max, &mut errors)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(EVENTS_PAGE_DEFAULT);
    let wait = params
        .integer("wait", 0, EVENTS_WAIT_SECS_MAX, &mut errors)
        .map_or(Duration::ZERO, Duration::from_secs);
    let filter = match params.get("type") {
        None => TypeFilter::All,
        Some(raw) if raw.len() > EVENT_TYPE_FILTER_BYTES_MAX => {
            errors.push(FieldError::new(
                "type",
                format!("must be at most {EVENT_TYPE_FILTER_BYTES_MAX} bytes"),
            ));
            TypeFilter::All
        }
        Some(raw) => TypeFilter::parse(raw).unwrap_or_else(|e| {
            errors.push(FieldError::new("type", e));
            TypeFilter::All
        }),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(FeedQuery {
        after,
        filter,
        limit,
        wait,
    })
}

#[utoipa::path(get, operation_id = "events_list", summary = "Read the events feed", path = "/api/v1/events", tag = "events", security(("bearer" = ["events:read"])),
    params(("after" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64, description = "Events with a larger seq; omitted: from the oldest event kept"),
        ("type" = Option<TypeParam>, Query, description = "One type (`order.placed`), a family (`order.*`) or `*`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, default 100"),
        ("wait" = Option<u32>, Query, minimum = 0, maximum = 30, description = "Seconds to hold the request until a matching event exists (long poll)")),
    responses((status = 200, description = "Events oldest first, and the `after` to ask next", body = json::EventPageJson),
        (status = 410, description = "`after` is older than what is kept (`--event-retention-days`)", content_type = "application/problem+json", body = crate::error::Problem),
        crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn list(
    _: Admin<scope::EventsRead>,
    state: web::Data<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let q = feed_query(&raw)?;
    let deadline = Instant::now() + q.wait;
    // Subscribed before the first read, so a commit between the read and the wait
    // still wakes it.
    let mut newest = state.newest_event.clone();
    newest.borrow_and_update();
    let mut after = q.after;
    loop {
        let page = state
            .events
            .ask(ListEvents {
                after,
                filter: q.filter.clone(),
                limit: q.limit,
            })
            .await??;
        let waited_enough = Instant::now() >= deadline;
        if !page.items.is_empty() || waited_enough {
            let items = page
                .items
                .iter()
                .map(|e| json::event(e, &state.currency))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from)?;
            return Ok(HttpResponse::Ok().json(json::EventPageJson {
                items,
                next_after: page.next_after,
            }));
        }
        after = Some(page.next_after);
        // Newer events than those scanned exist already (the filter skipped a full
        // scan): read on. Otherwise wait for the ledger's next commit, or the end.
        if *newest.borrow_and_update() > page.next_after {
            continue;
        }
        let _ = tokio::time::timeout_at(deadline.into(), newest.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::OpenApi;

    use super::*;
    use orderflow_actors::events::EventType;

    /// The document's `type` values are exactly those the feed accepts.
    #[test]
    fn the_documented_type_values_are_the_accepted_ones() {
        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        let documented: BTreeSet<String> = doc["components"]["schemas"]["TypeParam"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        for value in &documented {
            assert!(TypeFilter::parse(value).is_ok(), "{value} is refused");
        }
        let mut accepted: BTreeSet<String> = EventType::ALL
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        for t in EventType::ALL {
            accepted.insert(format!("{}.*", t.as_str().split('.').next().unwrap()));
        }
        accepted.insert("*".to_owned());
        assert_eq!(documented, accepted);
    }
}
