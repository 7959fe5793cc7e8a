//! The catalog: public reads; admin writes, stock and movements; ledger verification.
//!
//! Why one file: the catalog's routes share their query parsing and one OpenAPI
//! fragment; split by verb, each part would import the others.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer};

use super::json;
use super::routes::Routes;
use super::strict::{QueryParams, RawQuery, StrictJson};
use super::strict::{optional, required};
use crate::auth::{Admin, scope};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::catalog::{
    Attributes, GetProduct, ListCategories, ListCursor, ListProducts, ProductDraft, ProductPatch,
    ProductQuery, ProductSort,
};
use orderflow_actors::domain::{
    Barcode, Category, Cents, Currency, Description, GroupHandle, Options, ProductName, Reason,
    Sku, StockDelta, StockLevel, TaxClass, WeightGrams, fold_case,
};
use orderflow_actors::ledger::{
    AdjustStock, ArchiveProduct, CreateProduct, ListMovements, PatchProduct, ReplaceProduct,
    VerifyLedger,
};
use orderflow_actors::limits::{
    CATEGORY_PATH_CHARS_MAX, LIST_FILTER_CHARS_MAX, OPTIONS_MAX, PRICE_CENTS_MAX, STOCK_UNITS_MAX,
};

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, replace, patch, archive, adjust_stock, movements, categories, verify), components(schemas(json::PageJson<json::ProductJson>, json::PageJson<json::MovementJson>)))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/products", |m| m.get(list).post(create));
    r.add("/products/{sku}", |m| {
        m.get(get).put(replace).patch(patch).delete(archive)
    });
    r.add("/products/{sku}/stock", |m| m.post(adjust_stock));
    r.add("/products/{sku}/movements", |m| m.get(movements));
    r.add("/categories", |m| m.get(categories));
    r.add("/admin/ledger/verify", |m| m.get(verify));
}

/// A SKU from the path; one that cannot exist is simply not found.
fn path_sku(raw: &str) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|_| ApiError::not_found(format!("no product with SKU {raw}")))
}

const LIST_PARAMS: [&str; 10] = [
    "group",
    "limit",
    "cursor",
    "category",
    "q",
    "min_price_cents",
    "max_price_cents",
    "in_stock",
    "max_stock",
    "sort",
];

/// The prefix of the `option.NAME=VALUE` filters.
pub(super) const OPTION_PARAM: &str = "option.";

/// The filters a product list and a search share (contract §7: category
/// subtree, price range, `in_stock`, `group`, `option.NAME`), parsed from
/// `params`; a bad one adds its field error.
pub(super) struct ListFilters {
    /// A category key: that category and everything below it.
    pub category: Option<String>,
    pub group: Option<GroupHandle>,
    /// Folded as `Options::values_key` keeps them.
    pub options: Vec<(String, String)>,
    pub min_price: Option<u64>,
    pub max_price: Option<u64>,
    pub in_stock: bool,
}

/// The parameters [`ListFilters`] reads (besides the `option.` ones).
pub(super) const FILTER_PARAMS: [&str; 5] = [
    "category",
    "group",
    "min_price_cents",
    "max_price_cents",
    "in_stock",
];

pub(super) fn list_filters(params: &QueryParams, errors: &mut Vec<FieldError>) -> ListFilters {
    let min_price = params.integer("min_price_cents", 0, PRICE_CENTS_MAX, errors);
    let max_price = params.integer("max_price_cents", 0, PRICE_CENTS_MAX, errors);
    if let (Some(lo), Some(hi)) = (min_price, max_price)
        && lo > hi
    {
        errors.push(FieldError::new(
            "max_price_cents",
            "must not be below min_price_cents",
        ));
    }
    let in_stock = params.boolean("in_stock", errors).unwrap_or(false);
    // A path: it and everything below it, compared as `Category::key`.
    let category = filter_text(params, "category", CATEGORY_PATH_CHARS_MAX, errors).and_then(|v| {
        Category::parse(&v)
            .map(|c| c.key())
            .map_err(|e| errors.push(FieldError::new("category", e.to_string())))
            .ok()
    });
    let group = optional("group", params.get("group"), GroupHandle::parse, errors).flatten();
    // Every option filter must hold; names and values compared folded, as
    // `Options::values_key` keeps them.
    let pairs: Vec<(&str, &str)> = params.with_prefix(OPTION_PARAM).collect();
    let options = match Options::parse(pairs.iter().copied()) {
        Ok(options) => options.values_key(),
        Err(e) => {
            let name = pairs.first().map_or("", |(n, _)| n);
            errors.push(FieldError::new(
                format!("{OPTION_PARAM}{name}"),
                e.to_string(),
            ));
            Vec::new()
        }
    };
    ListFilters {
        category,
        group,
        options,
        min_price,
        max_price,
        in_stock,
    }
}

