//! One import job from start to end: inspect, then extract → transform → load
//! with bounded channels between the stages, resuming after the last committed
//! batch, logging progress, and stopping cleanly between batches.
//!
//! Why one file: one job's run from start to end, with the stage threads and channels
//! between them, reads best in one place.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use actix::Message;

use super::extract;
use super::failure::{FileFailure, Stage};
use super::jobs::{End, Job, JobRow, JobStatus, Step};
use super::load::{Applied, Batch, Grouper, Piece};
use super::messages::{AdvanceJob, LoadBatch};
use super::naming::{FileType, Kind};
use super::transform;
use crate::common::StoreError;
use crate::domain::{Currency, JobId, OrderRef, Timestamp};
use crate::limits::{
    IMPORT_BATCH_ROWS_MAX, IMPORT_CHANNEL_CHUNKS_MAX, IMPORT_CHUNK_ROWS, JOB_RETRY_BACKOFF_MS,
    JOB_RUN_ATTEMPTS_MAX, LEDGER_BUSY_RETRIES_MAX, PROGRESS_LOG_INTERVAL_MS,
};
use crate::mailbox::AskError;
use crate::room::{Asks, LedgerRoom};
use crate::telemetry::{Event, FileFinished, RowsCommitted, Telemetry};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ask(#[from] AskError),
    #[error("job {} not found", .0.0)]
    Missing(JobId),
}

impl PipelineError {
    /// Worth running the job again: nothing of the failed step was written (a batch
    /// abandoned because a neighbour in its group commit failed, or a ledger too busy
    /// to take it), and a run resumes from the last committed position.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            PipelineError::Store(StoreError::Aborted(_))
                | PipelineError::Ask(AskError::Overloaded(_))
        )
    }
}

/// Runs a stage's closure so that a panic inside it becomes that stage's failure
/// instead of taking the thread (and the inbox) down.
fn guarded<T>(stage: Stage, f: impl FnOnce() -> T) -> Result<T, FileFailure> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        tracing::error!(
            stage = stage.as_str(),
            panic = panic_text(&*panic),
            "an import stage panicked; its job fails, the pipeline goes on"
        );
        FileFailure::Internal(stage)
    })
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Completed, failed or duplicate: ready to be reported.
    Finished(Box<Job>),
    /// Stopped between batches (shutdown); resumes on the next start.
    Interrupted,
}

/// Everything a job run needs. One job runs at a time, on the caller's thread
/// (the loader) plus two threads for extract and transform.
pub struct Pipeline {
    pub ledger: LedgerRoom,
    pub currency: Currency,
    pub telemetry: Telemetry,
    /// Set to stop after the batch being committed.
    pub stop: Arc<AtomicBool>,
}

/// The stage the job on this thread is in (one job runs at a time per pipeline).
#[derive(Debug, Default)]
struct StageCell(AtomicU8);

impl StageCell {
    fn set(&self, stage: Stage) {
        self.0.store(stage as u8, Ordering::Relaxed);
    }
    fn get(&self) -> Stage {
        Stage::from_u8(self.0.load(Ordering::Relaxed))
    }
}

impl Pipeline {
    /// Sends `msg` to the ledger and waits for the answer however long the ledger
    /// takes (it always answers after its commit): giving up would leave the
    /// outcome unknown. A ledger too busy to queue it is asked again, a bounded
    /// number of times.
    pub fn send<M>(&self, rt: &tokio::runtime::Runtime, msg: M) -> Result<M::Result, PipelineError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        LedgerRoom: Asks<M>,
    {
        let mut attempt = 0;
        let mut msg = msg;
        let sent = loop {
            match self.ledger.try_send(msg) {
                Ok(sent) => break sent,
                Err((back, AskError::Overloaded(_))) if attempt < LEDGER_BUSY_RETRIES_MAX => {
                    attempt += 1;
                    msg = back;
                    std::thread::sleep(Duration::from_millis(JOB_RETRY_BACKOFF_MS));
                }
                Err((_, e)) => return Err(e.into()),
            }
        };
        Ok(rt.block_on(sent)?)
    }

    pub fn job(&self, rt: &tokio::runtime::Runtime, id: JobId) -> Result<Job, PipelineError> {
        self.send(rt, super::messages::GetJob { id })??
            .ok_or(PipelineError::Missing(id))
    }

    /// Takes job `id` one step.
    pub fn advance(
        &self,
        rt: &tokio::runtime::Runtime,
        id: JobId,
        step: Step<'static>,
    ) -> Result<JobRow, PipelineError> {
        Ok(self.send(rt, AdvanceJob { id, step })??)
    }

