//! Import jobs: one per file, stored so that a restart resumes where the last
//! commit left off and every outcome can be reported.
//!
//! Why one file: the job's state machine, its rows and the queries on them are one
//! concept; every transition is here so none is made elsewhere.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::failure::FileFailure;
use super::naming::FileType;
use super::reject::Reject;
use crate::common::{Record, StoreError, codec};
use crate::domain::{JobId, Timestamp};
use crate::events::EventType;
use crate::limits::IMPORT_REJECTS_KEPT_MAX;
use crate::store::get_record;
use crate::store::tables::{JOB_REJECTS, JOBS, JOBS_BY_SHA, JOBS_OPEN};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Duplicate,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Duplicate => "duplicate",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Duplicate
        )
    }
}

/// Where a job's file came from, which decides where it goes afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Dropped into the inbox, or uploaded: moved to `processed/` or `failed/`.
    Inbox,
    /// Named on the `ingest` command line: left where it is.
    Cli,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRow {
    pub file_name: String,
    /// The file being read: in the inbox's working folder, or the CLI's path.
    pub work_path: String,
    pub origin: Origin,
    pub file_type: Option<FileType>,
    pub sha256: Option<[u8; 32]>,
    pub bytes: u64,
    pub status: JobStatus,
    pub dry_run: bool,
    /// Records accounted for by committed batches; a restart skips them.
    pub rows_read: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub rejects_by_code: BTreeMap<String, u64>,
    /// Set when a batch ended inside an order that had already failed (one with more
    /// rows than an order may have): a restart keeps refusing that order's rows.
    pub failed_order_ref: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    pub duplicate_of: Option<JobId>,
    /// Name under `processed/` or `failed/`, chosen before the file is moved there.
    pub final_name: Option<String>,
    /// Bytes of the file read by the last committed batch (see `load::Batch`);
    /// all of them once completed. Added in version 2.
    pub bytes_read: u64,
    /// Rows loaded with something left out rather than refused (a Shopify
    /// barcode that is not a GTIN). Added in version 3.
    pub warnings: u64,
}

impl Record for JobRow {
    const VERSION: u8 = 3;
    const NAME: &'static str = "job";
    fn upgrade(found: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
        match found {
            // Version 2 appended `bytes_read`, version 3 `warnings`: an older
            // body followed by the encoding of 0 (one zero byte, a varint) for
            // each field it lacks is a version 3 body. A job that was running
            // reports 0 bytes read until its next batch.
            1 | 2 => {
                let mut v3 = Vec::with_capacity(body.len() + 2);
                v3.extend_from_slice(body);
                v3.extend(std::iter::repeat_n(0, usize::from(3 - found)));
                Some(postcard::from_bytes(&v3).map(|mut row: JobRow| {
                    if found > 1 {
                        return row;
                    }
                    if row.status == JobStatus::Completed {
                        row.bytes_read = row.bytes;
                    }
                    row
                }))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRow {
    pub code: String,
    pub reason: String,
    pub raw: String,
}

impl Record for RejectRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "reject";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub row: JobRow,
}

/// A job as reports and the API show it (the web layer documents this shape as
/// its `Job` schema, and a test there keeps the two equal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobView {
    pub id: u64,
    /// The name the file was dropped or uploaded under.
    pub file_name: String,
    /// `products`, `orders` or `inventory`; null when it could not be told.
    pub kind: Option<&'static str>,
    /// `csv`, `jsonl` or `json`, with `.gz` when compressed.
    pub format: Option<String>,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: Option<String>,
    pub bytes: u64,
    /// Bytes read by the last committed batch (all of them once completed).
    pub bytes_read: u64,
    /// The file's size once the job started (the same as `bytes`; 0 before).
    pub bytes_total: u64,
    /// `queued`, `running`, `completed`, `failed` or `duplicate`.
    pub status: &'static str,
    pub dry_run: bool,
    pub rows_read: u64,
    /// Rows loaded (for a dry run: rows that would load).
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    /// Rows loaded with something left out rather than refused (a Shopify
    /// barcode that is not a GTIN is dropped from its product).
    pub warnings: u64,
    /// Rejected rows by reason code (`price_not_positive`, …).
    pub rejects_by_reason: BTreeMap<String, u64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the whole file failed.
    pub error: Option<String>,
    /// For a duplicate: the job that loaded the same bytes.
    pub duplicate_of: Option<u64>,
}

impl Job {
    /// The job as clients and reports show it.
    pub fn view(&self) -> JobView {
        let r = &self.row;
        JobView {
            id: self.id.0,
            file_name: r.file_name.clone(),
            kind: r.file_type.map(|t| t.kind.as_str()),
            format: r.file_type.map(|t| t.format_label()),
            sha256: r.sha256.as_ref().map(|h| crate::text::hex(h)),
            bytes: r.bytes,
            bytes_read: r.bytes_read,
            bytes_total: r.bytes,
            status: r.status.as_str(),
            dry_run: r.dry_run,
            rows_read: r.rows_read,
            rows_loaded: r.rows_loaded,
            rows_rejected: r.rows_rejected,
            warnings: r.warnings,
            rejects_by_reason: r.rejects_by_code.clone(),
            created_at: r.created_at.to_rfc3339(),
            started_at: r.started_at.map(Timestamp::to_rfc3339),
            finished_at: r.finished_at.map(Timestamp::to_rfc3339),
            error: r.error.clone(),
            duplicate_of: r.duplicate_of.map(|j| j.0),
        }
    }
}

/// One step of a job's life, taken by [`JobTables::advance`]:
///
/// ```text
/// queued ──KindRead──▶ queued ──Started──▶ running ──BatchCommitted*──▶ running
///    │                    │                   │ (or duplicate, ended)
///    └─────────────── Finished (completed | failed) ◀┘
///                           └──Named──▶ (file moved) ──settle──▶ closed
/// ```
#[derive(Debug)]
pub enum Step<'a> {
    /// The kind of a file whose name did not say, read from its columns.
    KindRead(FileType),
    /// The file was inspected: its hash and size; a duplicate of a completed job
    /// ends here.
    Started {
        sha256: [u8; 32],
        bytes: u64,
        at: Timestamp,
    },
    /// A batch of rows committed, with its rejects and the read position.
    BatchCommitted {
        records: u64,
        loaded: u64,
        /// Rows loaded with something left out.
        warnings: u64,
        bytes_read: u64,
        rejects: &'a [Reject],
        failed_ref_after: Option<String>,
    },
    /// The load ended.
    Finished {
        end: End,
        error: Option<String>,
        at: Timestamp,
    },
    /// The name chosen under `processed/` or `failed/`, stored before the move.
    Named(String),
}

/// How a load ends (a duplicate ends when it starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Completed,
    Failed,
}

