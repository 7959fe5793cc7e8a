//! The catalog: public reads; admin writes, stock and movements; ledger verification.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::auth::required;
use super::extract::{QueryParams, RawQuery, StrictJson};
use super::{json, method_not_allowed};
use crate::auth::Admin;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::catalog::{
    ArchiveProduct, CreateProduct, GetProduct, ListCategories, ListCursor, ListProducts,
    PatchProduct, ProductDraft, ProductPatch, ProductQuery, ProductSort, ReplaceProduct,
};
use orderflow_actors::domain::{
    Category, Cents, Currency, Description, ProductName, Reason, Sku, StockDelta, StockLevel,
};
use orderflow_actors::ledger::{AdjustStock, ListMovements, VerifyLedger};
use orderflow_actors::limits::{PAGE_ITEMS_DEFAULT, PAGE_ITEMS_MAX, PRICE_CENTS_MAX};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/products")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/products/{sku}")
            .route(web::get().to(get))
            .route(web::put().to(replace))
            .route(web::patch().to(patch))
            .route(web::delete().to(archive))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/products/{sku}/stock")
            .route(web::post().to(adjust_stock))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/products/{sku}/movements")
            .route(web::get().to(movements))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/categories")
            .route(web::get().to(categories))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/admin/ledger/verify")
            .route(web::get().to(verify))
            .default_service(method_not_allowed()),
    );
}

/// A SKU from the path; one that cannot exist is simply not found.
fn path_sku(raw: &str) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|_| ApiError::not_found(format!("no product with SKU {raw}")))
}

const LIST_PARAMS: [&str; 8] = [
    "limit",
    "cursor",
    "category",
    "q",
    "min_price_cents",
    "max_price_cents",
    "in_stock",
    "sort",
];

