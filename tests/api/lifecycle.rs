use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, ChildServer, blocking_call, blocking_login as login};

#[test]
fn users_products_and_tokens_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let base = server.base.clone();
    let (status, _) = blocking_call(
        "POST",
        &format!("{base}/api/v1/auth/register"),
        None,
        Some(
            json!({"username": "alice", "email": "alice@example.com", "password": "password-123"}),
        ),
    );
    assert_eq!(status, 201);
    let alice = login(&base, "alice", "password-123");
    let admin = login(&base, "admin", ADMIN_PASSWORD);
    let (status, _) = blocking_call(
        "POST",
        &format!("{base}/api/v1/products"),
        Some(&admin),
        Some(json!({"sku": "KEEP-1", "name": "Kept", "price_cents": 100, "stock": 7})),
    );
    assert_eq!(status, 201);
    assert!(server.terminate().success());

    // Restart without ORDERFLOW_JWT_SECRET differences: the same secret (from the
    // environment here) verifies the old token.
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let base = server.base.clone();
    let (status, me) = blocking_call("GET", &format!("{base}/api/v1/me"), Some(&alice), None);
    assert_eq!(status, 200, "old token still works");
    assert_eq!(me["username"], "alice");
    let (status, p) = blocking_call("GET", &format!("{base}/api/v1/products/KEEP-1"), None, None);
    assert_eq!(status, 200);
    assert_eq!(p["stock"], 7);
    login(&base, "alice", "password-123");
}

