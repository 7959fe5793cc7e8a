//! Search (contract §7): `GET /search`, products ranked by relevance from the
//! node's search index, with the product listing's filters and facet counts.
//! The index finds the SKUs; the catalog answers the products as they are now,
//! so a product archived after the index's last commit is left out.

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::json::{self, ProductJson};
use super::products::{FILTER_PARAMS, OPTION_PARAM, list_filters};
use super::routes::Routes;
use super::strict::{QueryParams, RawQuery};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::catalog::{GetProducts, Product};
use orderflow_actors::limits::{
    OPTION_NAME_CHARS_MAX, SEARCH_FACETS_MAX, SEARCH_LIMIT_MAX, SEARCH_TEXT_CHARS_MAX,
};
use orderflow_actors::search::{FacetName, FacetValue, Search, SearchCursor, SearchRequest};

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(search))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/search", |m| m.get(search));
}

/// Hits a page holds when the client does not say.
const LIMIT_DEFAULT: u64 = 20;

/// One hit: the product as `GET /products/{sku}` shows it, and its relevance.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SearchHit)]
pub struct HitJson<'a> {
    #[serde(flatten)]
    product: ProductJson<'a>,
    /// Relevance (higher first); comparable only within one search.
    score: f32,
}

/// One value of a facet and how many matches have it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FacetValue)]
pub struct FacetValueJson<'a> {
    /// A category path, an option value, or a price bucket `lower-upper` in
    /// minor units (upper excluded; the last is `lower-`).
    value: &'a str,
    count: u64,
}

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SearchResults)]
pub struct SearchJson<'a> {
    items: Vec<HitJson<'a>>,
    /// Each facet asked for → its values over every match, counted with every
    /// filter but the facet's own.
    facets: BTreeMap<String, Vec<FacetValueJson<'a>>>,
    /// Every match, not only this page.
    total: u64,
    /// Opaque; pass it back as `cursor` (with the same search) for the next page.
    next_cursor: Option<String>,
}

/// `facets=category,option.Size,price`: each at most once, in the order asked.
fn facets(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Vec<FacetName> {
    let mut out: Vec<FacetName> = Vec::new();
    for name in raw.into_iter().flat_map(|r| r.split(',')) {
        let facet = match name.trim() {
            "category" => FacetName::Category,
            "price" => FacetName::Price,
            other => match other.strip_prefix(OPTION_PARAM) {
                Some(option)
                    if !option.trim().is_empty()
                        && option.chars().count() <= OPTION_NAME_CHARS_MAX =>
                {
                    FacetName::Option(option.trim().to_owned())
                }
                _ => {
                    errors.push(FieldError::new(
                        "facets",
                        format!("`{other}` is not a facet: category, price or option.NAME"),
                    ));
                    continue;
                }
            },
        };
        if !out.contains(&facet) {
            out.push(facet);
        }
    }
    if out.len() > SEARCH_FACETS_MAX {
        errors.push(FieldError::new(
            "facets",
            format!("at most {SEARCH_FACETS_MAX} facets"),
        ));
    }
    out
}

/// The search a query string asks for: the request, the page size, the cursor.
fn search_of(raw: &str) -> Result<(SearchRequest, usize, Option<SearchCursor>), ApiError> {
    let mut names = vec!["q", "limit", "cursor", "facets"];
    names.extend(FILTER_PARAMS);
    let params = QueryParams::parse_with_prefix(raw, &names, Some(OPTION_PARAM))?;
    let mut errors = Vec::new();
    let text = match params.get("q") {
        Some(q) if q.chars().count() > SEARCH_TEXT_CHARS_MAX => {
            errors.push(FieldError::new(
                "q",
                format!("must be at most {SEARCH_TEXT_CHARS_MAX} characters"),
            ));
            String::new()
        }
        q => q.unwrap_or_default().trim().to_owned(),
    };
    let max = u64::try_from(SEARCH_LIMIT_MAX).unwrap_or(u64::MAX);
    let limit = params
        .integer("limit", 1, max, &mut errors)
        .unwrap_or(LIMIT_DEFAULT);
    let filters = list_filters(&params, &mut errors);
    let facets = facets(params.get("facets"), &mut errors);
    let cursor = params.cursor::<SearchCursor>(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let request = SearchRequest {
        text,
        category: filters.category,
        group: filters.group,
        options: filters.options,
        min_price: filters.min_price,
        max_price: filters.max_price,
        in_stock: filters.in_stock,
        facets,
    };
    Ok((
        request,
        usize::try_from(limit).unwrap_or(SEARCH_LIMIT_MAX),
        cursor,
    ))
}

#[utoipa::path(get, operation_id = "search", summary = "Search products", path = "/api/v1/search", tag = "catalog", security(),
    params(("q" = Option<String>, Query, max_length = 200, description = "Words to find in names, groups, option values, categories, barcodes and descriptions (case and accents ignored); the last word also matches as a prefix, words of 5+ characters with one typo, 9+ with two; a SKU or barcode typed exactly ranks first. Without it every product matches"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, default 20"),
        ("cursor" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$", description = "`next_cursor` of the previous page (valid 10 minutes with the same search)"),
        ("facets" = Option<String>, Query, description = "Comma-separated: `category`, `price`, `option.NAME` (at most 6)"),
        ("category" = Option<String>, Query, min_length = 1, max_length = 332, pattern = ".*\\S.*", description = "A category path: that category and everything below it"),
        ("group" = Option<String>, Query, min_length = 1, max_length = 64, pattern = "^[a-z0-9-]+$", description = "Only the variants of this group"),
        ("option.{name}" = Option<String>, Query, min_length = 1, max_length = 64, description = "Only products whose option `name` has this value; repeatable"),
        ("min_price_cents" = Option<u64>, Query, minimum = 0, maximum = 100_000_000_000_i64),
        ("max_price_cents" = Option<u64>, Query, minimum = 0, maximum = 100_000_000_000_i64),
        ("in_stock" = Option<bool>, Query, description = "Only products with stock")),
    responses((status = 200, description = "A page of hits, best first", body = SearchJson),
        crate::error::responses::Invalid, crate::error::responses::Unavailable))]
pub async fn search(
    state: web::Data<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let (request, limit, cursor) = search_of(&raw)?;
    let answer = state
        .search
        .ask(Search {
            request,
            limit,
            cursor,
        })
        .await??;
    let skus = answer.hits.iter().map(|h| h.sku.clone()).collect();
    let products = state.catalog.ask(GetProducts { skus }).await??;
    let by_sku: HashMap<&str, &Product> = products.iter().map(|p| (p.sku.as_str(), p)).collect();
    let items = answer
        .hits
        .iter()
        .filter_map(|hit| {
            by_sku.get(hit.sku.as_str()).map(|p| HitJson {
                product: json::product(p, &state.currency),
                score: hit.score,
            })
        })
        .collect();
    let facets = answer
        .facets
        .iter()
        .map(|(name, values)| (name.label(), values.iter().map(value_json).collect()))
        .collect();
    Ok(HttpResponse::Ok().json(SearchJson {
        items,
        facets,
        total: answer.total,
        next_cursor: answer.next.as_ref().map(json::encode_cursor),
    }))
}

fn value_json(v: &FacetValue) -> FacetValueJson<'_> {
    FacetValueJson {
        value: &v.value,
        count: v.count,
    }
}
