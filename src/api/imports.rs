//! Imports: upload a file into the pipeline, follow its job, read its rejects.

use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::json;
use super::routes::Routes;
use super::strict::{QueryParams, RawQuery};
use crate::auth::{Admin, scope};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use orderflow_actors::domain::JobId;
use orderflow_actors::inbox::check_upload_name;
use orderflow_actors::inbox::{AcceptUpload, Enqueue};
use orderflow_actors::inbox::{CreateJob, GetJob, ListJobs, ListRejects};
use orderflow_actors::inbox::{Origin, new_job};
use orderflow_actors::limits::IMPORT_FILE_BYTES_MAX;

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(upload, list, get, rejects), components(schemas(json::PageJson<json::JobJson>, json::PageJson<json::RejectJson>)))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/imports", |m| m.post(upload).get(list));
    r.add("/imports/{id}", |m| m.get(get));
    r.add("/imports/{id}/rejects", |m| m.get(rejects));
}

fn path_job(raw: &str) -> Result<JobId, ApiError> {
    raw.parse::<u64>()
        .map(JobId)
        .map_err(|_| ApiError::not_found("no such import job"))
}

/// Streams the body to the uploads folder (never buffered whole), hands it to the
/// inbox, creates its job, and answers 202 with the job.
#[utoipa::path(post, operation_id = "imports_upload", path = "/api/v1/imports", tag = "imports", security(("bearer" = ["imports:write"])),
    params(("name" = String, Query, min_length = 5, max_length = 200, pattern = "^[A-Za-z0-9_][A-Za-z0-9 ._()-]*[.](csv|jsonl|ndjson|json)([.]gz)?$", description = "File name: kind prefix (or kind-telling columns) and format extension, as in the inbox"),
        ("dry_run" = Option<bool>, Query, description = "Validate and report without loading")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes, streamed (not empty)"),
    responses((status = 202, description = "Taken into the pipeline", body = json::UploadAccepted,
            headers(("Location" = String, description = "The job's URL")),
            links(("GetImport" = (operation_id = "imports_get", parameters(("id" = "$response.body#/job/id")))),
                ("ImportRejects" = (operation_id = "imports_rejects", parameters(("id" = "$response.body#/job/id")))))), crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn upload(
    _admin: Admin<scope::ImportsWrite>,
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
    let temp = state
        .uploads
        .join(format!("{}.part", orderflow_actors::text::hex(&random)));
    let mut file = tokio::fs::File::create(&temp)
        .await
        .map_err(ApiError::internal)?;
    let mut received: u64 = 0;
    let outcome: Result<(), ApiError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request("the upload was interrupted"))?;
            received += chunk.len() as u64;
            if received > IMPORT_FILE_BYTES_MAX {
                return Err(ApiError::payload_too_large(IMPORT_FILE_BYTES_MAX));
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        file.sync_all().await.map_err(ApiError::internal)?;
        Ok(())
    }
    .await;
    drop(file);
    let outcome = outcome.and_then(|()| {
        if received == 0 {
            Err(ApiError::field("body", "the file is empty"))
        } else {
            Ok(())
        }
    });
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
        .ask_write(CreateJob {
            new: new_job(&work, name, Origin::Inbox, None, dry_run),
            claim: None,
        })
        .await??;
    state.inbox.ask(Enqueue { job: job.id }).await??;
    tracing::info!(request_id = %crate::error::RequestId, job = job.id.0, bytes = received, dry_run, "upload accepted");
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/v1/imports/{}", job.id.0)))
        .json(json::UploadAccepted {
            job: json::job(&job),
        }))
}

#[utoipa::path(get, operation_id = "imports_list", summary = "List import jobs", path = "/api/v1/imports", tag = "imports", security(("bearer" = ["imports:write"])), params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"), ("cursor" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Jobs, newest first", body = json::PageJson<json::JobJson>), crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn list(
    _admin: Admin<scope::ImportsWrite>,
    state: web::Data<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let params = QueryParams::parse(&raw, &["limit", "cursor"])?;
    let mut errors = Vec::new();
    let limit = params.page_limit(&mut errors);
    let before = params.cursor::<u64>(&mut errors).map(JobId);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = state.ledger.ask(ListJobs { before, limit }).await??;
    let items = page.items.iter().map(json::job).collect();
    Ok(HttpResponse::Ok().json(json::page(
        items,
        page.next.map(|j| json::encode_cursor(&j.0)),
    )))
}

#[utoipa::path(get, operation_id = "imports_get", summary = "Get an import job", path = "/api/v1/imports/{id}", tag = "imports", security(("bearer" = ["imports:write"])), params(("id" = u64, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = json::JobJson), crate::error::responses::Missing, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn get(
    _admin: Admin<scope::ImportsWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_job(&id)?;
    let job = state
        .ledger
        .ask(GetJob { id })
        .await??
        .ok_or_else(|| ApiError::not_found("no such import job"))?;
    Ok(HttpResponse::Ok().json(json::job(&job)))
}

#[utoipa::path(get, operation_id = "imports_rejects", summary = "List an import job's rejected rows", path = "/api/v1/imports/{id}/rejects", tag = "imports", security(("bearer" = ["imports:write"])), params(("id" = u64, Path, description = "The job's id"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, default 50"), ("cursor" = Option<String>, Query, min_length = 1, pattern = "^[A-Za-z0-9_-]+$", description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Rejected rows by line", body = json::PageJson<json::RejectJson>), crate::error::responses::Missing, crate::error::responses::Invalid, crate::error::responses::AdminOnly, crate::error::responses::Unavailable))]
pub async fn rejects(
    _admin: Admin<scope::ImportsWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let job = path_job(&id)?;
    let params = QueryParams::parse(&raw, &["limit", "cursor"])?;
    let mut errors = Vec::new();
    let limit = params.page_limit(&mut errors);
    let after_line = params.cursor::<u64>(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = state
        .ledger
        .ask(ListRejects {
            job,
            after_line,
            limit,
        })
        .await??
        .ok_or_else(|| ApiError::not_found("no such import job"))?;
    let items: Vec<json::RejectJson<'_>> = page
        .items
        .iter()
        .map(|(line, r)| json::RejectJson {
            line: *line,
            reason: &r.reason,
            raw: &r.raw,
        })
        .collect();
    Ok(HttpResponse::Ok().json(json::page(
        items,
        page.next.map(|l| json::encode_cursor(&l)),
    )))
}