impl End {
    pub fn status(self) -> JobStatus {
        match self {
            End::Completed => JobStatus::Completed,
            End::Failed => JobStatus::Failed,
        }
    }
}

/// Where a job's rows live, as [`advance`] sees them inside one transaction: the
/// redb job tables ([`JobTables`]) or a PostgreSQL batch's staged job rows
/// (`crate::pg::jobs`). The state machine is written once, against this.
pub trait JobRows {
    fn job(&self, id: JobId) -> Result<Option<JobRow>, StoreError>;
    fn put_job(&mut self, id: JobId, row: &JobRow) -> Result<(), StoreError>;
    /// Keeps one rejected row of a job.
    fn put_reject(&mut self, id: JobId, line: u64, row: &RejectRow) -> Result<(), StoreError>;
    /// The completed job that loaded a file with this hash, if any.
    fn completed_with(&self, sha256: &[u8; 32]) -> Result<Option<JobId>, StoreError>;
    /// Remembers that job `id` completed loading a file with this hash.
    fn mark_completed(&mut self, sha256: &[u8; 32], id: JobId) -> Result<(), StoreError>;
}

/// A job the caller knows exists (it holds its id from an earlier commit); its
/// absence means the store is damaged.
fn existing(rows: &impl JobRows, id: JobId) -> Result<JobRow, StoreError> {
    rows.job(id)?
        .ok_or_else(|| StoreError::Corrupt(format!("job {} vanished", id.0)))
}

