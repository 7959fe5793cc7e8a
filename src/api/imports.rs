//! Imports: upload a file into the pipeline, follow its job, read its rejects.

use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::extract::{QueryParams, RawQuery};
use super::{json, method_not_allowed};
use crate::auth::Admin;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::domain::JobId;
use orderflow_actors::inbox::jobs::{GetJob, ListJobs, ListRejects, Origin, create_work};
use orderflow_actors::inbox::naming::check_upload_name;
use orderflow_actors::inbox::watcher::{AcceptUpload, Enqueue};
use orderflow_actors::ledger::Transact;
use orderflow_actors::limits::{IMPORT_FILE_BYTES_MAX, PAGE_ITEMS_DEFAULT, PAGE_ITEMS_MAX};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/imports")
            .route(web::post().to(upload))
            .route(web::get().to(list))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/imports/{id}")
            .route(web::get().to(get))
            .default_service(method_not_allowed()),
    )
    .service(
        web::resource("/imports/{id}/rejects")
            .route(web::get().to(rejects))
            .default_service(method_not_allowed()),
    );
}

fn path_job(raw: &str) -> Result<JobId, ApiError> {
    raw.parse::<u64>()
        .map(JobId)
        .map_err(|_| ApiError::not_found("no such import job"))
}

/// Streams the body to the uploads folder (never buffered whole), hands it to the
/// inbox, creates its job, and answers 202 with the job.
async fn upload(
    _admin: Admin,
    state: web::Data<AppState>,
    RawQuery(raw): RawQuery,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = QueryParams::parse(&raw, &["name", "dry_run"])?;
    let mut errors = Vec::new();
    let name = match params.get("name") {
        None => {
            errors.push(FieldError::new("name", "is required"));
            None
        }
        Some(n) => check_upload_name(n)
            .map(|()| n.to_owned())
            .map_err(|e| errors.push(FieldError::new("name", e)))
            .ok(),
    };
    let dry_run = params.boolean("dry_run", &mut errors).unwrap_or(false);
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };

    let random: [u8; 12] = rand::random();
    let temp = state.uploads.join(format!(
        "{}.part",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let mut file = tokio::fs::File::create(&temp)
        .await
        .map_err(ApiError::internal)?;
    let mut received: u64 = 0;
    let outcome: Result<(), ApiError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request("the upload was interrupted"))?;
            received += chunk.len() as u64;
            if received > IMPORT_FILE_BYTES_MAX {
                return Err(ApiError::payload_too_large(IMPORT_FILE_BYTES_MAX as usize));
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        file.sync_all().await.map_err(ApiError::internal)?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(e) = outcome {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(e);
    }

    let work = match state
        .inbox
        .ask(AcceptUpload {
            temp_path: temp.clone(),
            file_name: name.clone(),
        })
        .await
    {
        Ok(Ok(work)) => work,
        Ok(Err(e)) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(ApiError::internal(e));
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e.into());
        }
    };
    // From here the file is in the pipeline: if the job cannot be created now, the
    // inbox creates it on its next start.
    let job = state
        .ledger
        .ask(Transact {
            work: create_work(&work, name, Origin::Inbox, None, dry_run),
        })
        .await??;
    state.inbox.ask(Enqueue { job: job.id }).await??;
    tracing::info!(job = job.id.0, bytes = received, dry_run, "upload accepted");
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/v1/imports/{}", job.id.0)))
        .json(json!({ "job": job.to_json() })))
}

async fn list(
    _admin: Admin,
    state: web::Data<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let params = QueryParams::parse(&raw, &["limit", "cursor"])?;
    let mut errors = Vec::new();
    let limit = params
        .integer("limit", 1, PAGE_ITEMS_MAX as u64, &mut errors)
        .unwrap_or(PAGE_ITEMS_DEFAULT as u64);
    let before = cursor(&params, &mut errors).map(JobId);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = state
        .ledger
        .ask(ListJobs {
            before,
            limit: limit as usize,
        })
        .await??;
    let items = page.items.iter().map(|j| j.to_json()).collect();
    Ok(HttpResponse::Ok().json(json::page::<serde_json::Value>(
        items,
        page.next.map(|j| json::encode_cursor(&j.0)),
    )))
}

fn cursor(params: &QueryParams, errors: &mut Vec<FieldError>) -> Option<u64> {
    match params.get("cursor").map(json::decode_cursor::<u64>) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
            None
        }
        None => None,
    }
}

async fn get(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_job(&id)?;
    let job = state
        .ledger
        .ask(GetJob { id })
        .await??
        .ok_or_else(|| ApiError::not_found("no such import job"))?;
    Ok(HttpResponse::Ok().json(job.to_json()))
}

async fn rejects(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let job = path_job(&id)?;
    let params = QueryParams::parse(&raw, &["limit", "cursor"])?;
    let mut errors = Vec::new();
    let limit = params
        .integer("limit", 1, PAGE_ITEMS_MAX as u64, &mut errors)
        .unwrap_or(PAGE_ITEMS_DEFAULT as u64);
    let after_line = cursor(&params, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = state
        .ledger
        .ask(ListRejects {
            job,
            after_line,
            limit: limit as usize,
        })
        .await??
        .ok_or_else(|| ApiError::not_found("no such import job"))?;
    let items: Vec<serde_json::Value> = page
        .items
        .iter()
        .map(|(line, r)| json!({"line": line, "reason": r.reason, "raw": r.raw}))
        .collect();
    Ok(HttpResponse::Ok().json(json::page(
        items,
        page.next.map(|l| json::encode_cursor(&l)),
    )))
}