    fn finish(
        &self,
        rt: &tokio::runtime::Runtime,
        id: JobId,
        end: End,
        error: Option<String>,
    ) -> Result<Outcome, PipelineError> {
        let row = self.advance(
            rt,
            id,
            Step::Finished {
                end,
                error,
                at: Timestamp::now(),
            },
        )?;
        let job = Job { id, row };
        finished(&job).emit(&self.telemetry);
        Ok(Outcome::Finished(Box::new(job)))
    }

    fn fail(
        &self,
        rt: &tokio::runtime::Runtime,
        id: JobId,
        why: FileFailure,
    ) -> Result<Outcome, PipelineError> {
        self.finish(rt, id, End::Failed, Some(why.to_string()))
    }

    /// Runs (or resumes) a job to its end, or until asked to stop, whatever its
    /// file does: a panic in any stage fails the job ("internal error in <stage>")
    /// instead of the pipeline, a step that wrote nothing is retried from the last
    /// committed position a bounded number of times, and any other error fails the
    /// job with its stage. Only when even recording the failure fails does the job
    /// stay open (for the next start to resume).
    pub fn run(&self, rt: &tokio::runtime::Runtime, id: JobId) -> Result<Outcome, PipelineError> {
        let stage = StageCell::default();
        for attempt in 1.. {
            let reason = match catch_unwind(AssertUnwindSafe(|| self.run_once(rt, id, &stage))) {
                Ok(Ok(outcome)) => return Ok(outcome),
                Ok(Err(PipelineError::Store(StoreError::LeaseLost(_)))) => {
                    tracing::info!(
                        job = id.0,
                        "another node took this import over; it finishes it"
                    );
                    return Ok(Outcome::Interrupted);
                }
                Ok(Err(e)) if e.is_transient() && attempt < JOB_RUN_ATTEMPTS_MAX => {
                    tracing::warn!(job = id.0, error = %e, attempt, "import step not committed; resuming from the last commit");
                    std::thread::sleep(Duration::from_millis(
                        JOB_RETRY_BACKOFF_MS * u64::from(attempt),
                    ));
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::error!(job = id.0, stage = stage.get().as_str(), error = %e, "an import job failed on our side");
                    FileFailure::Internal(stage.get())
                }
                Err(panic) => {
                    tracing::error!(
                        job = id.0,
                        stage = stage.get().as_str(),
                        panic = panic_text(&*panic),
                        "an import stage panicked; its job fails, the pipeline goes on"
                    );
                    FileFailure::Internal(stage.get())
                }
            };
            return self.fail(rt, id, reason);
        }
        unreachable!("the loop returns")
    }

    fn run_once(
        &self,
        rt: &tokio::runtime::Runtime,
        id: JobId,
        stage: &StageCell,
    ) -> Result<Outcome, PipelineError> {
        stage.set(Stage::Sniff);
        let job = self.job(rt, id)?;
        if job.row.status.is_final() {
            return Ok(Outcome::Finished(Box::new(job)));
        }
        if job.row.started_at.is_none()
            && let Some(reason) = job.row.error.clone()
        {
            return self.finish(rt, id, End::Failed, Some(reason));
        }
        let path = PathBuf::from(&job.row.work_path);
        let ty = match job.row.file_type {
            Some(ty) => ty,
            None => match self.sniff(rt, id, &job.row.file_name, &path)? {
                Ok(ty) => ty,
                Err(reason) => return self.fail(rt, id, reason),
            },
        };
        stage.set(Stage::Inspect);
        let job = if job.row.sha256.is_none() {
            crate::failpoint::hit("inspect", || job.row.file_name.clone());
            let facts = match extract::inspect(&path, ty) {
                Ok(facts) => facts,
                Err(reason) => return self.fail(rt, id, reason),
            };
            let row = self.advance(
                rt,
                id,
                Step::Started {
                    sha256: facts.sha256,
                    bytes: facts.bytes,
                    at: Timestamp::now(),
                },
            )?;
            if row.status == JobStatus::Duplicate {
                let job = Job { id, row };
                finished(&job).emit(&self.telemetry);
                return Ok(Outcome::Finished(Box::new(job)));
            }
            Job { id, row }
        } else {
            job
        };
        tracing::info!(job = id.0, file = %job.row.file_name, resume_at = job.row.rows_read, dry_run = job.row.dry_run, "import started");
        stage.set(Stage::Load);
        match self.stream(rt, &job, &path, ty)? {
            Streamed::Done => self.finish(rt, id, End::Completed, None),
            Streamed::Broken(reason) => self.fail(rt, id, reason),
            Streamed::Stopped => {
                tracing::info!(
                    job = id.0,
                    "import paused for shutdown; it resumes on the next start"
                );
                Ok(Outcome::Interrupted)
            }
        }
    }

