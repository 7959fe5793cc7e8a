//! The service's log: one access line per request, in the chosen format, and the
//! request id on every line written while a request is served.

use serde_json::json;

use crate::helpers::ChildServer;

/// One GET with a request id of our choosing, outside an async runtime.
fn get_with_request_id(base: &str, path: &str, request_id: &str) -> u16 {
    send_with_request_id(base, reqwest::Method::GET, path, None, request_id)
}

fn send_with_request_id(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
    request_id: &str,
) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .request(method, format!("{base}{path}"))
            .header("x-request-id", request_id);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap().status().as_u16()
    })
}

/// The first line of the child's log that contains `needle`, waiting up to 10 s
/// (the log writer writes every few milliseconds).
fn log_line(server: &ChildServer, needle: &str) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(line) = server
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
        {
            return Some(line.clone());
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn every_request_has_one_access_line_in_the_chosen_format_and_the_filter_silences_it() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();

    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    assert_eq!(
        get_with_request_id(&server.base, "/api/v1/products/NO-SUCH", "trace-text-1"),
        404
    );
    let line = log_line(&server, "trace-text-1").expect("an access line");
    assert!(
        line.contains(
            " INFO request{request_id=trace-text-1}: request method=GET \
             path=/api/v1/products/NO-SUCH route=/api/v1/products/{sku} status=404 latency_us="
        ),
        "{line}"
    );
    assert!(server.terminate().success());

    let server = ChildServer::start(data.path(), inbox.path(), &["--log-format", "json"]);
    assert_eq!(
        get_with_request_id(&server.base, "/nowhere", "trace-json-1"),
        404
    );
    let line = log_line(&server, "trace-json-1").expect("an access line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["message"], "request");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/nowhere");
    assert_eq!(v["route"], "unmatched");
    assert_eq!(v["status"], 404);
    assert!(v["latency_us"].is_u64(), "{line}");
    assert_eq!(v["span"]["request_id"], "trace-json-1");
    assert!(server.terminate().success());

    let server = ChildServer::start(
        data.path(),
        inbox.path(),
        &["--log", "info,orderflow::access=warn"],
    );
    assert_eq!(
        get_with_request_id(&server.base, "/nowhere", "trace-quiet-1"),
        404
    );
    // The lines after it arrive (the stop lines), the access line does not.
    let log = std::sync::Arc::clone(&server.log);
    assert!(server.terminate().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !log.lock().unwrap().iter().any(|l| l.ends_with("stopped"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = log.lock().unwrap();
    assert!(log.iter().any(|l| l.ends_with("stopped")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("trace-quiet-1")), "{log:?}");
}

#[test]
fn a_line_logged_while_a_request_is_served_carries_its_request_id() {
    let data = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let register = |server: &ChildServer, name: &str, request_id: &str| {
        send_with_request_id(
            &server.base,
            reqwest::Method::POST,
            "/api/v1/auth/register",
            Some(json!({
                "username": name,
                "email": format!("{name}@example.com"),
                "password": "password-123",
            })),
            request_id,
        )
    };

    let server = ChildServer::start(data.path(), inbox.path(), &[]);
    assert_eq!(register(&server, "logged-text", "reg-text-1"), 201);
    let line = log_line(&server, "user registered").expect("the registration line");
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("request_id=reg-text-1"), "{line}");
    assert!(server.terminate().success());

    let server = ChildServer::start(data.path(), inbox.path(), &["--log-format", "json"]);
    assert_eq!(register(&server, "logged-json", "reg-json-1"), 201);
    let line = log_line(&server, "user registered").expect("the registration line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["request_id"], "reg-json-1", "{line}");
    assert!(server.terminate().success());
}