#[test]
fn a_generated_secret_is_kept_in_the_data_dir_across_restarts() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let run = |f: &dyn Fn(&str)| {
        let mut child = Command::new(ChildServer::binary())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data.path())
            .arg("--inbox")
            .arg(inbox.path())
            .env_remove("ORDERFLOW_JWT_SECRET")
            .env("ORDERFLOW_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let addr = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(i) = line.find("listening on http://") {
                break line[i + 20..].split_whitespace().next().unwrap().to_owned();
            }
        };
        f(&format!("http://{addr}"));
        child.kill().unwrap();
        child.wait().unwrap();
    };
    let token = std::cell::RefCell::new(String::new());
    run(&|base| *token.borrow_mut() = login(base, "admin", ADMIN_PASSWORD));
    run(&|base| {
        let (status, _) = blocking_call(
            "GET",
            &format!("{base}/api/v1/me"),
            Some(&token.borrow()),
            None,
        );
        assert_eq!(status, 200);
    });
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.path().join("jwt-secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_second_process_on_the_same_data_dir_exits_with_a_clear_message() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let _first = ChildServer::start(data.path(), inbox.path(), &[]);
    let out = Command::new(ChildServer::binary())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--inbox")
        .arg(inbox.path())
        .env("ORDERFLOW_JWT_SECRET", crate::helpers::JWT_SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another orderflow process"),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_gracefully_with_exit_zero() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let log = server.log.clone();
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
    let text = log.lock().unwrap().join("\n");
    assert!(text.contains("stopped"), "{text}");
}

#[test]
fn refuses_a_short_jwt_secret() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(ChildServer::binary())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .env("ORDERFLOW_JWT_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));
}

#[test]
fn first_start_without_admin_password_prints_a_random_one_that_works() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(ChildServer::binary());
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--inbox")
        .arg(inbox.path())
        .env("ORDERFLOW_JWT_SECRET", crate::helpers::JWT_SECRET)
        .env_remove("ORDERFLOW_ADMIN_PASSWORD")
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let (mut password, mut base) = (None, None);
    for line in lines {
        let line = line.unwrap();
        if line.contains("created the admin user") {
            password = line
                .split("password=")
                .nth(1)
                .map(|s| s.split_whitespace().next().unwrap().to_owned());
        }
        if let Some(i) = line.find("listening on http://") {
            base = Some(format!(
                "http://{}",
                line[i + 20..].split_whitespace().next().unwrap()
            ));
            break;
        }
    }
    let password = password.expect("password printed");
    login(&base.unwrap(), "admin", &password);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn users_create_takes_the_password_from_env_or_stdin() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(ChildServer::binary())
        .args([
            "users",
            "create",
            "--username",
            "carol",
            "--email",
            "carol@example.com",
            "--admin",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("ORDERFLOW_PASSWORD", "password-123")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user carol"));

    let mut child = Command::new(ChildServer::binary())
        .args([
            "users",
            "create",
            "--username",
            "dave",
            "--email",
            "dave@example.com",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("ORDERFLOW_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"password-456\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    // Same username again: failure, exit 1. Bad input: usage, exit 2.
    let again = Command::new(ChildServer::binary())
        .args([
            "users",
            "create",
            "--username",
            "CAROL",
            "--email",
            "c2@example.com",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("ORDERFLOW_PASSWORD", "password-123")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let bad = Command::new(ChildServer::binary())
        .args(["users", "create", "--username", "x", "--email", "nope"])
        .arg("--data-dir")
        .arg(data.path())
        .env("ORDERFLOW_PASSWORD", "password-123")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let usage = Command::new(ChildServer::binary())
        .args(["serve", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));

    // The accounts work: carol is an admin.
    let inbox = tempfile::tempdir().unwrap();
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let token = login(&server.base, "carol", "password-123");
    let (status, me) = blocking_call(
        "GET",
        &format!("{}/api/v1/me", server.base),
        Some(&token),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(me["role"], "admin");
    login(&server.base, "dave", "password-456");
}

fn orderflow(args: &[&str], data: &std::path::Path) -> std::process::Output {
    Command::new(ChildServer::binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn ingest_runs_the_pipeline_without_the_server() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let supplier = files.path().join("supplier_data.json");
    std::fs::write(&supplier, crate::helpers::fixture("supplier_data.json")).unwrap();
    let path = supplier.to_str().unwrap();

    // A dry run reports and loads nothing.
    let out = orderflow(&["ingest", "--dry-run", path], data.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("completed (dry run) — 3 rows read, 2 would load, 1 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rejected 1 × price_not_positive"),
        "{stdout}"
    );

    let out = orderflow(&["ingest", path], data.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("completed — 3 rows read, 2 loaded, 1 rejected"),
        "{stdout}"
    );
    assert!(supplier.exists(), "the file stays where it is");

    // The same bytes again: a duplicate, which is not a completed file: exit 1.
    let out = orderflow(&["ingest", path], data.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("duplicate"));
    // A missing file and a broken one: exit 1, the others still run.
    let broken = files.path().join("products_bad.json");
    std::fs::write(&broken, b"{not an array").unwrap();
    let out = orderflow(
        &["ingest", "/no/such/products.csv", broken.to_str().unwrap()],
        data.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("no such file") && stdout.contains("failed"),
        "{stdout}"
    );

    // What the loads wrote is what the server serves.
    let inbox = tempfile::tempdir().unwrap();
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let (status, list) = blocking_call(
        "GET",
        &format!("{}/api/v1/products", server.base),
        None,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "dry run wrote nothing, the load wrote 2"
    );
}

#[test]
fn gen_is_deterministic_and_every_command_has_help() {
    let a = Command::new(ChildServer::binary())
        .args([
            "gen", "products", "--count", "50", "--seed", "9", "--dirty", "10",
        ])
        .output()
        .unwrap();
    let b = Command::new(ChildServer::binary())
        .args([
            "gen", "products", "--count", "50", "--seed", "9", "--dirty", "10",
        ])
        .output()
        .unwrap();
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(String::from_utf8_lossy(&a.stdout).lines().count(), 51);
    let bad = Command::new(ChildServer::binary())
        .args(["gen", "products", "--count", "5", "--dirty", "150"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    for cmd in [
        &["--help"][..],
        &["serve", "--help"],
        &["ingest", "--help"],
        &["users", "create", "--help"],
        &["gen", "--help"],
    ] {
        let out = Command::new(ChildServer::binary())
            .args(cmd)
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd:?}"
        );
    }
}
