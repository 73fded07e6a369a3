//! Logs: structured `tracing` output on stderr, filtered by `RUST_LOG`
//! (default `info`), as text (coloured only on a terminal) or, with
//! `telemetry.log_format = "json"`, one JSON object a line for log shippers.
//! Every line inside a request or an event carries its span's fields
//! (`request_id`, `trace_id`). Stdout is left to what the commands print.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sets up logging once; a second call (tests) keeps the first.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}
