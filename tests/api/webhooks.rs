//! Webhooks: the SSRF guard, signed deliveries verified by the Standard Webhooks
//! reference library, retries in seq order, disable and resume, test events,
//! secret rotation, the deliveries log's filter and pages, no proxy.
//!
//! Why one file: every test here shares the signature-checking receiver and the
//! registration and waiting helpers at its top (and `nodes.rs` borrows them).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ChildServer, TestApp, spawn_app, spawn_app_with};

/// A receiver on 127.0.0.1 that checks every delivery's signature with the
/// Standard Webhooks library and answers what the test tells it to.
#[derive(Default)]
pub struct Receiver {
    /// Secrets to verify with (`whsec_…`); a delivery must verify with each.
    pub secrets: Vec<String>,
    /// Statuses to answer next, in order; 204 once they run out.
    script: Vec<u16>,
    /// Every request: (webhook-id, body, verified with every secret, answered).
    pub seen: Vec<(String, Value, bool, u16)>,
    /// How long to take over each answer.
    delay: Duration,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<Receiver>>>,
) -> HttpResponse {
    let delay = state.lock().unwrap().delay;
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Some(v) = req.headers().get(name) {
            headers.insert(name, http::HeaderValue::from_bytes(v.as_bytes()).unwrap());
        }
    }
    let mut r = state.lock().unwrap();
    let verified = !r.secrets.is_empty()
        && r.secrets.iter().all(|s| {
            standardwebhooks::Webhook::new(s)
                .unwrap()
                .verify(&body, &headers)
                .is_ok()
        });
    let status = if r.script.is_empty() {
        204
    } else {
        r.script.remove(0)
    };
    let id = req
        .headers()
        .get("webhook-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.seen.push((id, value, verified, status));
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

pub fn start_receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let data = web::Data::new(Arc::clone(&state));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    (format!("http://{addr}/hook"), state)
}

async fn deliveries_app() -> TestApp {
    spawn_app_with(|a| {
        a.webhook_allow_private = true;
        a.webhook_retry_unit_ms = 20;
    })
    .await
}

