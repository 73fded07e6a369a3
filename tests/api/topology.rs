//! The production topology (four `agora serve` processes on the real servers)
//! under what production does to it: requests that skip the gateway, carts
//! processes killed and restarted, scaled out and lost, two gateways on one
//! budget, a graceful stop. Figures (recovery times, redeliveries) are printed
//! on stderr for the record, never asserted as timings beyond the contract's
//! bounds. These start processes and kill them, so they are `#[ignore]`d in
//! the parallel run and run by `scripts/test` (`--ignored topology::`).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::helpers::{TestApp, eventually, spawn_processes, test_config};
use crate::processes::Processes;

fn id(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap()).unwrap()
}

fn processes(app: &TestApp) -> &Processes {
    app.app.processes().expect("four processes")
}

/// A figure for the note: straight to the terminal (libtest captures only the print macros).
fn figure(line: &str) {
    let _ = writeln!(std::io::stderr(), "FIGURE {line}");
}

/// `n` products and `users` users, each with `per_user` of them in the cart.
async fn shop(app: &TestApp, n: usize, users: usize, per_user: usize) -> (String, Vec<Uuid>, Vec<(String, Uuid)>) {
    let admin = app.admin_token().await;
    let mut products = Vec::new();
    for i in 0..n {
        products.push(id(&app.create_product(&admin, &format!("p{i}"), 1.0, 1_000_000).await));
    }
    let mut shoppers = Vec::new();
    for u in 0..users {
        let (token, user) = app.register(&format!("U{u}")).await;
        for k in 0..per_user {
            let product = products[(u * 3 + k) % n];
            app.post("/api/cart/add", Some(&token), json!({"productId": product})).await.expect(200);
        }
        shoppers.push((token, id(&user)));
    }
    (admin, products, shoppers)
}

/// `updates` price changes spread over `products` by 4 writers; the highest
/// version each product reached.
async fn update_prices(app: &TestApp, admin: &str, products: &[Uuid], updates: usize) -> HashMap<Uuid, u64> {
    let writers = (0..4).map(|w| async move {
        let mut versions = HashMap::new();
        for i in (w..updates).step_by(4) {
            let product = products[i % products.len()];
            let price = (100 + i % 997) as f64 / 100.0;
            let r = app.put(&format!("/api/products/{product}"), Some(admin), json!({"price": price})).await;
            assert_eq!(r.status, StatusCode::OK, "update {i}: {:#}", r.body);
            let v = r.data()["version"].as_u64().unwrap();
            let best = versions.entry(product).or_insert(0);
            *best = (*best).max(v);
        }
        versions
    });
    let mut all: HashMap<Uuid, u64> = HashMap::new();
    for versions in futures::future::join_all(writers).await {
        for (p, v) in versions {
            let best = all.entry(p).or_insert(0);
            *best = (*best).max(v);
        }
    }
    all
}

/// Whether every line shows its product's final version and no line of a deleted product is left.
async fn carts_caught_up(
    app: &TestApp,
    users: &[(String, Uuid)],
    finals: &HashMap<Uuid, u64>,
    gone: &HashSet<Uuid>,
) -> bool {
    for (_, user) in users {
        for line in app.app.adapters.carts.lines(*user).await.unwrap() {
            if gone.contains(&line.product_id) {
                return false;
            }
            if finals.get(&line.product_id).is_some_and(|v| line.product_version != *v) {
                return false;
            }
        }
    }
    true
}

/// From a process's first log line to its first handled event, in ms.
fn resume_ms(log: &str) -> Option<u128> {
    let at = |line: &str| chrono::DateTime::parse_from_rfc3339(line.split_whitespace().next()?).ok();
    let started = at(log.lines().next()?)?;
    let first = at(log.lines().find(|l| l.contains("event handled"))?)?;
    Some((first - started).num_milliseconds().max(0) as u128)
}

/// The consumer's "event handled" lines: (partition, offset, outcome).
fn handled(log: &str) -> Vec<(u32, u64, String)> {
    let field = |line: &str, name: &str| -> Option<String> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        let rest = line[at..].trim_start_matches('"');
        Some(rest.split(|c: char| c == '"' || c.is_whitespace()).next()?.to_string())
    };
    log.lines()
        .filter(|l| l.contains("event handled"))
        .filter_map(|l| {
            Some((field(l, "partition")?.parse().ok()?, field(l, "offset")?.parse().ok()?, field(l, "outcome")?))
        })
        .collect()
}

