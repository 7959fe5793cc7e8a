//! The inbox watcher actor and the job runner behind it.
//!
//! File-system notifications are a hint, never the source of truth: the folder is
//! scanned at start-up, on a timer, whenever a notification (or its overflow or
//! error) arrives, and when a tracked file's settle period ends. `--inbox-poll`
//! drops notifications altogether, for network file systems.
//!
//! A file is claimed by an atomic rename into the hidden working folder, so it is
//! never taken twice and never half-claimed; from then on the working folder and
//! the job table are the truth. The runner thread processes one job at a time:
//! first, at start-up, whatever a previous run left unfinished, then new files and
//! uploads in the order they were claimed.
//!
//! Why one file: the watcher actor and the runner thread it feeds share their claim and
//! recovery rules; about 50 of its lines are unit tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;

use std::ffi::OsString;

use super::failure::FileFailure;
use super::jobs::{self, Job, Origin};
use super::messages::{ClaimFile, CreateJob, DropClaim, OpenJobs, TakeOver};
use super::naming::{escape_name, format_of, safe_name, unclaimable_reason};
use super::pipeline::{Outcome, Pipeline, PipelineError};
use super::report::{Dirs, finalize};
use super::settle::{Park, Seen, Settler};
use crate::domain::{Currency, JobId};
use crate::limits::{
    INBOX_LEASE_RENEW_MS, INBOX_SCAN_DEBOUNCE_MS, INBOX_TRACKED_FILES_MAX, UPLOAD_IDLE_SECS_MAX,
};
use crate::mailbox::AskError;
use crate::room::LedgerRoom;

use crate::telemetry::{Event, InboxScanned, Telemetry};

/// How the inbox behaves (all from the command line).
#[derive(Debug, Clone)]
pub struct InboxConfig {
    pub root: PathBuf,
    /// A file is taken once its size and mtime have been stable this long.
    pub settle: Duration,
    /// Rescan interval (notifications only hint between scans).
    pub scan_interval: Duration,
    /// No notifications: scan on the timer only.
    pub poll: bool,
    /// How long a file that looks truncated is waited for before it fails.
    pub truncated_wait: Duration,
    /// Other nodes watch this folder too (the PostgreSQL backend): files are
    /// claimed through the ledger before they are renamed, the working folder
    /// holds other nodes' files (so it is not recovered from), and what a node
    /// that stopped left is taken over. The inbox never asks which backend runs;
    /// whoever starts it says whether its folder is shared.
    pub shared: bool,
}

/// Work for the runner thread.
#[derive(Debug)]
pub enum Task {
    /// Finish what a previous run left: open jobs, and claimed files without one.
    Recover { work_files: Vec<PathBuf> },
    /// A file just claimed into the working folder; `refused` fails it at once.
    Claimed {
        work_path: PathBuf,
        file_name: String,
        refused: Option<FileFailure>,
    },
    /// A job created elsewhere (an upload).
    Job(JobId),
    /// A settled file still in the inbox, for a shared inbox (PostgreSQL): the
    /// runner claims it in the database first, and renames it only if it won.
    Offered {
        path: PathBuf,
        file_name: String,
        refused: Option<FileFailure>,
    },
}

/// The running inbox: its watcher actor and runner thread.
pub struct Inbox {
    pub watcher: Addr<InboxWatcher>,
    pub dirs: Dirs,
    stop: Arc<AtomicBool>,
    runner: Option<std::thread::JoinHandle<()>>,
    alive: RunnerAlive,
}

/// True while the runner thread runs; cleared when it ends, however it ends.
#[derive(Debug, Clone)]
pub struct RunnerAlive(Arc<AtomicBool>);