/// A free-text parameter, trimmed and case-folded; 1 to `max` characters.
fn filter_text(
    params: &QueryParams,
    key: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match params.get(key) {
        Some(v) if v.trim().is_empty() || v.chars().count() > max => {
            errors.push(FieldError::new(
                key,
                format!("must be 1 to {max} characters"),
            ));
            None
        }
        v => v.map(|v| fold_case(v.trim())),
    }
}

fn product_query(raw: &str) -> Result<ProductQuery, ApiError> {
    let params = QueryParams::parse_with_prefix(raw, &LIST_PARAMS, Some(OPTION_PARAM))?;
    let mut errors = Vec::new();
    let limit = params.page_limit(&mut errors);
    let filters = list_filters(&params, &mut errors);
    let max_stock = params.integer("max_stock", 0, STOCK_UNITS_MAX, &mut errors);
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
    let name_contains = filter_text(&params, "q", LIST_FILTER_CHARS_MAX, &mut errors);
    let after = params.cursor::<ListCursor>(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(ProductQuery {
        limit,
        after,
        category: filters.category,
        name_contains,
        group: filters.group,
        options: filters.options,
        min_price: filters.min_price,
        max_price: filters.max_price,
        in_stock: filters.in_stock,
        max_stock,
        sort,
    })
}

#[utoipa::path(get, operation_id = "products_list", summary = "List products", path = "/api/v1/products", tag = "catalog", security(),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"), ("cursor" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$", description = "`next_cursor` of the previous page"),
        ("category" = Option<String>, Query, min_length = 1, max_length = 332, pattern = ".*\\S.*", description = "A category path (levels separated by ` > `), without regard to case: that category and everything below it"),
        ("group" = Option<String>, Query, min_length = 1, max_length = 64, pattern = "^[a-z0-9-]+$", description = "Only the variants of this group"),
        ("option.{name}" = Option<String>, Query, min_length = 1, max_length = 64, description = "Only products whose option `name` has this value (both without regard to case); one parameter per option, e.g. `option.Size=M&option.Color=Black`"),
        ("q" = Option<String>, Query, min_length = 1, max_length = 200, pattern = ".*\\S.*", description = "Text the name contains, without regard to case"),
        ("min_price_cents" = Option<u64>, Query, minimum = 0, maximum = 100_000_000_000_i64),
        ("max_price_cents" = Option<u64>, Query, minimum = 0, maximum = 100_000_000_000_i64),
        ("in_stock" = Option<bool>, Query, description = "Only products with stock"),
        ("max_stock" = Option<u64>, Query, minimum = 0, maximum = 1_000_000_000, description = "Only products with at most this many in stock (low stock)"),
        ("sort" = Option<String>, Query, pattern = "^(sku|price|-price|name)$", description = "`sku` (default), `price`, `-price` or `name`")),
    responses((status = 200, description = "A page of active products", body = json::PageJson<json::ProductJson>), crate::error::responses::Invalid, crate::error::responses::Unavailable))]
pub async fn list(
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

#[utoipa::path(get, operation_id = "products_get", summary = "Get a product", path = "/api/v1/products/{sku}", tag = "catalog", security(), params(("sku" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$", description = "The product's SKU")),
    responses((status = 200, description = "The product", body = json::ProductJson), crate::error::responses::Missing, crate::error::responses::Unavailable))]
