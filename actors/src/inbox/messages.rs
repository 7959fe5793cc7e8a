//! What the inbox asks the ledger, on either backend: the import jobs' messages
//! and the shared inbox's claims. Both ledgers answer every one of them (the redb
//! `Ledger` in [`crate::ledger::jobs`], PostgreSQL's in [`crate::pg::job_reads`]
//! and [`crate::pg::actor`]), so the pipeline never asks which backend runs.
//!
//! Claims: on PostgreSQL several nodes may watch one folder, and a file is claimed
//! in the database before it is renamed; a node alone with its folder (redb)
//! always wins its claims and never finds anything to take over.

use actix::Message;

use super::jobs::{Job, JobRow, NewJob, RejectRow, Step};
use super::load::{Applied, Batch};
use crate::common::{Page, StoreError};
use crate::domain::JobId;

/// Creates the job for a file. On PostgreSQL the job is leased to this node,
/// and the inbox claim on `claim` (the file's name in the inbox) ends with it.
#[derive(Debug, Message)]
#[rtype(result = "Result<Job, StoreError>")]
pub struct CreateJob {
    pub new: NewJob,
    pub claim: Option<String>,
}

/// Takes a job one step (see [`super::jobs::advance`]); a step that ends it commits the job's
/// `import.completed` or `import.failed` event with it. Not for batches: see
/// [`LoadBatch`].
#[derive(Debug, Message)]
#[rtype(result = "Result<JobRow, StoreError>")]
pub struct AdvanceJob {
    pub id: JobId,
    pub step: Step<'static>,
}

/// Marks a job settled: its file moved and its report written.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct SettleJob {
    pub id: JobId,
}

/// Applies a batch of a job's rows and records the job's progress past it, in
/// one transaction (a dry run applies it in a transaction that is abandoned,
/// then records the progress).
#[derive(Debug, Message)]
#[rtype(result = "Result<Applied, StoreError>")]
pub struct LoadBatch {
    pub id: JobId,
    pub batch: Batch,
    pub dry_run: bool,
}

/// One job.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Job>, StoreError>")]
pub struct GetJob {
    /// The job's id.
    pub id: JobId,
}

/// Jobs, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Result<Page<Job, JobId>, StoreError>")]
pub struct ListJobs {
    /// Continue below this job id.
    pub before: Option<JobId>,
    /// Page size, already bounded.
    pub limit: usize,
}

/// A job's rejected rows, by line; `None` when the job does not exist.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Page<(u64, RejectRow), u64>>, StoreError>")]
pub struct ListRejects {
    /// The job.
    pub job: JobId,
    /// Continue after this line.
    pub after_line: Option<u64>,
    /// Page size, already bounded.
    pub limit: usize,
}

/// Every job not yet settled, oldest first (what a restart resumes or finishes).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Job>, StoreError>")]
pub struct OpenJobs;

/// Claims an inbox file for this node before it is renamed: true when this node
/// won (nobody held it, or the holder's lease ran out).
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, StoreError>")]
pub struct ClaimFile {
    /// The file's name in the inbox.
    pub name: String,
    /// Where this node will rename it to.
    pub work_path: String,
}

/// Gives up this node's claim on an inbox file (its rename failed).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct DropClaim {
    pub name: String,
}

/// What a node took over from nodes whose leases ran out.
#[derive(Debug, Default)]
pub struct TakenOver {
    /// Open jobs, now leased to this node: to resume.
    pub jobs: Vec<JobId>,
    /// Claims of files a node renamed but made no job for: `(name, work_path)`.
    pub claims: Vec<(String, String)>,
}

/// Takes over (a bounded number of) open jobs and claims whose lease ran out.
#[derive(Debug, Message)]
#[rtype(result = "Result<TakenOver, StoreError>")]
pub struct TakeOver;