impl RunnerAlive {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Owned by the runner thread: clears [`RunnerAlive`] when the thread ends, by
/// returning or by unwinding.
struct ClearOnExit(Arc<AtomicBool>);

impl Drop for ClearOnExit {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Inbox {
    /// Creates the folders, queues the recovery of unfinished work, starts the
    /// runner thread and the watcher (on an arbiter of its own).
    ///
    /// On PostgreSQL the inbox may be shared by several nodes: files are claimed in
    /// the database before they are renamed, the working folder holds other nodes'
    /// files too (so it is not recovered from), and jobs whose node died are taken
    /// over once their lease runs out (see [`super::messages`]).
    pub fn start(
        config: InboxConfig,
        ledger: LedgerRoom,
        currency: Currency,
        telemetry: Telemetry,
    ) -> std::io::Result<Self> {
        let dirs = Dirs::new(&config.root);
        dirs.create()?;
        let shared = config.shared;
        let (tasks, queue) = sync_channel::<Task>(INBOX_TRACKED_FILES_MAX);
        let queued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        if !shared {
            let work_files = list_files(&dirs.work)?
                .into_iter()
                .map(|f| dirs.work.join(f.raw))
                .collect();
            queued.fetch_add(1, Ordering::AcqRel);
            tasks
                .send(Task::Recover { work_files })
                .expect("the queue was just made");
        }
        sweep_uploads(&dirs.uploads)?;

        let pipeline = Pipeline {
            ledger,
            currency,
            telemetry: telemetry.clone(),
            stop: Arc::clone(&stop),
        };
        let runner_dirs = dirs.clone();
        let runner_queued = Arc::clone(&queued);
        let alive = RunnerAlive(Arc::new(AtomicBool::new(true)));
        let on_exit = ClearOnExit(Arc::clone(&alive.0));
        let runner = std::thread::Builder::new()
            .name("inbox-runner".into())
            .spawn(move || {
                // Cleared however the thread ends, so readiness sees a dead runner.
                let _on_exit = on_exit;
                run_tasks(queue, pipeline, runner_dirs, runner_queued, shared);
            })?;

        let watcher_dirs = dirs.clone();
        let watcher =
            InboxWatcher::start_in_arbiter(&Arbiter::new().handle(), move |_| InboxWatcher {
                scanner: Scanner::new(config, watcher_dirs).shared(shared),
                tasks,
                queued,
                telemetry,
                notify: None,
                last_scan: None,
                rescan: None,
            });
        Ok(Self {
            watcher,
            dirs,
            stop,
            runner: Some(runner),
            alive,
        })
    }

    /// Whether the runner thread is still taking jobs (for readiness).
    pub fn runner_alive(&self) -> RunnerAlive {
        self.alive.clone()
    }

    /// Stops taking files, lets the job in progress commit its current batch, and
    /// waits for the runner to finish.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.watcher.send(StopWatcher).await;
        if let Some(runner) = self.runner.take() {
            let _ = tokio::task::spawn_blocking(move || runner.join()).await;
        }
    }
}

/// A file (not a folder) directly in a directory.
struct Listed {
    /// The name as people read it ([`escape_name`] for names that are not UTF-8).
    display: String,
    raw: OsString,
    meta: std::fs::Metadata,
}

/// Files (not folders) directly in `dir`, with size and mtime.
fn list_files(dir: &Path) -> std::io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let raw = entry.file_name();
        out.push(Listed {
            display: escape_name(&raw),
            raw,
            meta,
        });
    }
    Ok(out)
}

/// Removes uploads that nobody has written to for [`UPLOAD_IDLE_SECS_MAX`]: what a
/// crash or a vanished client left behind (a live upload writes all the time).
pub fn sweep_uploads(dir: &Path) -> std::io::Result<usize> {
    let mut swept = 0;
    let idle = Duration::from_secs(UPLOAD_IDLE_SECS_MAX);
    for entry in list_files(dir)? {
        let stale = entry
            .meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= idle);
        if stale && std::fs::remove_file(dir.join(&entry.raw)).is_ok() {
            swept += 1;
        }
    }
    if swept > 0 {
        tracing::info!(files = swept, folder = %dir.display(), "removed abandoned uploads");
    }
    Ok(swept)
}

/// The watcher's decisions, apart from the actor and the clock: list the folder,
/// settle, check for truncation, claim. Driven with a simulated clock by the
/// watcher's property test.
pub struct Scanner {
    pub config: InboxConfig,
    pub dirs: Dirs,
    settler: Settler,
    /// When each settled file that still looks truncated was first found so; only
    /// for files the settler holds back (a change or a vanished file drops it).
    truncated: HashMap<String, Instant>,
    /// The raw names of the last listing, by display name.
    raw_names: HashMap<String, OsString>,
    claims: u64,
    /// A shared inbox: settled files are offered to the runner, not renamed.
    shared: bool,
}

/// A file the scanner claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub work_path: PathBuf,
    pub file_name: String,
    /// Why it fails without being read (it looked truncated for too long), if it does.
    pub refused: Option<FileFailure>,
}

