//! Regression tests for what a hostile file or client could break, each named after
//! the bug it guards (issue: hardening). The failure points used here exist only in
//! test builds (see `orderflow_actors::failpoint`).
//!
//! Why one file: one regression test per hardening finding, named after it, in the
//! order of the issue.

use std::io::Write;
use std::os::unix::ffi::OsStrExt as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ChildServer, blocking_call, spawn_app, spawn_app_with};
use orderflow_actors::failpoint::marker;
use orderflow_actors::limits::{IMPORT_ROW_BYTES_MAX, STOCK_UNITS_MAX};

/// Text over the row limit made of 3-byte characters, shifted by `offset` so that
/// one of three shifts puts a character across any byte budget.
fn hostile(offset: usize) -> String {
    format!(
        "{}{}",
        "x".repeat(offset),
        "€".repeat(IMPORT_ROW_BYTES_MAX / 2)
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The hostile files of the bug report: a row over the limit with a multi-byte
/// character across the raw-text budget, in every format, gzipped, and in a file
/// whose kind is read from its columns.
fn hostile_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for offset in 0..3 {
        let big = hostile(offset);
        let jsonl = format!(
            "{{\"name\":\"a{offset}\",\"price\":1}}\n{{\"name\":\"{big}\",\"price\":1}}\n{{\"name\":\"b{offset}\",\"price\":2}}\n"
        );
        let json = format!(
            "[{{\"name\":\"c{offset}\",\"price\":1}},\n{{\"name\":\"{big}\",\"price\":1}},\n{{\"name\":\"d{offset}\",\"price\":2}}]\n"
        );
        let csv = format!("name,price\ne{offset},1\n{big},1\nf{offset},2\n");
        files.push((
            format!("products_h{offset}.jsonl"),
            jsonl.clone().into_bytes(),
        ));
        files.push((format!("products_h{offset}.json"), json.into_bytes()));
        files.push((format!("products_h{offset}.csv"), csv.clone().into_bytes()));
        files.push((format!("products_h{offset}.csv.gz"), gzip(csv.as_bytes())));
        // No kind prefix: the kind is sniffed from the (over-long) first record.
        files.push((
            format!("supplier_h{offset}.jsonl"),
            format!("{{\"name\":\"{big}\",\"price\":1}}\n{{\"name\":\"g{offset}\",\"price\":2}}\n")
                .into_bytes(),
        ));
    }
    files
}

fn admin_token(base: &str) -> String {
    let (status, body) = blocking_call(
        "POST",
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    );
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn jobs(base: &str, token: &str) -> Vec<Value> {
    let (status, body) = blocking_call(
        "GET",
        &format!("{base}/api/v1/imports?limit=200"),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn wait_for_jobs(base: &str, token: &str, names: &[&str]) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let all = jobs(base, token);
        let done: Vec<Value> = names
            .iter()
            .filter_map(|n| {
                all.iter()
                    .find(|j| {
                        j["file_name"] == *n && j["status"] != "running" && j["status"] != "queued"
                    })
                    .cloned()
            })
            .collect();
        if done.len() == names.len() {
            return done;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "jobs did not finish: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Regression: one such file panicked in `String::truncate`, killed the extractor
/// and the runner, left its job `running`, and the inbox loaded nothing more, even
/// after a restart.
#[test]
fn a_row_with_a_character_across_the_raw_budget_does_not_stop_the_inbox() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let token = admin_token(&server.base);
    let files = hostile_files();
    for (name, bytes) in &files {
        std::fs::write(inbox.path().join(name), bytes).unwrap();
    }
    std::fs::write(
        inbox.path().join("products_next.csv"),
        "name,price\nnext,3\n",
    )
    .unwrap();
    let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    names.push("products_next.csv");
    for job in wait_for_jobs(&server.base, &token, &names) {
        let name = job["file_name"].as_str().unwrap();
        if name.starts_with("supplier_") {
            // The over-long first record says no kind: the file fails on its own.
            assert_eq!(job["status"], "failed", "{job}");
            assert!(
                job["error"].as_str().unwrap().contains("unknown kind"),
                "{job}"
            );
        } else if name == "products_next.csv" {
            assert_eq!(job["status"], "completed", "{job}");
            assert_eq!(job["rows_loaded"], 1);
        } else {
            assert_eq!(job["status"], "completed", "{job}");
            assert_eq!(
                (job["rows_loaded"].as_u64(), job["rows_rejected"].as_u64()),
                (Some(2), Some(1)),
                "{job}"
            );
        }
    }
    assert_eq!(server.terminate().code(), Some(0));
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let token = admin_token(&server.base);
    assert!(
        jobs(&server.base, &token)
            .iter()
            .all(|j| j["status"] != "running" && j["status"] != "queued"),
        "nothing left running after a restart"
    );
    assert_eq!(
        std::fs::read_dir(inbox.path().join(".work"))
            .unwrap()
            .count(),
        0
    );
}

/// The class of the bug above: whatever panics in a stage fails that job only,
/// with the stage named, and the next file loads.
#[actix_web::test]
async fn a_panic_in_any_stage_fails_only_its_job() {
    let app = spawn_app().await;
    let row = |point: &str| format!("name,price\nok,1\n{},2\n", marker(point));
    let cases = [
        (format!("x{}.csv", marker("sniff")), row("none"), "sniff"),
        (
            format!("products_{}.csv", marker("inspect")),
            row("none"),
            "inspect",
        ),
        ("products_extract.csv".to_owned(), row("extract"), "extract"),
        (
            "products_transform.csv".to_owned(),
            row("transform"),
            "transform",
        ),
        ("products_load.csv".to_owned(), row("load"), "load"),
    ];
    for (name, body, _) in &cases {
        app.drop_file(name, body.as_bytes());
    }
    app.drop_file("products_after.csv", b"name,price\nafter,3\n");
    for (name, _, stage) in &cases {
        let job = app.job_for(name).await;
        assert_eq!(job["status"], "failed", "{name}: {job}");
        assert_eq!(job["error"], format!("internal error in {stage}"), "{job}");
        assert!(
            app.inbox
                .path()
                .join("failed")
                .join(format!("{name}.report.json"))
                .exists()
        );
    }
    let after = app.job_for("products_after.csv").await;
    assert_eq!(after["status"], "completed");
    let listed = app.get("/api/v1/products?q=after", None).await;
    assert_eq!(listed.body["items"][0]["price_cents"], 300);
    app.get("/readyz", None).await.assert_status(200);
}

/// Regression: recovery at start-up stopped at the first job that errored.
#[test]
fn recovery_goes_on_past_a_job_that_fails() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let work = inbox.path().join(".work");
    std::fs::create_dir_all(&work).unwrap();
    // Files a crash left claimed but without a job: recovery makes one for each.
    std::fs::write(
        work.join("0001-products_boom.csv"),
        format!("name,price\n{},1\n", marker("transform")),
    )
    .unwrap();
    std::fs::write(work.join("0002-products_fine.csv"), "name,price\nfine,1\n").unwrap();
    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    let token = admin_token(&server.base);
    let done = wait_for_jobs(
        &server.base,
        &token,
        &["products_boom.csv", "products_fine.csv"],
    );
    assert_eq!(done[0]["status"], "failed", "{}", done[0]);
    assert_eq!(done[1]["status"], "completed", "{}", done[1]);
    assert!(inbox.path().join("processed/products_fine.csv").exists());
}

/// Regression: `/readyz` said ready with the inbox's runner gone.
#[actix_web::test]
async fn readiness_fails_when_the_inbox_runner_is_gone() {
    let app = spawn_app().await;
    app.get("/readyz", None).await.assert_status(200);
    app.drop_file(
        &format!("products_{}.csv", marker("runner")),
        b"name,price\na,1\n",
    );
    let started = Instant::now();
    loop {
        let r = app.get("/readyz", None).await;
        if r.status == 503 {
            r.assert_problem(503, "unavailable");
            assert_eq!(r.body["checks"]["inbox"], false, "{}", r.body);
            assert_eq!(r.body["checks"]["ledger"], true, "{}", r.body);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Regression: a CSV (or JSON Lines) file without a final line break waited for the
/// truncated-file period and then failed, though RFC 4180 makes that break optional.
#[actix_web::test]
async fn files_without_a_final_line_break_load_once_settled() {
    // Far longer than `job_for` waits: the old rule could only fail this test.
    let app = spawn_app_with(|a| a.truncated_wait_secs = 600).await;
    app.drop_file("products_nolf.csv", b"name,price\nA,1.00\nB,2.50");
    app.drop_file(
        "products_nolf.jsonl",
        b"{\"name\":\"C\",\"price\":1}\n{\"name\":\"D\",\"price\":\"4.00\"}",
    );
    for name in ["products_nolf.csv", "products_nolf.jsonl"] {
        let job = app.job_for(name).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["rows_loaded"], 2, "{job}");
    }
    let d = app.get("/api/v1/products?q=d", None).await;
    assert_eq!(d.body["items"][0]["price_cents"], 400);
}

/// Regression: names the watcher could not claim (too long to rename with the
/// claim prefix, not UTF-8) were retried every ~50 ms for ever.
#[actix_web::test]
async fn names_the_inbox_cannot_take_fail_with_a_report() {
    let app = spawn_app().await;
    let long = format!("products_{}.csv", "x".repeat(240));
    std::fs::write(app.inbox.path().join(&long), "name,price\na,1\n").unwrap();
    let latin1 = std::ffi::OsStr::from_bytes(b"products_caf\xe9.csv");
    std::fs::write(app.inbox.path().join(latin1), "name,price\nb,1\n").unwrap();
    let started = Instant::now();
    let failed = loop {
        let r = app.get("/api/v1/imports", Some(&app.admin_token)).await;
        let items = r.body["items"].as_array().unwrap().clone();
        let done: Vec<Value> = items
            .into_iter()
            .filter(|j| j["status"] == "failed")
            .collect();
        if done.len() == 2 {
            break done;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let errors: Vec<&str> = failed
        .iter()
        .map(|j| j["error"].as_str().unwrap())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("longer than 200 bytes")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("not UTF-8") && e.contains("products_caf\\xe9.csv")),
        "the report names the original, its bad byte escaped: {errors:?}"
    );
    for job in &failed {
        let name = job["file_name"].as_str().unwrap();
        assert!(name.len() <= 100 && name.is_ascii(), "{name}");
        let dir = app.inbox.path().join("failed");
        let started = Instant::now();
        while !dir.join(format!("{name}.report.json")).exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no report for {name}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(dir.join(name).exists());
    }
    // Nothing is left in the inbox to be retried.
    let left: Vec<_> = std::fs::read_dir(app.inbox.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().unwrap().is_file())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Regression: a cancel restocked past the cap, after which even small reductions
/// were refused.
#[actix_web::test]
async fn stock_never_passes_the_cap_and_a_reduction_is_always_allowed() {
    let app = spawn_app().await;
    let (_, token) = app.customer("capper").await;
    app.create_product("CAP", 100, STOCK_UNITS_MAX - 1).await;
    let order = app
        .checkout(&token, json!([{"sku": "CAP", "quantity": 5}]), None)
        .await;
    order.assert_status(201);
    let admin = app.admin_token.clone();
    app.post(
        "/api/v1/products/CAP/stock",
        Some(&admin),
        json!({"delta": 6, "reason": "delivery"}),
    )
    .await
    .assert_status(201);
    assert_eq!(app.stock_of("CAP").await, STOCK_UNITS_MAX);
    let id = order.body["id"].as_u64().unwrap();
    let r = app
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&token),
            json!({}),
        )
        .await;
    r.assert_problem(409, "stock-above-maximum");
    assert_eq!(r.body["sku"], "CAP");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("reduce its stock first")
    );
    assert_eq!(
        app.stock_of("CAP").await,
        STOCK_UNITS_MAX,
        "a refused cancel writes nothing"
    );
    app.post(
        "/api/v1/products/CAP/stock",
        Some(&admin),
        json!({"delta": -10, "reason": "count"}),
    )
    .await
    .assert_status(201);
    app.post(
        &format!("/api/v1/orders/{id}/cancel"),
        Some(&token),
        json!({}),
    )
    .await
    .assert_status(200);
    assert_eq!(app.stock_of("CAP").await, STOCK_UNITS_MAX - 5);
    assert!(
        app.verify_ledger().await["problems"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// Holds the ledger busy for `for_ms` with a command of its own.
async fn block_ledger(app: &crate::helpers::TestApp, for_ms: u64) {
    use orderflow_actors::ledger::Transact;
    let ledger = app.ledger.redb().expect("the embedded backend").clone();
    actix_web::rt::spawn(async move {
        let _ = ledger
            .ask_write(Transact::<()> {
                work: Box::new(move |_| {
                    std::thread::sleep(Duration::from_millis(for_ms));
                    Ok(())
                }),
            })
            .await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Regression: a checkout that outlived the mailbox timeout was answered "503,
/// retry" but committed later, so a retry without a key bought twice.
#[actix_web::test]
async fn a_slow_ledger_answers_the_checkout_instead_of_inviting_a_second_one() {
    let app = spawn_app_with(|a| a.pipeline.actor_timeout_ms = 200).await;
    let (_, token) = app.customer("patient").await;
    app.create_product("SLOW", 100, 10).await;
    block_ledger(&app, 1_500).await;
    let r = app
        .checkout(&token, json!([{"sku": "SLOW", "quantity": 1}]), None)
        .await;
    r.assert_status(201);
    let orders = app.get("/api/v1/orders", Some(&token)).await;
    assert_eq!(orders.body["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn past_the_hard_limit_the_outcome_is_unknown_and_a_keyed_retry_makes_one_order() {
    let app = spawn_app_with(|a| {
        a.pipeline.actor_timeout_ms = 100;
        a.pipeline.ledger_write_timeout_ms = 300;
    })
    .await;
    let (_, token) = app.customer("unlucky").await;
    app.create_product("HARD", 100, 10).await;
    block_ledger(&app, 1_500).await;
    let items = json!([{"sku": "HARD", "quantity": 1}]);
    let r = app.checkout(&token, items.clone(), Some("k-1")).await;
    r.assert_problem(500, "outcome-unknown");
    assert_eq!(
        r.header("retry-after"),
        None,
        "no invitation to retry blindly"
    );
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("GET /api/v1/orders")
    );
    // Once the ledger is free, the same key gives the one order, whether the first
    // request committed or not.
    let started = Instant::now();
    let retried = loop {
        let r = app.checkout(&token, items.clone(), Some("k-1")).await;
        if r.status == 201 {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let orders = app.get("/api/v1/orders", Some(&token)).await;
    assert_eq!(orders.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(orders.body["items"][0]["id"], retried.body["id"]);
    assert_eq!(app.stock_of("HARD").await, 9);
}

/// Regression: `.uploads/*.part` left by a crash were never removed.
#[test]
fn abandoned_uploads_are_swept_at_start() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let uploads = inbox.path().join(".uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let stale = uploads.join("crashed.part");
    let fresh = uploads.join("in-progress.part");
    std::fs::write(&stale, "half an upload").unwrap();
    std::fs::write(&fresh, "being written").unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let _server = ChildServer::start(data.path(), inbox.path(), &[]);
    assert!(!stale.exists(), "an upload idle for an hour is swept");
    assert!(fresh.exists(), "a live one is kept");
}

/// Regression: `GET /categories` returned every category in one answer.
#[actix_web::test]
async fn categories_come_a_page_at_a_time() {
    let app = spawn_app().await;
    for (sku, category) in [("C1", "alpha"), ("C2", "beta"), ("C3", "gamma")] {
        app.post(
            "/api/v1/products",
            Some(&app.admin_token),
            json!({"sku": sku, "name": sku, "price_cents": 100, "category": category}),
        )
        .await
        .assert_status(201);
    }
    let first = app.get("/api/v1/categories?limit=2", None).await;
    first.assert_status(200);
    let names: Vec<&str> = first
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    let link = first.header("link").expect("a next link").to_owned();
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let second = app.get(&next, None).await;
    assert_eq!(second.body.as_array().unwrap().len(), 1);
    assert_eq!(second.body[0]["name"], "gamma");
    assert_eq!(
        second.header("link"),
        None,
        "the last page has no next link"
    );
    app.get("/api/v1/categories?limit=0", None)
        .await
        .assert_invalid("limit");
    app.get("/api/v1/categories?limit=201", None)
        .await
        .assert_invalid("limit");
}

/// The `orderflow_password_hashes_total` count for `purpose`.
async fn hashes(app: &crate::helpers::TestApp, purpose: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let needle = format!("orderflow_password_hashes_total{{purpose=\"{purpose}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(needle.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Regression: nine wrong admin passwords and one good login to any other account,
/// repeated, gave 27 guesses per window and never a 429.
#[actix_web::test]
async fn a_good_login_to_one_account_does_not_reset_guesses_at_another() {
    let app = spawn_app().await;
    app.register("bob").await.assert_status(201);
    let (mut guesses, mut throttled) = (0, 0);
    for _round in 0..3 {
        for _ in 0..9 {
            let r = app.login_reply("admin", "not-the-password").await;
            match r.status.as_u16() {
                401 => guesses += 1,
                429 => throttled += 1,
                other => panic!("unexpected {other}: {}", r.body),
            }
        }
        let _ = app.login_reply("bob", "password-123").await;
    }
    assert_eq!(guesses, 10, "exactly the limit of guesses reached a hash");
    assert_eq!(throttled, 17);
}

/// Regression: the check and the count were two steps with the hash between them,
/// so 40 concurrent wrong logins all reached argon2. The account's reservation
/// bounds them (contract §11 moved the client's bound to failures that happened
/// plus logins in flight, so that an office behind one address is not refused).
#[actix_web::test]
async fn concurrent_wrong_logins_cannot_overshoot_the_limit() {
    use orderflow_actors::limits::LOGIN_ACCOUNT_FAILURES_MAX;
    let app = spawn_app().await;
    app.register("dave").await.assert_status(201);
    let before = hashes(&app, "login").await;
    let attempts = (0..40).map(|_| app.login_reply("dave", "wrong-password"));
    let replies = futures_util::future::join_all(attempts).await;
    let count = |s: u16| replies.iter().filter(|r| r.status.as_u16() == s).count();
    let limit = LOGIN_ACCOUNT_FAILURES_MAX as usize;
    assert_eq!((count(401), count(429)), (limit, 40 - limit));
    assert_eq!(
        hashes(&app, "login").await - before,
        limit as u64,
        "throttled attempts hash nothing"
    );
    // And the client's failures now stop the next guess, at any account.
    app.login_reply("admin", "not-the-password")
        .await
        .assert_status(429);
}

/// Contract §11: thirty people behind one address log in at once with their
/// right passwords: none is refused (more than the failure limit of 10 were once
/// answered 429, each attempt counting as a failure until its hash said
/// otherwise).
#[actix_web::test]
async fn a_burst_of_right_passwords_from_one_address_is_not_refused() {
    let app = spawn_app().await;
    for n in 0..30 {
        app.register(&format!("clerk{n}")).await.assert_status(201);
    }
    let names: Vec<String> = (0..30).map(|n| format!("clerk{n}")).collect();
    let attempts = names
        .iter()
        .map(|name| app.login_reply(name, "password-123"));
    let replies = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// Regression: registration hashed the password before checking the name, and was
/// not throttled: registrations of a taken name cost more than logins.
#[actix_web::test]
async fn registration_checks_the_name_before_hashing_and_is_throttled() {
    let app = spawn_app_with(|a| a.registrations_per_client_max = 41).await;
    app.register("carol").await.assert_status(201);
    let before = hashes(&app, "registration").await;
    for i in 0..20 {
        app.post(
            "/api/v1/auth/register",
            None,
            json!({"username": "CAROL", "email": format!("carol{i}@example.com"), "password": "password-123"}),
        )
        .await
        .assert_problem(409, "user-exists");
        app.post(
            "/api/v1/auth/register",
            None,
            json!({"username": format!("carol{i}"), "email": "Carol@Example.com", "password": "password-123"}),
        )
        .await
        .assert_problem(409, "user-exists");
    }
    assert_eq!(
        hashes(&app, "registration").await,
        before,
        "no hash spent on a taken name"
    );
    // 1 + 40 attempts so far, of 41 allowed: the next is throttled.
    let r = app.register("erin").await;
    r.assert_problem(429, "too-many-requests");
    assert!(r.header("retry-after").is_some());
}
