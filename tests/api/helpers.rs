//! Test harness: the real server on port 0 with its own temporary data dir and inbox.
//!
//! [`spawn_app`] runs the application in-process (fast; most tests). [`ChildServer`]
//! runs the real binary as a child process, for restart, shutdown and crash tests
//! that need to stop, kill and reopen it.
//!
//! Why one file: spawn_app and ChildServer, with a method per endpoint, are the one
//! helper every test module uses.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use clap::Parser;
use orderflow::config::ServeArgs;
use orderflow::startup::Application;
use orderflow_actors::pg::actor::PgLedgerActor;
use orderflow_actors::room::Room;

pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// Kept so the directory lives as long as the app.
    pub _data_dir: tempfile::TempDir,
    pub inbox: tempfile::TempDir,
    pub admin_token: String,
    /// The ledger's mailbox, to stop it in tests of failure handling.
    pub ledger: Room<orderflow_actors::ledger::Ledger, PgLedgerActor>,
    /// The PostgreSQL database, on that backend (kept as long as the app).
    pub _db: Option<Arc<crate::pg::TestDb>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Whether `spawn_app` keeps the state in PostgreSQL (`ORDERFLOW_TEST_BACKEND=postgres`)
/// rather than in the embedded redb file.
pub fn on_postgres() -> bool {
    std::env::var("ORDERFLOW_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// `orderflow serve`'s arguments as the command line makes them with no flag
/// (every default taken from the configuration itself), then what a test node
/// sets apart: its directories, port 0, known secrets, quick inbox timings, a
/// small server, and a registration throttle high enough for many test users
/// from one address (the throttle's own test sets it low).
pub fn serve_args(data_dir: &Path, inbox: &Path) -> ServeArgs {
    let parsed = orderflow::config::Cli::try_parse_from(["orderflow", "serve"])
        .expect("serve parses with no flag");
    let orderflow::config::Command::Serve(args) = parsed.command else {
        unreachable!("parsed as serve");
    };
    let mut args = *args;
    args.store.data_dir = data_dir.to_owned();
    args.store.log = "warn".into();
    args.inbox = inbox.to_owned();
    args.bind = "127.0.0.1:0".parse().unwrap();
    args.jwt_secret = Some(JWT_SECRET.into());
    args.admin_password = Some(ADMIN_PASSWORD.into());
    args.refresh_ttl_secs = 86_400;
    args.registrations_per_client_max = 10_000;
    args.settle_ms = 100;
    args.scan_interval_ms = 100;
    args.truncated_wait_secs = 2;
    args.workers = Some(2);
    args.shutdown_grace_secs = 5;
    args.postgres = None;
    args
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let db = if on_postgres() {
        Some(Arc::new(crate::pg::database().await))
    } else {
        None
    };
    spawn_node(db, configure).await
}

/// `n` nodes on one fresh PostgreSQL database, whatever the test backend.
pub async fn spawn_nodes(n: usize) -> Vec<TestApp> {
    spawn_nodes_with(n, |_| {}).await
}

/// [`spawn_nodes`], each node's arguments changed by `configure`.
pub async fn spawn_nodes_with(n: usize, configure: impl Fn(&mut ServeArgs)) -> Vec<TestApp> {
    let db = Arc::new(crate::pg::database().await);
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(spawn_node(Some(Arc::clone(&db)), &configure).await);
    }
    nodes
}

/// One node: on `db` when given, else on a redb file of its own.
pub async fn spawn_node(
    db: Option<Arc<crate::pg::TestDb>>,
    configure: impl FnOnce(&mut ServeArgs),
) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let mut args = serve_args(data_dir.path(), inbox.path());
    args.postgres = db.as_ref().map(|db| db.url.clone());
    configure(&mut args);
    let app = Application::build(args).await.expect("app builds");
    let base = format!("http://{}", app.address());
    let ledger = app.backend().ledger();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    actix_web::rt::spawn(async move {
        let _ = app
            .run_until(async {
                let _ = stopped.await;
            })
            .await;
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let mut app = TestApp {
        base,
        client,
        _data_dir: data_dir,
        inbox,
        admin_token: String::new(),
        ledger,
        _db: db,
        stop: Some(stop),
    };
    app.admin_token = app.login("admin", ADMIN_PASSWORD).await;
    app
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response, read whole, with helpers for the assertions every test makes.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status and `type`, carrying the request id.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, problem_type: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        assert_eq!(
            self.body["type"],
            format!("/problems/{problem_type}"),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "{}",
            self.body
        );
        let id = self
            .header("x-request-id")
            .expect("X-Request-Id on every response");
        assert_eq!(self.body["request_id"], id);
        self
    }

    /// Asserts a 422 whose `errors` name `field`.
    #[track_caller]
    pub fn assert_invalid(&self, field: &str) -> &Self {
        self.assert_problem(422, "validation");
        let fields: Vec<&str> = self.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "expected {field} among {fields:?}");
        self
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    pub async fn read(res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POSTs raw bytes, with a content type when given (for bodies `post` cannot make:
    /// malformed JSON, bad UTF-8, other media types, files).
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn register(&self, username: &str) -> Reply {
        self.post(
            "/api/v1/auth/register",
            None,
            json!({"username": username, "email": format!("{username}@example.com"), "password": "password-123"}),
        )
        .await
    }

    pub async fn login_reply(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self.login_reply(username, password).await;
        r.assert_status(200);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Registers a customer and returns (user id, access token).
    pub async fn customer(&self, username: &str) -> (u64, String) {
        let r = self.register(username).await;
        r.assert_status(201);
        let id = r.body["id"].as_u64().unwrap();
        (id, self.login(username, "password-123").await)
    }

    pub async fn create_product(&self, sku: &str, price_cents: u64, stock: u64) -> Reply {
        let r = self
            .post(
                "/api/v1/products",
                Some(&self.admin_token),
                json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": price_cents, "stock": stock, "category": "Tests"}),
            )
            .await;
        r.assert_status(201);
        r
    }

    pub async fn checkout(&self, token: &str, items: Value, key: Option<&str>) -> Reply {
        let mut req = self
            .client
            .post(self.url("/api/v1/orders"))
            .bearer_auth(token)
            .json(&json!({"items": items}));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        Self::read(req.send().await.unwrap()).await
    }

    pub async fn stock_of(&self, sku: &str) -> u64 {
        let r = self.get(&format!("/api/v1/products/{sku}"), None).await;
        r.assert_status(200);
        r.body["stock"].as_u64().unwrap()
    }

    /// Every event of the feed, oldest first, paging with `next_after`.
    pub async fn all_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .get(
                    &format!("/api/v1/events?after={after}&limit=1000"),
                    Some(&self.admin_token),
                )
                .await;
            page.assert_status(200);
            let items = page.body["items"].as_array().unwrap().clone();
            let next = page.body["next_after"].as_u64().unwrap();
            if items.is_empty() {
                assert_eq!(next, after, "an empty page does not move on");
                return out;
            }
            out.extend(items);
            after = next;
        }
    }

    pub async fn verify_ledger(&self) -> Value {
        let r = self
            .get("/api/v1/admin/ledger/verify", Some(&self.admin_token))
            .await;
        r.assert_status(200);
        r.body.clone()
    }
}

impl TestApp {
    /// Drops a file into the inbox the way careful writers do: write `.part`, rename.
    pub fn drop_file(&self, name: &str, bytes: &[u8]) {
        let part = self.inbox.path().join(format!("{name}.part"));
        std::fs::write(&part, bytes).unwrap();
        std::fs::rename(&part, self.inbox.path().join(name)).unwrap();
    }

    /// Waits for the newest job of `file_name` to reach a final status.
    pub async fn job_for(&self, file_name: &str) -> Value {
        let started = Instant::now();
        loop {
            let jobs = self
                .get("/api/v1/imports?limit=200", Some(&self.admin_token))
                .await;
            jobs.assert_status(200);
            let found = jobs.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["file_name"] == file_name)
                .cloned();
            if let Some(job) = found
                && ["completed", "failed", "duplicate"].contains(&job["status"].as_str().unwrap())
            {
                // The report is the last thing written: once it is there, the
                // file and its rejects are in place too.
                let dir = if job["status"] == "failed" {
                    "failed"
                } else {
                    "processed"
                };
                let report_wait = Instant::now();
                while !self
                    .inbox
                    .path()
                    .join(dir)
                    .join(format!("{file_name}.report.json"))
                    .exists()
                    && report_wait.elapsed() < Duration::from_secs(10)
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no finished job for {file_name}: {}",
                jobs.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn rejects_of(&self, job: &Value) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/v1/imports/{}/rejects?limit=200", job["id"]),
                Some(&self.admin_token),
            )
            .await;
        r.assert_status(200);
        r.body["items"].as_array().unwrap().clone()
    }

    pub async fn product(&self, sku: &str) -> Value {
        let r = self.get(&format!("/api/v1/products/{sku}"), None).await;
        r.assert_status(200);
        r.body.clone()
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// The real binary as a child process.
pub struct ChildServer {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl ChildServer {
    pub fn binary() -> &'static str {
        env!("CARGO_BIN_EXE_orderflow")
    }

    /// Starts `orderflow serve` on port 0 and waits for its "listening on" line.
    pub fn start(data_dir: &Path, inbox: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(data_dir, inbox, extra, &[])
    }

    /// [`Self::start`] with more environment variables.
    pub fn start_with_env(
        data_dir: &Path,
        inbox: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(Self::binary())
            .arg("serve")
            .args(["--bind", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--inbox")
            .arg(inbox)
            .args(["--settle-ms", "100", "--scan-interval-ms", "100"])
            .args(extra)
            .env("ORDERFLOW_JWT_SECRET", JWT_SECRET)
            .env("ORDERFLOW_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("ORDERFLOW_REGISTRATIONS_PER_CLIENT_MAX", "10000")
            .env("ORDERFLOW_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("orderflow starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.find("listening on http://") {
                    let addr: String = line[at + "listening on http://".len()..]
                        .chars()
                        // A JSON log line ends the address with a quote.
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(addr);
                    sent = true;
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Self {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        wait_exit(&mut self.child, Duration::from_secs(30))
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "process did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking client for child-process tests (they run outside an async runtime).
pub fn blocking_call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

/// Logs in against a child server (outside an async runtime): the access token.
pub fn blocking_login(base: &str, user: &str, password: &str) -> String {
    let (status, body) = blocking_call(
        "POST",
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(serde_json::json!({"username": user, "password": password})),
    );
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}