impl Scanner {
    pub fn new(config: InboxConfig, dirs: Dirs) -> Self {
        Self {
            settler: Settler::new(config.settle),
            config,
            dirs,
            truncated: HashMap::new(),
            raw_names: HashMap::new(),
            claims: 0,
            shared: false,
        }
    }

    /// In a shared inbox, settled files are handed to the runner where they are
    /// (as [`Claim`]s whose `work_path` is the file in the inbox), and held back
    /// until they change: the runner claims them in the database and renames
    /// them only if this node won.
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// A unique name in the working folder that keeps the original name readable.
    pub fn work_path(&mut self, file_name: &str) -> PathBuf {
        self.claims += 1;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.dirs.work.join(format!(
            "{nanos:x}{:04x}-{file_name}",
            self.claims % 0x10000
        ))
    }

    /// Lists the inbox at `now` and claims up to `room` settled files, oldest first.
    pub fn scan(&mut self, now: Instant, room: usize) -> std::io::Result<Vec<Claim>> {
        let listed = list_files(&self.dirs.root)?;
        let seen: Vec<Seen> = listed
            .iter()
            .map(|f| Seen {
                name: f.display.clone(),
                size: f.meta.len(),
                modified: f.meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
            .collect();
        self.raw_names = listed.into_iter().map(|f| (f.display, f.raw)).collect();
        let mut claims = Vec::new();
        for name in self.settler.observe(now, &seen) {
            if claims.len() >= room {
                break;
            }
            if let Some(claim) = self.consider(&name, now) {
                claims.push(claim);
            }
        }
        // Truncation timers live only while their file is held back unchanged.
        let settler = &self.settler;
        self.truncated.retain(|name, _| settler.is_parked(name));
        Ok(claims)
    }

    /// A settled file: claim it, unless it is a JSON array not yet closed that may
    /// still be completed. A file the inbox cannot use under its own name, or cannot
    /// read, is claimed all the same and its job fails with the reason; one that
    /// cannot even be renamed is reported once and left alone until it changes.
    fn consider(&mut self, name: &str, now: Instant) -> Option<Claim> {
        let raw = self
            .raw_names
            .get(name)
            .cloned()
            .unwrap_or_else(|| OsString::from(name));
        let path = self.dirs.root.join(&raw);
        let (file_name, refused) = match unclaimable_reason(&raw) {
            Some(reason) => (safe_name(&raw), Some(reason)),
            None => (name.to_owned(), self.refusal(name, &path, now)?),
        };
        if self.shared {
            self.settler.park(name, Park::UntilChanged);
            self.truncated.remove(name);
            return Some(Claim {
                work_path: path,
                file_name,
                refused,
            });
        }
        let work = self.work_path(&file_name);
        if let Err(e) = std::fs::rename(&path, &work) {
            if path.exists() {
                tracing::warn!(file = name, error = %e, "cannot claim an inbox file; it is left where it is until it changes");
                self.settler.park(name, Park::UntilChanged);
            } else {
                self.settler.forget(name);
            }
            return None;
        }
        self.settler.forget(name);
        self.truncated.remove(name);
        tracing::info!(file = name, "claimed an inbox file");
        Some(Claim {
            work_path: work,
            file_name,
            refused,
        })
    }

    /// Why a file is failed without being read (`Some(Some(reason))`), that it is
    /// taken as it is (`Some(None)`), or that it is held back for now (`None`).
    /// Only a JSON array that is not closed waits to be completed; CSV and JSON
    /// Lines are complete once settled, with or without a final line break.
    #[allow(clippy::option_option)]
    fn refusal(&mut self, name: &str, path: &Path, now: Instant) -> Option<Option<FileFailure>> {
        let (format, gzip) = match format_of(name) {
            Err(reason) => return Some(Some(reason)),
            Ok(f) => f,
        };
        match super::settle::looks_truncated(path, format, gzip) {
            // A read error is the job's to report: it fails on reading the file.
            Ok(None) | Err(_) => Some(None),
            Ok(Some(why)) => {
                let since = *self.truncated.entry(name.to_owned()).or_insert(now);
                let until = since + self.config.truncated_wait;
                if now < until {
                    self.settler.park(name, Park::Until(until));
                    return None;
                }
                Some(Some(FileFailure::LooksTruncated {
                    why,
                    waited_secs: self.config.truncated_wait.as_secs(),
                }))
            }
        }
    }

    /// Files held back because they look truncated (bounded by the files present).
    pub fn truncation_timers(&self) -> usize {
        self.truncated.len()
    }

    /// Puts a claimed file back where it was (its task could not be queued).
    pub fn unclaim(&self, claim: &Claim) {
        let _ = std::fs::rename(&claim.work_path, self.dirs.root.join(&claim.file_name));
    }

    /// Files watched but not settled, and the age of the oldest.
    pub fn waiting(&self, now: Instant) -> (usize, Duration) {
        self.settler.waiting(now)
    }

    /// When a tracked file could next become ready.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.settler.next_deadline()
    }
}

pub struct InboxWatcher {
    scanner: Scanner,
    tasks: SyncSender<Task>,
    queued: Arc<AtomicUsize>,
    telemetry: Telemetry,
    notify: Option<notify::RecommendedWatcher>,
    last_scan: Option<Instant>,
    rescan: Option<SpawnHandle>,
}

/// Scan the folder now (a notification's hint, or a timer).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Rescan;

/// Stop watching (shutdown).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopWatcher;

/// Take an uploaded file (already complete in the uploads folder) into the working
/// folder; answers its path there.
#[derive(Debug, Message)]
#[rtype(result = "std::io::Result<PathBuf>")]
pub struct AcceptUpload {
    /// The complete upload.
    pub temp_path: PathBuf,
    /// The name the client gave it (already checked).
    pub file_name: String,
}

/// Queue a job created for an upload.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AskError>")]
pub struct Enqueue {
    /// The job.
    pub job: JobId,
}

impl Actor for InboxWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        if !self.scanner.config.poll {
            let addr = ctx.address();
            let watcher =
                notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    // Every event, overflow or error means the same: look again. A full
                    // mailbox means a scan is already due.
                    let _ = event;
                    let _ = addr.try_send(Rescan);
                });
            match watcher {
                Ok(mut w) => match notify::Watcher::watch(
                    &mut w,
                    &self.scanner.config.root,
                    notify::RecursiveMode::NonRecursive,
                ) {
                    Ok(()) => self.notify = Some(w),
                    Err(e) => {
                        tracing::warn!(error = %e, "inbox notifications unavailable; scanning on the timer only")
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "inbox notifications unavailable; scanning on the timer only")
                }
            }
        }
        ctx.run_interval(self.scanner.config.scan_interval, |act, ctx| act.scan(ctx));
        self.scan(ctx);
    }
}

