//! Variant groups (contract §7): `GET /groups/{handle}`, a group summed up from
//! its active products.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::json::{self, ProductJson};
use super::routes::Routes;
use crate::error::ApiError;
use crate::state::AppState;
use orderflow_actors::catalog::{GetGroup, Group};
use orderflow_actors::domain::{Currency, GroupHandle};

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(get))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/groups/{handle}", |m| m.get(get));
}

/// A variant group on the wire.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Group)]
pub struct GroupJson<'a> {
    handle: &'a str,
    /// The first product's (the earliest created).
    name: &'a str,
    description: Option<&'a str>,
    category: &'a str,
    /// Each option with its values, in first-seen order (first product first).
    options: Vec<OptionJson<'a>>,
    /// The active products of the group, first product first.
    variants: Vec<ProductJson<'a>>,
    price_min_cents: u64,
    price_max_cents: u64,
    /// Whether any variant has stock.
    in_stock: bool,
}

/// One option of a group with its values.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GroupOption)]
pub struct OptionJson<'a> {
    name: &'a str,
    values: Vec<&'a str>,
}

fn group_json<'a>(g: &'a Group, currency: &'a Currency) -> GroupJson<'a> {
    GroupJson {
        handle: g.handle.as_str(),
        name: g.name.as_str(),
        description: g.description.as_ref().map(|d| d.as_str()),
        category: g.category.as_str(),
        options: g
            .options
            .iter()
            .map(|o| OptionJson {
                name: &o.name,
                values: o.values.iter().map(String::as_str).collect(),
            })
            .collect(),
        variants: g
            .variants
            .iter()
            .map(|p| json::product(p, currency))
            .collect(),
        price_min_cents: g.price_min,
        price_max_cents: g.price_max,
        in_stock: g.in_stock,
    }
}

#[utoipa::path(get, operation_id = "groups_get", summary = "Get a variant group", path = "/api/v1/groups/{handle}", tag = "catalog", security(),
    params(("handle" = String, Path, min_length = 1, max_length = 64, pattern = "^[a-z0-9-]+$", description = "The group's handle")),
    responses((status = 200, description = "The group with its active variants", body = GroupJson), crate::error::responses::Missing, crate::error::responses::Unavailable))]
pub async fn get(
    state: web::Data<AppState>,
    handle: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let missing = || ApiError::not_found(format!("no variant group {handle}"));
    let handle = GroupHandle::parse(&handle).map_err(|_| missing())?;
    let group = state
        .catalog
        .ask(GetGroup { handle })
        .await??
        .ok_or_else(missing)?;
    Ok(HttpResponse::Ok().json(group_json(&group, &state.currency)))
}
