//! Finishing a job: its report beside the file, and the file out of the working
//! folder into `processed/` or `failed/`.
//!
//! Every step can be redone: the final name is chosen and stored before anything
//! is written, reports are written to a temporary name and renamed, and the job is
//! only marked settled after the file has moved. A crash anywhere in between is
//! finished on the next start. The order is rejects, file, report: the report
//! appears last, so its presence means the other two are in place.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::jobs::{Job, JobStatus, Origin, Step};
use super::messages::{ListRejects, SettleJob};
use super::naming::with_suffix;
use super::pipeline::{Pipeline, PipelineError};
use crate::common::StoreError;

/// The inbox and its sub-folders.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub root: PathBuf,
    /// Claimed files being processed (hidden, so the watcher never sees them).
    pub work: PathBuf,
    /// Uploads being received.
    pub uploads: PathBuf,
    pub processed: PathBuf,
    pub failed: PathBuf,
}

impl Dirs {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            work: root.join(".work"),
            uploads: root.join(".uploads"),
            processed: root.join("processed"),
            failed: root.join("failed"),
        }
    }

    pub fn create(&self) -> std::io::Result<()> {
        for d in [
            &self.root,
            &self.work,
            &self.uploads,
            &self.processed,
            &self.failed,
        ] {
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    }
}

/// Writes the rejects, moves the file, writes the report and settles the job.
pub fn finalize(
    pipeline: &Pipeline,
    rt: &tokio::runtime::Runtime,
    dirs: &Dirs,
    job: Job,
) -> Result<(), PipelineError> {
    let id = job.id;
    crate::failpoint::hit("report", || job.row.file_name.clone());
    if job.row.origin == Origin::Cli || !job.row.status.is_final() {
        if job.row.status.is_final() {
            settle(pipeline, rt, job)?;
        }
        return Ok(());
    }
    let dest = if job.row.status == JobStatus::Failed {
        &dirs.failed
    } else {
        &dirs.processed
    };
    let final_name = match &job.row.final_name {
        Some(name) => name.clone(),
        None => {
            let name = free_name(dest, &job.row.file_name);
            let chosen = name.clone();
            pipeline.advance(rt, id, Step::Named(chosen))?;
            name
        }
    };
    if job.row.rows_rejected > 0 {
        // Streamed page by page: a job may keep up to 100,000 rejects.
        let path = dest.join(format!("{final_name}.rejects.csv"));
        let mut failure: Option<PipelineError> = None;
        write_atomically(&path, |f| {
            let mut w = csv::Writer::from_writer(f);
            w.write_record(["line", "reason", "raw"])?;
            let mut after = None;
            loop {
                let page = match pipeline.send(
                    rt,
                    ListRejects {
                        job: id,
                        after_line: after,
                        limit: 1000,
                    },
                ) {
                    Ok(Ok(Some(page))) => page,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => {
                        failure = Some(e.into());
                        break;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                for (line, r) in &page.items {
                    w.write_record([line.to_string().as_str(), &r.reason, &r.raw])?;
                }
                match page.next {
                    Some(line) => after = Some(line),
                    None => break,
                }
            }
            w.flush()
        })
        .map_err(io_error)?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    let work = PathBuf::from(&job.row.work_path);
    if work.exists() {
        std::fs::rename(&work, dest.join(&final_name)).map_err(io_error)?;
    }
    // The report comes last: whoever watches `processed/` or `failed/` can take
    // `NAME.report.json` as the sign that the file and its rejects are in place.
    let report = report_json(&job);
    write_atomically(&dest.join(format!("{final_name}.report.json")), |f| {
        serde_json::to_writer_pretty(&mut *f, &report)?;
        f.write_all(b"\n")
    })
    .map_err(io_error)?;
    settle(pipeline, rt, job)
}

fn settle(
    pipeline: &Pipeline,
    rt: &tokio::runtime::Runtime,
    job: Job,
) -> Result<(), PipelineError> {
    let id = job.id;
    Ok(pipeline.send(rt, SettleJob { id })??)
}

fn io_error(e: std::io::Error) -> PipelineError {
    PipelineError::Store(StoreError::Aborted(format!("cannot write the report: {e}")))
}

/// `name`, or `name` with the first free numeric suffix, in `dir`.
fn free_name(dir: &Path, name: &str) -> String {
    let taken = |n: &str| dir.join(n).exists() || dir.join(format!("{n}.report.json")).exists();
    if !taken(name) {
        return name.to_owned();
    }
    (1..)
        .map(|i| with_suffix(name, i))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-writing");
    let mut file = std::fs::File::create(&tmp)?;
    write(&mut file)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The report beside a processed file.
pub fn report_json(job: &Job) -> serde_json::Value {
    let r = &job.row;
    let duration_ms = match (r.started_at, r.finished_at) {
        (Some(s), Some(f)) => (f.millis() - s.millis()).max(0),
        _ => 0,
    };
    let rows_per_second = if duration_ms > 0 {
        r.rows_read as f64 * 1000.0 / duration_ms as f64
    } else {
        0.0
    };
    json!({
        "job": job.view(),
        "rejects_by_reason": r.rejects_by_code,
        "duration_ms": duration_ms,
        "rows_per_second": rows_per_second.round(),
    })
}