fn product_query(raw: &str) -> Result<ProductQuery, ApiError> {
    let params = QueryParams::parse(raw, &LIST_PARAMS)?;
    let mut errors = Vec::new();
    let limit = params
        .integer("limit", 1, PAGE_ITEMS_MAX as u64, &mut errors)
        .unwrap_or(PAGE_ITEMS_DEFAULT as u64);
    let min_price = params.integer("min_price_cents", 0, PRICE_CENTS_MAX, &mut errors);
    let max_price = params.integer("max_price_cents", 0, PRICE_CENTS_MAX, &mut errors);
    if let (Some(lo), Some(hi)) = (min_price, max_price)
        && lo > hi
    {
        errors.push(FieldError::new(
            "max_price_cents",
            "must not be below min_price_cents",
        ));
    }
    let in_stock = params.boolean("in_stock", &mut errors).unwrap_or(false);
    let sort = match params.get("sort") {
        None | Some("sku") => ProductSort::Sku,
        Some("price") => ProductSort::PriceAsc,
        Some("-price") => ProductSort::PriceDesc,
        Some("name") => ProductSort::Name,
        Some(_) => {
            errors.push(FieldError::new(
                "sort",
                "must be one of sku, price, -price, name",
            ));
            ProductSort::Sku
        }
    };
    let text = |key: &str, errors: &mut Vec<FieldError>| match params.get(key) {
        Some(v) if v.trim().is_empty() || v.chars().count() > 200 => {
            errors.push(FieldError::new(key, "must be 1 to 200 characters"));
            None
        }
        v => v.map(|v| v.trim().to_lowercase()),
    };
    let category = text("category", &mut errors);
    let name_contains = text("q", &mut errors);
    let after = match params.get("cursor") {
        Some(raw) => match json::decode_cursor::<ListCursor>(raw) {
            Ok(c) => Some(c),
            Err(_) => {
                errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(ProductQuery {
        limit: limit as usize,
        after,
        category,
        name_contains,
        min_price,
        max_price,
        in_stock,
        sort,
    })
}

async fn list(
    state: web::Data<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let query = product_query(&raw)?;
    let page = state.catalog.ask(ListProducts { query }).await??;
    let items = page
        .items
        .iter()
        .map(|p| json::product(p, &state.currency))
        .collect();
    let next = page.next.as_ref().map(json::encode_cursor);
    Ok(HttpResponse::Ok().json(json::page(items, next)))
}

async fn get(state: web::Data<AppState>, sku: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    match state.catalog.ask(GetProduct { sku: sku.clone() }).await?? {
        Some(p) => Ok(HttpResponse::Ok().json(json::product(&p, &state.currency))),
        None => Err(ApiError::not_found(format!("no product with SKU {sku}"))),
    }
}

async fn categories(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.catalog.ask(ListCategories).await??;
    let body: Vec<_> = all
        .iter()
        .map(|(name, count)| json!({"name": name, "product_count": count}))
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

/// The body of a create or replace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    sku: Option<String>,
    name: Option<String>,
    category: Option<String>,
    description: Option<String>,
    price_cents: Option<i64>,
    stock: Option<i64>,
    currency: Option<String>,
}

struct ValidProduct {
    sku: Option<Sku>,
    draft: ProductDraft,
    stock: Option<StockLevel>,
}

fn validate_product(
    body: ProductBody,
    currency: Currency,
    sku_required: bool,
) -> Result<ValidProduct, ApiError> {
    let mut errors = Vec::new();
    let sku = match (&body.sku, sku_required) {
        (None, true) => {
            errors.push(FieldError::new("sku", "is required"));
            None
        }
        (None, false) => None,
        (Some(raw), _) => Sku::parse(raw)
            .map_err(|e| errors.push(FieldError::new("sku", e.to_string())))
            .ok(),
    };
    let name = required(
        "name",
        body.name.as_deref(),
        ProductName::parse,
        &mut errors,
    );
    let category = match body.category.as_deref() {
        None => Some(Category::uncategorized()),
        Some(raw) => Category::parse(raw)
            .map_err(|e| errors.push(FieldError::new("category", e.to_string())))
            .ok(),
    };
    let description = match body.description.as_deref() {
        None => Some(None),
        Some(raw) => Description::parse(raw)
            .map(Some)
            .map_err(|e| errors.push(FieldError::new("description", e.to_string())))
            .ok(),
    };
    let price = match body.price_cents {
        None => {
            errors.push(FieldError::new("price_cents", "is required"));
            None
        }
        Some(v) => Cents::new(v)
            .map_err(|e| errors.push(FieldError::new("price_cents", e.to_string())))
            .ok(),
    };
    let stock = match body.stock {
        None => Some(None),
        Some(v) => StockLevel::new(v)
            .map(Some)
            .map_err(|e| errors.push(FieldError::new("stock", e.to_string())))
            .ok(),
    };
    check_currency(body.currency.as_deref(), currency, &mut errors);
    match (name, category, description, price, stock) {
        (Some(name), Some(category), Some(description), Some(price), Some(stock))
            if errors.is_empty() =>
        {
            Ok(ValidProduct {
                sku,
                draft: ProductDraft {
                    name,
                    category,
                    description,
                    price,
                },
                stock,
            })
        }
        _ => Err(ApiError::validation(errors)),
    }
}

fn check_currency(given: Option<&str>, store: Currency, errors: &mut Vec<FieldError>) {
    if let Some(code) = given
        && code != store.code()
    {
        errors.push(FieldError::new(
            "currency",
            format!("must be the store currency {store}"),
        ));
    }
}

async fn create(
    _admin: Admin,
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<ProductBody>,
) -> Result<HttpResponse, ApiError> {
    let valid = validate_product(body, state.currency, true)?;
    let sku = valid.sku.expect("required above");
    let product = state
        .catalog
        .ask(CreateProduct {
            sku,
            draft: valid.draft,
            stock: valid.stock,
        })
        .await??;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/products/{}", product.sku)))
        .json(json::product(&product, &state.currency)))
}

async fn replace(
    _admin: Admin,
    state: web::Data<AppState>,
    sku: web::Path<String>,
    StrictJson(body): StrictJson<ProductBody>,
) -> Result<HttpResponse, ApiError> {
    let sku = Sku::parse(&sku).map_err(|e| ApiError::field("sku", e.to_string()))?;
    let valid = validate_product(body, state.currency, false)?;
    if valid.sku.as_ref().is_some_and(|s| *s != sku) {
        return Err(ApiError::field("sku", "must match the SKU in the path"));
    }
    let (product, created) = state
        .catalog
        .ask(ReplaceProduct {
            sku,
            draft: valid.draft,
            stock: valid.stock,
        })
        .await??;
    let body = json::product(&product, &state.currency);
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn explicit_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    name: Option<String>,
    category: Option<String>,
    #[serde(default, deserialize_with = "explicit_null")]
    description: Option<Option<String>>,
    price_cents: Option<i64>,
    currency: Option<String>,
}

async fn patch(
    _admin: Admin,
    state: web::Data<AppState>,
    sku: web::Path<String>,
    StrictJson(body): StrictJson<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    let mut errors = Vec::new();
    let mut patch = ProductPatch::default();
    let mut note = |field: &str, e: orderflow_actors::domain::InvalidValue| {
        errors.push(FieldError::new(field, e.to_string()))
    };
    if let Some(raw) = body.name.as_deref() {
        patch.name = ProductName::parse(raw).map_err(|e| note("name", e)).ok();
    }
    if let Some(raw) = body.category.as_deref() {
        patch.category = Category::parse(raw).map_err(|e| note("category", e)).ok();
    }
    match body.description {
        Some(Some(raw)) => {
            patch.description = Description::parse(&raw)
                .map(Some)
                .map_err(|e| note("description", e))
                .ok()
        }
        Some(None) => patch.description = Some(None),
        None => {}
    }
    if let Some(v) = body.price_cents {
        patch.price = Cents::new(v).map_err(|e| note("price_cents", e)).ok();
    }
    check_currency(body.currency.as_deref(), state.currency, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let product = state.catalog.ask(PatchProduct { sku, patch }).await??;
    Ok(HttpResponse::Ok().json(json::product(&product, &state.currency)))
}

async fn archive(
    _admin: Admin,
    state: web::Data<AppState>,
    sku: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    state.catalog.ask(ArchiveProduct { sku }).await??;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockBody {
    delta: Option<i64>,
    reason: Option<String>,
}

async fn adjust_stock(
    _admin: Admin,
    state: web::Data<AppState>,
    sku: web::Path<String>,
    StrictJson(body): StrictJson<StockBody>,
) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    let mut errors = Vec::new();
    let delta = match body.delta {
        None => {
            errors.push(FieldError::new("delta", "is required"));
            None
        }
        Some(v) => StockDelta::new(v)
            .map_err(|e| errors.push(FieldError::new("delta", e.to_string())))
            .ok(),
    };
    let reason = required("reason", body.reason.as_deref(), Reason::parse, &mut errors);
    let (Some(delta), Some(reason)) = (delta, reason) else {
        return Err(ApiError::validation(errors));
    };
    let movement = state
        .ledger
        .ask(AdjustStock { sku, delta, reason })
        .await??;
    Ok(HttpResponse::Created().json(json::movement(&movement)))
}

async fn movements(
    _admin: Admin,
    state: web::Data<AppState>,
    sku: web::Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    let params = QueryParams::parse(&raw, &["limit", "cursor"])?;
    let mut errors = Vec::new();
    let limit = params
        .integer("limit", 1, PAGE_ITEMS_MAX as u64, &mut errors)
        .unwrap_or(PAGE_ITEMS_DEFAULT as u64);
    let after = match params.get("cursor").map(json::decode_cursor::<u64>) {
        Some(Ok(seq)) => Some(seq),
        Some(Err(_)) => {
            errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
            None
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = state
        .ledger
        .ask(ListMovements {
            sku: sku.clone(),
            after,
            limit: limit as usize,
        })
        .await??
        .ok_or_else(|| ApiError::not_found(format!("no product with SKU {sku}")))?;
    let items = page.items.iter().map(json::movement).collect();
    Ok(HttpResponse::Ok().json(json::page(
        items,
        page.next.as_ref().map(json::encode_cursor),
    )))
}

async fn verify(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let report = state.ledger.ask(VerifyLedger).await??;
    Ok(HttpResponse::Ok().json(json!({
        "skus_checked": report.skus_checked,
        "orders_checked": report.orders_checked,
        "problems": report.problems,
    })))
}