#[tokio::test]
#[ignore = "starts four processes: run by scripts/test"]
async fn topology_requests_that_skip_the_gateway_act_as_nobody() {
    let app = spawn_processes(test_config()).await;
    let (token, user) = app.register("Ann").await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Direct", 5.0, 9).await;
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    let p = processes(&app);
    let client = reqwest::Client::new();
    let carts = p.addr("carts").await;
    let direct = client.get(format!("http://{carts}/api/cart")).header("x-user-id", user["id"].as_str().unwrap());
    let r = direct.header("x-user-role", "user").send().await.unwrap();
    assert_eq!(r.status(), 401, "the carts service believed a bare x-user-id");
    let forged = client
        .get(format!("http://{carts}/api/cart"))
        .header("x-user-id", user["id"].as_str().unwrap())
        .header("x-user-role", "user")
        .header("x-agora-proof", format!("{}.AAAA", chrono::Utc::now().timestamp()))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "a forged proof was believed");
    let products = p.addr("products").await;
    let write = client
        .post(format!("http://{products}/api/products"))
        .header("x-user-id", Uuid::new_v4().to_string())
        .header("x-user-role", "admin")
        .json(&json!({"name": "Sneaky", "price": 1, "stock": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 401, "a product write without the gateway's proof was accepted");
    let body: Value = write.json().await.unwrap();
    assert_eq!(body["code"], "UNAUTHORIZED");
    // Through the gateway, the same requests work.
    assert_eq!(app.cart(&token).await["items"].as_array().unwrap().len(), 1);
    app.create_product(&admin, "Through the gateway", 1.0, 1).await;
}

#[tokio::test]
#[ignore = "starts four processes and kills one: run by scripts/test"]
async fn topology_a_carts_process_killed_five_times_catches_up() {
    let mut config = test_config();
    config.carts.consumer_instance_id = "carts-1".into();
    config.carts.consumer_stall_secs = 10;
    let app = spawn_processes(config).await;
    let (admin, products, users) = shop(&app, 25, 10, 10).await;
    let p = processes(&app);

    let killer = async {
        let mut restarts = Vec::new();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            p.kill("carts").await;
            let started = Instant::now();
            p.restart("carts").await;
            restarts.push(started.elapsed());
        }
        restarts
    };
    let (finals, restarts) = tokio::join!(update_prices(&app, &admin, &products, 2000), killer);
    let gone: HashSet<Uuid> = products[..4].iter().copied().collect();
    for product in &gone {
        app.delete(&format!("/api/products/{product}"), Some(&admin)).await.expect(200);
    }
    let last_write = Instant::now();
    let caught_up = eventually(Duration::from_secs(15), || carts_caught_up(&app, &users, &finals, &gone)).await;
    let lag = last_write.elapsed();
    assert!(caught_up, "15 s after the last write, some line is stale or outlived its product");

    let events = handled(&p.logs("carts").await);
    let mut seen: HashMap<(u32, u64), Vec<String>> = HashMap::new();
    for (partition, offset, outcome) in events {
        seen.entry((partition, offset)).or_default().push(outcome);
    }
    let redelivered = seen.values().filter(|o| o.len() > 1).count();
    let applied_twice: Vec<_> = seen.iter().filter(|(_, o)| o.iter().filter(|x| *x == "applied").count() > 1).collect();
    assert!(applied_twice.is_empty(), "events applied twice: {applied_twice:?}");
    assert!(redelivered > 0, "five kills mid-stream redelivered nothing: is anything committed too early?");
    let resumed: Vec<u128> = p.logs_per_start("carts").await.iter().skip(1).filter_map(|log| resume_ms(log)).collect();
    figure(&format!(
        "kill x5: restart to /health {restarts:?}; first event handled {resumed:?} ms after each restart; \
         caught up {} ms after the last write; {} events handled, {redelivered} redelivered, 0 applied twice",
        lag.as_millis(),
        seen.len()
    ));
}

