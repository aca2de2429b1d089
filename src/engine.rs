//! The embeddable engine: what a host actix-web application mounts.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use collab_engine::{CollabEngine, EngineOptions, Store};
//!
//! # async fn run() -> std::io::Result<()> {
//! let store = Store::connect(
//!     &collab_engine::configuration::DatabaseSettings {
//!         url: "sqlite://collab.db".into(),
//!         max_connections: 8,
//!         run_migrations: true,
//!         acquire_timeout_ms: 5000,
//!         sqlite_busy_timeout_ms: 5000,
//!     },
//!     collab_engine::configuration::Durability::Full,
//! )
//! .await
//! .expect("database");
//! store.migrate().await.expect("migrations");
//! let engine = CollabEngine::start(store, EngineOptions::default());
//! let mounted = engine.clone();
//! HttpServer::new(move || {
//!     App::new()
//!         .route("/", web::get().to(|| async { "host app" }))
//!         .service(web::scope("/collab").configure(mounted.configure()))
//! })
//! .bind(("127.0.0.1", 8080))?
//! .run()
//! .await?;
//! engine.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::configuration::{DocumentSettings, Settings, redact_url};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::protocol::validate_document_id;
use crate::session_manager::{EngineStats, Fault, GetStats, InjectFault, SessionManager, Shutdown};
use crate::sessions::SessionProtocol;
use crate::sessions::native::NativeProtocol;
use crate::sessions::yjs::YjsProtocol;
use crate::store::Store;
use crate::ws_session::{self, SessionConfig};

/// Tuning of an engine that is not about the database.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub documents: DocumentSettings,
    /// The server pings each client this often.
    pub heartbeat_interval: Duration,
    /// A client silent for this long is dropped.
    pub client_timeout: Duration,
    /// Mount the `/debug/` fault-injection endpoints (tests and drills only).
    pub fault_injection: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            documents: DocumentSettings::default(),
            heartbeat_interval: Duration::from_secs(5),
            client_timeout: Duration::from_secs(30),
            fault_injection: false,
        }
    }
}

impl EngineOptions {
    /// The engine part of the server settings.
    pub fn from_settings(settings: &Settings) -> Self {
        EngineOptions {
            documents: settings.documents.clone(),
            heartbeat_interval: Duration::from_secs(settings.server.heartbeat_interval_secs),
            client_timeout: settings.client_timeout(),
            fault_injection: settings.debug.fault_injection,
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot connect to the database {url}: {source}")]
    Connect { url: String, source: sea_orm::DbErr },
    #[error("database migrations failed: {0}")]
    Migrate(sea_orm::DbErr),
}

/// A running engine: the session manager and the document actors behind
/// it. Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct CollabEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    manager: Addr<SessionManager>,
    store: Store,
    metrics: Arc<Metrics>,
    session: SessionConfig,
    /// Source of session ids, unique within this engine.
    next_session_id: AtomicU64,
    /// Set once shutdown started: new connections get 503.
    shutting_down: AtomicBool,
    fault_injection: bool,
}

impl CollabEngine {
    /// Connects to the database of `settings`, runs the migrations (unless
    /// disabled) and starts the engine.
    pub async fn from_settings(settings: &Settings) -> Result<CollabEngine, EngineError> {
        let store = Store::connect(&settings.database, settings.persistence.durability)
            .await
            .map_err(|source| EngineError::Connect {
                url: redact_url(&settings.database.url),
                source,
            })?;
        if settings.database.run_migrations {
            store.migrate().await.map_err(EngineError::Migrate)?;
            log::info!("database migrations applied ({})", store.backend_name());
        }
        Ok(CollabEngine::start(
            store,
            EngineOptions::from_settings(settings),
        ))
    }

    /// Starts an engine on `store` (whose schema must be migrated). Must be
    /// called inside a running actix system, e.g. in `#[actix_web::main]`.
    pub fn start(store: Store, options: EngineOptions) -> CollabEngine {
        let metrics = Arc::new(Metrics::default());
        let manager = SessionManager::new(
            store.clone(),
            Arc::new(options.documents.clone()),
            metrics.clone(),
        )
        .start();
        crate::checkpoint::spawn(store.clone(), Arc::downgrade(&metrics));
        CollabEngine {
            inner: Arc::new(EngineInner {
                session: SessionConfig {
                    manager: manager.clone(),
                    max_message_bytes: options.documents.max_message_bytes,
                    heartbeat_interval: options.heartbeat_interval,
                    client_timeout: options.client_timeout,
                },
                manager,
                store,
                metrics,
                next_session_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                fault_injection: options.fault_injection,
            }),
        }
    }

    /// Registers the engine's routes (`GET /ws/{document_id}` for the native
    /// protocol, `GET /yjs/{document_id}` for y-websocket clients, plus the
    /// `/debug/` fault-injection endpoints when enabled) on an app or
    /// scope: `App::new().configure(engine.configure())`.
    pub fn configure(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let engine = self.clone();
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(web::Data::new(engine.clone()))
                .route("/ws/{document_id:.*}", web::get().to(native_ws))
                .route("/yjs/{document_id:.*}", web::get().to(yjs_ws));
            if engine.inner.fault_injection {
                cfg.route(
                    "/debug/documents/{document_id}/panic",
                    web::post().to(debug_panic),
                )
                .route(
                    "/debug/documents/{document_id}/fail-commits",
                    web::post().to(debug_fail_commits),
                );
            }
        }
    }

