//! Logs: structured `tracing` output on stderr, filtered by `RUST_LOG`
//! (default `info`), as text (coloured only on a terminal) or, with
//! `telemetry.log_format = "json"`, one JSON object a line for log shippers.
//! Every line inside a request or an event carries its span's fields
//! (`request_id`, `trace_id`). Stdout is left to what the commands print.
//! With `telemetry.otlp_endpoint` set, agora's spans also go to the collector
//! (`otlp`), whatever `RUST_LOG` keeps on stderr.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

use super::otlp::{self, OtlpError};

/// Where spans are exported, and as which service.
pub struct Export<'a> {
    pub endpoint: &'a str,
    pub service: &'a str,
}

/// Sets up logging (and span export) once; a second call (tests) keeps the first.
pub fn init(json: bool, export: Option<Export<'_>>) -> Result<(), OtlpError> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = (!json).then(|| {
        fmt::layer().with_target(false).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal())
    });
    let json = json.then(|| {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_target(false)
            .with_writer(std::io::stderr)
    });
    let exported = match export {
        Some(Export { endpoint, service }) => Some(
            tracing_opentelemetry::layer()
                .with_tracer(otlp::tracer(endpoint, service)?)
                .with_filter(Targets::new().with_target("agora", LevelFilter::INFO)),
        ),
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(text.with_filter(filter()))
        .with(json.with_filter(filter()))
        .with(exported)
        .try_init();
    Ok(())
}