pub async fn get(
    state: web::Data<AppState>,
    sku: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    // A hit is answered here, without the catalog's pool; a miss reads and keeps
    // the bytes unless the ledger changed this product meanwhile (the stamp).
    let miss = match state.product_cache.as_ref().map(|c| (c, c.get(&sku))) {
        Some((_, Ok(bytes))) => return Ok(json_bytes(bytes)),
        Some((cache, Err(stamp))) => Some((cache, stamp)),
        None => None,
    };
    match state.catalog.ask(GetProduct { sku: sku.clone() }).await?? {
        Some(p) => {
            let bytes = web::Bytes::from(
                serde_json::to_vec(&json::product(&p, &state.currency))
                    .map_err(|e| ApiError::internal(format!("encoding a product: {e}")))?,
            );
            if let Some((cache, stamp)) = miss {
                cache.put(&sku, stamp, bytes.clone());
            }
            Ok(json_bytes(bytes))
        }
        None => Err(ApiError::not_found(format!("no product with SKU {sku}"))),
    }
}

fn json_bytes(bytes: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(bytes)
}

#[utoipa::path(get, operation_id = "products_categories", summary = "The category tree with subtree product counts", path = "/api/v1/categories", tag = "catalog", security(),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"),
        ("parent" = Option<String>, Query, min_length = 1, max_length = 332, pattern = ".*\\S.*", description = "A category path (levels separated by ` > `), without regard to case: only the categories one level below it"),
        ("cursor" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$", description = "From the previous page's `Link: <…>; rel=\"next\"`")),
    responses((status = 200, description = "Every category with active products at or below it, depth first (a parent before its children, siblings by name without regard to case); `product_count` counts the whole subtree. The body stays a plain array; when more follow, a `Link` header (RFC 8288) with `rel=\"next\"` gives the next page's URL", body = Vec<json::CategoryJson>,
            headers(("Link" = String, description = "`<URL of the next page>; rel=\"next\"`, only when more categories follow"))),
        crate::error::responses::Invalid, crate::error::responses::Unavailable))]
pub async fn categories(
    state: web::Data<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let params = QueryParams::parse(&raw, &["limit", "cursor", "parent"])?;
    let mut errors = Vec::new();
    let limit = params.page_limit(&mut errors);
    let after = params.cursor::<String>(&mut errors);
    let parent = params.get("parent").and_then(|raw| {
        Category::parse(raw)
            .map(|c| c.as_str().to_owned())
            .map_err(|e| errors.push(FieldError::new("parent", e.to_string())))
            .ok()
    });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let query = ListCategories {
        parent,
        after,
        limit,
    };
    let parent_param = query
        .parent
        .as_deref()
        .and_then(|p| serde_urlencoded::to_string([("parent", p)]).ok())
        .map(|pair| format!("&{pair}"))
        .unwrap_or_default();
    let page = state.catalog.ask(query).await??;
    let body: Vec<json::CategoryJson> = page
        .items
        .into_iter()
        .map(json::CategoryJson::from)
        .collect();
    let mut res = HttpResponse::Ok();
    if let Some(next) = page.next {
        res.insert_header((
            "Link",
            format!(
                "</api/v1/categories?limit={limit}{parent_param}&cursor={}>; rel=\"next\"",
                json::encode_cursor(&next)
            ),
        ));
    }
    Ok(res.json(body))
}

/// The body of a create or replace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    /// Required on create; on replace, optional and equal to the path's.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$")]
    sku: Option<String>,
    #[schema(required = true, schema_with = text::name)]
    name: Option<String>,
    #[schema(schema_with = text::category_or_default)]
    category: Option<String>,
    #[schema(schema_with = text::description)]
    description: Option<String>,
    /// Minor units of the store currency.
    #[schema(
        required = true,
        nullable = false,
        minimum = 1,
        maximum = 100_000_000_000_i64
    )]
    price_cents: Option<i64>,
    /// Initial (create) or absolute (replace) stock, through a ledger movement.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    stock: Option<i64>,
    /// If given, must be the store currency.
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
    /// Default 0 (shipping rates use it).
    #[schema(minimum = 0, maximum = 10_000_000)]
    weight_grams: Option<i64>,
    /// Which tax rates apply; default `standard`.
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z0-9_-]+$")]
    tax_class: Option<String>,
    /// A GTIN (8 to 14 digits, its check digit verified).
    #[schema(min_length = 8, max_length = 14, pattern = "^[0-9]+$")]
    barcode: Option<String>,
    /// The variant group (Shopify's handle, Google's `item_group_id`): every
    /// product of a group has the same option names, and no two the same values.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9-]+$")]
    group: Option<String>,
    /// Option name → value, e.g. `{"Size": "M", "Color": "Black"}`; only with a
    /// `group`. Names 1–32 characters, distinct without regard to case; values
    /// 1–64.
    #[schema(schema_with = text::options)]
    options: Option<OptionPairs>,
}