/// Takes the job one step along its life (see [`Step`]), refusing a step its
/// status does not allow: that would be a bug or a damaged store, never an input's
/// fault. Answers the job as it now is.
pub fn advance(rows: &mut impl JobRows, id: JobId, step: Step<'_>) -> Result<JobRow, StoreError> {
    let mut row = existing(rows, id)?;
    let refused = |step: &str, row: &JobRow| {
        StoreError::Corrupt(format!(
            "job {}: {step} is not allowed when it is {}",
            id.0,
            row.status.as_str()
        ))
    };
    match step {
        Step::KindRead(ty) => {
            if row.status != JobStatus::Queued || row.file_type.is_some() {
                return Err(refused("reading its kind", &row));
            }
            row.file_type = Some(ty);
        }
        Step::Started { sha256, bytes, at } => {
            if row.status != JobStatus::Queued || row.sha256.is_some() {
                return Err(refused("starting", &row));
            }
            row.sha256 = Some(sha256);
            row.bytes = bytes;
            row.started_at = Some(at);
            row.status = JobStatus::Running;
            if let Some(earlier) = rows.completed_with(&sha256)?
                && earlier != id
            {
                row.status = JobStatus::Duplicate;
                row.duplicate_of = Some(earlier);
                row.finished_at = Some(at);
            }
        }
        Step::BatchCommitted {
            records,
            loaded,
            warnings,
            bytes_read,
            rejects,
            failed_ref_after,
        } => {
            if row.status.is_final() {
                return Err(refused("committing a batch", &row));
            }
            row.rows_read += records;
            row.rows_loaded += loaded;
            row.warnings += warnings;
            // A restart reads the file again from its start: keep the furthest.
            row.bytes_read = row.bytes_read.max(bytes_read).min(row.bytes);
            reject(rows, id, &mut row, rejects)?;
            row.failed_order_ref = failed_ref_after;
            row.status = JobStatus::Running;
        }
        Step::Finished { end, error, at } => {
            // Finishing twice (a restart redoing the step) changes nothing.
            if row.status.is_final() {
                return Ok(row);
            }
            row.status = end.status();
            if end == End::Completed {
                row.bytes_read = row.bytes;
            }
            row.error = error;
            row.finished_at = Some(at);
            row.started_at.get_or_insert(at);
            if end == End::Completed
                && !row.dry_run
                && let Some(sha) = row.sha256
            {
                rows.mark_completed(&sha, id)?;
            }
        }
        Step::Named(name) => {
            if !row.status.is_final() {
                return Err(refused("naming its file", &row));
            }
            row.final_name = Some(name);
        }
    }
    rows.put_job(id, &row)?;
    Ok(row)
}

/// Refuses to settle a job that has not ended.
pub fn check_settle(rows: &impl JobRows, id: JobId) -> Result<(), StoreError> {
    if existing(rows, id)?.status.is_final() {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "job {} is settled before it ended",
            id.0
        )))
    }
}

/// Records rejects (the first [`IMPORT_REJECTS_KEPT_MAX`] of a job are kept row by
/// row; all are counted) and their counts on `row`.
fn reject(
    rows: &mut impl JobRows,
    id: JobId,
    row: &mut JobRow,
    rejects: &[Reject],
) -> Result<(), StoreError> {
    for r in rejects {
        if row.rows_rejected < IMPORT_REJECTS_KEPT_MAX {
            let stored = RejectRow {
                code: r.code.as_str().to_owned(),
                reason: r.reason.clone(),
                raw: r.raw.clone(),
            };
            rows.put_reject(id, r.line, &stored)?;
        }
        row.rows_rejected += 1;
        *row.rejects_by_code
            .entry(r.code.as_str().to_owned())
            .or_default() += 1;
    }
    Ok(())
}

/// A new queued job's row.
pub fn new_row(new: NewJob) -> JobRow {
    let NewJob {
        file_name,
        work_path,
        origin,
        file_type,
        dry_run,
        refused,
    } = new;
    JobRow {
        file_name,
        work_path,
        origin,
        file_type,
        sha256: None,
        bytes: 0,
        status: JobStatus::Queued,
        dry_run,
        rows_read: 0,
        rows_loaded: 0,
        rows_rejected: 0,
        rejects_by_code: BTreeMap::new(),
        failed_order_ref: None,
        created_at: Timestamp::now(),
        started_at: None,
        finished_at: None,
        error: refused,
        duplicate_of: None,
        final_name: None,
        bytes_read: 0,
        warnings: 0,
    }
}

/// The job tables, open in one write transaction.
pub struct JobTables<'txn> {
    jobs: Table<'txn, u64, &'static [u8]>,
    open: Table<'txn, u64, ()>,
    rejects: Table<'txn, (u64, u64), &'static [u8]>,
    by_sha: Table<'txn, &'static [u8; 32], u64>,
}

impl JobRows for JobTables<'_> {
    fn job(&self, id: JobId) -> Result<Option<JobRow>, StoreError> {
        get_record(&self.jobs, id.0)
    }

    fn put_job(&mut self, id: JobId, row: &JobRow) -> Result<(), StoreError> {
        self.jobs.insert(id.0, codec::encode(row).as_slice())?;
        Ok(())
    }

    fn put_reject(&mut self, id: JobId, line: u64, row: &RejectRow) -> Result<(), StoreError> {
        self.rejects
            .insert((id.0, line), codec::encode(row).as_slice())?;
        Ok(())
    }

    fn completed_with(&self, sha256: &[u8; 32]) -> Result<Option<JobId>, StoreError> {
        Ok(self.by_sha.get(sha256)?.map(|v| JobId(v.value())))
    }

    fn mark_completed(&mut self, sha256: &[u8; 32], id: JobId) -> Result<(), StoreError> {
        self.by_sha.insert(sha256, id.0)?;
        Ok(())
    }
}

