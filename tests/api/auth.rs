use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::helpers::{JWT_SECRET, spawn_app};

#[actix_web::test]
async fn register_returns_the_user_without_secrets() {
    let app = spawn_app().await;
    let r = app.register("alice").await;
    r.assert_status(201);
    assert_eq!(r.body["username"], "alice");
    assert_eq!(r.body["email"], "alice@example.com");
    assert_eq!(r.body["role"], "customer");
    assert!(r.body["id"].is_u64() && r.body["created_at"].is_string());
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert!(!r.body.to_string().contains("argon2"));
}

#[actix_web::test]
async fn duplicate_username_or_email_is_409_regardless_of_case() {
    let app = spawn_app().await;
    app.register("alice").await.assert_status(201);
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "ALICE", "email": "other@example.com", "password": "password-123"}),
        )
        .await;
    r.assert_problem(409, "user-exists");
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "bob", "email": "Alice@Example.com", "password": "password-123"}),
        )
        .await;
    r.assert_problem(409, "user-exists");
}

#[actix_web::test]
async fn register_names_each_bad_field() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "ab", "email": "nope", "password": "short"}),
        )
        .await;
    r.assert_invalid("username")
        .assert_invalid("email")
        .assert_invalid("password");
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "a@b.co", "password": "password-123"}),
        )
        .await;
    r.assert_invalid("username");
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "abc", "email": "a@b.co", "password": "p".repeat(129)}),
        )
        .await;
    r.assert_invalid("password");
}

#[actix_web::test]
async fn a_role_in_the_register_body_is_refused() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "mallory", "email": "m@example.com", "password": "password-123", "role": "admin"}),
        )
        .await;
    r.assert_invalid("role");
    // Nothing was created: the name is still free.
    app.register("mallory").await.assert_status(201);
}

#[actix_web::test]
async fn login_by_username_or_email_and_wrong_credentials_look_alike() {
    let app = spawn_app().await;
    app.register("alice").await;
    let r = app.login_reply("alice", "password-123").await;
    r.assert_status(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert!(r.body["refresh_token"].as_str().unwrap().len() >= 32);
    app.login_reply("alice@example.com", "password-123")
        .await
        .assert_status(200);

    let wrong_password = app.login_reply("alice", "password-999").await;
    wrong_password.assert_problem(401, "invalid-credentials");
    let no_user = app.login_reply("nobody", "password-123").await;
    no_user.assert_problem(401, "invalid-credentials");
    assert_eq!(wrong_password.body["detail"], no_user.body["detail"]);
}

#[actix_web::test]
async fn repeated_failed_logins_are_throttled_with_retry_after() {
    let app = spawn_app().await;
    app.register("alice").await;
    for _ in 0..10 {
        app.login_reply("alice", "wrong-password")
            .await
            .assert_problem(401, "invalid-credentials");
    }
    let r = app.login_reply("alice", "password-123").await;
    r.assert_problem(429, "too-many-requests");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry));
}

#[actix_web::test]
async fn me_needs_a_valid_token() {
    let app = spawn_app().await;
    let (id, token) = app.customer("alice").await;
    let r = app.get("/api/v1/me", Some(&token)).await;
    r.assert_status(200);
    assert_eq!(r.body["id"], id);
    app.get("/api/v1/me", None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/me", Some("garbage"))
        .await
        .assert_problem(401, "unauthorized");

    // Tampered: the role claim edited to admin after signing.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = "admin".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    app.get("/api/v1/me", Some(&forged))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/products/x/movements", Some(&forged))
        .await
        .assert_problem(401, "unauthorized");

    // alg: none.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    app.get("/api/v1/me", Some(&none))
        .await
        .assert_problem(401, "unauthorized");

    // Expired, correctly signed with the server's own secret.
    let now = jsonwebtoken::get_current_timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": id.to_string(), "role": "customer", "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600, "iss": "orderflow"}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    app.get("/api/v1/me", Some(&expired))
        .await
        .assert_problem(401, "unauthorized");
}

#[actix_web::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    app.register("alice").await;
    let first = app.login_reply("alice", "password-123").await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first}),
        )
        .await;
    r.assert_status(200);
    let second = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    app.get("/api/v1/me", Some(r.body["access_token"].as_str().unwrap()))
        .await
        .assert_status(200);

    // The rotated token is refused, and presenting it revokes its whole family.
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": first}),
    )
    .await
    .assert_problem(401, "unauthorized");
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": second}),
    )
    .await
    .assert_problem(401, "unauthorized");

    // A new login is a new family and works.
    let third = app.login_reply("alice", "password-123").await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": third}),
    )
    .await
    .assert_status(200);
}

#[actix_web::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    app.register("alice").await;
    let token = app.login_reply("alice", "password-123").await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post("/api/v1/auth/logout", None, json!({"refresh_token": token}))
        .await;
    r.assert_status(204);
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": token}),
    )
    .await
    .assert_problem(401, "unauthorized");
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": "made-up"}),
    )
    .await
    .assert_problem(401, "unauthorized");
    app.post("/api/v1/auth/refresh", None, json!({}))
        .await
        .assert_invalid("refresh_token");
}

#[actix_web::test]
async fn tokens_and_private_answers_are_never_cacheable_and_nothing_is_sniffed() {
    let app = spawn_app().await;
    app.create_product("C-1", 100, 5).await;
    let (_, token) = app.customer("carol").await;
    let login = app.login_reply("carol", "password-123").await;
    login.assert_status(200);
    let bad_login = app.login_reply("carol", "wrong-password").await;
    bad_login.assert_status(401);
    let orders = app.get("/api/v1/orders", Some(&token)).await;
    orders.assert_status(200);
    for (what, reply) in [
        ("login", &login),
        ("refused login", &bad_login),
        ("own orders", &orders),
    ] {
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
    }
    // Public catalog reads stay cacheable; nosniff is everywhere.
    let product = app.get("/api/v1/products/C-1", None).await;
    product.assert_status(200);
    assert_eq!(product.header("cache-control"), None);
    assert_eq!(product.header("x-content-type-options"), Some("nosniff"));
    let unknown = app.get("/no/such/route", None).await;
    assert_eq!(unknown.header("x-content-type-options"), Some("nosniff"));
}
