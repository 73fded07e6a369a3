//! Accounts through the gateway: register, login, logout, profile, and every
//! way a token can be refused.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use crate::helpers::{assert_shape, spawn_app};

#[tokio::test]
async fn register_returns_user_token_and_expiry() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/users/register",
            None,
            json!({"name": " Ada ", "email": " Ada@Example.COM ", "password": "password123"}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["success"], json!(true));
    let user = &r.data()["user"];
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["role"], "user");
    assert!(user.get("password").is_none() && user.get("passwordHash").is_none());
    assert_eq!(r.data()["expiresIn"], 3600);
    assert_shape("register", &r.body);
}

#[tokio::test]
async fn register_never_grants_admin() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/users/register",
            None,
            json!({"name": "Eve", "email": "eve@example.com", "password": "password123", "role": "admin"}),
        )
        .await
        .expect(201);
    assert_eq!(r.data()["user"]["role"], "user");
}

#[tokio::test]
async fn duplicate_email_is_refused_whatever_its_case() {
    let app = spawn_app().await;
    let body = json!({"name": "A", "email": "dup@example.com", "password": "password123"});
    app.post("/api/users/register", None, body).await.expect(201);
    let r = app
        .post(
            "/api/users/register",
            None,
            json!({"name": "B", "email": "  DUP@example.com", "password": "password123"}),
        )
        .await
        .expect_error(409, "EMAIL_TAKEN");
    assert_shape("error_email_taken", &r.body);
}

#[tokio::test]
async fn register_validation_names_every_bad_field() {
    let app = spawn_app().await;
    let r = app
        .post("/api/users/register", None, json!({"name": "", "email": "not-an-email", "password": "short"}))
        .await
        .expect_error(400, "VALIDATION");
    let fields: Vec<&str> =
        r.body["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "email", "password"]);
    assert_shape("error_validation", &r.body);
    let r = app.post("/api/users/register", None, json!({})).await.expect_error(400, "VALIDATION");
    assert_eq!(r.body["details"].as_array().unwrap().len(), 3);
    let long = "x".repeat(129);
    app.post("/api/users/register", None, json!({"name": "A", "email": "a@b.co", "password": long}))
        .await
        .expect_error(400, "VALIDATION");
    app.post("/api/users/register", None, json!({"name": 5, "email": "a@b.co", "password": "password123"}))
        .await
        .expect_error(400, "VALIDATION");
}

#[tokio::test]
async fn login_with_right_and_wrong_credentials() {
    let app = spawn_app().await;
    app.post("/api/users/register", None, json!({"name": "Bo", "email": "bo@example.com", "password": "password123"}))
        .await
        .expect(201);
    let r = app
        .post("/api/users/login", None, json!({"email": "BO@example.com ", "password": "password123"}))
        .await
        .expect(200);
    assert_eq!(r.data()["user"]["email"], "bo@example.com");
    assert!(r.data()["token"].as_str().unwrap().split('.').count() == 3);
    assert_shape("login", &r.body);
    let wrong = app
        .post("/api/users/login", None, json!({"email": "bo@example.com", "password": "password124"}))
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    let unknown = app
        .post("/api/users/login", None, json!({"email": "nobody@example.com", "password": "password123"}))
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
    assert_eq!(wrong.body, unknown.body, "an unknown email is indistinguishable from a wrong password");
    app.post("/api/users/login", None, json!({"email": "bo@example.com"})).await.expect_error(400, "VALIDATION");
}

#[tokio::test]
async fn the_configured_admin_can_log_in_as_admin() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let r = app.get("/api/users/profile", Some(&token)).await.expect(200);
    assert_eq!(r.data()["role"], "admin");
}