#[tokio::test]
#[ignore = "starts five processes and kills one: run by scripts/test"]
async fn topology_two_carts_processes_share_the_partitions_and_take_over() {
    let mut config = test_config();
    config.carts.consumer_instance_id = "carts-1".into();
    let app = spawn_processes(config).await;
    let p = processes(&app);
    let second =
        p.add("carts-b", "carts", Processes::free_addr(), &[("AGORA_CARTS__CONSUMER_INSTANCE_ID", "carts-2")]).await;
    assert!(second.port() > 0);
    let (admin, products, users) = shop(&app, 30, 6, 10).await;
    let none = HashSet::new();
    let finals = update_prices(&app, &admin, &products, 300).await;
    assert!(eventually(Duration::from_secs(30), || carts_caught_up(&app, &users, &finals, &none)).await);
    // Once both have joined (the first events may come before the group settles), each owns its own partitions.
    let partitions = |h: &[(u32, u64, String)]| h.iter().map(|e| e.0).collect::<HashSet<u32>>();
    let marks = (handled(&p.logs("carts").await).len(), handled(&p.logs("carts-b").await).len());
    let finals = update_prices(&app, &admin, &products, 300).await;
    assert!(eventually(Duration::from_secs(30), || carts_caught_up(&app, &users, &finals, &none)).await);
    let mine = handled(&p.logs("carts").await).split_off(marks.0);
    let theirs = handled(&p.logs("carts-b").await).split_off(marks.1);
    assert!(!mine.is_empty() && !theirs.is_empty(), "both members consumed: {} and {}", mine.len(), theirs.len());
    assert!(partitions(&mine).is_disjoint(&partitions(&theirs)), "two members shared a partition");

    let mark = handled(&p.logs("carts").await).len();
    p.kill("carts-b").await;
    let killed = Instant::now();
    let finals = update_prices(&app, &admin, &products, 300).await;
    let caught_up = eventually(Duration::from_secs(20), || carts_caught_up(&app, &users, &finals, &none)).await;
    let took = killed.elapsed();
    assert!(caught_up, "the survivor did not take the lost member's partitions over");
    let after = handled(&p.logs("carts").await).split_off(mark);
    assert!(partitions(&after).is_superset(&partitions(&theirs)), "the survivor took over every partition");
    figure(&format!("scale-out: the survivor caught up {} ms after the kill", took.as_millis()));
}

/// How many product reads by id the products process at `addr` answered from its read cache.
async fn read_cache_hits(addr: std::net::SocketAddr) -> u64 {
    let text = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(r#"agora_product_read_cache_lookups_total{result="hit"} "#))
        .map_or(0, |n| n.trim().parse::<f64>().unwrap() as u64)
}

/// Two products processes on one MySQL and Kafka: each keeps what it reads in its read cache,
/// and a change made through the other one reaches it as a product event, so it never keeps
/// showing an old version (the gateway writes through the first, the test reads the second).
#[tokio::test]
#[ignore = "starts five processes: run by scripts/test"]
async fn topology_a_second_products_process_shows_every_change_of_the_first() {
    let app = spawn_processes(test_config()).await;
    let p = processes(&app);
    let second = p.add("products-b", "products", Processes::free_addr(), &[]).await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Twin", 1.0, 5).await;
    let url = format!("http://{second}/api/products/{}", product["id"].as_str().unwrap());
    let shown = || async {
        let r = reqwest::get(&url).await.unwrap();
        match r.status() {
            StatusCode::OK => Some(r.json::<Value>().await.unwrap()["data"]["version"].as_u64().unwrap()),
            StatusCode::NOT_FOUND => None,
            other => panic!("the second products process answered {other}"),
        }
    };
    // Its cache serves once its follower is positioned: read until a read is a hit.
    let serving = eventually(Duration::from_secs(20), || async {
        shown().await;
        read_cache_hits(second).await > 0
    })
    .await;
    assert!(serving, "the second process never served a product from its read cache");

    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let path = format!("/api/products/{}", product["id"].as_str().unwrap());
        let version =
            app.put(&path, Some(&admin), json!({"price": 2 + i})).await.expect(200).data()["version"].as_u64().unwrap();
        let changed = Instant::now();
        let seen = eventually(Duration::from_secs(5), || async { shown().await == Some(version) }).await;
        assert!(seen, "version {version} never showed in the second process");
        slowest = slowest.max(changed.elapsed());
    }
    let hits = read_cache_hits(second).await;
    assert!(shown().await.is_some() && read_cache_hits(second).await > hits, "the second process reads from its cache");
    app.delete(&format!("/api/products/{}", product["id"].as_str().unwrap()), Some(&admin)).await.expect(200);
    let deleted = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || async { shown().await.is_none() }).await,
        "the deleted product stayed"
    );
    figure(&format!(
        "two products processes: a change showed in the other one within {} ms (slowest of 20), a deletion {} ms",
        slowest.as_millis(),
        deleted.elapsed().as_millis()
    ));
}

