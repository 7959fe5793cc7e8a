//! API keys: create (the key shown once), list (no key material), revoke.

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::routes::Routes;
use super::strict::StrictJson;
use crate::auth::{API_KEY_PREFIX, Admin, key_hash};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::apikeys::{ApiKey, ApiKeyId, CreateApiKey, ListApiKeys, RevokeApiKey};
use orderflow_actors::domain::{KeyName, Scope};

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create, list, revoke),
    components(schemas(KeyBody, ApiKeyJson, NewApiKeyJson, ApiKeyListJson, ScopeName))
)]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/api-keys", |m| m.post(create).get(list));
    r.add("/api-keys/{id}", |m| m.delete(revoke));
}

/// A scope's name, for the OpenAPI document; a test keeps it equal to [`Scope`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub enum ScopeName {
    #[serde(rename = "catalog:write")]
    CatalogWrite,
    #[serde(rename = "stock:write")]
    StockWrite,
    #[serde(rename = "orders:read")]
    OrdersRead,
    #[serde(rename = "orders:write")]
    OrdersWrite,
    #[serde(rename = "imports:write")]
    ImportsWrite,
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// What the key is for, e.g. `warehouse sync`.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 100,
        pattern = ".*\\S.*"
    )]
    name: Option<String>,
    /// What the key may do; at least one.
    #[schema(required = true, nullable = false, min_items = 1, max_items = 7, value_type = Option<Vec<ScopeName>>)]
    scopes: Option<Vec<String>>,
}

/// A key as listed: never its key material.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyJson {
    id: u64,
    name: String,
    scopes: Vec<&'static str>,
    created_at: String,
    /// Updated at most about once a minute.
    last_used_at: Option<String>,
}

/// A new key: `key` appears here and nowhere else, ever.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewApiKeyJson {
    id: u64,
    name: String,
    scopes: Vec<&'static str>,
    /// `ofk_…`: send it as `Authorization: Bearer ofk_…`. Stored only as a hash.
    key: String,
    created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyListJson {
    items: Vec<ApiKeyJson>,
}

fn scope_names(key: &ApiKey) -> Vec<&'static str> {
    key.row.scopes.iter().map(|s| s.as_str()).collect()
}

fn shown(key: &ApiKey) -> ApiKeyJson {
    ApiKeyJson {
        id: key.id.0,
        name: key.row.name.as_str().to_owned(),
        scopes: scope_names(key),
        created_at: key.row.created_at.to_rfc3339(),
        last_used_at: key.row.last_used_at.map(|t| t.to_rfc3339()),
    }
}

fn parse_body(body: KeyBody) -> Result<(KeyName, Vec<Scope>), ApiError> {
    let mut errors = Vec::new();
    let name = match body.name.as_deref() {
        None => {
            errors.push(FieldError::new("name", "is required"));
            None
        }
        Some(raw) => KeyName::parse(raw)
            .map_err(|e| errors.push(FieldError::new("name", e.to_string())))
            .ok(),
    };
    let scopes = match body.scopes {
        None => {
            errors.push(FieldError::new("scopes", "is required"));
            Vec::new()
        }
        Some(raw) if raw.is_empty() || raw.len() > Scope::ALL.len() => {
            errors.push(FieldError::new(
                "scopes",
                format!("must list 1 to {} scopes", Scope::ALL.len()),
            ));
            Vec::new()
        }
        Some(raw) => raw
            .iter()
            .filter_map(|s| {
                Scope::parse(s).or_else(|| {
                    errors.push(FieldError::new(
                        "scopes",
                        format!("`{}` is not a scope", orderflow_actors::text::cut(s, 40)),
                    ));
                    None
                })
            })
            .collect(),
    };
    match (name, errors.is_empty()) {
        (Some(name), true) => Ok((name, scopes)),
        _ => Err(ApiError::validation(errors)),
    }
}

#[utoipa::path(post, operation_id = "api_keys_create", summary = "Create an API key", path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = KeyBody,
    responses((status = 201, description = "The key, shown this once", body = NewApiKeyJson),
        (status = 409, description = "Too many keys exist", content_type = "application/problem+json", body = crate::error::Problem),
        crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn create(
    _admin: Admin,
    state: web::Data<AppState>,
    StrictJson(body): StrictJson<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    let (name, scopes) = parse_body(body)?;
    let secret: [u8; 32] = rand::random();
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let created = state
        .api_keys
        .ask(CreateApiKey {
            name,
            scopes,
            hash: key_hash(&key),
        })
        .await??;
    tracing::info!(request_id = %crate::error::RequestId, key = created.id.0, "API key created");
    Ok(HttpResponse::Created().json(NewApiKeyJson {
        id: created.id.0,
        name: created.row.name.as_str().to_owned(),
        scopes: scope_names(&created),
        key,
        created_at: created.row.created_at.to_rfc3339(),
    }))
}

#[utoipa::path(get, operation_id = "api_keys_list", summary = "List API keys", path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, description = "Every key, oldest first, without key material", body = ApiKeyListJson),
        crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn list(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = state.api_keys.ask(ListApiKeys).await??;
    Ok(HttpResponse::Ok().json(ApiKeyListJson {
        items: keys.iter().map(shown).collect(),
    }))
}

#[utoipa::path(delete, operation_id = "api_keys_revoke", summary = "Revoke an API key", path = "/api/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = u64, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked: refused from the next request on"),
        crate::error::responses::Missing, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn revoke(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id
        .parse::<u64>()
        .map(ApiKeyId)
        .map_err(|_| ApiError::not_found("no API key with that id"))?;
    state.api_keys.ask(RevokeApiKey { id }).await??;
    tracing::info!(request_id = %crate::error::RequestId, key = id.0, "API key revoked");
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::OpenApi;

    use super::*;

    #[test]
    fn the_documented_scopes_are_the_scopes() {
        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        let documented: BTreeSet<&str> = doc["components"]["schemas"]["ScopeName"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let scopes: BTreeSet<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(documented, scopes);
    }
}
