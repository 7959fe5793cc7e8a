//! Hostile input: each attempt gets its documented problem, and nothing changes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, TestApp, spawn_app};

/// What could change: products, orders, a SKU's movements and stock, jobs.
async fn snapshot(app: &TestApp) -> Value {
    let admin = Some(app.admin_token.as_str());
    json!({
        "products": app.get("/api/v1/products?limit=200", None).await.body["items"],
        "orders": app.get("/api/v1/orders?limit=200", admin).await.body["items"],
        "movements": app.get("/api/v1/products/H-1/movements?limit=200", admin).await.body["items"],
        "jobs": app.get("/api/v1/imports", admin).await.body["items"],
    })
}

fn sign(header: &Value, claims: &Value, key: &[u8]) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let msg = format!("{h}.{c}");
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(key),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{msg}.{sig}")
}

#[actix_web::test]
async fn forged_and_broken_tokens_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    app.create_product("H-1", 500, 10).await;
    let (alice, _) = app.customer("alice").await;
    let before = snapshot(&app).await;
    let now = jsonwebtoken::get_current_timestamp();
    let hs = json!({"alg": "HS256", "typ": "JWT"});
    let admin_claims = |f: &dyn Fn(&mut Value)| {
        let mut c = json!({"sub": "1", "role": "admin", "iat": now, "nbf": now, "exp": now + 600, "iss": "orderflow"});
        f(&mut c);
        c
    };
    let customer = sign(
        &hs,
        &json!({"sub": alice.to_string(), "role": "customer", "iat": now, "nbf": now, "exp": now + 600, "iss": "orderflow"}),
        JWT_SECRET.as_bytes(),
    );
    let parts: Vec<&str> = customer.split('.').collect();
    let role_edited = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(admin_claims(&|c| c["sub"] = alice.to_string().into()).to_string()),
        parts[2]
    );
    let tokens = [
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(admin_claims(&|_| {}).to_string())
            ),
        ),
        (
            "another key",
            sign(
                &hs,
                &admin_claims(&|_| {}),
                b"not-the-server-secret-not-the-server",
            ),
        ),
        ("role edited", role_edited),
        (
            "expired",
            sign(
                &hs,
                &admin_claims(&|c| c["exp"] = (now - 600).into()),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "not yet valid",
            sign(
                &hs,
                &admin_claims(&|c| c["nbf"] = (now + 600).into()),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "wrong issuer",
            sign(
                &hs,
                &admin_claims(&|c| c["iss"] = "evil".into()),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "no expiry",
            sign(
                &hs,
                &admin_claims(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "HS512",
            sign(
                &json!({"alg": "HS512", "typ": "JWT"}),
                &admin_claims(&|_| {}),
                JWT_SECRET.as_bytes(),
            ),
        ),
        ("garbage", "definitely.not.a-token".to_owned()),
        ("empty", String::new()),
    ];
    for (what, token) in &tokens {
        let r = app
            .post(
                "/api/v1/products",
                Some(token),
                json!({"sku": "EVIL", "name": "Evil", "price_cents": 1}),
            )
            .await;
        assert_eq!(r.status.as_u16(), 401, "{what}: {}", r.body);
        r.assert_problem(401, "unauthorized");
        let r = app
            .post(
                "/api/v1/products/H-1/stock",
                Some(token),
                json!({"delta": 1000, "reason": "x"}),
            )
            .await;
        assert_eq!(r.status.as_u16(), 401, "{what}");
        let r = app
            .post(
                "/api/v1/orders",
                Some(token),
                json!({"items": [{"sku": "H-1", "quantity": 1}]}),
            )
            .await;
        assert_eq!(r.status.as_u16(), 401, "{what}");
    }
    // A sound customer token on admin routes is forbidden, not unauthorized.
    app.post(
        "/api/v1/products",
        Some(&customer),
        json!({"sku": "EVIL", "name": "Evil", "price_cents": 1}),
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(snapshot(&app).await, before, "nothing changed");
}

#[actix_web::test]
async fn other_peoples_orders_and_smuggled_fields_change_nothing() {
    let app = spawn_app().await;
    app.create_product("H-1", 500, 10).await;
    let (_, alice) = app.customer("alice").await;
    let (bob_id, bob) = app.customer("bob").await;
    let order = app
        .checkout(&alice, json!([{"sku": "H-1", "quantity": 1}]), None)
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    let before = snapshot(&app).await;

    app.get(&format!("/api/v1/orders/{order}"), Some(&bob))
        .await
        .assert_problem(404, "not-found");
    app.post(
        &format!("/api/v1/orders/{order}/cancel"),
        Some(&bob),
        json!({}),
    )
    .await
    .assert_problem(404, "not-found");
    app.post(
        &format!("/api/v1/orders/{order}/status"),
        Some(&bob),
        json!({"status": "cancelled"}),
    )
    .await
    .assert_problem(403, "forbidden");

    // Mass assignment.
    app.post("/api/v1/auth/register", None, json!({"username": "eve", "email": "eve@example.com", "password": "password-123", "role": "admin"})).await.assert_invalid("role");
    app.post(
        "/api/v1/auth/register",
        None,
        json!({"username": "eve", "email": "eve@example.com", "password": "password-123", "id": 1}),
    )
    .await
    .assert_invalid("id");
    for (line, field) in [
        (
            json!({"sku": "H-1", "quantity": 1, "price_cents": 1}),
            "items[0].price_cents",
        ),
        (
            json!({"sku": "H-1", "quantity": 1, "unit_price_cents": 1}),
            "items[0].unit_price_cents",
        ),
        (
            json!({"sku": "H-1", "quantity": 1, "name": "free"}),
            "items[0].name",
        ),
    ] {
        app.checkout(&bob, json!([line]), None)
            .await
            .assert_invalid(field);
    }
    app.post(
        "/api/v1/orders",
        Some(&bob),
        json!({"items": [{"sku": "H-1", "quantity": 1}], "user_id": 1}),
    )
    .await
    .assert_invalid("user_id");
    app.post(
        "/api/v1/orders",
        Some(&bob),
        json!({"items": [{"sku": "H-1", "quantity": 1}], "total_cents": 1}),
    )
    .await
    .assert_invalid("total_cents");
    app.post(
        "/api/v1/orders",
        Some(&bob),
        json!({"items": [{"sku": "H-1", "quantity": 1}], "status": "paid"}),
    )
    .await
    .assert_invalid("status");
    app.post(
        "/api/v1/products",
        Some(&app.admin_token),
        json!({"sku": "N-1", "name": "n", "price_cents": 1, "created_at": "2000-01-01T00:00:00Z"}),
    )
    .await
    .assert_invalid("created_at");
    app.get(&format!("/api/v1/orders?user={bob_id}"), Some(&alice))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(snapshot(&app).await, before, "nothing changed");
    let me = app.get("/api/v1/me", Some(&bob)).await;
    assert_eq!(me.body["role"], "customer");
}

#[actix_web::test]
async fn hostile_strings_and_numbers_change_nothing() {
    let app = spawn_app().await;
    app.create_product("H-1", 500, 10).await;
    let (_, alice) = app.customer("alice").await;
    let admin = Some(app.admin_token.as_str());
    let before = snapshot(&app).await;

    // SQL and path traversal in SKUs.
    for sku in [
        "'; DROP TABLE products;--",
        "1' OR '1'='1",
        "../../etc/passwd",
        "..%2F..%2Fetc",
        "a\u{0}b",
        "<script>",
    ] {
        app.post(
            "/api/v1/products",
            admin,
            json!({"sku": sku, "name": "x", "price_cents": 1}),
        )
        .await
        .assert_invalid("sku");
        app.checkout(&alice, json!([{"sku": sku, "quantity": 1}]), None)
            .await
            .assert_invalid("items[0].sku");
        let encoded: String = url_escape(sku);
        let r = app.get(&format!("/api/v1/products/{encoded}"), None).await;
        assert_eq!(r.status.as_u16(), 404, "{sku}: {}", r.body);
    }
    // Quantities: negative, zero, huge, not integers.
    for q in [
        json!(-1),
        json!(0),
        json!(1001),
        json!(1_000_000_000_000u64),
        json!(9_223_372_036_854_775_807i64),
        json!(1.5),
        json!("1"),
        json!(true),
        json!(null),
        json!([1]),
    ] {
        let r = app
            .checkout(&alice, json!([{"sku": "H-1", "quantity": q}]), None)
            .await;
        r.assert_invalid("items[0].quantity");
    }
    // Prices: negative, zero, huge, not integers.
    for p in [
        json!(-1),
        json!(0),
        json!(100_000_000_001u64),
        json!(u64::MAX),
        json!(12.5),
        json!("1200"),
        json!(1e3),
        json!(null),
    ] {
        let r = app
            .post(
                "/api/v1/products",
                admin,
                json!({"sku": "P-X", "name": "x", "price_cents": p}),
            )
            .await;
        r.assert_invalid("price_cents");
        let r = app
            .call(
                Method::PATCH,
                "/api/v1/products/H-1",
                admin,
                Some(json!({"price_cents": p})),
            )
            .await;
        assert_eq!(
            r.status.as_u16(),
            if p.is_null() { 200 } else { 422 },
            "{p}: {}",
            r.body
        );
    }
    // Stock deltas that would go negative or overflow.
    app.post(
        "/api/v1/products/H-1/stock",
        admin,
        json!({"delta": -11, "reason": "x"}),
    )
    .await
    .assert_problem(409, "insufficient-stock");
    app.post(
        "/api/v1/products/H-1/stock",
        admin,
        json!({"delta": i64::MIN, "reason": "x"}),
    )
    .await
    .assert_invalid("delta");
    // Oversized, deeply nested, malformed UTF-8, wrong media type.
    let big = json!({"items": [{"sku": "H-1", "quantity": 1}], "pad": "x".repeat(100_000)});
    let res = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&alice)
        .json(&big)
        .send()
        .await
        .unwrap();
    TestApp::read(res)
        .await
        .assert_problem(413, "payload-too-large");
    let deep = format!("{{\"items\":{}{}}}", "[".repeat(500), "]".repeat(500));
    let json = Some("application/json");
    app.post_raw("/api/v1/orders", Some(&alice), json, deep)
        .await
        .assert_problem(400, "malformed-json");
    let bad_utf8 = b"{\"items\":[{\"sku\":\"H-\xff\",\"quantity\":1}]}".to_vec();
    app.post_raw("/api/v1/orders", Some(&alice), json, bad_utf8)
        .await
        .assert_problem(400, "malformed-json");
    app.post_raw(
        "/api/v1/orders",
        Some(&alice),
        Some("text/plain"),
        "items=1",
    )
    .await
    .assert_problem(415, "unsupported-media-type");
    // A file name that tries to leave the inbox.
    app.post_raw(
        "/api/v1/imports?name=../../x.csv",
        Some(&app.admin_token),
        None,
        "name,price\nx,1\n",
    )
    .await
    .assert_invalid("name");
    assert!(!app.inbox.path().parent().unwrap().join("x.csv").exists());

    let after = snapshot(&app).await;
    assert_eq!(after, before, "nothing changed");
    assert_eq!(app.stock_of("H-1").await, 10);
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A query string that repeats one parameter thousands of times (14 KB) once got
/// a 329 KB problem with one error per repeat; the list is capped and the detail
/// still counts them all.
#[actix_web::test]
async fn a_thousand_repeated_parameters_get_a_short_problem() {
    let app = spawn_app().await;
    let query = vec!["q"; 4_000].join("&");
    let r = app.get(&format!("/api/v1/products?{query}"), None).await;
    r.assert_problem(422, "validation");
    let listed = r.body["errors"].as_array().unwrap().len();
    assert_eq!(listed, orderflow::error::PROBLEM_FIELD_ERRORS_MAX);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.starts_with("3999 fields are invalid"), "{detail}");
    assert!(
        r.body.to_string().len() < 16 * 1024,
        "{} bytes",
        r.body.to_string().len()
    );
}
