//! Every HTTP route of the engine, in one place: the WebSocket upgrades
//! ([`websocket`]), health and readiness ([`health`]), the admin API
//! ([`admin`]), the metrics ([`prometheus`]) and the fault-injection
//! drills ([`debug`]). Handlers read what they need from one
//! [`RouteState`], registered as app data by [`configure`]; every route is
//! added through [`Routes`], which counts its requests.

pub mod admin;
pub mod api;
pub mod debug;
pub mod health;
pub mod prometheus;
pub mod routes;
pub mod websocket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::auth::Authorizer;
use crate::metrics::Metrics;
use crate::session_manager::Documents;
use crate::store::Store;
use crate::store::faults::CommitFaults;
use crate::transport::{ConnectionLimits, SessionConfig, SessionSlots};
pub use routes::Routes;

/// What the routes share. Cheap to clone.
#[derive(Clone)]
pub struct RouteState {
    pub session: SessionConfig,
    pub metrics: Arc<Metrics>,
    pub documents: Documents,
    pub store: Store,
    /// Source of session ids, unique within the engine.
    pub next_session_id: Arc<AtomicU64>,
    /// Set once shutdown started: new connections get 503.
    pub shutting_down: Arc<AtomicBool>,
    /// Commit fault injection, when `debug.fault_injection` is on (the
    /// `/debug/` routes are mounted only then).
    pub faults: Option<Arc<CommitFaults>>,
    /// Who may connect to which document.
    pub authorizer: Arc<dyn Authorizer>,
    /// `server.allowed_origins` (empty: any).
    pub allowed_origins: Arc<[String]>,
    /// Sessions per document, and the limit.
    pub slots: Arc<SessionSlots>,
    /// Connections of the server and per address, upgrade and document
    /// creation rates per address.
    pub connections: Arc<ConnectionLimits>,
    /// The admin API's key, token keys and revocations.
    pub admin: admin::AdminState,
    /// `metrics.bearer_key` (`None`: `/metrics` is open).
    pub metrics_key: Option<String>,
}

/// Registers the engine's routes on an app or scope: `GET /ws/{id}`,
/// `GET /yjs/{id}`, the admin API under `/api/`, `GET /metrics`, and the
/// `/debug/` routes when fault injection is on.
pub fn configure(state: &RouteState, cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(state.clone()));
    let mut routes = Routes::default();
    routes
        .route(
            "/ws/{document_id:.*}",
            web::get().to(websocket::upgrade::<websocket::Native>),
        )
        .route(
            "/yjs/{document_id:.*}",
            web::get().to(websocket::upgrade::<websocket::Yjs>),
        );
    admin::configure(&mut routes);
    api::configure(&mut routes);
    prometheus::configure(&mut routes);
    if state.faults.is_some() {
        debug::configure(&mut routes);
    }
    routes.register(cfg, &state.metrics);
}

/// 403 for a browser page of an origin not in `allowed` (cross-site
/// WebSocket hijacking, cross-site API calls); a request without `Origin`
/// (not a browser) passes.
pub fn refuse_origin(req: &actix_web::HttpRequest, allowed: &[String]) -> Option<HttpResponse> {
    if allowed.is_empty() {
        return None;
    }
    let origin = req.headers().get(actix_web::http::header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or_default();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return None;
    }
    let message = format!("origin {origin:?} is not allowed (server.allowed_origins)");
    Some(error_response(
        actix_web::http::StatusCode::FORBIDDEN,
        "forbidden_origin",
        &message,
    ))
}

/// The JSON body of every error answer: `{"error": code, "message": …}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub message: &'a str,
}

/// An error answer with `status`.
pub fn error_response(
    status: actix_web::http::StatusCode,
    error: &str,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody { error, message })
}
