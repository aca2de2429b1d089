//! `GET /health` (the process is alive) and `GET /ready` (the database
//! answers). Mounted by the stand-alone server next to the engine's routes.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::RouteState;
use crate::store::StoreError;

/// How long `/ready` waits for the database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Registers `/health` and `/ready` (they need the engine's routes
/// configured on the same app, for their [`RouteState`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
}

/// `GET /health`: the process is alive.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /ready`: the database answers (503 otherwise).
async fn ready(state: web::Data<RouteState>) -> HttpResponse {
    match state.store.check_ready(READY_TIMEOUT).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(problem) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "unavailable",
            "message": not_ready_message(&problem),
        })),
    }
}

/// What `/ready` says when the database does not answer.
pub fn not_ready_message(problem: &StoreError) -> String {
    match problem {
        StoreError::Timeout(_) => problem.to_string(),
        other => format!("database unreachable: {other}"),
    }
}