impl<'txn> JobTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            jobs: txn.open_table(JOBS)?,
            open: txn.open_table(JOBS_OPEN)?,
            rejects: txn.open_table(JOB_REJECTS)?,
            by_sha: txn.open_table(JOBS_BY_SHA)?,
        })
    }

    pub fn get(&self, id: JobId) -> Result<Option<JobRow>, StoreError> {
        self.job(id)
    }

    /// [`advance`] on these tables.
    pub fn advance(&mut self, id: JobId, step: Step<'_>) -> Result<JobRow, StoreError> {
        advance(self, id, step)
    }

    /// The job is done with: its file moved and its report written (or its summary
    /// printed); a restart no longer looks at it.
    pub fn settle(&mut self, id: JobId) -> Result<(), StoreError> {
        check_settle(self, id)?;
        self.open.remove(id.0)?;
        Ok(())
    }
}

/// What a new job is for.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub file_name: String,
    /// The file being read: in the inbox's working folder, or the CLI's path.
    pub work_path: String,
    pub origin: Origin,
    /// Known from the name, or read from the columns when the job runs.
    pub file_type: Option<FileType>,
    pub dry_run: bool,
    /// Why the job fails as soon as it runs, without reading the file (a name the
    /// inbox cannot use, a file that looked truncated, an unknown format).
    pub refused: Option<String>,
}

/// Creates a queued job for a file; `id` comes from the caller's transaction
/// (`Book::next_id(counter::NEXT_JOB_ID)` inside the ledger).
pub fn create(txn: &WriteTransaction, id: JobId, new: NewJob) -> Result<Job, StoreError> {
    let row = new_row(new);
    let mut tables = JobTables::open(txn)?;
    tables.put_job(id, &row)?;
    tables.open.insert(id.0, ())?;
    Ok(Job { id, row })
}

/// What the job for a file is: kind and format come from the
/// name (a name without a kind prefix gets its kind from the columns when the job
/// runs); an unknown format, or a `refused` reason (a file that looked truncated),
/// makes a job that fails as soon as it runs.
pub fn new_job(
    work_path: &std::path::Path,
    file_name: String,
    origin: Origin,
    refused: Option<FileFailure>,
    dry_run: bool,
) -> NewJob {
    // Without a kind prefix the pipeline reads the kind from the columns.
    let format = super::naming::format_of(&file_name);
    let ty = match (&format, super::naming::kind_of(&file_name)) {
        (Ok((format, gzip)), Some(kind)) => Some(FileType {
            kind,
            format: *format,
            gzip: *gzip,
        }),
        _ => None,
    };
    let error = refused.or_else(|| format.err()).map(|f| f.to_string());
    NewJob {
        file_name,
        work_path: work_path.to_string_lossy().into_owned(),
        origin,
        file_type: ty,
        dry_run,
        refused: error,
    }
}

/// The event a job's end announces, if `row` ended at `at` (finishing twice, after
/// a restart, finds the job already final and announces nothing new).
pub fn end_event(row: &JobRow, at: Timestamp) -> Option<EventType> {
    if row.finished_at != Some(at) {
        return None;
    }
    match row.status {
        JobStatus::Completed => Some(EventType::ImportCompleted),
        JobStatus::Failed => Some(EventType::ImportFailed),
        JobStatus::Queued | JobStatus::Running | JobStatus::Duplicate => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs written by earlier releases read with the fields they lacked at
    /// their defaults: version 2 without `warnings`, version 1 without
    /// `bytes_read` either (a completed one read them all).
    #[test]
    fn older_job_records_read_with_the_new_fields() {
        let mut row = new_row(NewJob {
            file_name: "products.csv".into(),
            work_path: "/w/products.csv".into(),
            origin: Origin::Inbox,
            file_type: None,
            dry_run: false,
            refused: None,
        });
        row.status = JobStatus::Completed;
        row.bytes = 300;
        row.bytes_read = 300;
        let v3 = postcard::to_allocvec(&row).unwrap();
        assert_eq!(v3.last(), Some(&0), "warnings 0 is one zero byte");
        let v2 = &v3[..v3.len() - 1];
        assert_eq!(JobRow::upgrade(2, v2).unwrap().unwrap(), row);
        let v1 = &v3[..v3.len() - 3];
        assert_eq!(JobRow::upgrade(1, v1).unwrap().unwrap(), row);
        assert!(JobRow::upgrade(3, &v3).is_none());
    }
}