/// Minimum time between two scans triggered by notifications (a file being written
/// produces a notification per write).
const SCAN_DEBOUNCE: Duration = Duration::from_millis(INBOX_SCAN_DEBOUNCE_MS);

impl Handler<Rescan> for InboxWatcher {
    type Result = ();
    fn handle(&mut self, _: Rescan, ctx: &mut Self::Context) {
        match self.last_scan {
            Some(at) if at.elapsed() < SCAN_DEBOUNCE => self.scan_at(ctx, at + SCAN_DEBOUNCE),
            _ => self.scan(ctx),
        }
    }
}

impl Handler<StopWatcher> for InboxWatcher {
    type Result = ();
    fn handle(&mut self, _: StopWatcher, ctx: &mut Self::Context) {
        self.notify = None;
        ctx.stop();
        Arbiter::current().stop();
    }
}

impl Handler<crate::mailbox::Ping> for InboxWatcher {
    type Result = Result<(), crate::common::StoreError>;
    fn handle(&mut self, _: crate::mailbox::Ping, _: &mut Self::Context) -> Self::Result {
        Ok(())
    }
}

impl Handler<AcceptUpload> for InboxWatcher {
    type Result = std::io::Result<PathBuf>;
    fn handle(&mut self, msg: AcceptUpload, _: &mut Self::Context) -> Self::Result {
        let work = self.scanner.work_path(&msg.file_name);
        std::fs::rename(&msg.temp_path, &work)?;
        Ok(work)
    }
}

impl Handler<Enqueue> for InboxWatcher {
    type Result = Result<(), AskError>;
    fn handle(&mut self, msg: Enqueue, _: &mut Self::Context) -> Self::Result {
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.tasks.try_send(Task::Job(msg.job)).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            AskError::Overloaded("inbox")
        })
    }
}

