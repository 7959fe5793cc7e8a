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
//!
//! The access log (one line per request, target [`ACCESS_TARGET`]) is formatted
//! here by [`access`], not by `tracing_subscriber`'s formatter: same line, same
//! filter, but written straight into the buffer. The formatter visits each field
//! through `Debug`, formats the timestamp's calendar date and the span context for
//! every line; that was 15 % of a `GET /products/{sku}` under load (0.72–0.74x the
//! bare handler with the line, 0.81–0.90x with `--log warn`). Other lines still go
//! through `tracing`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;
use orderflow_actors::limits::{LOG_BUFFER_BYTES_MAX, LOG_FLUSH_INTERVAL_MS};

/// Installs the global subscriber; keep the guard alive until exit: dropping it
/// writes the last lines.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<LogGuard> {
    let mut filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter {filter:?}: {e}"))?;
    if !filter.to_string().contains("tantivy") {
        // The search library logs every commit at info; its warnings still show.
        filter = filter.add_directive("tantivy=warn".parse()?);
    }
    let (writer, guard) = Batched::start(std::io::stderr(), LOG_BUFFER_BYTES_MAX);
    let writer_for_access = writer.clone();
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
    // Only the first `init` of a process wins; tests that build several servers
    // in one process keep the first sink, which is the installed subscriber's.
    let _ = ACCESS.set(AccessSink {
        writer: writer_for_access,
        format,
        ansi,
    });
    Ok(guard)
}

/// The access log's target: one line per request at INFO.
/// `--log info,orderflow::access=warn` turns it off and keeps the rest.
pub const ACCESS_TARGET: &str = "orderflow::access";

/// Where [`access`] writes when [`init`] installed the service's subscriber.
static ACCESS: OnceLock<AccessSink> = OnceLock::new();

struct AccessSink {
    writer: Batched,
    format: LogFormat,
    ansi: bool,
}

/// One request, as the access log records it.
pub struct Access<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub latency_us: u64,
}

/// Logs one request, if INFO is on for [`ACCESS_TARGET`]. The line is the one
/// `tracing`'s formatter would write for an event `request` inside the span
/// `request{request_id}`, in the configured format.
pub fn access(line: &Access<'_>) {
    if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    let Some(sink) = ACCESS.get() else {
        // Another subscriber (an embedding program, a test): through `tracing`.
        tracing::info!(
            target: ACCESS_TARGET,
            request_id = line.request_id,
            method = line.method,
            path = line.path,
            route = line.route,
            status = line.status,
            latency_us = line.latency_us,
            "request"
        );
        return;
    };
    thread_local! {
        static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LINE.with_borrow_mut(|buf| {
        buf.clear();
        format_access(buf, sink.format, sink.ansi, SystemTime::now(), line);
        sink.writer.append(buf);
    });
}

/// The access line of `line` at `now`, appended to `buf` with its newline.
fn format_access(
    buf: &mut Vec<u8>,
    format: LogFormat,
    ansi: bool,
    now: SystemTime,
    line: &Access<'_>,
) {
    let mut n = itoa::Buffer::new();
    match format {
        LogFormat::Text => {
            let (dim, green, bold, reset): (&[u8], &[u8], &[u8], &[u8]) = if ansi {
                (b"\x1b[2m", b"\x1b[32m", b"\x1b[1m", b"\x1b[0m")
            } else {
                (b"", b"", b"", b"")
            };
            buf.extend_from_slice(dim);
            timestamp(buf, now);
            buf.extend_from_slice(reset);
            buf.extend_from_slice(b"  ");
            buf.extend_from_slice(green);
            buf.extend_from_slice(b"INFO");
            buf.extend_from_slice(reset);
            buf.push(b' ');
            buf.extend_from_slice(bold);
            buf.extend_from_slice(b"request");
            buf.extend_from_slice(reset);
            buf.extend_from_slice(b"{request_id=");
            buf.extend_from_slice(line.request_id.as_bytes());
            buf.extend_from_slice(b"}: request method=");
            buf.extend_from_slice(line.method.as_bytes());
            buf.extend_from_slice(b" path=");
            buf.extend_from_slice(line.path.as_bytes());
            buf.extend_from_slice(b" route=");
            buf.extend_from_slice(line.route.as_bytes());
            buf.extend_from_slice(b" status=");
            buf.extend_from_slice(n.format(line.status).as_bytes());
            buf.extend_from_slice(b" latency_us=");
            buf.extend_from_slice(n.format(line.latency_us).as_bytes());
        }
        LogFormat::Json => {
            let text = |buf: &mut Vec<u8>, s: &str| {
                // Writing a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *buf, s);
            };
            buf.extend_from_slice(b"{\"timestamp\":\"");
            timestamp(buf, now);
            buf.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"method\":");
            text(buf, line.method);
            buf.extend_from_slice(b",\"path\":");
            text(buf, line.path);
            buf.extend_from_slice(b",\"route\":");
            text(buf, line.route);
            buf.extend_from_slice(b",\"status\":");
            buf.extend_from_slice(n.format(line.status).as_bytes());
            buf.extend_from_slice(b",\"latency_us\":");
            buf.extend_from_slice(n.format(line.latency_us).as_bytes());
            buf.extend_from_slice(b",\"span\":{\"request_id\":");
            text(buf, line.request_id);
            buf.extend_from_slice(b",\"name\":\"request\"},\"spans\":[]}");
        }
    }
    buf.push(b'\n');
}

