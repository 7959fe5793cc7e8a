//! Structured logs with `tracing`, to standard error through a bounded buffer that
//! a writer thread empties every [`LOG_FLUSH_INTERVAL_MS`]: a burst of requests
//! never waits on the terminal, and past [`LOG_BUFFER_BYTES_MAX`] lines are dropped
//! (and counted, in a line of their own) rather than queued without limit.
//!
//! Why not `tracing_appender::non_blocking`: it hands each line to its thread
//! through a channel and wakes that thread for it. With one access-log line per
//! request, those wake-ups, and the `write` after each drained queue, were a
//! fifth of the CPU of a `GET /products/{sku}` under load (perf, 2 cores: 0.62–0.76x
//! the bare handler with the line, 0.80–0.88x without). Here a line is appended
//! under a lock and nobody is woken; the thread writes what gathered in one call.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;
use orderflow_actors::limits::{LOG_BUFFER_BYTES_MAX, LOG_FLUSH_INTERVAL_MS};

/// Installs the global subscriber; keep the guard alive until exit: dropping it
/// writes the last lines.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<LogGuard> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter {filter:?}: {e}"))?;
    let (writer, guard) = Batched::start(std::io::stderr(), LOG_BUFFER_BYTES_MAX);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(guard)
}

struct Shared {
    buffer: Mutex<Vec<u8>>,
    /// Lines dropped because the buffer was full, since the last report.
    dropped: AtomicU64,
    bytes_max: usize,
}

/// Where log lines are written: appended to the shared buffer, whole or not at
/// all (a line that would pass the bound is dropped).
#[derive(Clone)]
pub struct Batched {
    shared: Arc<Shared>,
}

/// Stops the writer thread and writes what is left when dropped.
pub struct LogGuard {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Batched {
    /// The writer and the guard of its thread, which writes the buffer into `out`.
    pub fn start<W: Write + Send + 'static>(mut out: W, bytes_max: usize) -> (Self, LogGuard) {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
            dropped: AtomicU64::new(0),
            bytes_max,
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                let mut spare = Vec::with_capacity(64 * 1024);
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(Duration::from_millis(LOG_FLUSH_INTERVAL_MS)),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                    write_out(&s, &mut spare, &mut out);
                    if last {
                        return;
                    }
                }
            })
            .expect("the log writer thread starts");
        (
            Self { shared },
            LogGuard {
                stop: Some(stop),
                thread: Some(thread),
            },
        )
    }
}

/// Swaps the buffer with `spare` (keeping both allocations) and writes it.
fn write_out(s: &Shared, spare: &mut Vec<u8>, out: &mut impl Write) {
    {
        let mut buffer = s.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *buffer, spare);
    }
    let dropped = s.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let _ = writeln!(
            spare,
            "{dropped} log lines dropped: the log buffer ({} bytes) was full",
            s.bytes_max
        );
    }
    if !spare.is_empty() {
        // Nowhere to report a failing standard error: the lines are lost.
        let _ = out.write_all(spare).and_then(|()| out.flush());
        spare.clear();
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for Batched {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self
            .shared
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if buffer.len() + line.len() > self.shared.bytes_max {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            buffer.extend_from_slice(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Batched;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (writer, guard) = Batched::start(sink.clone(), 1 << 20);
        for i in 0..1_000 {
            writer
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1_000);
        assert_eq!(lines[999], "line 999");
    }

    #[test]
    fn lines_past_the_bound_are_dropped_whole_and_counted() {
        // No thread: the buffer is written out once, by hand.
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            bytes_max: 100,
        });
        let writer = Batched {
            shared: shared.clone(),
        };
        for i in 0..20 {
            writer
                .make_writer()
                .write_all(format!("line {i:02}\n").as_bytes())
                .unwrap();
        }
        let mut out = Vec::new();
        write_out(&shared, &mut Vec::new(), &mut out);
        let text = String::from_utf8(out).unwrap();
        // 12 lines of 8 bytes fit in 100; the 13th would not, nor any after it.
        let kept: Vec<&str> = text.lines().filter(|l| l.starts_with("line ")).collect();
        assert_eq!(kept.len(), 12, "{text}");
        assert_eq!(kept[11], "line 11");
        assert!(
            text.ends_with("8 log lines dropped: the log buffer (100 bytes) was full\n"),
            "{text}"
        );
        // The count starts again, and the buffer takes lines again once written.
        writer.make_writer().write_all(b"again\n").unwrap();
        let mut out = Vec::new();
        write_out(&shared, &mut Vec::new(), &mut out);
        assert_eq!(out, b"again\n");
    }

    #[test]
    fn lines_are_written_while_the_service_runs_not_only_at_the_end() {
        let sink = Sink::default();
        let (writer, guard) = Batched::start(sink.clone(), 1 << 20);
        writer.make_writer().write_all(b"early\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"early\n");
        drop(guard);
    }
}