#[tokio::test]
async fn profile_get_and_update() {
    let app = spawn_app().await;
    let (token, user) = app.register("Cy").await;
    let r = app.get("/api/users/profile", Some(&token)).await.expect(200);
    assert_eq!(r.data(), &user);
    assert_shape("profile", &r.body);
    let r = app
        .put(
            "/api/users/profile",
            Some(&token),
            json!({"name": "Cyril", "email": "CYRIL@example.com", "role": "admin"}),
        )
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "Cyril");
    assert_eq!(r.data()["email"], "cyril@example.com");
    assert_eq!(r.data()["role"], "user", "the role can never be changed here");
    app.put("/api/users/profile", Some(&token), json!({"password": "new-password-1"})).await.expect(200);
    app.post("/api/users/login", None, json!({"email": "cyril@example.com", "password": "new-password-1"}))
        .await
        .expect(200);
    app.post("/api/users/login", None, json!({"email": "cyril@example.com", "password": "password123"}))
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn profile_update_refuses_bad_fields_and_taken_emails() {
    let app = spawn_app().await;
    let (token, _) = app.register("Di").await;
    let (_, other) = app.register("Ed").await;
    app.put("/api/users/profile", Some(&token), json!({"email": other["email"]}))
        .await
        .expect_error(409, "EMAIL_TAKEN");
    let r = app
        .put("/api/users/profile", Some(&token), json!({"name": "", "password": "x"}))
        .await
        .expect_error(400, "VALIDATION");
    assert_eq!(r.body["details"].as_array().unwrap().len(), 2);
    let unchanged = app.get("/api/users/profile", Some(&token)).await.expect(200);
    assert_eq!(unchanged.data()["name"], "Di");
}

#[tokio::test]
async fn logout_revokes_the_token_at_once() {
    let app = spawn_app().await;
    let (token, _) = app.register("Fay").await;
    app.get("/api/users/profile", Some(&token)).await.expect(200);
    app.post("/api/users/logout", Some(&token), json!({})).await.expect(200);
    app.get("/api/users/profile", Some(&token)).await.expect_error(401, "UNAUTHORIZED");
    app.get("/api/cart", Some(&token)).await.expect_error(401, "UNAUTHORIZED");
    // A fresh login still works.
    let (other, _) = app.register("Gus").await;
    app.get("/api/users/profile", Some(&other)).await.expect(200);
}

#[tokio::test]
async fn every_bad_token_is_401() {
    let app = spawn_app().await;
    let (token, user) = app.register("Hal").await;
    let r = app.get("/api/users/profile", None).await.expect_error(401, "UNAUTHORIZED");
    assert_shape("error_unauthorized", &r.body);
    app.get("/api/users/profile", Some("not-a-jwt")).await.expect_error(401, "UNAUTHORIZED");
    let basic = app.request(reqwest::Method::GET, "/api/users/profile", None).header("authorization", "Basic abc");
    assert_eq!(app.send(basic).await.status, 401);
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": user["id"], "email": user["email"], "role": "user", "iat": now - 100, "exp": exp, "jti": "t-1"});
    let sign = |secret: &[u8], exp: i64| {
        encode(&Header::new(Algorithm::HS256), &claims(exp), &EncodingKey::from_secret(secret)).unwrap()
    };
    let good = sign(app.config.users.jwt_secret.expose().as_bytes(), now + 600);
    app.get("/api/users/profile", Some(&good)).await.expect(200);
    let expired = sign(app.config.users.jwt_secret.expose().as_bytes(), now - 10);
    app.get("/api/users/profile", Some(&expired)).await.expect_error(401, "UNAUTHORIZED");
    let forged = sign(b"another-secret-another-secret-0123456789", now + 600);
    app.get("/api/users/profile", Some(&forged)).await.expect_error(401, "UNAUTHORIZED");
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    app.get("/api/users/profile", Some(&tampered)).await.expect_error(401, "UNAUTHORIZED");
    app.post("/api/users/logout", Some(&token), json!({})).await.expect(200);
    app.get("/api/users/profile", Some(&token)).await.expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn validate_token_is_not_routed_by_the_gateway() {
    let app = spawn_app().await;
    let (token, _) = app.register("Ivy").await;
    app.get("/api/users/validate-token", Some(&token)).await.expect_error(404, "NOT_FOUND");
}
