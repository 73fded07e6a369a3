//! `/health` (the process answers) and `/ready` (it can serve: every critical
//! dependency answers, and it is not shutting down).
//!
//! `/ready` is public and unthrottled, so it never fans out per call: the
//! probes run at most once a second, one run shared by every caller meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{ApiError, Data};
use crate::ports::Probe;

/// A named readiness check. A critical one failing makes the process not
/// ready; another (one with a fallback, such as the cache) is only logged.
#[derive(Clone)]
pub struct Check {
    pub name: &'static str,
    pub probe: Arc<dyn Probe>,
    pub critical: bool,
}

impl Check {
    pub fn new(name: &'static str, probe: Arc<dyn Probe>) -> Self {
        Check { name, probe, critical: true }
    }

    /// A dependency the process can do without for a while.
    pub fn degradable(name: &'static str, probe: Arc<dyn Probe>) -> Self {
        Check { name, probe, critical: false }
    }
}

/// Whether the process is shutting down: from then on `/ready` says 503 while
/// in-flight (and, for a short drain, new) requests are still served.
#[derive(Clone, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
}

impl Lifecycle {
    pub fn begin_shutdown(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub checks: Vec<String>,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one run of the probes answers for.
const FRESH_FOR: Duration = Duration::from_secs(1);

struct ReadinessState {
    checks: Vec<Check>,
    lifecycle: Lifecycle,
    /// The last run: when it ended and which critical checks failed.
    last: Mutex<Option<(Instant, Vec<&'static str>)>>,
}

pub fn routes(checks: Vec<Check>, lifecycle: Lifecycle) -> Router {
    let state = Arc::new(ReadinessState { checks, lifecycle, last: Mutex::new(None) });
    Router::new().route("/health", get(health)).route(
        "/ready",
        get(move || {
            let state = state.clone();
            async move { state.answer().await }
        }),
    )
}

async fn health() -> Data<Health> {
    Data(Health { status: "ok" })
}

impl ReadinessState {
    async fn answer(&self) -> Result<Data<Readiness>, ApiError> {
        if self.lifecycle.is_draining() {
            return Err(ApiError::NotReady("shutting down".into()));
        }
        let down = {
            // Holding the lock through the run makes concurrent callers share it.
            let mut last = self.last.lock().await;
            match &*last {
                Some((at, down)) if at.elapsed() < FRESH_FOR => down.clone(),
                _ => {
                    let down = self.run().await;
                    *last = Some((Instant::now(), down.clone()));
                    down
                }
            }
        };
        if !down.is_empty() {
            return Err(ApiError::NotReady(format!("{} down", down.join(", "))));
        }
        Ok(Data(Readiness { status: "ready", checks: self.checks.iter().map(|c| c.name.to_string()).collect() }))
    }

    /// Every check at once, each bounded, so a dead dependency answers fast;
    /// the names of the critical ones that failed.
    async fn run(&self) -> Vec<&'static str> {
        let results = futures::future::join_all(self.checks.iter().map(|c| async move {
            let failure = match tokio::time::timeout(PROBE_TIMEOUT, c.probe.ping()).await {
                Ok(Ok(())) => return None,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
            };
            tracing::warn!(check = c.name, critical = c.critical, error = %failure, "readiness check failed");
            c.critical.then_some(c.name)
        }))
        .await;
        results.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::ports::PortError;

    struct Counted(AtomicUsize, bool);

    #[async_trait::async_trait]
    impl Probe for Counted {
        async fn ping(&self) -> Result<(), PortError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if self.1 { Ok(()) } else { Err(PortError::unavailable("thing", "down")) }
        }
    }

    async fn status(router: &Router) -> StatusCode {
        router.clone().oneshot(Request::get("/ready").body(Body::empty()).unwrap()).await.unwrap().status()
    }

    #[tokio::test]
    async fn probes_run_at_most_once_a_second_and_degradable_ones_do_not_fail_readiness() {
        let up = Arc::new(Counted(AtomicUsize::new(0), true));
        let flaky = Arc::new(Counted(AtomicUsize::new(0), false));
        let router =
            routes(vec![Check::new("up", up.clone()), Check::degradable("cache", flaky.clone())], Lifecycle::default());
        let answers = futures::future::join_all((0..20).map(|_| status(&router))).await;
        assert!(answers.iter().all(|s| *s == StatusCode::OK), "{answers:?}");
        assert_eq!(up.0.load(Ordering::SeqCst), 1, "one run served all twenty callers");
        tokio::time::sleep(FRESH_FOR).await;
        assert_eq!(status(&router).await, StatusCode::OK);
        assert_eq!(up.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_critical_failure_or_a_shutdown_is_not_ready() {
        let down = Arc::new(Counted(AtomicUsize::new(0), false));
        let lifecycle = Lifecycle::default();
        let router = routes(vec![Check::new("db", down)], lifecycle.clone());
        assert_eq!(status(&router).await, StatusCode::SERVICE_UNAVAILABLE);
        let ok = routes(vec![], lifecycle.clone());
        assert_eq!(status(&ok).await, StatusCode::OK);
        lifecycle.begin_shutdown();
        assert_eq!(status(&ok).await, StatusCode::SERVICE_UNAVAILABLE);
    }
}