pub async fn register(app: &TestApp, url: &str, events: Value) -> (u64, String) {
    let r = app
        .post(
            "/api/v1/webhooks",
            Some(&app.admin_token),
            json!({"url": url, "events": events, "description": "test receiver"}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.body["status"], "enabled");
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    (r.body["id"].as_u64().unwrap(), secret)
}

/// Waits (bounded) until `done` holds for the receiver.
pub async fn until(receiver: &Arc<Mutex<Receiver>>, what: &str, done: impl Fn(&Receiver) -> bool) {
    let started = Instant::now();
    loop {
        if done(&receiver.lock().unwrap()) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gave up waiting for {what}; seen: {:?}",
            receiver
                .lock()
                .unwrap()
                .seen
                .iter()
                .map(|s| (&s.0, s.3))
                .collect::<Vec<_>>()
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The distinct events the receiver accepted, in the order first accepted.
pub fn accepted(r: &Receiver) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for (id, body, _, status) in &r.seen {
        if (200..300).contains(status) && !out.iter().any(|b| b["id"] == id.as_str()) {
            out.push(body.clone());
        }
    }
    out
}

#[actix_web::test]
async fn addresses_inside_the_network_are_refused_at_registration() {
    let app = spawn_app().await;
    let admin = Some(app.admin_token.as_str());
    for url in [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8080/hook",
        "http://10.0.0.1/hook",
        "http://172.16.5.4/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://[ff02::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:a00:1]/hook",
        "http://localhost/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "not a url",
    ] {
        app.post(
            "/api/v1/webhooks",
            admin,
            json!({"url": url, "events": ["order.*"]}),
        )
        .await
        .assert_invalid("url");
    }
    for (events, field) in [(json!([]), "events"), (json!(["order.nope"]), "events")] {
        app.post(
            "/api/v1/webhooks",
            admin,
            json!({"url": "https://93.184.216.34/hook", "events": events}),
        )
        .await
        .assert_invalid(field);
    }
    let none = app.get("/api/v1/webhooks", admin).await;
    assert_eq!(none.body["items"], json!([]));
}

#[actix_web::test]
async fn deliveries_are_signed_retried_and_in_seq_order() {
    let app = deliveries_app().await;
    let (url, receiver) = start_receiver();
    app.create_product("WH-1", 100, 100).await;
    let (id, secret) = register(&app, &url, json!(["order.*"])).await;
    {
        let mut r = receiver.lock().unwrap();
        r.secrets = vec![secret];
        // The first event fails three times, then everything succeeds.
        r.script = vec![500, 503, 502];
    }
    let (_, token) = app.customer("hooked").await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        let o = app
            .checkout(&token, json!([{"sku": "WH-1", "quantity": 1}]), None)
            .await;
        o.assert_status(201);
        orders.push(o.body["id"].clone());
    }
    until(&receiver, "five orders", |r| accepted(r).len() >= 5).await;
    let got = {
        let r = receiver.lock().unwrap();
        assert!(r.seen.iter().all(|s| s.2), "every delivery verifies");
        let got = accepted(&r);
        let ids: Vec<Value> = got.iter().map(|e| e["data"]["id"].clone()).collect();
        assert_eq!(ids, orders, "every order once, in order, none skipped");
        assert!(got.iter().all(|e| e["type"] == "order.placed"));
        let seqs: Vec<u64> = got.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        // Nothing after the first event was sent before it succeeded.
        let first_ok = r.seen.iter().position(|s| s.3 == 204).unwrap();
        assert_eq!(first_ok, 3);
        assert!(r.seen[..4].iter().all(|s| s.1["seq"] == seqs[0]));
        got
    };
    // The feed agrees: every order.placed event was delivered.
    let placed: Vec<Value> = app
        .all_events()
        .await
        .into_iter()
        .filter(|e| e["type"] == "order.placed")
        .map(|e| e["id"].clone())
        .collect();
    let delivered: Vec<Value> = got.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(placed, delivered);
    // The run records its last successes just after the receiver has them.
    let mut log = None;
    for _ in 0..250 {
        let page = app
            .get(
                &format!("/api/v1/webhooks/{id}/deliveries"),
                Some(&app.admin_token),
            )
            .await;
        page.assert_status(200);
        let done = page.body["items"].as_array().unwrap().len() >= 8;
        log = Some(page);
        if done {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let log = log.unwrap();
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 8, "three failures and five successes");
    let oldest = &items[items.len() - 1];
    assert_eq!(oldest["outcome"], "failed");
    assert_eq!(oldest["response_status"], 500);
    assert_eq!(oldest["attempt"], 1);
    assert_eq!(items[items.len() - 4]["attempt"], 4);
    assert_eq!(items[items.len() - 4]["outcome"], "succeeded");
    let endpoint = app
        .get(&format!("/api/v1/webhooks/{id}"), Some(&app.admin_token))
        .await;
    assert_eq!(endpoint.body["failures"], 0);
    assert!(endpoint.body.get("secret").is_none());
    // The log by outcome, and page by page (contract §11): an old failure behind
    // newer successes is found, and the pages add up to the whole log.
    let admin = Some(app.admin_token.as_str());
    let path = format!("/api/v1/webhooks/{id}/deliveries");
    let failed = app.get(&format!("{path}?outcome=failed"), admin).await;
    failed.assert_status(200);
    let failed_items = failed.body["items"].as_array().unwrap();
    assert_eq!(failed_items.len(), 3);
    assert!(failed_items.iter().all(|d| d["outcome"] == "failed"));
    assert!(failed.body["next_cursor"].is_null());
    for (outcome, limit, expected) in [("succeeded", 2, 5), ("", 3, 8)] {
        let mut walked: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let mut query = format!("{path}?limit={limit}");
            if !outcome.is_empty() {
                query.push_str(&format!("&outcome={outcome}"));
            }
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={c}"));
            }
            let page = app.get(&query, admin).await;
            page.assert_status(200);
            let items = page.body["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            walked.extend(items.iter().cloned());
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(walked.len(), expected, "{outcome:?} by {limit}");
        if outcome.is_empty() {
            assert_eq!(&walked, items, "the pages are the whole log, in its order");
        } else {
            assert!(walked.iter().all(|d| d["outcome"] == outcome));
        }
    }
    app.get(&format!("{path}?outcome=maybe"), admin)
        .await
        .assert_problem(422, "validation");
}

#[actix_web::test]
async fn a_410_disables_and_reenabling_resumes_from_the_first_undelivered() {
    let app = deliveries_app().await;
    let (url, receiver) = start_receiver();
    app.create_product("WH-2", 100, 100).await;
    let (id, secret) = register(&app, &url, json!(["order.placed"])).await;
    {
        let mut r = receiver.lock().unwrap();
        r.secrets = vec![secret];
        r.script = vec![410];
    }
    let (_, token) = app.customer("gone").await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        let o = app
            .checkout(&token, json!([{"sku": "WH-2", "quantity": 1}]), None)
            .await;
        orders.push(o.body["id"].clone());
    }
    let admin = Some(app.admin_token.as_str());
    let started = Instant::now();
    let endpoint = loop {
        let e = app.get(&format!("/api/v1/webhooks/{id}"), admin).await.body;
        if e["status"] == "disabled" {
            break e;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{e}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{endpoint}"
    );
    // Disabled: nothing more is sent, whatever commits meanwhile.
    let o = app
        .checkout(&token, json!([{"sku": "WH-2", "quantity": 1}]), None)
        .await;
    orders.push(o.body["id"].clone());
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.lock().unwrap().seen.len(), 1);
    app.call(
        Method::PATCH,
        &format!("/api/v1/webhooks/{id}"),
        admin,
        Some(json!({"status": "enabled"})),
    )
    .await
    .assert_status(200);
    until(&receiver, "four orders", |r| accepted(r).len() >= 4).await;
    let got: Vec<Value> = accepted(&receiver.lock().unwrap())
        .iter()
        .map(|e| e["data"]["id"].clone())
        .collect();
    assert_eq!(got, orders, "resumed from the event that got 410");
}

#[actix_web::test]
async fn test_events_and_rotated_secrets_verify() {
    let app = deliveries_app().await;
    let (url, receiver) = start_receiver();
    let (id, old) = register(&app, &url, json!(["*"])).await;
    receiver.lock().unwrap().secrets = vec![old.clone()];
    let admin = Some(app.admin_token.as_str());
    let sent = app
        .post(&format!("/api/v1/webhooks/{id}/test"), admin, json!({}))
        .await;
    sent.assert_status(200);
    assert_eq!(sent.body["outcome"], "succeeded", "{}", sent.body);
    {
        let r = receiver.lock().unwrap();
        assert_eq!(r.seen.len(), 1);
        assert!(r.seen[0].2, "the test event verifies");
        assert_eq!(r.seen[0].1["type"], "webhook.test");
    }
    let rotated = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            admin,
            json!({}),
        )
        .await;
    rotated.assert_status(200);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    // During the overlap a delivery verifies with the old secret and the new one.
    receiver.lock().unwrap().secrets = vec![old, new];
    app.create_product("WH-3", 100, 1).await;
    until(&receiver, "the product events", |r| accepted(r).len() >= 3).await;
    assert!(receiver.lock().unwrap().seen.iter().all(|s| s.2));
    let log = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), admin)
        .await;
    assert_eq!(
        log.body["items"].as_array().unwrap().last().unwrap()["type"],
        "webhook.test"
    );
    app.call(
        Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        admin,
        None,
    )
    .await
    .assert_status(204);
    app.get(&format!("/api/v1/webhooks/{id}"), admin)
        .await
        .assert_problem(404, "not-found");
}

