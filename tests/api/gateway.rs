//! The gateway's own behaviour: the error shape for what no service handles,
//! rate limiting, identity headers, request ids, body limits, health and docs.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_shape, spawn_app, spawn_with, test_config};

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let r = app.get("/nope", None).await.expect_error(404, "NOT_FOUND");
    assert_shape("error_not_found", &r.body);
    app.get("/api/users/nope", None).await.expect_error(404, "NOT_FOUND");
    let r = app.send(app.request(Method::PATCH, "/api/products", None)).await.expect_error(405, "METHOD_NOT_ALLOWED");
    assert_shape("error_method_not_allowed", &r.body);
    app.get("/api/users/register", None).await.expect_error(405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let app = spawn_app().await;
    let bad = app
        .request(Method::POST, "/api/users/register", None)
        .header("content-type", "application/json")
        .body("{\"name\":");
    let r = app.send(bad).await.expect_error(400, "MALFORMED_JSON");
    assert_shape("error_malformed_json", &r.body);
    let empty = app.request(Method::POST, "/api/users/login", None).header("content-type", "application/json");
    app.send(empty).await.expect_error(400, "MALFORMED_JSON");
    let text = app.request(Method::POST, "/api/users/login", None).header("content-type", "text/plain").body("{}");
    app.send(text).await.expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let big =
        app.request(Method::POST, "/api/users/register", None).header("content-type", "application/json").body(huge);
    let r = app.send(big).await.expect_error(413, "PAYLOAD_TOO_LARGE");
    assert_shape("error_payload_too_large", &r.body);
}

#[tokio::test]
async fn rate_limit_counts_per_ip_and_refuses_with_headers() {
    let mut config = test_config();
    config.gateway.rate_limit.requests = 3;
    config.gateway.rate_limit.window_secs = 60;
    let app = spawn_with(config).await;
    for remaining in (0..3).rev() {
        let r = app.get("/api/products", None).await.expect(200);
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining.to_string().as_str()));
        let reset: u64 = r.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset));
    }
    let r = app.get("/api/products", None).await.expect_error(429, "RATE_LIMITED");
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_shape("error_rate_limited", &r.body);
    // Errors and unknown routes count too; health and readiness never do.
    app.get("/nope", None).await.expect_error(429, "RATE_LIMITED");
    app.get("/health", None).await.expect(200);
    app.get("/ready", None).await.expect(200);
    // An untrusted peer cannot pick another bucket with X-Forwarded-For.
    let spoof = app.request(Method::GET, "/api/products", None).header("x-forwarded-for", "203.0.113.9");
    app.send(spoof).await.expect_error(429, "RATE_LIMITED");
}

#[tokio::test]
async fn forwarded_for_counts_from_a_trusted_proxy() {
    let mut config = test_config();
    config.gateway.rate_limit.requests = 1;
    config.gateway.trusted_proxies = "127.0.0.1".parse().unwrap();
    let app = spawn_with(config).await;
    let from = |ip: &str| app.request(Method::GET, "/api/products", None).header("x-forwarded-for", ip.to_string());
    app.send(from("203.0.113.1")).await.expect(200);
    app.send(from("203.0.113.1")).await.expect_error(429, "RATE_LIMITED");
    app.send(from("203.0.113.2")).await.expect(200);
    app.send(from("198.51.100.7, 203.0.113.3")).await.expect(200);
}

#[tokio::test]
async fn the_window_slides_and_frees_the_budget() {
    let mut config = test_config();
    config.gateway.rate_limit.requests = 2;
    config.gateway.rate_limit.window_secs = 1;
    let app = spawn_with(config).await;
    app.get("/api/products", None).await.expect(200);
    app.get("/api/products", None).await.expect(200);
    app.get("/api/products", None).await.expect_error(429, "RATE_LIMITED");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.get("/api/products", None).await.expect(200);
}

#[tokio::test]
async fn identity_headers_from_clients_are_ignored() {
    let app = spawn_app().await;
    let (token, me) = app.register("Jo").await;
    let (_, other) = app.register("Kim").await;
    let spoof = app
        .request(Method::GET, "/api/users/profile", Some(&token))
        .header("x-user-id", other["id"].as_str().unwrap())
        .header("x-user-role", "admin");
    let r = app.send(spoof).await.expect(200);
    assert_eq!(r.data()["id"], me["id"]);
    let anonymous = app
        .request(Method::GET, "/api/cart", None)
        .header("x-user-id", me["id"].as_str().unwrap())
        .header("x-user-role", "user");
    app.send(anonymous).await.expect_error(401, "UNAUTHORIZED");
    let escalate = app
        .request(Method::POST, "/api/products", Some(&token))
        .header("x-user-role", "admin")
        .json(&json!({"name": "x", "price": 1, "stock": 1}));
    app.send(escalate).await.expect_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn request_ids_are_kept_or_created() {
    let app = spawn_app().await;
    let r = app.send(app.request(Method::GET, "/health", None).header("x-request-id", "trace-me-42")).await;
    assert_eq!(r.header("x-request-id"), Some("trace-me-42"));
    let r = app.get("/api/products", None).await;
    let id = r.header("x-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let r = app.get("/nope", None).await;
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let r = app.get("/health", None).await.expect(200);
    assert_shape("health", &r.body);
    let r = app.get("/ready", None).await.expect(200);
    assert_eq!(r.data()["status"], "ready");
    assert_shape("ready", &r.body);
}

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let app = spawn_app().await;
    let r = app.get("/openapi.json", None).await.expect(200);
    let paths = r.body["paths"].as_object().unwrap();
    for path in
        ["/api/users/register", "/api/products", "/api/products/{id}", "/api/cart/add", "/api/cart/items/{productId}"]
    {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "the docs page is Swagger UI");
    let asset = app.client.get(app.url("/docs/swagger-ui.css")).send().await.unwrap();
    assert_eq!(asset.status(), 200, "assets are served from the binary");
}

#[tokio::test]
async fn the_auth_cache_expires_and_zero_means_ask_every_time() {
    let mut config = test_config();
    config.gateway.auth_cache_ttl_secs = 0;
    let app = spawn_with(config).await;
    let (token, _) = app.register("Lu").await;
    app.get("/api/users/profile", Some(&token)).await.expect(200);
    app.post("/api/users/logout", Some(&token), json!({})).await.expect(200);
    app.get("/api/users/profile", Some(&token)).await.expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn graceful_shutdown_flushes_the_outbox() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for i in 0..10 {
        app.create_product(&admin, &format!("p{i}"), 1.0, 1).await;
    }
    let outbox = app.app.adapters.outbox.clone();
    tokio::time::timeout(Duration::from_secs(20), app.app.shutdown()).await.expect("shutdown is bounded");
    assert_eq!(outbox.pending().await.unwrap(), 0);
}
