//! Prometheus metrics (`prometheus-client`): one `Metrics` per process (the
//! whole system in `agora run`, one service in `agora serve`), passed to what
//! records into it, exposed at `GET /metrics` on every listener. Names start
//! with `agora_`; route labels are templates (`/api/products/{id}`), never ids.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub service: &'static str,
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

/// A route template as a `&'static str`: each distinct template (routes are a
/// fixed set) is kept once for the life of the process, so counting a request
/// allocates nothing.
pub fn interned(template: &str) -> &'static str {
    static KNOWN: std::sync::OnceLock<parking_lot::RwLock<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(found) = known.read().get(template) {
        return found;
    }
    let mut known = known.write();
    match known.get(template) {
        Some(found) => found,
        None => {
            let kept: &'static str = Box::leak(template.to_string().into_boxed_str());
            known.insert(kept);
            kept
        }
    }
}

/// A method as a label (the standard ones; anything else is `OTHER`).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `allowed` or `refused`.
    pub decision: &'static str,
    /// `shared` (Redis, every gateway) or `local` (this gateway, while the shared one is down).
    pub limiter: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `hit` or `miss`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: &'static str,
    /// `unavailable`, `timeout` or `circuit_open`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CircuitLabels {
    pub upstream: &'static str,
    /// `closed`, `open` or `half_open`: the gauge is 1 for the current one.
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub partition: u32,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to ~4 s, doubling.
    Histogram::new([
        0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    ])
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Histograms<HttpLabels>,
    pub rate_limit: Family<DecisionLabels, Counter>,
    pub auth_cache: Family<ResultLabels, Counter>,
    pub product_cache: Family<ResultLabels, Counter>,
    pub product_read_cache: Family<ResultLabels, Counter>,
    pub upstream_errors: Family<UpstreamLabels, Counter>,
    pub circuit: Family<CircuitLabels, Gauge>,
    pub outbox_pending: Gauge,
    pub events_published: Counter,
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    pub events_applied: Counter,
    pub events_skipped_old: Counter,
    pub events_dead_lettered: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            rate_limit: Family::default(),
            auth_cache: Family::default(),
            product_cache: Family::default(),
            product_read_cache: Family::default(),
            upstream_errors: Family::default(),
            circuit: Family::default(),
            outbox_pending: Gauge::default(),
            events_published: Counter::default(),
            consumer_lag: Family::default(),
            events_applied: Counter::default(),
            events_skipped_old: Counter::default(),
            events_dead_lettered: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("agora_http_requests", "HTTP requests answered", m.http_requests.clone());
        registry.register(
            "agora_http_request_duration_seconds",
            "Time to answer an HTTP request",
            m.http_duration.clone(),
        );
        registry.register("agora_rate_limit_decisions", "Rate-limit decisions at the gateway", m.rate_limit.clone());
        registry.register(
            "agora_auth_cache_lookups",
            "Token validations found in the gateway's cache or not",
            m.auth_cache.clone(),
        );
        registry.register(
            "agora_product_cache_lookups",
            "Products found in the carts' cache or not",
            m.product_cache.clone(),
        );
        registry.register(
            "agora_product_read_cache_lookups",
            "Products read by id found in the products service's read cache or not",
            m.product_read_cache.clone(),
        );
        registry.register(
            "agora_upstream_errors",
            "Calls to a service that did not reach it",
            m.upstream_errors.clone(),
        );
        registry.register(
            "agora_upstream_circuit_state",
            "The state of each upstream's circuit (1 = current)",
            m.circuit.clone(),
        );
        registry.register("agora_outbox_pending", "Events committed but not yet published", m.outbox_pending.clone());
        registry.register("agora_events_published", "Events the outbox relay published", m.events_published.clone());
        registry.register(
            "agora_consumer_lag",
            "Product events waiting for the carts consumer, per partition",
            m.consumer_lag.clone(),
        );
        registry.register("agora_events_applied", "Product events the carts applied", m.events_applied.clone());
        registry.register(
            "agora_events_skipped_old",
            "Product events older than what the carts reflect (redeliveries), skipped",
            m.events_skipped_old.clone(),
        );
        registry.register(
            "agora_events_dead_lettered",
            "Product events sent to the dead-letter topic",
            m.events_dead_lettered.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not render the metrics");
        }
        out
    }

    /// Records an upstream's circuit state (1 for `state`, 0 for the others).
    pub fn set_circuit(&self, upstream: &'static str, state: &'static str) {
        for s in ["closed", "open", "half_open"] {
            self.circuit.get_or_create(&CircuitLabels { upstream, state: s }).set(i64::from(s == state));
        }
    }

    pub fn cache_lookup(family: &Family<ResultLabels, Counter>, hits: u64, misses: u64) {
        if hits > 0 {
            family.get_or_create(&ResultLabels { result: "hit" }).inc_by(hits);
        }
        if misses > 0 {
            family.get_or_create(&ResultLabels { result: "miss" }).inc_by(misses);
        }
    }
}