impl InboxWatcher {
    fn scan_at(&mut self, ctx: &mut Context<Self>, at: Instant) {
        if let Some(h) = self.rescan.take() {
            ctx.cancel_future(h);
        }
        let delay = at.saturating_duration_since(Instant::now());
        self.rescan = Some(ctx.run_later(delay, |act, ctx| {
            act.rescan = None;
            act.scan(ctx);
        }));
    }

    fn scan(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.last_scan = Some(now);
        let room = INBOX_TRACKED_FILES_MAX.saturating_sub(self.queued.load(Ordering::Acquire));
        match self.scanner.scan(now, room) {
            Ok(claims) => {
                for claim in claims {
                    self.queued.fetch_add(1, Ordering::AcqRel);
                    let task = if self.scanner.is_shared() {
                        Task::Offered {
                            path: claim.work_path.clone(),
                            file_name: claim.file_name.clone(),
                            refused: claim.refused.clone(),
                        }
                    } else {
                        Task::Claimed {
                            work_path: claim.work_path.clone(),
                            file_name: claim.file_name.clone(),
                            refused: claim.refused.clone(),
                        }
                    };
                    if self.tasks.try_send(task).is_err() {
                        // Cannot happen while `room` is respected; put the file back.
                        self.queued.fetch_sub(1, Ordering::AcqRel);
                        if !self.scanner.is_shared() {
                            self.scanner.unclaim(&claim);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, inbox = %self.scanner.dirs.root.display(), "cannot list the inbox")
            }
        }
        let (waiting, oldest) = self.scanner.waiting(now);
        let waiting = waiting + self.queued.load(Ordering::Acquire);
        InboxScanned {
            waiting,
            oldest_secs: oldest.as_secs(),
        }
        .emit(&self.telemetry);
        if let Some(deadline) = self.scanner.next_deadline() {
            self.scan_at(ctx, deadline.max(now) + Duration::from_millis(5));
        }
    }
}

/// Creates the job for a file in the working folder.
pub fn create_job(
    pipeline: &Pipeline,
    rt: &tokio::runtime::Runtime,
    work_path: &Path,
    file_name: String,
    origin: Origin,
    refused: Option<FileFailure>,
    dry_run: bool,
) -> Result<Job, PipelineError> {
    Ok(pipeline.send(
        rt,
        CreateJob {
            new: jobs::new_job(work_path, file_name, origin, refused, dry_run),
            claim: None,
        },
    )??)
}

/// The runner thread: one job at a time, each run to its end and reported.
fn run_tasks(
    queue: Receiver<Task>,
    pipeline: Pipeline,
    dirs: Dirs,
    queued: Arc<AtomicUsize>,
    shared: bool,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "the inbox runner cannot start");
            return;
        }
    };
    let mut last_takeover: Option<Instant> = None;
    while !pipeline.stop.load(Ordering::Acquire) {
        if shared
            && last_takeover
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(INBOX_LEASE_RENEW_MS))
        {
            last_takeover = Some(Instant::now());
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                take_over(&pipeline, &rt, &dirs);
            }));
            if run.is_err() {
                tracing::error!("taking over imports panicked; the runner goes on");
            }
        }
        let task = match queue.recv_timeout(Duration::from_millis(200)) {
            Ok(t) => t,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        queued.fetch_sub(1, Ordering::AcqRel);
        if let Task::Claimed { file_name, .. } | Task::Offered { file_name, .. } = &task {
            // Outside the guard below: lets a test kill the runner itself.
            crate::failpoint::hit("runner", || file_name.clone());
        }
        // A job's own failures (panics included) end in the job; this catches what
        // is left (reporting, recovery's bookkeeping) so the runner always goes on.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match task {
            Task::Recover { work_files } => {
                recover(&pipeline, &rt, &dirs, work_files);
                Ok(())
            }
            Task::Claimed {
                work_path,
                file_name,
                refused,
            } => create_job(
                &pipeline,
                &rt,
                &work_path,
                file_name,
                Origin::Inbox,
                refused,
                false,
            )
            .and_then(|job| process(&pipeline, &rt, &dirs, job.id)),
            Task::Job(id) => process(&pipeline, &rt, &dirs, id),
            Task::Offered {
                path,
                file_name,
                refused,
            } => offer(&pipeline, &rt, &dirs, &path, file_name, refused),
        }));
        match run {
            Ok(Ok(())) => {}
            // The job stays open and is taken up again on the next start.
            Ok(Err(e)) => {
                tracing::error!(error = %e, "an import job could not run; it will be retried on the next start");
            }
            Err(_) => {
                tracing::error!("an import task panicked; the runner goes on with the next file");
            }
        }
    }
}

