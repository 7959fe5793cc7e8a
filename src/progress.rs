//! `orderflow ingest`'s progress: a bar per file on a terminal (rows, bytes, rate,
//! ETA; `indicatif`), a plain line every [`PROGRESS_LOG_INTERVAL_MS`] when standard
//! error is not one. It follows the job as committed (its `bytes_read` and
//! `rows_read`), read from the ledger by a thread of its own.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use orderflow_actors::domain::JobId;
use orderflow_actors::inbox::GetJob;
use orderflow_actors::ledger::Ledger;
use orderflow_actors::limits::PROGRESS_LOG_INTERVAL_MS;
use orderflow_actors::mailbox::Mailbox;

/// How often the bar reads the job, in milliseconds.
const BAR_REFRESH_MS: u64 = 200;

/// Shows one file's progress until dropped.
pub struct FileProgress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileProgress {
    pub fn start(ledger: Mailbox<Ledger>, id: JobId, name: String) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("ingest-progress".into())
            .spawn(move || follow(&ledger, id, &name, &stop))
            .ok();
        Self { done, thread }
    }
}

impl Drop for FileProgress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn follow(ledger: &Mailbox<Ledger>, id: JobId, name: &str, done: &AtomicBool) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({bytes_per_sec}, ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(name.to_owned());
        bar
    });
    let started = Instant::now();
    let mut last_line = Instant::now();
    let mut first_rows = None;
    let line_every = Duration::from_millis(PROGRESS_LOG_INTERVAL_MS);
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(BAR_REFRESH_MS));
        // Without a bar the job is read only when a line is due (and once at the
        // start, for the rate): the short sleep only keeps the end prompt.
        let line_due = last_line.elapsed() >= line_every;
        if bar.is_none() && first_rows.is_some() && !line_due {
            continue;
        }
        let Ok(Ok(Ok(Some(job)))) = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), ledger.ask(GetJob { id })).await
        }) else {
            continue;
        };
        let r = &job.row;
        let rows0 = *first_rows.get_or_insert(r.rows_read);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let rate = (r.rows_read - rows0) as f64 / secs;
        match &bar {
            Some(bar) => {
                bar.set_length(r.bytes);
                bar.set_position(r.bytes_read);
                bar.set_message(format!(
                    "{} rows, {} rejected, {rate:.0} rows/s",
                    r.rows_read, r.rows_rejected
                ));
            }
            None if line_due => {
                last_line = Instant::now();
                eprintln!(
                    "{}",
                    line(name, r.rows_read, r.bytes_read, r.bytes, rate, secs)
                );
            }
            None => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// A plain progress line: rows, bytes, percentage, rate and ETA.
fn line(name: &str, rows: u64, read: u64, total: u64, rate: f64, secs: f64) -> String {
    let pct = read.saturating_mul(100).checked_div(total).unwrap_or(0);
    let eta = if read > 0 && total > read {
        format!(", ETA {:.0} s", secs * (total - read) as f64 / read as f64)
    } else {
        String::new()
    };
    format!("{name}: {rows} rows, {read} of {total} bytes ({pct} %), {rate:.0} rows/s{eta}")
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn a_plain_line_says_rows_bytes_rate_and_eta() {
        assert_eq!(
            line("p.csv", 1_000, 250, 1_000, 500.0, 2.0),
            "p.csv: 1000 rows, 250 of 1000 bytes (25 %), 500 rows/s, ETA 6 s"
        );
        assert_eq!(
            line("p.csv", 0, 0, 0, 0.0, 1.0),
            "p.csv: 0 rows, 0 of 0 bytes (0 %), 0 rows/s"
        );
    }
}