/// `now` as `tracing`'s timer writes it, `2026-12-03T21:46:00.554689Z` (UTC,
/// microseconds). The part up to the second is formatted once a second per thread.
fn timestamp(buf: &mut Vec<u8>, now: SystemTime) {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let at = i64::try_from(secs)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let (y, mo, d) = at.to_calendar_date();
        let (h, mi, s) = at.to_hms();
        let mut t = Vec::with_capacity(19);
        let _ = write!(t, "{y:04}-{:02}-{d:02}T{h:02}:{mi:02}:{s:02}", u8::from(mo));
        if let Ok(fixed) = <[u8; 19]>::try_from(t.as_slice()) {
            text = fixed;
            SECOND.set((secs, text));
        }
    }
    buf.extend_from_slice(&text);
    let _ = write!(buf, ".{:06}Z", since.subsec_micros());
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

impl Batched {
    /// Appends `line` whole, or drops and counts it if it would pass the bound.
    fn append(&self, line: &[u8]) {
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
    }
}

impl Write for Batched {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.append(line);
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

    fn line(request_id: &'static str, path: &'static str) -> Access<'static> {
        Access {
            request_id,
            method: "GET",
            path,
            route: "/api/v1/products/{sku}",
            status: 200,
            latency_us: 1234,
        }
    }

    fn at(secs: u64, micros: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs)
            + Duration::from_micros(u64::from(micros))
    }

    fn text_of(format: LogFormat, ansi: bool, now: SystemTime, a: &Access<'_>) -> String {
        let mut buf = b"left over".to_vec();
        buf.clear();
        format_access(&mut buf, format, ansi, now, a);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn the_access_line_is_the_line_the_tracing_formatter_wrote() {
        // 2026-12-03T21:46:00Z is 1796334360.
        let a = line("abc\"def", "/api/v1/products/P-1");
        assert_eq!(
            text_of(LogFormat::Text, false, at(1_796_334_360, 554_689), &a),
            "2026-12-03T21:46:00.554689Z  INFO request{request_id=abc\"def}: request \
             method=GET path=/api/v1/products/P-1 route=/api/v1/products/{sku} status=200 \
             latency_us=1234\n"
        );
        assert_eq!(
            text_of(LogFormat::Json, false, at(1_796_334_360, 7), &a),
            "{\"timestamp\":\"2026-12-03T21:46:00.000007Z\",\"level\":\"INFO\",\
             \"message\":\"request\",\"method\":\"GET\",\"path\":\"/api/v1/products/P-1\",\
             \"route\":\"/api/v1/products/{sku}\",\"status\":200,\"latency_us\":1234,\
             \"span\":{\"request_id\":\"abc\\\"def\",\"name\":\"request\"},\"spans\":[]}\n"
        );
        let colored = text_of(LogFormat::Text, true, at(0, 0), &a);
        assert!(colored.starts_with("\x1b[2m1970-01-01T00:00:00.000000Z\x1b[0m  \x1b[32mINFO"));
    }

    #[test]
    fn json_access_lines_parse_whatever_the_path_holds() {
        let a = line("id\\\u{7f}", "/p/\"quoted\"\\back\u{1}");
        let text = text_of(LogFormat::Json, false, at(0, 0), &a);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["path"], a.path);
        assert_eq!(v["span"]["request_id"], a.request_id);
        assert_eq!(v["status"], 200);
    }

    #[test]
    fn timestamps_agree_with_the_calendar_across_seconds_days_and_leap_years() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_399, 999_999, "2000-02-28T23:59:59.999999Z"),
            (951_782_400, 0, "2000-02-29T00:00:00.000000Z"),
            (951_868_800, 1, "2000-03-01T00:00:00.000001Z"),
            (4_107_542_399, 500_000, "2100-02-28T23:59:59.500000Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000000Z"),
        ];
        // Twice, and each second after another: the per-second cache must not
        // hand one second's text to the next.
        for _ in 0..2 {
            for (secs, micros, want) in cases {
                let mut buf = Vec::new();
                timestamp(&mut buf, at(secs, micros));
                assert_eq!(String::from_utf8(buf).unwrap(), want);
            }
        }
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