    /// Whether the database answers (within 2 s).
    pub async fn ready(&self) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(2), self.inner.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("database unreachable: {e}")),
            Err(_) => Err("database did not answer within 2 s".to_owned()),
        }
    }

    /// Graceful shutdown: refuses new connections, commits what is pending,
    /// snapshots every loaded document and closes every session with 1001.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        if let Err(e) = self.inner.manager.send(Shutdown).await {
            log::error!("engine shutdown could not reach the session manager: {e}");
        }
    }

    /// Current counters.
    pub async fn stats(&self) -> EngineStats {
        self.inner.manager.send(GetStats).await.unwrap_or_default()
    }

    /// Counters of commits, snapshots, restarts since the engine started.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// For `HttpServer::on_connect`: turns Nagle's algorithm off on every
/// accepted TCP connection. Acks and ops are small frames that must leave
/// at once; with Nagle on, an ack can wait for the client's delayed ACK
/// (tens of milliseconds). Every frame a session gets from one commit is
/// written in one go anyway, so small writes do not multiply.
///
/// ```no_run
/// # use actix_web::{App, HttpServer};
/// # fn server() -> std::io::Result<()> {
/// let server = HttpServer::new(|| App::new()).on_connect(collab_engine::engine::tcp_nodelay);
/// # Ok(()) }
/// ```
pub fn tcp_nodelay(connection: &dyn std::any::Any, _extensions: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Err(e) = tcp.set_nodelay(true)
    {
        log::debug!("cannot set TCP_NODELAY: {e}");
    }
}

/// `GET /ws/{document_id}`: the native protocol.
async fn native_ws(
    req: HttpRequest,
    stream: web::Payload,
    path: web::Path<String>,
    engine: web::Data<CollabEngine>,
) -> Result<HttpResponse, actix_web::Error> {
    upgrade(NativeProtocol::default(), req, stream, path, engine)
}

/// `GET /yjs/{document_id}`: the y-websocket protocol.
async fn yjs_ws(
    req: HttpRequest,
    stream: web::Payload,
    path: web::Path<String>,
    engine: web::Data<CollabEngine>,
) -> Result<HttpResponse, actix_web::Error> {
    upgrade(YjsProtocol::default(), req, stream, path, engine)
}

/// Validates the document id, then upgrades to a session speaking `protocol`.
fn upgrade<P: SessionProtocol>(
    protocol: P,
    req: HttpRequest,
    stream: web::Payload,
    path: web::Path<String>,
    engine: web::Data<CollabEngine>,
) -> Result<HttpResponse, actix_web::Error> {
    let document_id = path.into_inner();
    if let Err(problem) = validate_document_id(&document_id) {
        return Ok(HttpResponse::BadRequest().json(serde_json::json!({
            "error": "invalid_document_id",
            "message": problem,
        })));
    }
    if engine.inner.shutting_down.load(Ordering::SeqCst) {
        return Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": "shutting_down",
            "message": "the server is shutting down",
        })));
    }
    let session_id = engine.inner.next_session_id.fetch_add(1, Ordering::Relaxed);
    ws_session::start(
        protocol,
        session_id,
        Arc::from(document_id.as_str()),
        &engine.inner.session,
        &req,
        stream,
    )
}

async fn inject(engine: &CollabEngine, document_id: String, fault: Fault) -> HttpResponse {
    let result = engine
        .inner
        .manager
        .send(InjectFault {
            document_id: Arc::from(document_id.as_str()),
            fault,
        })
        .await;
    match result {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({
            "document_id": document_id,
            "injected": format!("{fault:?}"),
        })),
        Ok(Err(problem)) => HttpResponse::NotFound().json(serde_json::json!({
            "error": "not_loaded",
            "message": problem,
        })),
        Err(e) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": "unavailable",
            "message": e.to_string(),
        })),
    }
}

/// `POST /debug/documents/{id}/panic`: the document's actor panics inside a handler.
async fn debug_panic(path: web::Path<String>, engine: web::Data<CollabEngine>) -> HttpResponse {
    inject(&engine, path.into_inner(), Fault::Panic).await
}

#[derive(serde::Deserialize)]
struct FailCommitsQuery {
    count: u32,
    /// `after`: the commits reach storage and only report failure.
    #[serde(default)]
    when: Option<String>,
}

/// `POST /debug/documents/{id}/fail-commits?count=N[&when=after]`: its next
/// N commits fail (`when=after`: they reach storage, only the answer fails).
async fn debug_fail_commits(
    path: web::Path<String>,
    query: web::Query<FailCommitsQuery>,
    engine: web::Data<CollabEngine>,
) -> HttpResponse {
    let after_commit = match query.when.as_deref() {
        None | Some("before") => false,
        Some("after") => true,
        Some(other) => {
            return HttpResponse::BadRequest().json(serde_json::json!({
                "error": "bad_request",
                "message": format!("when must be `before` or `after`, not `{other}`"),
            }));
        }
    };
    inject(
        &engine,
        path.into_inner(),
        Fault::FailCommits {
            count: query.count,
            after_commit,
        },
    )
    .await
}
