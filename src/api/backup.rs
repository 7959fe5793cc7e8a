//! Online backups over HTTP (admin users; no API key scope opens it): a consistent
//! snapshot of the whole database into `<data-dir>/backups/`, taken while the
//! service sells (see `store::backup`).

use actix_web::{HttpResponse, web};

use super::json;
use super::routes::Routes;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;
use orderflow_actors::ledger::TakeBackup;

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(create), components(schemas(json::BackupJson)))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/admin/backup", |m| m.post(create));
}

/// Take a backup now. It waits for the copy to finish (seconds per GiB), while
/// checkouts and imports go on.
#[utoipa::path(post, operation_id = "backup_create", path = "/api/v1/admin/backup", tag = "operations", security(("bearer" = [])),
    responses((status = 201, description = "The backup and its manifest are written and synced", body = json::BackupJson),
        crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn create(_admin: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Not `ask`: a backup is not abandoned at the ordinary timeout.
    let manifest = state
        .redb_ledger("backups")?
        .reserve()?
        .send(TakeBackup { to: None })
        .await??;
    Ok(HttpResponse::Created().json(json::backup(&manifest)))
}
