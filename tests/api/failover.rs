//! A real server going down while the system runs: requests that need it get a
//! fast JSON 503, and everything recovers by itself once it is back; with Kafka
//! down, writes still succeed and their events arrive later (the outbox).
//! These stop shared servers, so they are `#[ignore]`d in the parallel run and
//! run alone by `scripts/test` (`--ignored failover:: --test-threads 1`).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{EVENT_BOUND, TestApp, eventually, spawn_processes, spawn_with, test_config};

/// Stops a server for the duration of a closure-like block; restarts on drop
/// too, so a failing assertion never leaves it down for the next test.
struct Outage(&'static str);

fn infra(action: &str, server: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/infra");
    let status = Command::new(script).args([action, server]).status().expect("scripts/infra runs");
    assert!(status.success(), "scripts/infra {action} {server} failed");
}

impl Outage {
    fn begin(server: &'static str) -> Outage {
        infra("stop", server);
        Outage(server)
    }

    fn end(self) {
        infra("start", self.0);
        std::mem::forget(self);
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        infra("start", self.0);
    }
}

async fn real_app() -> TestApp {
    assert!(crate::real::e2e_on_real(), "failover tests need AGORA_TEST_BACKEND=real (scripts/test sets it)");
    spawn_with(test_config()).await
}

/// Asserts the request answers 503 (JSON, the common shape) within 5 s.
async fn expect_fast_503(app: &TestApp, path: &str, token: Option<&str>) {
    let started = Instant::now();
    let r = app.get(path, token).await;
    assert_eq!(r.status.as_u16(), 503, "{path}: {:#}", r.body);
    assert_eq!(r.body["success"], json!(false));
    assert!(r.body["code"].as_str().is_some(), "{:#}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5), "{path} took {:?}", started.elapsed());
}

async fn recovers(app: &TestApp, path: &str, token: Option<&str>) {
    let ok = eventually(Duration::from_secs(30), || async { app.get(path, token).await.status == 200 }).await;
    assert!(ok, "{path} did not recover");
}

#[tokio::test]
#[ignore = "stops a shared server: run alone by scripts/test"]
async fn failover_postgres_down_gives_503_then_recovers() {
    let app = real_app().await;
    let (token, _) = app.register("Pat").await;
    app.get("/api/cart", Some(&token)).await.expect(200);
    let outage = Outage::begin("postgres");
    expect_fast_503(&app, "/api/cart", Some(&token)).await;
    app.get("/api/products", None).await.expect(200);
    outage.end();
    recovers(&app, "/api/cart", Some(&token)).await;
}

#[tokio::test]
#[ignore = "stops a shared server: run alone by scripts/test"]
async fn failover_mysql_down_gives_503_then_recovers() {
    let app = real_app().await;
    app.get("/api/products", None).await.expect(200);
    let outage = Outage::begin("mysql");
    expect_fast_503(&app, "/api/products", None).await;
    outage.end();
    recovers(&app, "/api/products", None).await;
}

#[tokio::test]
#[ignore = "stops a shared server: run alone by scripts/test"]
async fn failover_mongo_down_gives_503_then_recovers() {
    let mut config = test_config();
    config.gateway.auth_cache_ttl_secs = 0;
    assert!(crate::real::e2e_on_real(), "failover tests need AGORA_TEST_BACKEND=real");
    let app = spawn_with(config).await;
    let (token, _) = app.register("Mo").await;
    let outage = Outage::begin("mongo");
    expect_fast_503(&app, "/api/users/profile", Some(&token)).await;
    // Auth needs the users service's store too: carts answer 503, not 401.
    expect_fast_503(&app, "/api/cart", Some(&token)).await;
    outage.end();
    recovers(&app, "/api/users/profile", Some(&token)).await;
}

/// Redis down is no outage of the storefront: each gateway limits on its own with the same
/// numbers (headers still sent), and carts read through to the products service.
#[tokio::test]
#[ignore = "stops a shared server: run alone by scripts/test"]
async fn failover_redis_down_degrades_without_errors() {
    let mut config = test_config();
    config.gateway.rate_limit.requests = 20;
    assert!(crate::real::e2e_on_real(), "failover tests need AGORA_TEST_BACKEND=real");
    let app = spawn_with(config).await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Kept", 3.0, 9).await;
    let (token, _) = app.register("Reddy").await;
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    let outage = Outage::begin("redis");
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = app.get("/api/products", None).await;
        assert!(r.header("ratelimit-limit").is_some(), "the limit headers are still sent: {:?}", r.headers);
        statuses.push(r.status.as_u16());
    }
    assert!(started.elapsed() < Duration::from_secs(10), "answers stayed fast: {:?}", started.elapsed());
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "no 5xx: {statuses:?}");
    assert!(statuses.contains(&429), "the per-instance limiter still limits: {statuses:?}");
    outage.end();
    let cart_ok = eventually(Duration::from_secs(70), || async {
        let r = app.get("/api/cart", Some(&token)).await;
        r.status == 200 && r.data()["items"][0]["quantity"] == 1
    })
    .await;
    assert!(cart_ok, "the cart is served once the budget is back");
}

