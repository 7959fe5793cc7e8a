//! API keys: shown once, stored as a hash, each scope opening exactly its routes,
//! revocation effective at once.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn new_key(app: &TestApp, scopes: &[&str]) -> (u64, String) {
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&app.admin_token),
            json!({"name": format!("key for {}", scopes.len()), "scopes": scopes}),
        )
        .await;
    r.assert_status(201);
    let key = r.body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ofk_") && key.len() > 40, "{key}");
    (r.body["id"].as_u64().unwrap(), key)
}

/// Every bearer route of the document with the scopes it names (none: no key).
/// Public routes declare `security: []`.
async fn bearer_routes(app: &TestApp) -> Vec<(Method, String, Vec<String>)> {
    let doc = app.get("/openapi.json", None).await.body;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} declares no security"));
            if security.is_empty() {
                continue;
            }
            let scopes: Vec<String> = security[0]["bearer"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            // Path parameters that name nothing: the handler answers 404 or 422,
            // never changing anything, once the extractor has let the key in.
            let path = path
                .replace("{sku}", "NO-SUCH-SKU")
                .replace("{id}", "999999");
            out.push((method.to_uppercase().parse().unwrap(), path, scopes));
        }
    }
    out
}

#[actix_web::test]
async fn each_scope_opens_exactly_the_routes_that_name_it() {
    let app = spawn_app().await;
    let routes = bearer_routes(&app).await;
    let scoped = routes.iter().filter(|r| !r.2.is_empty()).count();
    assert!(scoped >= 15, "{routes:?}");
    let scopes = [
        "catalog:write",
        "stock:write",
        "orders:read",
        "orders:write",
        "imports:write",
        "events:read",
        "webhooks:write",
    ];
    for scope in scopes {
        let (_, key) = new_key(&app, &[scope]).await;
        for (method, path, needs) in &routes {
            let body =
                matches!(*method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
            let r = app.call(method.clone(), path, Some(&key), body).await;
            let opens = needs.iter().any(|n| n == scope);
            let status = r.status.as_u16();
            if opens {
                assert!(
                    status != 401 && status != 403,
                    "{scope} should open {method} {path}: {status} {}",
                    r.body
                );
            } else {
                assert_eq!(status, 403, "{scope} opened {method} {path}: {}", r.body);
                r.assert_problem(403, "forbidden");
            }
        }
    }
    // A key with every scope still cannot act as a user or manage keys.
    let (_, all) = new_key(&app, &scopes).await;
    app.checkout(&all, json!([{"sku": "X", "quantity": 1}]), None)
        .await
        .assert_problem(403, "forbidden");
    for (method, path) in [
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/api-keys"),
        (Method::GET, "/api/v1/admin/ledger/verify"),
    ] {
        app.call(method, path, Some(&all), None)
            .await
            .assert_problem(403, "forbidden");
    }
}

#[actix_web::test]
async fn a_key_works_until_it_is_revoked_and_its_material_is_shown_once() {
    let app = spawn_app().await;
    app.create_product("K-1", 100, 5).await;
    let (id, key) = new_key(&app, &["catalog:write", "events:read"]).await;
    app.call(
        Method::PATCH,
        "/api/v1/products/K-1",
        Some(&key),
        Some(json!({"price_cents": 150})),
    )
    .await
    .assert_status(200);
    assert_eq!(app.product("K-1").await["price_cents"], 150);
    app.get("/api/v1/events", Some(&key))
        .await
        .assert_status(200);

    let listed = app.get("/api/v1/api-keys", Some(&app.admin_token)).await;
    listed.assert_status(200);
    let text = listed.body.to_string();
    assert!(!text.contains(&key), "key material listed");
    let mine: &Value = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(mine["scopes"], json!(["catalog:write", "events:read"]));
    assert!(mine["last_used_at"].is_string(), "{mine}");
    assert!(mine.get("key").is_none());

    app.call(
        Method::DELETE,
        &format!("/api/v1/api-keys/{id}"),
        Some(&app.admin_token),
        None,
    )
    .await
    .assert_status(204);
    // Refused from the very next request.
    app.get("/api/v1/events", Some(&key))
        .await
        .assert_problem(401, "unauthorized");
    app.call(
        Method::DELETE,
        &format!("/api/v1/api-keys/{id}"),
        Some(&app.admin_token),
        None,
    )
    .await
    .assert_problem(404, "not-found");
    // A key nobody issued.
    app.get(
        "/api/v1/events",
        Some("ofk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await
    .assert_problem(401, "unauthorized");
}

#[actix_web::test]
async fn bad_key_requests_are_422_naming_the_field() {
    let app = spawn_app().await;
    let admin = Some(app.admin_token.as_str());
    for (body, field) in [
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["root"]}), "scopes"),
        (json!({"name": "  ", "scopes": ["events:read"]}), "name"),
        (json!({"scopes": ["events:read"]}), "name"),
        (json!({"name": "x"}), "scopes"),
        (
            json!({"name": "x", "scopes": ["events:read"], "role": "admin"}),
            "role",
        ),
    ] {
        app.post("/api/v1/api-keys", admin, body)
            .await
            .assert_invalid(field);
    }
    let (_, token) = app.customer("notadmin").await;
    app.post(
        "/api/v1/api-keys",
        Some(&token),
        json!({"name": "x", "scopes": ["events:read"]}),
    )
    .await
    .assert_problem(403, "forbidden");
}
