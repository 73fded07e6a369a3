//! What the system says about itself, checked: the metrics count exactly what
//! was done; a trace id sent with a change shows in every log line about it —
//! the gateway's, the products service's and the consumer's; the dashboard and
//! the Prometheus configuration query only metrics that exist.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use agora::telemetry::Metrics;
use serde_json::{Value, json};

use crate::helpers::{EVENT_BOUND, TestApp, eventually, spawn_app};

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Every process's samples, summed: in one process the gateway's listener
/// shows them all; as four processes each shows its own.
async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    let mut addrs = vec![app.addr];
    if let Some(p) = app.app.processes() {
        for name in ["users", "products", "carts"] {
            addrs.push(p.addr(name).await);
        }
    }
    let mut all = BTreeMap::new();
    for addr in addrs {
        let text = app.client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
        for (key, v) in samples(&text) {
            *all.entry(key).or_insert(0.0) += v;
        }
    }
    all
}

/// The value of the sample named `name` whose labels include every `k="v"` of `labels`.
fn value(samples: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(key, _)| key.split('{').next() == Some(name))
        .filter(|(key, _)| labels.iter().all(|(k, v)| key.contains(&format!("{k}=\"{v}\""))))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn the_counters_move_by_exactly_what_was_done() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let before = scrape(&app).await;
    let a = app.create_product(&admin, "Counted", 3.0, 10).await;
    app.create_product(&admin, "Counted too", 4.0, 10).await;
    let (token, _) = app.register("Mia").await;
    for _ in 0..2 {
        app.post("/api/cart/add", Some(&token), json!({"productId": a["id"]})).await.expect(200);
    }
    app.cart(&token).await;
    app.get("/api/products/not-an-id", None).await.expect(404);
    let path = format!("/api/products/{}", a["id"].as_str().unwrap());
    app.put(&path, Some(&admin), json!({"price": 3.5})).await.expect(200);
    let applied =
        eventually(EVENT_BOUND, || async { value(&scrape(&app).await, "agora_events_applied_total", &[]) >= 1.0 })
            .await;
    assert!(applied, "the update reached the carts");
    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);

    let gateway = |route: &'static str, method: &'static str, status: &'static str| {
        [("service", "gateway"), ("route", route), ("method", method), ("status", status)]
    };
    assert_eq!(moved("agora_http_requests_total", &gateway("/api/products", "POST", "201")), 2.0);
    assert_eq!(moved("agora_http_requests_total", &gateway("/api/users/register", "POST", "201")), 1.0);
    assert_eq!(moved("agora_http_requests_total", &gateway("/api/cart/add", "POST", "200")), 2.0);
    assert_eq!(moved("agora_http_requests_total", &gateway("/api/cart", "GET", "200")), 1.0);
    assert_eq!(moved("agora_http_requests_total", &gateway("/api/products/{id}", "GET", "404")), 1.0);
    assert_eq!(moved("agora_http_requests_total", &gateway("/api/products/{id}", "PUT", "200")), 1.0);
    // The services count their own share, by their own route templates.
    let products = [("service", "products"), ("route", "/api/products"), ("method", "POST"), ("status", "201")];
    assert_eq!(moved("agora_http_requests_total", &products), 2.0);
    // Two adds and a view of a one-line cart: the first add misses, every later lookup hits.
    assert_eq!(moved("agora_product_cache_lookups_total", &[("result", "miss")]), 1.0);
    assert_eq!(moved("agora_product_cache_lookups_total", &[("result", "hit")]), 4.0);
    assert_eq!(moved("agora_events_published_total", &[]), 3.0, "two creations and an update");
    assert_eq!(moved("agora_events_applied_total", &[]), 1.0, "the update of a product in a cart");
    assert_eq!(moved("agora_events_skipped_old_total", &[]), 0.0);
    // Histograms add up: the +Inf bucket and the count are the requests.
    for (key, count) in after.iter().filter(|(k, _)| k.starts_with("agora_http_request_duration_seconds_count")) {
        let labels = &key["agora_http_request_duration_seconds_count".len()..];
        let requests = after[&format!("agora_http_requests_total{labels}")];
        assert_eq!(*count, requests, "{key}");
        let inf = format!("agora_http_request_duration_seconds_bucket{{le=\"+Inf\",{}", &labels[1..]);
        assert_eq!(after[&inf], *count, "{key}");
    }
}

/// A change followed: its trace id and the id of the request that made it.
pub struct Followed {
    pub trace: String,
    pub request_id: String,
}

