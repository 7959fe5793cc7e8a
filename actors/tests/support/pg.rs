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
            .arg(self.dir.path())
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