/// A shared inbox's file: claimed in the database, renamed only if this node won
/// the claim, then its job created (ending the claim) and run.
fn offer(
    pipeline: &Pipeline,
    rt: &tokio::runtime::Runtime,
    dirs: &Dirs,
    path: &Path,
    file_name: String,
    refused: Option<FileFailure>,
) -> Result<(), PipelineError> {
    let Some(raw) = path.file_name() else {
        return Ok(());
    };
    if !path.exists() {
        return Ok(());
    }
    let name = raw.to_string_lossy().into_owned();
    let work = unique_work_path(dirs, &file_name);
    let won = rt.block_on(pipeline.ledger.ask(ClaimFile {
        name: name.clone(),
        work_path: work.to_string_lossy().into_owned(),
    }))??;
    if !won {
        tracing::debug!(file = %file_name, "another node claimed an inbox file");
        return Ok(());
    }
    if let Err(e) = std::fs::rename(path, &work) {
        tracing::info!(file = %file_name, error = %e, "a claimed inbox file was gone; claim dropped");
        rt.block_on(pipeline.ledger.ask(DropClaim { name }))??;
        return Ok(());
    }
    tracing::info!(file = %file_name, "claimed an inbox file");
    let job = pipeline.send(
        rt,
        CreateJob {
            new: jobs::new_job(&work, file_name, Origin::Inbox, refused, false),
            claim: Some(name),
        },
    )??;
    process(pipeline, rt, dirs, job.id)
}

/// A unique name in the working folder, for a claim made outside the scanner.
fn unique_work_path(dirs: &Dirs, file_name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let salt: u16 = rand::random();
    dirs.work.join(format!("{nanos:x}{salt:04x}-{file_name}"))
}

/// Takes over, on a shared inbox, what nodes whose lease ran out left: their
/// open jobs (resumed from the last committed batch) and the files they renamed
/// but made no job for.
fn take_over(pipeline: &Pipeline, rt: &tokio::runtime::Runtime, dirs: &Dirs) {
    let taken = match rt.block_on(pipeline.ledger.ask(TakeOver)) {
        Ok(Ok(taken)) => taken,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot look for imports to take over");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for imports to take over");
            return;
        }
    };
    for id in taken.jobs {
        if pipeline.stop.load(Ordering::Acquire) {
            return;
        }
        tracing::info!(job = id.0, "taking over an import whose node stopped");
        if let Err(e) = process(pipeline, rt, dirs, id) {
            tracing::error!(job = id.0, error = %e, "a taken-over import could not run");
        }
    }
    for (name, work_path) in taken.claims {
        let work = PathBuf::from(&work_path);
        let in_inbox = dirs.root.join(&name);
        let outcome = if work.exists() {
            tracing::info!(file = %name, "taking over a claimed file whose node stopped");
            pipeline
                .send(
                    rt,
                    CreateJob {
                        new: jobs::new_job(&work, name.clone(), Origin::Inbox, None, false),
                        claim: Some(name.clone()),
                    },
                )
                .and_then(|created| Ok(created?))
                .and_then(|job| process(pipeline, rt, dirs, job.id))
        } else if in_inbox.exists() {
            offer(pipeline, rt, dirs, &in_inbox, name.clone(), None)
        } else {
            rt.block_on(pipeline.ledger.ask(DropClaim { name: name.clone() }))
                .map_err(PipelineError::from)
                .and_then(|dropped| Ok(dropped?))
        };
        if let Err(e) = outcome {
            tracing::error!(file = %name, error = %e, "a taken-over claim could not be finished");
        }
    }
}

fn process(
    pipeline: &Pipeline,
    rt: &tokio::runtime::Runtime,
    dirs: &Dirs,
    id: JobId,
) -> Result<(), PipelineError> {
    match pipeline.run(rt, id)? {
        Outcome::Finished(job) => finalize(pipeline, rt, dirs, *job),
        Outcome::Interrupted => Ok(()),
    }
}