/// A `traceparent` header sent with a product update (`watch` is told its
/// trace id first), followed until the cart shows the change.
pub async fn follow_a_change(app: &TestApp, watch: impl FnOnce(&str)) -> Followed {
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Traced", 2.0, 5).await;
    let (token, _) = app.register("Tia").await;
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    let trace = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    watch(&trace);
    let update = app
        .request(reqwest::Method::PUT, &format!("/api/products/{}", product["id"].as_str().unwrap()), Some(&admin))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"price": 2.5}));
    let r = app.send(update).await.expect(200);
    assert!(r.header("traceparent").is_some_and(|t| t.contains(&trace)), "the gateway answers in the same trace");
    let request_id = r.header("x-request-id").expect("the gateway names the request").to_string();
    let arrived =
        eventually(EVENT_BOUND, || async { app.cart(&token).await["items"][0]["unitPrice"] == json!(2.5) }).await;
    assert!(arrived);
    Followed { trace, request_id }
}

#[tokio::test]
async fn a_trace_goes_from_the_gateway_through_the_outbox_to_the_consumer_in_memory() {
    let app = spawn_app().await;
    if app.app.processes().is_some() {
        // As four processes the logs are theirs: topology_a_trace_goes_… reads them.
        return;
    }
    let Followed { trace, request_id } = follow_a_change(&app, crate::helpers::logs::watch).await;
    let lines = crate::helpers::logs::caught(&trace);
    let by = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert!(by("service=\"gateway\"") > 0, "the gateway's lines: {lines:#?}");
    assert!(by("service=\"products\"") > 0, "the products service's lines: {lines:#?}");
    assert!(by("event handled") > 0, "the consumer's lines: {lines:#?}");
    // Every line names the request: the consumer's too, by the id the change carried.
    let named = format!("request_id={request_id}");
    assert!(lines.iter().all(|l| l.contains(&named)), "every line carries {named}: {lines:#?}");
}

/// The metric families a registry exposes, with the sample names each gives
/// (a family shows once it has a sample: each gets one).
fn exposed() -> HashSet<String> {
    use agora::telemetry::metrics::{DecisionLabels, HttpLabels, PartitionLabels, ResultLabels, UpstreamLabels};
    let m = Metrics::new();
    let http = HttpLabels { service: "gateway", route: "/health", method: "GET", status: 200 };
    m.http_requests.get_or_create(&http).inc();
    m.http_duration.get_or_create(&http).observe(0.001);
    m.rate_limit.get_or_create(&DecisionLabels { decision: "allowed", limiter: "shared" }).inc();
    m.auth_cache.get_or_create(&ResultLabels { result: "hit" }).inc();
    m.product_cache.get_or_create(&ResultLabels { result: "hit" }).inc();
    m.product_read_cache.get_or_create(&ResultLabels { result: "hit" }).inc();
    m.upstream_errors.get_or_create(&UpstreamLabels { upstream: "users", kind: "timeout" }).inc();
    m.set_circuit("users", "closed");
    m.outbox_pending.set(0);
    m.events_published.inc();
    m.consumer_lag.get_or_create(&PartitionLabels { partition: 0 }).set(0);
    m.events_applied.inc();
    m.events_skipped_old.inc();
    m.events_dead_lettered.inc();
    let text = m.render();
    let mut names = HashSet::new();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line["# TYPE ".len()..].split(' ');
        let (name, kind) = (parts.next().unwrap().to_string(), parts.next().unwrap_or_default());
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn the_dashboard_and_prometheus_query_only_metrics_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops");
    let known = exposed();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("grafana/dashboards/agora.json")).unwrap()).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("agora_"))
            {
                assert!(known.contains(word), "panel {:?} queries {word}, which no service exposes", panel["title"]);
                queried += 1;
            }
        }
    }
    assert!(queried >= 10);
    let prometheus: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(root.join("prometheus/prometheus.yml")).unwrap()).unwrap();
    assert!(prometheus["scrape_configs"][0]["static_configs"].as_sequence().is_some_and(|s| !s.is_empty()));
}

/// An OTLP/HTTP collector on loopback: keeps every span exported to it.
pub struct Collector {
    pub endpoint: String,
    spans: Arc<Mutex<Vec<Exported>>>,
}

/// One span as a collector received it.
#[derive(Debug, Clone)]
pub struct Exported {
    pub service: String,
    pub name: String,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub parent_span_id: Vec<u8>,
}

impl Collector {
    pub async fn start() -> Collector {
        use axum::body::Bytes;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
        use prost::Message;

        let spans: Arc<Mutex<Vec<Exported>>> = Arc::default();
        let kept = spans.clone();
        let receive = move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
                };
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            Any::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                        kept.lock().unwrap().push(Exported {
                            service: service.clone(),
                            name: span.name,
                            trace_id: span.trace_id,
                            span_id: span.span_id,
                            parent_span_id: span.parent_span_id,
                        });
                    }
                }
                (axum::http::StatusCode::OK, Vec::new())
            }
        };
        let router = axum::Router::new().route("/v1/traces", axum::routing::post(receive));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Collector { endpoint, spans }
    }

    /// The spans received so far of the trace `trace` (hex).
    pub fn trace(&self, trace: &str) -> Vec<Exported> {
        let id = u128::from_str_radix(trace, 16).unwrap().to_be_bytes();
        self.spans.lock().unwrap().iter().filter(|s| s.trace_id == id).cloned().collect()
    }
}
