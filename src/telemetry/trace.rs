//! W3C trace context (`traceparent: 00-<trace id>-<parent id>-<flags>`): the
//! gateway continues the one a client sent or starts one, and passes it to
//! every service it calls; a service's changes carry it into their Kafka
//! records, and the consumer continues it. The context of the request or
//! event being handled is in a task-local, so code far from the HTTP layer
//! (the outbox) can read it — with the id of the request that started it.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

pub const HEADER: &str = "traceparent";

/// One hop of a trace: the trace it belongs to and this hop's own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

/// The header a request id travels in (HTTP, and the Kafka records a request causes).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: TraceContext;
    static REQUEST_ID: Option<Arc<str>>;
}

impl TraceContext {
    /// A new trace.
    pub fn start() -> Self {
        TraceContext { trace_id: random_nonzero_u128(), span_id: random_nonzero_u64(), sampled: true }
    }

    /// A `traceparent` value, if it is a valid version-00 one.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if parts.next().is_some() || version != "00" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
        let span_id = u64::from_str_radix(parent, 16).ok().filter(|s| *s != 0)?;
        let sampled = u8::from_str_radix(flags, 16).ok()? & 1 == 1;
        Some(TraceContext { trace_id, span_id, sampled })
    }

    /// The next hop of the same trace (what this hop passes on).
    pub fn child(self) -> Self {
        TraceContext { span_id: random_nonzero_u64(), ..self }
    }

    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// Runs `f` with this as the current context, on behalf of `request_id`.
    pub async fn scope<F: Future>(self, request_id: Option<Arc<str>>, f: F) -> F::Output {
        CURRENT.scope(self, REQUEST_ID.scope(request_id, f)).await
    }

    /// The context of the request or event being handled, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|c| *c).ok()
    }

    /// The id of the request being handled, or of the one whose change an event carries.
    pub fn request_id() -> Option<Arc<str>> {
        REQUEST_ID.try_with(Clone::clone).ok().flatten()
    }
}

impl fmt::Display for TraceContext {
    /// As a `traceparent` value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, u8::from(self.sampled))
    }
}

fn random_nonzero_u128() -> u128 {
    // A v4 UUID is 122 bits of a CSPRNG seeded by the OS: plenty for a trace id.
    Uuid::new_v4().as_u128().max(1)
}

fn random_nonzero_u64() -> u64 {
    (Uuid::new_v4().as_u128() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_traceparent() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::parse(value).unwrap();
        assert_eq!(ctx.to_string(), value);
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(ctx.sampled);
        let child = ctx.child();
        assert_eq!(child.trace_id, ctx.trace_id);
        assert_ne!(child.span_id, ctx.span_id);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
        let started = TraceContext::start();
        assert_eq!(TraceContext::parse(&started.to_string()), Some(started));
    }

    #[tokio::test]
    async fn the_current_context_is_the_one_in_scope() {
        assert_eq!(TraceContext::current(), None);
        let ctx = TraceContext::start();
        let seen = ctx.scope(Some("r1".into()), async { (TraceContext::current(), TraceContext::request_id()) }).await;
        assert_eq!(seen, (Some(ctx), Some("r1".into())));
    }
}