/// An object of option names to values, in the order written (a JSON object's
/// order is its author's; the map type would sort it).
#[derive(Debug, Default)]
pub struct OptionPairs(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OptionPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = OptionPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of option names to string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OptionPairs, A::Error> {
                let mut pairs = Vec::new();
                // One more than allowed is enough to refuse: the rest is not read.
                while pairs.len() <= OPTIONS_MAX
                    && let Some(pair) = map.next_entry::<String, String>()?
                {
                    pairs.push(pair);
                }
                Ok(OptionPairs(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
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
    let sku = if sku_required {
        required("sku", body.sku.as_deref(), Sku::parse, &mut errors).map(Some)
    } else {
        optional("sku", body.sku.as_deref(), Sku::parse, &mut errors)
    }
    .flatten();
    let name = required(
        "name",
        body.name.as_deref(),
        ProductName::parse,
        &mut errors,
    );
    let category = optional(
        "category",
        body.category.as_deref(),
        Category::parse,
        &mut errors,
    )
    .map(|c| c.unwrap_or_else(Category::uncategorized));
    let description = optional(
        "description",
        body.description.as_deref(),
        Description::parse,
        &mut errors,
    );
    let price = required("price_cents", body.price_cents, Cents::new, &mut errors);
    let stock = optional("stock", body.stock, StockLevel::new, &mut errors);
    let attributes = attributes(&body, &mut errors);
    check_currency(body.currency.as_deref(), currency, &mut errors);
    match (name, category, description, price, stock, attributes) {
        (
            Some(name),
            Some(category),
            Some(description),
            Some(price),
            Some(stock),
            Some(attributes),
        ) if errors.is_empty() => Ok(ValidProduct {
            sku,
            draft: ProductDraft {
                attributes,
                name,
                category,
                description,
                price,
            },
            stock,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

/// The §7 fields of a create or replace, each default when absent.
fn attributes(body: &ProductBody, errors: &mut Vec<FieldError>) -> Option<Attributes> {
    let weight = optional("weight_grams", body.weight_grams, WeightGrams::new, errors);
    let tax_class = optional(
        "tax_class",
        body.tax_class.as_deref(),
        TaxClass::parse,
        errors,
    );
    let barcode = optional("barcode", body.barcode.as_deref(), Barcode::parse, errors);
    let group = optional("group", body.group.as_deref(), GroupHandle::parse, errors);
    let options = optional(
        "options",
        body.options.as_ref(),
        |pairs| Options::parse(pairs.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        errors,
    );
    let (group, options) = (group?, options?.unwrap_or_default());
    if group.is_none() && !options.is_empty() {
        errors.push(FieldError::new(
            "options",
            "are only for a product of a `group`",
        ));
        return None;
    }
    Some(Attributes {
        group,
        options,
        weight: weight?.unwrap_or_default(),
        tax_class: tax_class?.unwrap_or_default(),
        barcode: barcode?,
    })
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

#[utoipa::path(post, operation_id = "products_create", summary = "Create a product", path = "/api/v1/products", tag = "catalog", security(("bearer" = ["catalog:write"])), request_body = ProductBody,
    responses((status = 201, description = "Created", body = json::ProductJson,
            headers(("Location" = String, description = "The product's URL")),
            links(("GetProduct" = (operation_id = "products_get", parameters(("sku" = "$response.body#/sku")))),
                ("ProductMovements" = (operation_id = "products_movements", parameters(("sku" = "$response.body#/sku")))),
                ("AdjustStock" = (operation_id = "products_adjust_stock", parameters(("sku" = "$response.body#/sku")))))), crate::error::responses::Conflict, crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn create(
    _admin: Admin<scope::CatalogWrite>,
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<ProductBody>,
) -> Result<HttpResponse, ApiError> {
    let valid = validate_product(body, state.currency, true)?;
    let sku = valid.sku.expect("required above");
    let product = state
        .ledger
        .ask_write(CreateProduct {
            sku,
            draft: valid.draft,
            stock: valid.stock,
        })
        .await??;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/products/{}", product.sku)))
        .json(json::product(&product, &state.currency)))
}

#[utoipa::path(put, operation_id = "products_replace", summary = "Replace a product", path = "/api/v1/products/{sku}", tag = "catalog", security(("bearer" = ["catalog:write"])), params(("sku" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$", description = "The product's SKU")), request_body = ProductBody,
    responses((status = 200, description = "Replaced", body = json::ProductJson), (status = 201, description = "Created", body = json::ProductJson),
        crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn replace(
    _admin: Admin<scope::CatalogWrite>,
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
        .ledger
        .ask_write(ReplaceProduct {
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[schema(schema_with = text::name_or_null)]
    name: Option<String>,
    #[schema(schema_with = text::category)]
    category: Option<String>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(schema_with = text::description_or_clear)]
    description: Option<Option<String>>,
    #[schema(minimum = 1, maximum = 100_000_000_000_i64)]
    price_cents: Option<i64>,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
    #[schema(minimum = 0, maximum = 10_000_000)]
    weight_grams: Option<i64>,
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z0-9_-]+$")]
    tax_class: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(value_type = Option<String>, nullable = true, min_length = 8, max_length = 14, pattern = "^[0-9]+$")]
    barcode: Option<Option<String>>,
}

#[utoipa::path(patch, operation_id = "products_patch", summary = "Change some fields of a product", path = "/api/v1/products/{sku}", tag = "catalog", security(("bearer" = ["catalog:write"])), params(("sku" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$", description = "The product's SKU")), request_body = PatchBody,
    responses((status = 200, description = "Updated", body = json::ProductJson), crate::error::responses::Missing, crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn patch(
    _admin: Admin<scope::CatalogWrite>,
    state: web::Data<AppState>,
    sku: web::Path<String>,
    StrictJson(body): StrictJson<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    let mut errors = Vec::new();
    let mut patch = ProductPatch::default();
    let e = &mut errors;
    // In the body's order; an explicit `null` clears the description and the
    // barcode (`optional` answers `Some(None)` for it).
    patch.name = optional("name", body.name.as_deref(), ProductName::parse, e).flatten();
    patch.category = optional("category", body.category.as_deref(), Category::parse, e).flatten();
    if let Some(raw) = &body.description {
        patch.description = optional("description", raw.as_deref(), Description::parse, e);
    }
    patch.price = optional("price_cents", body.price_cents, Cents::new, e).flatten();
    patch.weight = optional("weight_grams", body.weight_grams, WeightGrams::new, e).flatten();
    patch.tax_class =
        optional("tax_class", body.tax_class.as_deref(), TaxClass::parse, e).flatten();
    if let Some(raw) = &body.barcode {
        patch.barcode = optional("barcode", raw.as_deref(), Barcode::parse, e);
    }
    check_currency(body.currency.as_deref(), state.currency, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let product = state
        .ledger
        .ask_write(PatchProduct { sku, patch })
        .await??;
    Ok(HttpResponse::Ok().json(json::product(&product, &state.currency)))
}

#[utoipa::path(delete, operation_id = "products_archive", summary = "Archive a product", path = "/api/v1/products/{sku}", tag = "catalog", security(("bearer" = ["catalog:write"])), params(("sku" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$", description = "The product's SKU")),
    responses((status = 204, description = "Archived: no longer listed; orders keep their lines"), crate::error::responses::Missing, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn archive(
    _admin: Admin<scope::CatalogWrite>,
    state: web::Data<AppState>,
    sku: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    state.ledger.ask_write(ArchiveProduct { sku }).await??;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockBody {
    /// Units added (a `receipt`) or removed (an `adjustment`); not zero.
    #[schema(required = true, nullable = false, minimum = -1_000_000_000, maximum = 1_000_000_000)]
    delta: Option<i64>,
    #[schema(required = true, schema_with = text::reason)]
    reason: Option<String>,
}

#[utoipa::path(post, operation_id = "products_adjust_stock", summary = "Adjust a product's stock", path = "/api/v1/products/{sku}/stock", tag = "catalog", security(("bearer" = ["stock:write"])), params(("sku" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$", description = "The product's SKU")), request_body = StockBody,
    responses((status = 201, description = "The movement recorded", body = json::MovementJson),
        crate::error::responses::Missing, crate::error::responses::Conflict, crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn adjust_stock(
    _admin: Admin<scope::StockWrite>,
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
        .ask_write(AdjustStock { sku, delta, reason })
        .await??;
    Ok(HttpResponse::Created().json(json::movement(&movement)))
}

#[utoipa::path(get, operation_id = "products_movements", summary = "List a product's stock movements", path = "/api/v1/products/{sku}/movements", tag = "catalog", security(("bearer" = ["stock:write"])), params(("sku" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$", description = "The product's SKU"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"), ("cursor" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "The SKU's movements, oldest first", body = json::PageJson<json::MovementJson>),
        crate::error::responses::Missing, crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn movements(
    _admin: Admin<scope::StockWrite>,
    state: web::Data<AppState>,
    sku: web::Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let sku = path_sku(&sku)?;
    let params = QueryParams::parse(&raw, &["limit", "cursor"])?;
    let mut errors = Vec::new();
    let limit = params.page_limit(&mut errors);
    let after = params.cursor::<u64>(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = state
        .ledger
        .ask(ListMovements {
            sku: sku.clone(),
            after,
            limit,
        })
        .await??
        .ok_or_else(|| ApiError::not_found(format!("no product with SKU {sku}")))?;
    let items = page.items.iter().map(json::movement).collect();
    Ok(HttpResponse::Ok().json(json::page(
        items,
        page.next.as_ref().map(json::encode_cursor),
    )))
}

#[utoipa::path(get, operation_id = "products_verify", summary = "Check the ledger's invariants", path = "/api/v1/admin/ledger/verify", tag = "catalog", security(("bearer" = [])),
    responses((status = 200, description = "Stock recomputed from movements, totals from lines", body = json::VerifyJson), crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn verify(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let report = state.ledger.ask(VerifyLedger).await??;
    Ok(HttpResponse::Ok().json(json::VerifyJson::from(report)))
}

/// The OpenAPI schemas of the catalog's free text, each bound from `limits`
/// and the one pattern of the domain's bounded text (no control characters but
/// tab and newline; a name, category or reason also has a character that is not
/// a space).
mod text {
    use orderflow_actors::limits::{
        CATEGORY_PATH_CHARS_MAX, DESCRIPTION_CHARS_MAX, OPTION_NAME_CHARS_MAX,
        OPTION_VALUE_CHARS_MAX, OPTIONS_MAX, PRODUCT_NAME_CHARS_MAX, REASON_CHARS_MAX,
    };
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

    const VISIBLE: &str = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$";
    const ANY: &str = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$";

    fn text(min: Option<usize>, max: usize, pattern: &str, null: bool) -> ObjectBuilder {
        let ty = if null {
            SchemaType::from_iter([Type::String, Type::Null])
        } else {
            SchemaType::Type(Type::String)
        };
        ObjectBuilder::new()
            .schema_type(ty)
            .min_length(min)
            .max_length(Some(max))
            .pattern(Some(pattern))
    }

    pub fn name() -> Object {
        text(Some(1), PRODUCT_NAME_CHARS_MAX, VISIBLE, false).build()
    }
    pub fn name_or_null() -> Object {
        text(Some(1), PRODUCT_NAME_CHARS_MAX, VISIBLE, true).build()
    }
    pub fn category() -> Object {
        text(Some(1), CATEGORY_PATH_CHARS_MAX, VISIBLE, true).build()
    }
    pub fn category_or_default() -> Object {
        text(Some(1), CATEGORY_PATH_CHARS_MAX, VISIBLE, true)
            .description(Some(
                "A path of 1 to 5 levels separated by ` > `, each 1 to 64 characters; \
                 default `uncategorized`.",
            ))
            .build()
    }
    /// An object of 0 to 3 option names to values (or null).
    pub fn options() -> Object {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
            .max_properties(Some(OPTIONS_MAX))
            .property_names(Some(text(Some(1), OPTION_NAME_CHARS_MAX, VISIBLE, false)))
            .additional_properties(Some(text(Some(1), OPTION_VALUE_CHARS_MAX, VISIBLE, false)))
            .build()
    }
    pub fn description() -> Object {
        text(None, DESCRIPTION_CHARS_MAX, ANY, true).build()
    }
    pub fn description_or_clear() -> Object {
        text(None, DESCRIPTION_CHARS_MAX, ANY, true)
            .description(Some("`null` clears it."))
            .build()
    }
    pub fn reason() -> Object {
        text(Some(1), REASON_CHARS_MAX, VISIBLE, false).build()
    }
}
