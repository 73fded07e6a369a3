//! Spawning an isolated system per test and talking to it as a client does:
//! real HTTP through the gateway on an ephemeral port.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use agora::carts::consumer::EventHandler;
use agora::config::Config;
use agora::runtime::{ALL_SERVICES, Adapters, App};

use crate::processes::Processes;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

pub struct TestApp {
    pub app: Backend,
    pub config: Config,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

/// What runs behind the gateway a test talks to: the system in this process,
/// or four processes of the built binary. Either way the test can reach the
/// same stores and event handling directly.
pub struct Backend {
    pub adapters: Adapters,
    /// The carts service's event handling, for replaying a topic.
    pub cart_events: EventHandler,
    system: System,
}

enum System {
    InProcess(Box<App>),
    Processes(Processes),
}

impl Backend {
    /// Stops the product-events consumer after its last commit (in four
    /// processes: the carts process, gracefully).
    pub async fn stop_consumer(&self) {
        match &self.system {
            System::InProcess(app) => app.stop_consumer().await,
            System::Processes(p) => assert!(p.terminate("carts").await.is_some_and(|s| s.success())),
        }
    }

    /// Starts it again; it resumes from the group's committed offsets.
    pub async fn start_consumer(&self) {
        match &self.system {
            System::InProcess(app) => app.start_consumer().await,
            System::Processes(p) => p.restart("carts").await,
        }
    }

    /// A graceful stop of the whole system.
    pub async fn shutdown(self) {
        match self.system {
            System::InProcess(app) => app.shutdown().await,
            System::Processes(p) => assert!(p.stop_all().await, "every process exits 0 on SIGTERM"),
        }
    }

    /// The four processes, when the system runs as such.
    pub fn processes(&self) -> Option<&Processes> {
        match &self.system {
            System::Processes(p) => Some(p),
            System::InProcess(_) => None,
        }
    }
}

/// What a client sees of one answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// Asserts the status and, for errors, the common error shape and code.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {:#}", self.body);
        self
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        let r = self.expect(status);
        assert_eq!(r.body["success"], json!(false), "{:#}", r.body);
        assert_eq!(r.body["code"], json!(code), "{:#}", r.body);
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{:#}", r.body);
        r
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn test_config() -> Config {
    let mut config = Config::default();
    config.gateway.listen = "127.0.0.1:0".parse().unwrap();
    config.gateway.rate_limit.requests = 100_000;
    config.demo.seed_catalogue = false;
    config.products.relay_interval_ms = 50;
    config.server.drain_delay_ms = 0;
    logs::install();
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_with(test_config()).await
}

/// A whole system on `config`: in memory; on the real servers (each test
/// isolated) when the suite runs with `AGORA_TEST_BACKEND=real`; as four
/// processes on them with `AGORA_TEST_BACKEND=processes`.
pub async fn spawn_with(config: Config) -> TestApp {
    if crate::real::e2e_in_processes() {
        return spawn_processes(config).await;
    }
    let config = if crate::real::e2e_on_real() { crate::real::config(config).await } else { config };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let app = App::start(config.clone()).await.expect("the app starts");
    let (adapters, cart_events) = (app.adapters.clone(), app.cart_events.clone());
    let addr = app.addr;
    TestApp { addr, app: Backend { adapters, cart_events, system: System::InProcess(Box::new(app)) }, config, client }
}

/// The system as four processes of the built binary on the real servers
/// (isolated for this test), whatever the suite's mode.
pub async fn spawn_processes(config: Config) -> TestApp {
    let config = crate::real::config(config).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let processes = Processes::start(&config).await;
    let adapters = Adapters::connect(&config, &ALL_SERVICES).await.expect("the test reaches the servers");
    let cart_events = EventHandler {
        store: adapters.carts.clone(),
        cache: adapters.cache.clone(),
        namespace: config.redis.namespace.clone(),
        cache_ttl: Duration::from_secs(config.carts.product_cache_ttl_secs),
        metrics: agora::telemetry::Metrics::new(),
    };
    let addr = processes.gateway;
    TestApp { addr, app: Backend { adapters, cart_events, system: System::Processes(processes) }, config, client }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let response = rb.send().await.expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }))
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.request(Method::GET, path, token)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.request(Method::DELETE, path, token)).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(self.request(Method::POST, path, token).json(&body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(self.request(Method::PUT, path, token).json(&body)).await
    }

    /// Registers a user with a unique email; returns (token, user json).
    pub async fn register(&self, name: &str) -> (String, Value) {
        let email = format!("{}-{}@example.com", name.to_lowercase(), uuid::Uuid::new_v4().simple());
        let r = self
            .post("/api/users/register", None, json!({ "name": name, "email": email, "password": "password123" }))
            .await
            .expect(201);
        (r.data()["token"].as_str().unwrap().to_string(), r.data()["user"].clone())
    }

    pub async fn admin_token(&self) -> String {
        let r = self
            .post(
                "/api/users/login",
                None,
                json!({ "email": self.config.users.admin_email, "password": self.config.users.admin_password.expose() }),
            )
            .await
            .expect(200);
        r.data()["token"].as_str().unwrap().to_string()
    }

    /// Creates a product as the admin; returns its JSON.
    pub async fn create_product(&self, admin: &str, name: &str, price: f64, stock: i64) -> Value {
        let body = json!({ "name": name, "description": "test product", "price": price, "stock": stock,
            "category": "test", "imageUrl": "https://img.example.com/p.jpg" });
        self.post("/api/products", Some(admin), body).await.expect(201).data().clone()
    }

    pub async fn cart(&self, token: &str) -> Value {
        self.get("/api/cart", Some(token)).await.expect(200).data().clone()
    }
}

/// The test binary's logs: on stderr with `TEST_LOG`; and every line that
/// names a watched string (a trace id) kept for the test that watches it.
pub mod logs {
    use std::io::Write;
    use std::sync::{Mutex, Once};

    use tracing_subscriber::EnvFilter;

    static WATCHED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    static CAUGHT: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Capture;

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let line = String::from_utf8_lossy(buf);
            if WATCHED.lock().unwrap().iter().any(|w| line.contains(w.as_str())) {
                CAUGHT.lock().unwrap().push(line.into_owned());
            }
            if std::env::var_os("TEST_LOG").is_some() {
                std::io::stderr().write_all(buf)?;
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Once per test binary.
    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,agora=debug".into());
            let _ = tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new(filter))
                .with_target(false)
                .with_ansi(false)
                .with_writer(|| Capture)
                .try_init();
        });
    }

    /// From now on, keep the lines that contain `what`.
    pub fn watch(what: &str) {
        install();
        WATCHED.lock().unwrap().push(what.to_string());
    }

    /// The lines kept that contain `what`.
    pub fn caught(what: &str) -> Vec<String> {
        CAUGHT.lock().unwrap().iter().filter(|l| l.contains(what)).cloned().collect()
    }
}

/// How long an event may take to reach the carts (Kafka's group joins take seconds).
pub const EVENT_BOUND: Duration = Duration::from_secs(30);

/// Polls `check` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pins a response shape under `snapshots/`, with ids, times and tokens redacted.
pub fn assert_shape(name: &str, value: &Value) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_sort_maps(true);
    for (selector, replacement) in [
        (".**.id", "[id]"),
        (".**.productId", "[id]"),
        (".**.createdAt", "[time]"),
        (".**.updatedAt", "[time]"),
        (".**.token", "[token]"),
        (".**.email", "[email]"),
    ] {
        settings.add_redaction(selector, replacement);
    }
    settings.bind(|| insta::assert_json_snapshot!(name, value));
}
