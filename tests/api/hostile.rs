//! Retries, tokens and hostile input, as a client (or an attacker) sends them
//! through the gateway: `Idempotency-Key`, `nbf`, two credentials, a password
//! change, exact money, invalid path escapes, IPv6 neighbours, dead letters,
//! and slow or greedy connections.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::helpers::{EVENT_BOUND, TestApp, eventually, spawn_app, spawn_with, test_config};

fn keyed(app: &TestApp, path: &str, token: Option<&str>, key: &str, body: Value) -> reqwest::RequestBuilder {
    app.request(Method::POST, path, token).header("idempotency-key", key).json(&body)
}

#[tokio::test]
async fn a_retried_cart_add_is_answered_again_and_done_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Once", 2.5, 100).await;
    let (token, _) = app.register("Ida").await;
    let body = json!({"productId": product["id"], "quantity": 2});
    let first = app.send(keyed(&app, "/api/cart/add", Some(&token), "add-1", body.clone())).await.expect(200);
    let again = app.send(keyed(&app, "/api/cart/add", Some(&token), "add-1", body.clone())).await.expect(200);
    assert_eq!(again.body, first.body, "the same answer, again");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.cart(&token).await["items"][0]["quantity"], 2, "added once");
    // The same key for another request is refused; another user's same key is theirs alone.
    let other = json!({"productId": product["id"], "quantity": 3});
    app.send(keyed(&app, "/api/cart/add", Some(&token), "add-1", other))
        .await
        .expect_error(422, "IDEMPOTENCY_KEY_REUSED");
    let (someone, _) = app.register("Jon").await;
    app.send(keyed(&app, "/api/cart/add", Some(&someone), "add-1", body)).await.expect(200);
    assert_eq!(app.cart(&token).await["items"][0]["quantity"], 2);
    // Without the header nothing changes: two adds, two units.
    let plain = json!({"productId": product["id"]});
    app.post("/api/cart/add", Some(&someone), plain.clone()).await.expect(200);
    app.post("/api/cart/add", Some(&someone), plain).await.expect(200);
    assert_eq!(app.cart(&someone).await["items"][0]["quantity"], 4);
}

#[tokio::test]
async fn retried_creates_and_registrations_happen_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let product = json!({"name": "Single", "price": 4, "stock": 1, "category": "idem-test"});
    let a = app.send(keyed(&app, "/api/products", Some(&admin), "create-1", product.clone())).await.expect(201);
    let b = app.send(keyed(&app, "/api/products", Some(&admin), "create-1", product)).await.expect(201);
    assert_eq!(a.data()["id"], b.data()["id"]);
    let listed = app.get("/api/products?category=idem-test", None).await.expect(200);
    assert_eq!(listed.body["meta"]["total"], 1, "one product created");

    let email = format!("twice-{}@example.com", Uuid::new_v4().simple());
    let person = json!({"name": "Twice", "email": email, "password": "password123"});
    let first = app.send(keyed(&app, "/api/users/register", None, "reg-1", person.clone())).await.expect(201);
    let again = app.send(keyed(&app, "/api/users/register", None, "reg-1", person.clone())).await.expect(201);
    assert_eq!(again.body, first.body, "the first answer, token included");
    // Concurrent twins: one registration happens; the others wait their turn or get its answer.
    let racing = json!({"name": "Race", "email": format!("race-{}@example.com", Uuid::new_v4().simple()), "password": "password123"});
    let twins = (0..5).map(|_| app.send(keyed(&app, "/api/users/register", None, "reg-race", racing.clone())));
    for r in futures::future::join_all(twins).await {
        match (r.status.as_u16(), r.body["code"].as_str()) {
            (201, _) | (409, Some("REQUEST_IN_PROGRESS")) => {}
            other => panic!("a twin was handled again: {other:?} {:#}", r.body),
        }
    }
    let bad = app.request(Method::POST, "/api/users/register", None).header("idempotency-key", "x".repeat(256));
    let r = app.send(bad.json(&person)).await.expect_error(400, "VALIDATION");
    assert_eq!(r.body["details"][0]["field"], "Idempotency-Key");
}