/// Open jobs of the inbox first (resumed or finished), then claimed files that a
/// crash left without a job. Each is handled on its own: one that fails is logged
/// and left for the next start, and recovery goes on with the others.
fn recover(
    pipeline: &Pipeline,
    rt: &tokio::runtime::Runtime,
    dirs: &Dirs,
    work_files: Vec<PathBuf>,
) {
    let open = match pipeline.send(rt, OpenJobs) {
        Ok(Ok(open)) => open,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot list unfinished imports; they resume on the next start");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot list unfinished imports; they resume on the next start");
            return;
        }
    };
    let known: std::collections::HashSet<PathBuf> = open
        .iter()
        .map(|j| PathBuf::from(&j.row.work_path))
        .collect();
    let each = |what: &str, run: &mut dyn FnMut() -> Result<(), PipelineError>| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, item = what, "could not recover an import; it is retried on the next start");
            }
            Err(_) => {
                tracing::error!(
                    item = what,
                    "recovering an import panicked; going on with the others"
                );
            }
        }
    };
    for job in open.into_iter().filter(|j| j.row.origin == Origin::Inbox) {
        if pipeline.stop.load(Ordering::Acquire) {
            return;
        }
        tracing::info!(job = job.id.0, file = %job.row.file_name, "resuming an import left unfinished");
        each(&job.row.file_name, &mut || {
            process(pipeline, rt, dirs, job.id)
        });
    }
    for path in work_files.into_iter().filter(|p| !known.contains(p)) {
        if pipeline.stop.load(Ordering::Acquire) {
            return;
        }
        let Some(work_name) = path.file_name() else {
            continue;
        };
        // Claimed names are `<unique>-<original name>` (safe names for the
        // unclaimable; any other name that is not UTF-8 is named safely here).
        let file_name = match work_name.to_str() {
            Some(n) => n.split_once('-').map_or(n, |(_, rest)| rest).to_owned(),
            None => safe_name(work_name),
        };
        let label = file_name.clone();
        each(&label, &mut || {
            let job = create_job(
                pipeline,
                rt,
                &path,
                file_name.clone(),
                Origin::Inbox,
                None,
                false,
            )?;
            process(pipeline, rt, dirs, job.id)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(root: &Path) -> Scanner {
        let dirs = Dirs::new(root);
        dirs.create().unwrap();
        Scanner::new(
            InboxConfig {
                root: root.to_owned(),
                settle: Duration::ZERO,
                scan_interval: Duration::from_secs(1),
                poll: true,
                truncated_wait: Duration::from_secs(60),
                shared: false,
            },
            dirs,
        )
    }

    /// Regression: the timers of files that looked truncated outlived the files.
    #[test]
    fn truncation_timers_go_with_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = scanner(dir.path());
        let t0 = Instant::now();
        let cut = dir.path().join("products_cut.json");
        std::fs::write(&cut, "[{\"name\": \"a\"},").unwrap();
        assert!(s.scan(t0, 10).unwrap().is_empty());
        assert!(s.scan(t0, 10).unwrap().is_empty());
        assert_eq!(s.truncation_timers(), 1);
        assert!(
            s.next_deadline().unwrap() >= t0 + Duration::from_secs(60),
            "a held-back file does not ask for a rescan before its time"
        );
        std::fs::remove_file(&cut).unwrap();
        assert!(s.scan(t0, 10).unwrap().is_empty());
        assert_eq!(s.truncation_timers(), 0);
        // A file that cannot be claimed is left alone until it changes.
        let blocked = dir.path().join("products_ok.csv");
        std::fs::write(&blocked, "name,price\na,1\n").unwrap();
        std::fs::remove_dir(&s.dirs.work).unwrap();
        assert!(s.scan(t0, 10).unwrap().is_empty());
        assert_eq!(s.next_deadline(), None, "no retry loop");
        std::fs::create_dir(&s.dirs.work).unwrap();
        assert!(
            s.scan(t0, 10).unwrap().is_empty(),
            "unchanged: still left alone"
        );
        std::fs::write(&blocked, "name,price\na,22\n").unwrap();
        let claims = s.scan(t0 + Duration::from_secs(1), 10).unwrap();
        assert_eq!(claims.len(), 1, "changed: taken");
    }
}
