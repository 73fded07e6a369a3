//! `/health` (the process answers) and `/ready` (every adapter answers).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde::Serialize;

use super::{ApiError, Data};
use crate::ports::Probe;

/// A named readiness check.
#[derive(Clone)]
pub struct Check {
    pub name: &'static str,
    pub probe: Arc<dyn Probe>,
}

impl Check {
    pub fn new(name: &'static str, probe: Arc<dyn Probe>) -> Self {
        Check { name, probe }
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

pub fn routes(checks: Vec<Check>) -> Router {
    let checks = Arc::new(checks);
    Router::new().route("/health", get(health)).route(
        "/ready",
        get(move || {
            let checks = checks.clone();
            async move { ready(&checks).await }
        }),
    )
}

async fn health() -> Data<Health> {
    Data(Health { status: "ok" })
}

/// Every check at once, each bounded, so a dead dependency answers fast.
pub async fn ready(checks: &[Check]) -> Result<Data<Readiness>, ApiError> {
    let results = futures::future::join_all(checks.iter().map(|c| async move {
        match tokio::time::timeout(PROBE_TIMEOUT, c.probe.ping()).await {
            Ok(Ok(())) => Ok(c.name),
            Ok(Err(e)) => {
                tracing::warn!(check = c.name, error = %e, "not ready");
                Err(c.name)
            }
            Err(_) => Err(c.name),
        }
    }))
    .await;
    let down: Vec<&str> = results.iter().filter_map(|r| r.err()).collect();
    if !down.is_empty() {
        return Err(ApiError::NotReady(format!("{} down", down.join(", "))));
    }
    Ok(Data(Readiness { status: "ready", checks: checks.iter().map(|c| c.name.to_string()).collect() }))
}