/// A request to a server started as its own process.
async fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn login(client: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Killed with SIGKILL while deliveries are pending, the service resumes them after
/// the restart: every event arrives (at least once), in order.
#[actix_web::test]
async fn deliveries_pending_at_a_sigkill_all_arrive_after_the_restart() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let flags = ["--webhook-allow-private", "--webhook-retry-unit-ms", "20"];
    let server = ChildServer::start(data.path(), inbox.path(), &flags);
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let admin = login(&client, &base, "admin", ADMIN_PASSWORD).await;
    let (url, receiver) = start_receiver();
    receiver.lock().unwrap().delay = Duration::from_millis(30);
    let (status, product) = call(
        &client,
        &base,
        &admin,
        Method::POST,
        "/api/v1/products",
        json!({"sku": "KW-1", "name": "Killed webhook", "price_cents": 100, "stock": 1000}),
    )
    .await;
    assert_eq!(status, 201, "{product}");
    let (status, endpoint) = call(
        &client,
        &base,
        &admin,
        Method::POST,
        "/api/v1/webhooks",
        json!({"url": url, "events": ["order.placed"]}),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    receiver.lock().unwrap().secrets = vec![endpoint["secret"].as_str().unwrap().to_owned()];
    let mut orders = Vec::new();
    for _ in 0..20 {
        let (status, order) = call(
            &client,
            &base,
            &admin,
            Method::POST,
            "/api/v1/orders",
            json!({"items": [{"sku": "KW-1", "quantity": 1}]}),
        )
        .await;
        assert_eq!(status, 201, "{order}");
        orders.push(order["id"].clone());
    }
    until(&receiver, "a few deliveries", |r| accepted(r).len() >= 3).await;
    server.kill();
    let before = accepted(&receiver.lock().unwrap()).len();
    assert!(
        before < orders.len(),
        "the kill came too late to leave deliveries pending"
    );

    let server = ChildServer::start(data.path(), inbox.path(), &flags);
    until(&receiver, "every order after the restart", |r| {
        accepted(r).len() >= 20
    })
    .await;
    let r = receiver.lock().unwrap();
    assert!(r.seen.iter().all(|s| s.2), "every delivery verifies");
    let got: Vec<Value> = accepted(&r)
        .iter()
        .map(|e| e["data"]["id"].clone())
        .collect();
    assert_eq!(got, orders, "every order, in order, none lost");
    // At least once: what was delivered since the last sync of the cursors (at most
    // about a second) may come again after the restart, in order again. So the seqs
    // go back at most once (at the restart) and otherwise only forward.
    let seqs: Vec<u64> = r
        .seen
        .iter()
        .filter(|s| s.3 == 204)
        .map(|s| s.1["seq"].as_u64().unwrap())
        .collect();
    let back = seqs.windows(2).filter(|w| w[0] >= w[1]).count();
    assert!(back <= 1, "{seqs:?}");
    drop(r);
    drop(server);
}

/// A proxy named in the environment (`HTTP_PROXY` and friends) once resolved and
/// connected to webhook targets itself, past the SSRF guard. Here a "proxy" on
/// 127.0.0.1 counts the connections it gets: a delivery reaches its receiver, and
/// the proxy sees none.
#[actix_web::test]
async fn deliveries_ignore_a_proxy_named_in_the_environment() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    proxy.set_nonblocking(true).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = {
        let (hits, stop) = (Arc::clone(&hits), Arc::clone(&stop));
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                match proxy.accept() {
                    Ok(_) => {
                        hits.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
    };
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let env = [
        ("HTTP_PROXY", proxy_url.as_str()),
        ("http_proxy", proxy_url.as_str()),
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("https_proxy", proxy_url.as_str()),
        ("ALL_PROXY", proxy_url.as_str()),
        ("all_proxy", proxy_url.as_str()),
    ];
    let server = ChildServer::start_with_env(
        data.path(),
        inbox.path(),
        &["--webhook-allow-private"],
        &env,
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = server.base.clone();
    let admin = login(&client, &base, "admin", ADMIN_PASSWORD).await;
    let (url, receiver) = start_receiver();
    let (status, endpoint) = call(
        &client,
        &base,
        &admin,
        Method::POST,
        "/api/v1/webhooks",
        json!({"url": url, "events": ["order.*"]}),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    receiver.lock().unwrap().secrets = vec![endpoint["secret"].as_str().unwrap().to_owned()];
    let id = endpoint["id"].as_u64().unwrap();
    let (status, sent) = call(
        &client,
        &base,
        &admin,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/test"),
        json!({}),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    counter.join().unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the delivery went to the proxy"
    );
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["outcome"], "succeeded", "{sent}");
    assert_eq!(receiver.lock().unwrap().seen.len(), 1);
    server.terminate();
}
