//! The subcommands: `serve`, `ingest`, `users create`, `gen`, `backup`, `restore`,
//! `verify`.

use std::io::BufRead;
use std::process::ExitCode;

use crate::config::{
    BackupArgs, Cli, Command, CreateUserArgs, IngestArgs, PipelineArgs, UsersCommand, VerifyArgs,
};
use crate::control;
use crate::services::Services;
use crate::startup::{Application, shutdown_signal};
use crate::{auth, logging};
use orderflow_actors::domain::{Email, Password, Role, Username};
use orderflow_actors::store::{DB_FILE_NAME, OpenError, Store};
use orderflow_actors::store::{Manifest, backup};
use orderflow_actors::users::CreateUser;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let _guard = logging::init(&args.store.log, args.store.log_format)?;
            actix::System::new().block_on(async move {
                let stop = shutdown_signal();
                let app = Application::build(*args).await?;
                app.run_until(stop).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Users {
            command: UsersCommand::Create(args),
        } => {
            let _guard = logging::init(&args.store.log, args.store.log_format)?;
            actix::System::new().block_on(create_user(args))
        }
        Command::Ingest(args) => {
            let _guard = logging::init(&args.store.log, args.store.log_format)?;
            actix::System::new().block_on(ingest(args))
        }
        Command::Gen(args) => {
            if !(0.0..=100.0).contains(&args.dirty) {
                eprintln!("error: --dirty must be a percentage from 0 to 100");
                return Ok(ExitCode::from(2));
            }
            let rows = match &args.output {
                Some(path) => {
                    let file = std::fs::File::create(path)?;
                    crate::datagen::generate(
                        &args,
                        std::io::BufWriter::with_capacity(1 << 16, file),
                    )?
                }
                None => crate::datagen::generate(
                    &args,
                    std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
                )?,
            };
            eprintln!("wrote {rows} rows");
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup(args) => Ok(report(take_backup(&args))),
        Command::Restore(args) => Ok(report(
            backup::restore(&args.from, &args.data_dir)
                .map(|m| {
                    eprintln!(
                        "restored {} into {} (last order {}, event seq {}); run `orderflow verify --data-dir {}` to check it",
                        m.file.display(),
                        args.data_dir.display(),
                        m.last_order_id,
                        m.event_seq,
                        args.data_dir.display()
                    );
                    serde_json::to_string_pretty(&m).expect("a manifest serializes")
                })
                .map_err(|e| e.to_string()),
        )),
        Command::Verify(args) => Ok(verify(&args)),
    }
}

/// Prints an answer on standard output (exit 0) or the error on standard error
/// (exit 1).
fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Opens an existing data directory's database (never creates one).
fn open_existing(data_dir: &std::path::Path) -> Result<Store, OpenError> {
    if !data_dir.join(DB_FILE_NAME).is_file() {
        return Err(OpenError::Io {
            path: data_dir.join(DB_FILE_NAME),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no database here"),
        });
    }
    Store::open(data_dir)
}

/// A backup taken directly, or by the service that owns the data directory.
fn take_backup(args: &BackupArgs) -> Result<String, String> {
    let manifest: Manifest = match open_existing(&args.data_dir) {
        Ok(store) => backup::take(&store, args.to.as_deref()).map_err(|e| e.to_string())?,
        Err(OpenError::Locked(_)) => {
            eprintln!(
                "a service runs on {}: asking it for the backup",
                args.data_dir.display()
            );
            // A relative FILE means relative to here, not to the service.
            let to = match &args.to {
                Some(p) if p.is_relative() => {
                    Some(std::env::current_dir().map_err(|e| e.to_string())?.join(p))
                }
                other => other.clone(),
            };
            match control::ask(&args.data_dir, &control::Request::Backup { to }) {
                Ok(control::Reply::Backup(m)) => m,
                Ok(control::Reply::Failed(e)) => return Err(e),
                Err(e) => {
                    return Err(format!(
                        "the service owning {} did not answer on {}: {e}",
                        args.data_dir.display(),
                        control::SOCKET_NAME
                    ));
                }
            }
        }
        Err(e) => return Err(e.to_string()),
    };
    eprintln!(
        "backup {} ({} bytes, last order {}, event seq {})",
        manifest.file.display(),
        manifest.bytes,
        manifest.last_order_id,
        manifest.event_seq
    );
    Ok(serde_json::to_string_pretty(&manifest).expect("a manifest serializes"))
}

/// The ledger's verify, offline: exit 0 only with no problems.
fn verify(args: &VerifyArgs) -> ExitCode {
    let store = match open_existing(&args.data_dir) {
        Ok(store) => store,
        Err(e @ OpenError::Locked(_)) => {
            eprintln!("error: {e}; while it serves, ask it: GET /api/v1/admin/ledger/verify");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match orderflow_actors::ledger::verify(&store) {
        Ok(r) => {
            let report = crate::api::json::VerifyJson::from(r);
            println!(
                "{}",
                serde_json::to_string(&report).expect("a report serializes")
            );
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("error: {} problem(s) found", report.problems.len());
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn create_user(args: CreateUserArgs) -> anyhow::Result<ExitCode> {
    let secret = match std::env::var("ORDERFLOW_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let mut problems = Vec::new();
    let username = Username::parse(&args.username)
        .map_err(|e| problems.push(format!("--username {e}")))
        .ok();
    let email = Email::parse(&args.email)
        .map_err(|e| problems.push(format!("--email {e}")))
        .ok();
    let password = Password::parse(&secret)
        .map_err(|e| problems.push(format!("password {e}")))
        .ok();
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        for p in problems {
            eprintln!("error: {p}");
        }
        return Ok(ExitCode::from(2));
    };
    let pipeline = PipelineArgs {
        commit_batch_max: 1,
        ledger_queue_max: 16,
        actor_timeout_ms: orderflow_actors::limits::ACTOR_REPLY_TIMEOUT_MS,
        ledger_write_timeout_ms: orderflow_actors::limits::LEDGER_WRITE_TIMEOUT_MS,
        import_events: crate::config::ImportEvents::Summary,
        ledger_journal: crate::config::LedgerJournal::Off,
        ledger_journal_awake: crate::config::JournalAwake::Off,
        event_retention_days: orderflow_actors::limits::EVENT_RETENTION_DAYS_DEFAULT,
    };
    let services = Services::start(&args.store, &pipeline, 1)?;
    let password_hash = auth::password::hash(password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let role = if args.admin {
        Role::Admin
    } else {
        Role::Customer
    };
    let outcome = services
        .users
        .ask(CreateUser {
            username,
            email,
            password_hash,
            role,
        })
        .await?;
    services.shutdown().await;
    match outcome {
        Ok(user) => {
            println!(
                "created user {} (id {}, {})",
                user.username.as_str(),
                user.id.0,
                user.role.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `orderflow ingest FILE…`: the inbox pipeline once, without the server. Files stay
/// where they are; a run that was interrupted is resumed by running it again.
async fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use orderflow_actors::inbox::JobStatus;
    use orderflow_actors::inbox::{Dirs, finalize};
    use orderflow_actors::inbox::{Outcome, Pipeline};

    let services = Services::start(&args.store, &args.pipeline, 1)?;
    let stop = Arc::new(AtomicBool::new(false));
    let redb_ledger = services.ledger.clone();
    let pipeline = Pipeline {
        ledger: orderflow_actors::room::Room::Redb(services.ledger.clone()),
        currency: services.currency,
        telemetry: services.telemetry.clone(),
        stop: Arc::clone(&stop),
    };
    let signal_stop = Arc::clone(&stop);
    let signal = shutdown_signal();
    actix::spawn(async move {
        signal.await;
        eprintln!("interrupted: finishing the current batch; run the same command again to resume");
        signal_stop.store(true, Ordering::Release);
    });
    let files = args.files.clone();
    let dry_run = args.dry_run;
    let all_completed = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        // Not used for CLI jobs (files stay in place), but finalize wants the layout.
        let dirs = Dirs::new(std::path::Path::new("."));
        let mut all_completed = true;
        for file in &files {
            if pipeline.stop.load(Ordering::Acquire) {
                all_completed = false;
                break;
            }
            let path = match std::fs::canonicalize(file) {
                Ok(p) if p.is_file() => p,
                _ => {
                    println!("{}: failed — no such file", file.display());
                    all_completed = false;
                    continue;
                }
            };
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let job = cli_job(&pipeline, &rt, &path, &name, dry_run)?;
            let progress =
                crate::progress::FileProgress::start(redb_ledger.clone(), job.id, name.clone());
            let outcome = pipeline.run(&rt, job.id);
            drop(progress);
            match outcome? {
                Outcome::Finished(job) => {
                    print_summary(&job);
                    all_completed &= job.row.status == JobStatus::Completed;
                    finalize(&pipeline, &rt, &dirs, *job)?;
                }
                Outcome::Interrupted => {
                    println!("{name}: interrupted — run the same command again to resume");
                    all_completed = false;
                }
            }
        }
        Ok(all_completed)
    })
    .await??;
    services.shutdown().await;
    Ok(if all_completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The job for a file given to `orderflow ingest`: the open one a previous run
/// left for the same path (resumed where it stopped), or a new one.
fn cli_job(
    pipeline: &orderflow_actors::inbox::Pipeline,
    rt: &tokio::runtime::Runtime,
    path: &std::path::Path,
    name: &str,
    dry_run: bool,
) -> anyhow::Result<orderflow_actors::inbox::Job> {
    use orderflow_actors::inbox::OpenJobs;
    use orderflow_actors::inbox::create_job;
    use orderflow_actors::inbox::{Job, Origin};

    let open = rt.block_on(pipeline.ledger.ask(OpenJobs))??;
    let resumable = open.into_iter().find(|j: &Job| {
        j.row.origin == Origin::Cli
            && j.row.work_path == path.to_string_lossy()
            && j.row.dry_run == dry_run
    });
    Ok(match resumable {
        Some(job) => {
            eprintln!(
                "{name}: resuming job {} at row {}",
                job.id.0, job.row.rows_read
            );
            job
        }
        None => create_job(
            pipeline,
            rt,
            path,
            name.to_owned(),
            Origin::Cli,
            None,
            dry_run,
        )?,
    })
}

fn print_summary(job: &orderflow_actors::inbox::Job) {
    let r = &job.row;
    let verb = if r.dry_run { "would load" } else { "loaded" };
    let seconds = match (r.started_at, r.finished_at) {
        (Some(s), Some(f)) => (f.millis() - s.millis()) as f64 / 1000.0,
        _ => 0.0,
    };
    let rate = if seconds > 0.0 {
        r.rows_read as f64 / seconds
    } else {
        0.0
    };
    println!(
        "{}: {}{} — {} rows read, {} {verb}, {} rejected in {seconds:.2} s ({rate:.0} rows/s)",
        r.file_name,
        r.status.as_str(),
        if r.dry_run { " (dry run)" } else { "" },
        r.rows_read,
        r.rows_loaded,
        r.rows_rejected,
    );
    if let Some(e) = &r.error {
        println!("  error: {e}");
    }
    if let Some(of) = r.duplicate_of {
        println!("  the same bytes were already loaded by job {}", of.0);
    }
    for (code, count) in &r.rejects_by_code {
        println!("  rejected {count} × {code}");
    }
}