/// While Redis is down, a cart is priced from the products service directly.
#[tokio::test]
#[ignore = "stops a shared server: run alone by scripts/test"]
async fn failover_redis_down_carts_read_through() {
    let app = real_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Through", 4.5, 9).await;
    let (token, _) = app.register("Thru").await;
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    let outage = Outage::begin("redis");
    let started = Instant::now();
    let cart = app.get("/api/cart", Some(&token)).await.expect(200);
    assert_eq!(cart.data()["items"][0]["unitPrice"], json!(4.5));
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    outage.end();
}

#[tokio::test]
#[ignore = "stops a shared server: run alone by scripts/test"]
async fn failover_kafka_down_loses_no_event() {
    let app = real_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Buffered", 10.0, 5).await;
    let (token, _) = app.register("Kay").await;
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    let outage = Outage::begin("kafka");
    let path = format!("/api/products/{}", product["id"].as_str().unwrap());
    // The change commits with its event in MySQL; publishing waits for Kafka.
    app.put(&path, Some(&admin), json!({"name": "Buffered II", "price": 12.0})).await.expect(200);
    outage.end();
    let user: uuid::Uuid =
        app.get("/api/users/profile", Some(&token)).await.data()["id"].as_str().unwrap().parse().unwrap();
    let arrived = eventually(EVENT_BOUND * 2, || async {
        let lines = app.app.adapters.carts.lines(user).await.unwrap();
        lines.first().is_some_and(|l| l.name == "Buffered II" && l.product_version == 2)
    })
    .await;
    assert!(arrived, "the update made while Kafka was down reached the cart");
}

/// One answer of the load below: what, when, how, how long.
struct Answer {
    what: &'static str,
    at: Instant,
    status: u16,
    took: Duration,
}