fn sign(app: &TestApp, claims: &Value) -> String {
    let secret = app.config.users.jwt_secret.expose().as_bytes();
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let app = spawn_app().await;
    let (_, user) = app.register("Kim").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |nbf: i64| json!({"sub": user["id"], "email": user["email"], "role": "user", "iat": now, "nbf": nbf, "exp": now + 600, "jti": Uuid::new_v4()});
    app.get("/api/users/profile", Some(&sign(&app, &claims(now + 300)))).await.expect_error(401, "UNAUTHORIZED");
    app.get("/api/users/profile", Some(&sign(&app, &claims(now - 5)))).await.expect(200);
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = spawn_app().await;
    let (token, _) = app.register("Lee").await;
    let (other, _) = app.register("Mo").await;
    let double = app
        .request(Method::GET, "/api/users/profile", None)
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {other}"));
    app.send(double).await.expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn a_password_change_revokes_every_older_token() {
    let app = spawn_app().await;
    let (token, user) = app.register("Ned").await;
    let login = json!({"email": user["email"], "password": "password123"});
    let older =
        app.post("/api/users/login", None, login).await.expect(200).data()["token"].as_str().unwrap().to_string();
    app.get("/api/users/profile", Some(&older)).await.expect(200);
    app.put("/api/users/profile", Some(&token), json!({"password": "a-new-password"})).await.expect(200);
    app.get("/api/users/profile", Some(&token)).await.expect_error(401, "UNAUTHORIZED");
    app.get("/api/users/profile", Some(&older)).await.expect_error(401, "UNAUTHORIZED");
    let login = json!({"email": user["email"], "password": "a-new-password"});
    let fresh =
        app.post("/api/users/login", None, login).await.expect(200).data()["token"].as_str().unwrap().to_string();
    app.get("/api/users/profile", Some(&fresh)).await.expect(200);
    // A change of name only leaves tokens alone.
    app.put("/api/users/profile", Some(&fresh), json!({"name": "Ned II"})).await.expect(200);
    app.get("/api/users/profile", Some(&fresh)).await.expect(200);
}

#[tokio::test]
async fn money_is_read_exactly_and_whole_numbers_may_be_written_as_such() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let raw = |body: &str| {
        app.request(Method::POST, "/api/products", Some(&admin))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let r = app
        .send(raw(r#"{"name": "Almost 20", "price": 19.9999999999999999, "stock": 1}"#))
        .await
        .expect_error(400, "VALIDATION");
    assert_eq!(r.body["details"][0]["field"], "price");
    let r = app.send(raw(r#"{"name": "Whole", "price": 5.10, "stock": 5.0}"#)).await.expect(201);
    assert_eq!((r.data()["price"].clone(), r.data()["stock"].clone()), (json!(5.1), json!(5)));
    let r = app.send(raw(r#"{"name": "Half", "price": 1, "stock": 2.5}"#)).await.expect_error(400, "VALIDATION");
    assert_eq!(r.body["details"][0]["message"], "must be a whole number");
}

#[tokio::test]
async fn an_invalid_escape_in_a_path_gets_the_json_error() {
    let app = spawn_app().await;
    let r = app.get("/api/products/%ff", None).await;
    assert_eq!(r.status, 400, "{:#}", r.body);
    assert_eq!(r.body["success"], false);
    assert!(r.body["code"].is_string() && r.body["message"].is_string(), "{:#}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64() {
    let mut config = test_config();
    config.gateway.rate_limit.requests = 1;
    config.gateway.trusted_proxies = "127.0.0.1".parse().unwrap();
    let app = spawn_with(config).await;
    let from = |ip: &str| app.request(Method::GET, "/api/products", None).header("x-forwarded-for", ip.to_string());
    app.send(from("2001:db8:1:2::1")).await.expect(200);
    app.send(from("2001:db8:1:2:ffff::9")).await.expect_error(429, "RATE_LIMITED");
    app.send(from("2001:db8:1:3::1")).await.expect(200);
}

#[tokio::test]
async fn an_event_that_cannot_be_handled_goes_to_the_dead_letter_topic() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Next", 1.0, 5).await;
    let (token, user) = app.register("Ola").await;
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    let topic = app.config.kafka.topic.clone();
    let key = product["id"].as_str().unwrap();
    app.app.adapters.bus.publish(&topic, key, b"{not an event").await.unwrap();
    // The events after it are handled all the same.
    app.put(&format!("/api/products/{key}"), Some(&admin), json!({"price": 2})).await.expect(200);
    let user: Uuid = user["id"].as_str().unwrap().parse().unwrap();
    let moved_on = eventually(EVENT_BOUND, || async {
        app.app.adapters.carts.lines(user).await.unwrap().first().is_some_and(|l| l.product_version == 2)
    })
    .await;
    assert!(moved_on, "one bad event stopped the others");
    let dlq = agora::carts::consumer::dead_letter_topic(&topic);
    let mut reader = app.app.adapters.bus.subscribe(&dlq, &format!("dlq-reader-{}", Uuid::new_v4())).await.unwrap();
    let dead = tokio::time::timeout(EVENT_BOUND, reader.next()).await.expect("a dead letter").unwrap();
    assert_eq!(dead.key, key);
    assert_eq!(dead.payload, b"{not an event");
    assert!(dead.header("x-error").is_some_and(|e| !e.is_empty()));
    assert!(dead.header("x-original-partition").is_some_and(|p| p.parse::<u32>().is_ok()));
    assert!(dead.header("x-original-offset").is_some_and(|o| o.parse::<u64>().is_ok()));
    reader.close().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    let mut config = test_config();
    config.server.header_read_timeout_secs = 1;
    let app = spawn_with(config).await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(3), "cut off after {:?}", started.elapsed());
    app.get("/health", None).await.expect(200);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_one_to_close() {
    let mut config = test_config();
    config.server.max_connections = 2;
    let app = spawn_with(config).await;
    let idle: Vec<tokio::net::TcpStream> =
        futures::future::join_all((0..2).map(|_| tokio::net::TcpStream::connect(app.addr)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::builder().timeout(Duration::from_millis(700)).build().unwrap();
    assert!(client.get(app.url("/health")).send().await.is_err(), "a third connection was served at once");
    drop(idle);
    let served = eventually(Duration::from_secs(5), || async {
        client.get(app.url("/health")).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(served, "served once the others closed");
}
