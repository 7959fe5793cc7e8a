//! A PostgreSQL database of its own for a test.
//!
//! With `ORDERFLOW_TEST_PG_URL` set (`.ci/test` starts one primary and a synchronous
//! standby for the whole run with `.ci/services/postgres.sh`), each test creates a
//! fresh database there. Without it, the test starts its own server the same way,
//! on free ports under a temporary directory, and stops it when done: the tests of
//! the PostgreSQL backend always run, never skip.

use std::path::PathBuf;
use std::process::Command;

pub struct TestDb {
    pub url: String,
    _server: Option<Server>,
}

struct Server {
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .status();
    }
}

/// `.ci/services/postgres.sh`, from the actors crate or from the root crate (whose
/// tests include this file too).
fn script() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ["../.ci/services/postgres.sh", ".ci/services/postgres.sh"]
        .iter()
        .map(|p| crate_dir.join(p))
        .find(|p| p.exists())
        .expect("the repository's .ci/services/postgres.sh")
}

/// A port nothing listens on now, on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A primary and a synchronous standby of a test's own (a failover test kills
/// the primary and promotes the standby, so it cannot share the run's server).
#[allow(dead_code)] // only the failover tests use it
pub struct Cluster {
    /// Both hosts, `target_session_attrs=read-write`: whichever is the primary.
    pub url: String,
    /// The standby alone (the primary once promoted).
    pub standby_url: String,
    /// The first primary alone.
    pub primary_url: String,
    server: Server,
}

#[allow(dead_code)] // only the failover tests use it
impl Cluster {
    pub fn start() -> Self {
        let (url, server) = start_server();
        let host = |n: usize| {
            url.split_once("://")
                .and_then(|(scheme, rest)| {
                    let (hosts, path) = rest.split_once('/')?;
                    let (user, hosts) = hosts.split_once('@')?;
                    let host = hosts.split(',').nth(n)?;
                    let path = path.split('?').next()?;
                    Some(format!("{scheme}://{user}@{host}/{path}"))
                })
                .expect("the URL names two hosts")
        };
        Self {
            standby_url: host(1),
            primary_url: host(0),
            url,
            server,
        }
    }

    /// The cluster's own database, for nodes (the cluster outlives them).
    pub fn database(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            _server: None,
        }
    }

    fn run(&self, command: &str) {
        let status = Command::new("bash")
            .arg(script())
            .arg(command)
            .arg(self.server.dir.path().join("pg"))
            .status()
            .expect("run .ci/services/postgres.sh");
        assert!(status.success(), "postgres.sh {command} failed");
    }

    /// The primary dies at once (`pg_ctl -m immediate stop`).
    pub fn kill_primary(&self) {
        self.run("kill-primary");
    }

    /// The standby becomes the primary (`pg_ctl promote`).
    pub fn promote(&self) {
        self.run("promote");
    }
}

fn start_server() -> (String, Server) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(dir.path().join("pg"))
        .arg(free_port().to_string())
        .arg(free_port().to_string())
        .output()
        .expect("run .ci/services/postgres.sh");
    let server = Server { dir };
    assert!(
        out.status.success(),
        "postgres.sh start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("export ORDERFLOW_TEST_PG_URL="))
        .expect("the script prints the URL")
        .trim_matches('\'')
        .to_owned();
    (url, server)
}

/// A new, empty database (on the run's server, or on one started for this test).
pub async fn database() -> TestDb {
    let (base, server) = match std::env::var("ORDERFLOW_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let (url, server) = tokio::task::spawn_blocking(start_server).await.unwrap();
            (url, Some(server))
        }
    };
    let name = format!("t_{:016x}", rand::random::<u64>());
    let admin = orderflow_actors::pg::connect(&base).await.unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    // The database is the path's last segment: `…/postgres?…` becomes `…/t_…?…`.
    let at = base
        .rfind("/postgres")
        .unwrap_or_else(|| panic!("the URL names the postgres database: {base}"));
    let url = format!("{}/{name}{}", &base[..at], &base[at + "/postgres".len()..]);
    TestDb {
        url,
        _server: server,
    }
}