    /// Decides the kind of a file whose name does not say, and records it.
    fn sniff(
        &self,
        rt: &tokio::runtime::Runtime,
        id: JobId,
        name: &str,
        path: &Path,
    ) -> Result<Result<FileType, FileFailure>, PipelineError> {
        let (format, gzip) = match super::naming::format_of(name) {
            Ok(f) => f,
            Err(reason) => return Ok(Err(reason)),
        };
        crate::failpoint::hit("sniff", || name.to_owned());
        let kind = match super::sniff::sniff_kind(path, format, gzip) {
            Ok(kind) => kind,
            Err(reason) => return Ok(Err(reason)),
        };
        let ty = FileType { kind, format, gzip };
        self.advance(rt, id, Step::KindRead(ty))?;
        tracing::info!(
            job = id.0,
            file = name,
            kind = kind.as_str(),
            "kind read from the columns"
        );
        Ok(Ok(ty))
    }

    fn stream(
        &self,
        rt: &tokio::runtime::Runtime,
        job: &Job,
        path: &Path,
        ty: FileType,
    ) -> Result<Streamed, PipelineError> {
        let bytes_read = Arc::new(AtomicU64::new(0));
        let reader = match extract::open(path, ty.gzip, Arc::clone(&bytes_read)) {
            Ok(r) => r,
            Err(e) => return Ok(Streamed::Broken(e.into())),
        };
        let skip = job.row.rows_read;
        let failed_ref = job
            .row
            .failed_order_ref
            .as_deref()
            .and_then(|r| OrderRef::parse(r).ok());
        let (record_tx, record_rx) = sync_channel::<Records>(IMPORT_CHANNEL_CHUNKS_MAX);
        let (piece_tx, piece_rx) = sync_channel::<Pieces>(IMPORT_CHANNEL_CHUNKS_MAX);
        let stop = &self.stop;
        let currency = self.currency;

        std::thread::scope(|scope| {
            // Extract: records, skipping those already committed.
            scope.spawn(move || extract_stage(ty, reader, skip, stop, record_tx));
            // Transform: rows and rejects, orders grouped.
            scope.spawn(move || {
                transform_stage(ty, currency, failed_ref, stop, record_rx, piece_tx)
            });
            // Load: batches into the ledger.
            self.load_loop(rt, job, ty, piece_rx, &bytes_read)
        })
    }

    fn load_loop(
        &self,
        rt: &tokio::runtime::Runtime,
        job: &Job,
        ty: FileType,
        pieces: std::sync::mpsc::Receiver<Result<Vec<Piece>, FileFailure>>,
        bytes_read: &AtomicU64,
    ) -> Result<Streamed, PipelineError> {
        let id = job.id;
        let kind = ty.kind;
        let dry_run = job.row.dry_run;
        let started = Instant::now();
        let mut last_log = Instant::now();
        let mut rows = job.row.rows_read;
        let rows_at_start = rows;
        let mut batch = Batch::default();
        let mut batch_records = 0u64;
        let mut outcome = Streamed::Done;
        for message in pieces.iter() {
            let chunk = match message {
                Ok(chunk) => chunk,
                Err(reason) => {
                    outcome = Streamed::Broken(reason);
                    break;
                }
            };
            for piece in chunk {
                batch_records += piece.records;
                batch.pieces.push(piece);
                if batch_records >= IMPORT_BATCH_ROWS_MAX as u64 {
                    batch.bytes_read = bytes_read.load(Ordering::Relaxed);
                    rows += self.commit(rt, id, kind, dry_run, std::mem::take(&mut batch))?;
                    batch_records = 0;
                }
            }
            if last_log.elapsed() >= Duration::from_millis(PROGRESS_LOG_INTERVAL_MS) {
                last_log = Instant::now();
                let rate =
                    (rows - rows_at_start) as f64 / started.elapsed().as_secs_f64().max(1e-9);
                tracing::info!(
                    job = id.0,
                    file = %job.row.file_name,
                    rows,
                    bytes = bytes_read.load(Ordering::Relaxed),
                    rows_per_second = rate.round(),
                    "import progress"
                );
            }
            if self.stop.load(Ordering::Relaxed) {
                outcome = Streamed::Stopped;
                break;
            }
        }
        if self.stop.load(Ordering::Relaxed) && matches!(outcome, Streamed::Done) {
            outcome = Streamed::Stopped;
        }
        // Whatever is batched is made of whole rows and whole orders: commit it, even
        // when stopping, so the work done is kept.
        if !batch.pieces.is_empty() {
            batch.bytes_read = bytes_read.load(Ordering::Relaxed);
            self.commit(rt, id, kind, dry_run, batch)?;
        }
        Ok(outcome)
    }

