//! OTLP export of spans (`telemetry.otlp_endpoint`, OTLP over HTTP/protobuf,
//! e.g. Jaeger's `:4318`): every request span and event span goes to the
//! collector in batches, named for the process's service. The ids exported
//! are the ids propagated: while export is on, a hop's `TraceContext` is the
//! exported span's own (`hop`), so the spans of one change link up across
//! the services and Kafka into one tree.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::trace::TraceContext;

/// The exporting provider, once export is on (kept to flush it at exit).
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// How long spans wait to be sent together.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Bound on one export call: a collector that is down costs spans, never requests.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
#[error("OTLP export to {endpoint}: {source}")]
pub struct OtlpError {
    endpoint: String,
    source: opentelemetry_otlp::ExporterBuildError,
}

/// The collector's traces URL: `endpoint` as given when it names the traces
/// path, else with `/v1/traces` added (the OTLP/HTTP convention for a base URL).
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim().trim_end_matches('/');
    if base.ends_with("/v1/traces") { base.to_string() } else { format!("{base}/v1/traces") }
}

/// A tracer exporting to `endpoint` as `service`; turns export on.
pub fn tracer(endpoint: &str, service: &str) -> Result<SdkTracer, OtlpError> {
    let url = traces_url(endpoint);
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| OtlpError { endpoint: url, source })?;
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(BatchConfigBuilder::default().with_scheduled_delay(BATCH_DELAY).build())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_resource(Resource::builder().with_service_name(service.to_string()).build())
        .build();
    let tracer = provider.tracer("agora");
    let _ = PROVIDER.set(provider);
    Ok(tracer)
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Sends the spans still waiting (at exit).
pub fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "could not send the last spans");
    }
}

/// This hop of a trace, for `span` (not yet entered): a continuation of
/// `caller` (the hop that called or published), else of the hop being handled
/// (a service called in-process), else a new trace. While export is on, it is
/// the exported span's own context, so what it passes on names that span.
pub fn hop(span: &Span, caller: Option<TraceContext>) -> TraceContext {
    let fallback = || caller.or_else(TraceContext::current).map_or_else(TraceContext::start, TraceContext::child);
    if !enabled() {
        return fallback();
    }
    if let Some(caller) = caller {
        let remote = SpanContext::new(
            TraceId::from(caller.trace_id),
            SpanId::from(caller.span_id),
            if caller.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() },
            true,
            TraceState::default(),
        );
        // Fails only for a span already started or not recorded; the fallback covers both.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    let exported = span.context().span().span_context().clone();
    if !exported.is_valid() {
        return fallback();
    }
    TraceContext {
        trace_id: u128::from_be_bytes(exported.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(exported.span_id().to_bytes()),
        sampled: exported.is_sampled(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_traces_path() {
        assert_eq!(traces_url("http://jaeger:4318"), "http://jaeger:4318/v1/traces");
        assert_eq!(traces_url("http://jaeger:4318/"), "http://jaeger:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    }

    #[test]
    fn without_export_a_hop_continues_its_caller() {
        let caller = TraceContext::start();
        let hop = hop(&tracing::info_span!("request"), Some(caller));
        assert_eq!(hop.trace_id, caller.trace_id);
        assert_ne!(hop.span_id, caller.span_id);
    }
}