#[tokio::test]
#[ignore = "starts five processes: run by scripts/test"]
async fn topology_two_gateways_share_one_budget() {
    let mut config = test_config();
    config.gateway.rate_limit.requests = 20;
    config.gateway.rate_limit.window_secs = 60;
    let app = spawn_processes(config).await;
    let p = processes(&app);
    let other = p.add("gateway-b", "gateway", Processes::free_addr(), &[]).await;
    let client = reqwest::Client::new();
    let mut allowed = 0;
    for i in 0..40 {
        let gateway = if i % 2 == 0 { app.addr } else { other };
        let r = client.get(format!("http://{gateway}/api/products")).send().await.unwrap();
        match r.status().as_u16() {
            200 => allowed += 1,
            429 => {}
            s => panic!("unexpected {s}"),
        }
    }
    // The set-up used a few requests of the same budget (the admin's login): none at all here.
    assert_eq!(allowed, 20, "two gateways on one Redis gave {allowed} of a budget of 20");
}

#[tokio::test]
#[ignore = "starts four processes and stops them: run by scripts/test"]
async fn topology_sigterm_answers_not_ready_and_finishes_in_flight_requests() {
    let mut config = test_config();
    config.server.drain_delay_ms = 1500;
    let app = spawn_processes(config).await;
    let p = processes(&app);
    // A request in flight: its head and half its body sent.
    let body = json!({"name": "Late", "email": format!("late-{}@example.com", Uuid::new_v4().simple()), "password": "password123"}).to_string();
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/users/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    let gateway_pid = p.pid("gateway").await.unwrap();
    std::process::Command::new("kill").args(["-TERM", &gateway_pid.to_string()]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/ready says 503 from the start of the shutdown");
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["code"], "NOT_READY");
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "the in-flight request finished: {answer}");
    assert!(p.terminate("gateway").await.is_some_and(|s| s.success()), "the gateway exits 0");
    assert!(p.stop_all().await, "every process exits 0 on SIGTERM");
}

#[tokio::test]
#[ignore = "starts four processes: run by scripts/test"]
async fn topology_a_trace_goes_from_the_gateway_through_kafka_to_the_consumer() {
    let app = spawn_processes(test_config()).await;
    let followed = crate::observability::follow_a_change(&app, |_| {}).await;
    let (trace, named) = (followed.trace, format!("request_id={}", followed.request_id));
    let p = processes(&app);
    let found = eventually(Duration::from_secs(10), || async {
        let (gateway, products, carts) = (p.logs("gateway").await, p.logs("products").await, p.logs("carts").await);
        let lines = |log: &str| log.lines().filter(|l| l.contains(&trace) && l.contains(&named)).count();
        lines(&gateway) > 0
            && lines(&products) > 0
            && carts.lines().any(|l| l.contains(&trace) && l.contains(&named) && l.contains("event handled"))
    })
    .await;
    assert!(found, "trace {trace} is in the gateway's, the products service's and the consumer's logs");
}

#[tokio::test]
#[ignore = "starts four processes: run by scripts/test"]
async fn topology_spans_go_to_the_otlp_collector_as_one_tree() {
    let collector = crate::observability::Collector::start().await;
    let mut config = test_config();
    config.telemetry.otlp_endpoint = Some(collector.endpoint.clone());
    let app = spawn_processes(config).await;
    let followed = crate::observability::follow_a_change(&app, |_| {}).await;
    let of = |spans: &[crate::observability::Exported], service: &str, name: &str| {
        spans.iter().filter(|s| s.service == service && s.name == name).cloned().collect::<Vec<_>>()
    };
    let mut spans = Vec::new();
    let complete = eventually(Duration::from_secs(20), || {
        spans = collector.trace(&followed.trace);
        let spans = spans.clone();
        async move {
            !of(&spans, "agora-gateway", "request").is_empty()
                && !of(&spans, "agora-products", "request").is_empty()
                && !of(&spans, "agora-carts", "event").is_empty()
        }
    })
    .await;
    assert!(complete, "the gateway's, the products service's and the consumer's spans of the change: {spans:#?}");
    // One tree: the client's span → the gateway's → the products service's → the consumer's.
    let gateway = of(&spans, "agora-gateway", "request");
    let client_span = 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes();
    let root =
        gateway.iter().find(|s| s.parent_span_id == client_span).expect("the gateway continues the client's span");
    let products = of(&spans, "agora-products", "request");
    let update = products.iter().find(|s| s.parent_span_id == root.span_id).expect("the update is the gateway's child");
    let event = of(&spans, "agora-carts", "event");
    assert!(
        event.iter().any(|s| s.parent_span_id == update.span_id),
        "the consumer continues the update's span through Kafka: {spans:#?}"
    );
}