/// Kafka, Redis, PostgreSQL and MySQL stopped and started in turn under the four processes while
/// cart adds and product updates run: no write lost or doubled, only fast 503s while a server
/// is down (none at all for Redis), and everything recovers without restarting any service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops shared servers: run alone by scripts/test"]
async fn failover_topology_servers_restarted_in_turn_under_load() {
    let mut config = test_config();
    config.carts.consumer_instance_id = "carts-1".into();
    let app = spawn_processes(config).await;
    let admin = app.admin_token().await;
    let products: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                app.create_product(&admin, &format!("f{i}"), 2.0, 1_000_000).await["id"].as_str().unwrap().to_string(),
            );
        }
        ids
    };
    let (token, user) = app.register("Loady").await;
    for p in &products {
        app.post("/api/cart/add", Some(&token), json!({"productId": p})).await.expect(200);
    }
    let pids = {
        let p = app.app.processes().unwrap();
        (p.pid("users").await, p.pid("products").await, p.pid("carts").await, p.pid("gateway").await)
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let load = async {
        let mut answers = Vec::new();
        let mut i = 0usize;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            i += 1;
            let started = Instant::now();
            // Spread over every line, so that no line nears its limit of 999 however fast adds go.
            let r = app.post("/api/cart/add", Some(&token), json!({"productId": products[i % products.len()]})).await;
            answers.push(Answer { what: "add", at: started, status: r.status.as_u16(), took: started.elapsed() });
            let started = Instant::now();
            let price = (100 + i % 500) as f64 / 100.0;
            let r =
                app.put(&format!("/api/products/{}", products[1 + i % 4]), Some(&admin), json!({"price": price})).await;
            answers.push(Answer { what: "update", at: started, status: r.status.as_u16(), took: started.elapsed() });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    };
    let outages = async {
        let mut windows = Vec::new();
        for server in ["kafka", "redis", "postgres", "mysql"] {
            tokio::time::sleep(Duration::from_secs(2)).await;
            tokio::task::spawn_blocking(move || infra("stop", server)).await.unwrap();
            let down = Instant::now();
            // Longer than a pool waits for a connection, so that requests meet the outage itself.
            tokio::time::sleep(Duration::from_secs(6)).await;
            tokio::task::spawn_blocking(move || infra("start", server)).await.unwrap();
            windows.push((server, down, Instant::now()));
            let ready =
                eventually(Duration::from_secs(60), || async { app.get("/ready", None).await.status == 200 }).await;
            if !ready {
                let p = app.app.processes().unwrap();
                for name in ["users", "products", "carts"] {
                    let r = reqwest::get(format!("http://{}/ready", p.addr(name).await)).await.unwrap();
                    let body = r.text().await.unwrap();
                    figure(&format!(
                        "{name} /ready: {body}\n{}",
                        p.logs(name).await.lines().rev().take(15).collect::<Vec<_>>().join("\n")
                    ));
                }
            }
            assert!(ready, "the system is ready again after {server} came back");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        windows
    };
    let (answers, windows) = tokio::join!(load, outages);

    for a in &answers {
        assert!(a.status == 200 || a.status == 503, "{} answered {}", a.what, a.status);
        assert!(a.took < Duration::from_secs(5), "{} took {:?}", a.what, a.took);
    }
    let during = |server: &str| {
        let (_, from, to) = windows.iter().find(|w| w.0 == server).copied().unwrap();
        answers.iter().filter(move |a| a.at >= from && a.at <= to)
    };
    for (server, what) in [("redis", "add"), ("redis", "update"), ("kafka", "update"), ("postgres", "update")] {
        let failed = during(server).filter(|a| a.what == what && a.status != 200).count();
        assert_eq!(failed, 0, "{what} failed {failed} time(s) while {server} was down");
    }
    for (server, what) in [("postgres", "add"), ("mysql", "update")] {
        let n = during(server).filter(|a| a.what == what).count();
        let refused = during(server).filter(|a| a.what == what && a.status == 503).count();
        figure(&format!("{server} down: {refused} of {n} {what}s answered 503"));
    }

    // No write lost or doubled: the cart holds one more per 200, each product is at 1 + its 200s.
    let adds = answers.iter().filter(|a| a.what == "add" && a.status == 200).count() as u64;
    let user: uuid::Uuid = user["id"].as_str().unwrap().parse().unwrap();
    let units: u64 = app.app.adapters.carts.lines(user).await.unwrap().iter().map(|l| u64::from(l.quantity)).sum();
    assert_eq!(units, products.len() as u64 + adds, "cart adds lost or doubled");
    let updates = answers.iter().filter(|a| a.what == "update" && a.status == 200).count() as u64;
    let mut versions = 0;
    for p in &products[1..] {
        versions +=
            app.get(&format!("/api/products/{p}"), None).await.expect(200).data()["version"].as_u64().unwrap() - 1;
    }
    assert_eq!(versions, updates, "product updates lost or doubled");
    // Every event reached the carts, and nothing was restarted.
    let arrived = eventually(EVENT_BOUND, || async {
        let mut all = true;
        for l in app.app.adapters.carts.lines(user).await.unwrap() {
            let v = app.get(&format!("/api/products/{}", l.product_id), None).await.data()["version"].as_u64().unwrap();
            all &= l.product_version == v;
        }
        all
    })
    .await;
    assert!(arrived, "the carts caught up with every change");
    let p = app.app.processes().unwrap();
    let now = (p.pid("users").await, p.pid("products").await, p.pid("carts").await, p.pid("gateway").await);
    assert_eq!(now, pids, "no process was restarted");
    figure(&format!("faults under load: {} answers, {adds} adds and {updates} updates landed exactly", answers.len()));
}

/// The products process killed after its writes committed but before its relay published them
/// (Kafka is down, so the events wait in the outbox): started again, it publishes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops a shared server: run alone by scripts/test"]
async fn failover_topology_products_killed_before_publishing_loses_no_event() {
    let app = spawn_processes(test_config()).await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Pending", 3.0, 9).await;
    let (token, user) = app.register("Pat").await;
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    let path = format!("/api/products/{}", product["id"].as_str().unwrap());
    let outage = tokio::task::spawn_blocking(|| Outage::begin("kafka")).await.unwrap();
    let mut last = 0;
    for i in 0..5 {
        last =
            app.put(&path, Some(&admin), json!({"price": 4 + i})).await.expect(200).data()["version"].as_u64().unwrap();
    }
    assert!(app.app.adapters.outbox.pending().await.unwrap() >= 5, "the events wait in the outbox");
    let p = app.app.processes().unwrap();
    p.kill("products").await;
    tokio::task::spawn_blocking(move || outage.end()).await.unwrap();
    p.restart("products").await;
    let user: uuid::Uuid = user["id"].as_str().unwrap().parse().unwrap();
    // A broker just back takes a while to serve the group again: as long as for `failover_kafka_*`.
    let arrived = eventually(EVENT_BOUND * 2, || async {
        app.app.adapters.carts.lines(user).await.unwrap().first().is_some_and(|l| l.product_version == last)
    })
    .await;
    if !arrived {
        for name in ["products", "carts"] {
            figure(&format!("{name}:\n{}", p.logs(name).await.lines().rev().take(30).collect::<Vec<_>>().join("\n")));
        }
    }
    assert!(arrived, "the events committed before the kill reached the carts");
    assert_eq!(app.app.adapters.outbox.pending().await.unwrap(), 0);
}

fn figure(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "FIGURE {line}");
}