    /// Commits one batch with the job's progress; returns the records it covered.
    fn commit(
        &self,
        rt: &tokio::runtime::Runtime,
        id: JobId,
        kind: Kind,
        dry_run: bool,
        batch: Batch,
    ) -> Result<u64, PipelineError> {
        let applied: Applied = self.send(rt, LoadBatch { id, batch, dry_run })??;
        RowsCommitted {
            kind,
            loaded: applied.loaded,
            rejected: &applied.rejects.iter().map(|r| r.code).collect::<Vec<_>>(),
        }
        .emit(&self.telemetry);
        Ok(applied.records)
    }
}

enum Streamed {
    Done,
    Broken(FileFailure),
    Stopped,
}

/// The telemetry event of a job that reached its end.
fn finished(job: &Job) -> FileFinished<'_> {
    let r = &job.row;
    FileFinished {
        job: job.id.0,
        file_name: &r.file_name,
        status: r.status.as_str(),
        rows_read: r.rows_read,
        rows_loaded: r.rows_loaded,
        rows_rejected: r.rows_rejected,
        error: r.error.as_deref(),
    }
}

/// The records a chunk of the file gave, or why the file cannot be read on.
type Records = Result<Vec<extract::RawRecord>, FileFailure>;
/// The pieces a chunk of records gave.
type Pieces = Result<Vec<Piece>, FileFailure>;

/// The extract stage: records in chunks, skipping the `skip` already committed;
/// stops at the file's end, a failure, a closed channel or a shutdown.
fn extract_stage(
    ty: FileType,
    reader: Box<dyn std::io::BufRead + Send>,
    skip: u64,
    stop: &AtomicBool,
    record_tx: SyncSender<Records>,
) {
    let crash = record_tx.clone();
    let run = guarded(Stage::Extract, move || {
        let mut extractor = match extract::extractor(ty, reader) {
            Ok(e) => e,
            Err(e) => {
                let _ = record_tx.send(Err(e));
                return;
            }
        };
        let mut seen = 0u64;
        let mut chunk = Vec::with_capacity(IMPORT_CHUNK_ROWS);
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match extractor.next_record() {
                Ok(Some(record)) => {
                    crate::failpoint::hit("extract", || record.raw_text());
                    seen += 1;
                    if seen <= skip {
                        continue;
                    }
                    chunk.push(record);
                    if chunk.len() == IMPORT_CHUNK_ROWS
                        && record_tx.send(Ok(std::mem::take(&mut chunk))).is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {
                    if !chunk.is_empty() {
                        let _ = record_tx.send(Ok(chunk));
                    }
                    return;
                }
                Err(e) => {
                    let _ = record_tx.send(Err(e));
                    return;
                }
            }
        }
    });
    if let Err(reason) = run {
        let _ = crash.send(Err(reason));
    }
}

/// The transform stage: rows and rejects, an order's rows grouped into one piece.
fn transform_stage(
    ty: FileType,
    currency: Currency,
    failed_ref: Option<OrderRef>,
    stop: &AtomicBool,
    record_rx: Receiver<Records>,
    piece_tx: SyncSender<Pieces>,
) {
    let crash = piece_tx.clone();
    let run = guarded(Stage::Transform, move || {
        let mut grouper = Grouper::resume(failed_ref);
        for message in record_rx {
            let records = match message {
                Ok(r) => r,
                Err(e) => {
                    let _ = piece_tx.send(Err(e));
                    return;
                }
            };
            let mut out = Vec::with_capacity(records.len());
            for record in &records {
                crate::failpoint::hit("transform", || record.raw_text());
                let outcome = transform::transform(ty.kind, currency, record);
                grouper.push(outcome, record.line, || record.raw_text(), &mut out);
            }
            if piece_tx.send(Ok(out)).is_err() {
                return;
            }
        }
        // The end of the file closes the last order, unless the extractor only
        // stopped because of a shutdown.
        if !stop.load(Ordering::Relaxed) {
            let mut out = Vec::new();
            grouper.close(&mut out);
            let _ = piece_tx.send(Ok(out));
        }
    });
    if let Err(reason) = run {
        let _ = crash.send(Err(reason));
    }
}
