//! `GET /health` (the process is alive) and `GET /ready` (the node can
//! serve writes: the database answers, and commits go through). Mounted by
//! the stand-alone server next to the engine's routes.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::RouteState;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// How long `/ready` waits for the database, per check.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the node is not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unreachable: {0}")]
    Database(StoreError),
    #[error("commits are failing: {0}")]
    Commits(StoreError),
}

/// Registers `/health` and `/ready` (they need the engine's routes
/// configured on the same app, for their [`RouteState`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
}

/// Whether the node can serve writes: the database answers a ping, and,
/// if the latest commit failed, a probe write (rolled back) goes through
/// now; a probe that succeeds clears the failure, so the node comes back
/// by itself once storage does, even while no client writes.
pub async fn readiness(store: &Store, metrics: &Metrics) -> Result<(), NotReady> {
    store
        .check_ready(READY_TIMEOUT)
        .await
        .map_err(NotReady::Database)?;
    if metrics.commits_failing() {
        match tokio::time::timeout(READY_TIMEOUT, store.probe_write()).await {
            Ok(Ok(())) => metrics.commits_recovered(),
            Ok(Err(e)) => return Err(NotReady::Commits(e)),
            Err(_) => return Err(NotReady::Commits(StoreError::Timeout(READY_TIMEOUT))),
        }
    }
    Ok(())
}

/// `GET /health`: the process is alive.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when [`readiness`] holds, 503 with the reason otherwise.
async fn ready(state: web::Data<RouteState>) -> HttpResponse {
    match readiness(&state.store, &state.metrics).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(problem) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "unavailable",
            "message": problem.to_string(),
        })),
    }
}
