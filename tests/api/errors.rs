use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

#[actix_web::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    app.get("/nope", None)
        .await
        .assert_problem(404, "route-not-found");
    app.get("/api/v1/nope", None)
        .await
        .assert_problem(404, "route-not-found");
    app.call(
        Method::DELETE,
        "/api/v1/products",
        Some(&app.admin_token),
        None,
    )
    .await
    .assert_problem(405, "method-not-allowed");
    app.call(Method::PUT, "/healthz", None, None)
        .await
        .assert_problem(405, "method-not-allowed");
    app.get("/api/v1/auth/login", None)
        .await
        .assert_problem(405, "method-not-allowed");
}

#[actix_web::test]
async fn bodies_are_strict() {
    let app = spawn_app().await;
    let send = |body: Vec<u8>, ct: &'static str| {
        app.post_raw("/api/v1/auth/register", None, Some(ct), body)
    };
    send(b"{\"username\":".to_vec(), "application/json")
        .await
        .assert_problem(400, "malformed-json");
    send(b"".to_vec(), "application/json")
        .await
        .assert_problem(400, "malformed-json");
    send(b"[1,2]".to_vec(), "application/json")
        .await
        .assert_invalid("body");
    send(b"{\"username\":\"\xff\xfe\"}".to_vec(), "application/json")
        .await
        .assert_problem(400, "malformed-json");
    send(
        format!("{}{}", "[".repeat(64), "]".repeat(64)).into_bytes(),
        "application/json",
    )
    .await
    .assert_problem(400, "malformed-json");
    send(b"username=a".to_vec(), "application/x-www-form-urlencoded")
        .await
        .assert_problem(415, "unsupported-media-type");
    let huge =
        json!({"username": "x".repeat(70 * 1024), "email": "a@b.co", "password": "password-123"});
    send(serde_json::to_vec(&huge).unwrap(), "application/json")
        .await
        .assert_problem(413, "payload-too-large");
    send(
        b"{\"username\":\"abc\",\"email\":\"a@b.co\",\"password\":\"password-123\",\"extra\":1}"
            .to_vec(),
        "application/json",
    )
    .await
    .assert_invalid("extra");
}

#[actix_web::test]
async fn request_ids_are_echoed_when_sane_and_replaced_when_not() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/api/v1/products/NOPE"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    let r = TestApp::read(res).await;
    r.assert_problem(404, "not-found");
    assert_eq!(r.header("x-request-id"), Some("trace-abc.123"));
    assert_eq!(r.body["request_id"], "trace-abc.123");

    let long = "x".repeat(500);
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", long.as_str())
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, long);
    assert_eq!(id.len(), 32);
}

#[actix_web::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let r = app.get("/healthz", None).await;
    r.assert_status(200);
    let r = app.get("/readyz", None).await;
    r.assert_status(200);
    assert_eq!(
        r.body["checks"],
        json!({"catalog": true, "users": true, "ledger": true, "inbox": true})
    );
}

#[actix_web::test]
async fn every_paged_route_refuses_cursors_it_did_not_issue() {
    let app = spawn_app().await;
    let admin = app.admin_token.clone();
    app.create_product("A", 100, 5).await.assert_status(201);
    app.create_product("B", 100, 5).await.assert_status(201);
    // A real cursor of another route's kind (a product listing position), and
    // bytes that are no cursor at all.
    let listing = app.get("/api/v1/products?limit=1", None).await;
    let foreign = listing.body["next_cursor"].as_str().unwrap().to_owned();
    for path in [
        "/api/v1/orders",
        "/api/v1/imports",
        "/api/v1/imports/1/rejects",
        "/api/v1/products/A/movements",
        "/api/v1/categories",
    ] {
        for cursor in [foreign.as_str(), "%%%", "AAAA"] {
            app.get(&format!("{path}?cursor={cursor}"), Some(&admin))
                .await
                .assert_invalid("cursor");
        }
        // And its own first page is fine.
        if !path.contains("/imports/1/") {
            app.get(path, Some(&admin)).await.assert_status(200);
        }
    }
}
