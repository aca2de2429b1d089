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

use actix::prelude::*;
use actix_web::web;

use crate::auth::{Grants, MintedToken, Revocation, unix_now};
use crate::configuration::{Settings, redact_url};
use crate::document::DocumentContext;
use crate::http::admin::AdminState;
use crate::http::health::NotReady;
use crate::http::{self, RouteState};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::protocols::ProtocolLimits;
use crate::session_manager::{Documents, EngineStats, GetStats, SessionManager, Shutdown};
use crate::store::{Store, StoreError, checkpoint};
pub use crate::transport::tcp_nodelay;
use crate::transport::{ConnectionLimits, SessionConfig, SessionRates, SessionSlots};
use crate::webhooks::{Webhooks, WebhooksError};

mod options;

pub use options::{AdminOptions, EngineOptions};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot connect to the database {url}: {source}")]
    Connect { url: String, source: sea_orm::DbErr },
    #[error("database migrations failed: {0}")]
    Migrate(sea_orm::DbErr),
    #[error("revocations cannot be read: {0}")]
    Revocations(crate::store::StoreError),
    #[error("auth.secret cannot key tokens: {0}")]
    TokenKeys(#[from] crate::auth::EmptySecret),
    #[error(transparent)]
    Webhooks(#[from] WebhooksError),
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
    /// What the routes share (see [`crate::http`]).
    routes: RouteState,
    /// Running when `[webhooks]` has URLs.
    webhooks: Option<Webhooks>,
}

impl CollabEngine {
    /// Connects to the database of `settings`, runs the migrations (unless
    /// disabled) and starts the engine.
    pub async fn from_settings(settings: &Settings) -> Result<CollabEngine, EngineError> {
        settings.webhooks.validate().map_err(WebhooksError::from)?;
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
        let options = EngineOptions::from_settings(settings, &store).await?;
        Ok(CollabEngine::start(store, options))
    }

    /// Starts an engine on `store` (whose schema must be migrated). Must be
    /// called inside a running actix system, e.g. in `#[actix_web::main]`.
    pub fn start(store: Store, options: EngineOptions) -> CollabEngine {
        let (store, faults) = if options.fault_injection {
            let (store, faults) = store.with_commit_faults();
            (store, Some(faults))
        } else {
            (store, None)
        };
        let metrics = Arc::new(Metrics::default());
        let webhooks = start_webhooks(&options, &metrics);
        let arbiters = options.documents.arbiter_count();
        let manager = SessionManager::new(
            DocumentContext {
                store: store.clone(),
                settings: Arc::new(options.documents.clone()),
                limits: Arc::new(options.limits.clone()),
                metrics: metrics.clone(),
                changes: webhooks.as_ref().map(Webhooks::listener),
            },
            arbiters,
        )
        .start();
        checkpoint::spawn(store.clone(), Arc::downgrade(&metrics));
        let routes = RouteState {
            session: SessionConfig {
                manager: manager.clone(),
                max_message_bytes: options.documents.max_message_bytes,
                protocol_limits: ProtocolLimits::from_settings(&options.limits),
                heartbeat_interval: options.heartbeat_interval,
                client_timeout: options.client_timeout,
                metrics: metrics.clone(),
                oversize: Arc::default(),
                rates: SessionRates {
                    ops_per_sec: options.limits.ops_per_sec_per_session,
                    bytes_per_sec: options.limits.bytes_per_sec_per_session,
                },
            },
            metrics: metrics.clone(),
            documents: Documents::new(manager.clone()),
            store: store.clone(),
            next_session_id: Arc::new(AtomicU64::new(1)),
            shutting_down: Arc::new(AtomicBool::new(false)),
            faults,
            authorizer: options.authorizer.clone(),
            allowed_origins: options.allowed_origins.clone().into(),
            slots: SessionSlots::new(options.limits.max_sessions_per_document),
            connections: ConnectionLimits::new(&options.limits),
            admin: AdminState {
                key: options.admin.key.clone(),
                token_keys: options.admin.token_keys.clone(),
                revocations: options.revocations.clone(),
                manager: manager.clone(),
            },
            metrics_key: options.metrics_key.clone(),
        };
        CollabEngine {
            inner: Arc::new(EngineInner {
                manager,
                store,
                metrics,
                routes,
                webhooks,
            }),
        }
    }

    /// Registers the engine's routes (`GET /ws/{document_id}` for the native
    /// protocol, `GET /yjs/{document_id}` for y-websocket clients, the admin
    /// API, `GET /metrics`, plus the `/debug/` fault-injection endpoints
    /// when enabled) on an app or scope:
    /// `App::new().configure(engine.configure())`.
    pub fn configure(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let routes = self.inner.routes.clone();
        move |cfg: &mut web::ServiceConfig| http::configure(&routes, cfg)
    }

    /// The document API: submit ops, read state and ops, subscribe
    /// listeners, close sessions, for callers that are not WebSocket
    /// sessions.
    pub fn documents(&self) -> Documents {
        self.inner.routes.documents.clone()
    }

    /// Whether the node can serve writes: the database answers, and
    /// commits go through (see [`http::health::readiness`]).
    pub async fn ready(&self) -> Result<(), NotReady> {
        http::health::readiness(&self.inner.store, &self.inner.metrics).await
    }

    /// Graceful shutdown: refuses new connections, commits what is pending,
    /// snapshots every loaded document and closes every session with 1001;
    /// then drops the webhook deliveries still pending (without waiting).
    pub async fn shutdown(&self) {
        self.inner
            .routes
            .shutting_down
            .store(true, Ordering::SeqCst);
        if let Err(e) = self.inner.manager.send(Shutdown).await {
            log::error!("engine shutdown could not reach the session manager: {e}");
        }
        if let Some(webhooks) = &self.inner.webhooks {
            webhooks.stop();
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

    /// The engine's metrics themselves: every series of `GET /metrics`
    /// ([`Metrics::render`]), and the events a host's own parts record
    /// (e.g. [`Metrics::webhook_delivery`]).
    pub fn live_metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Revokes `revocation` (kept in the database): the live sessions it
    /// covers are closed with 4403 (`access revoked`), and the tokens it
    /// covers are refused from now on. Answers how many sessions closed.
    pub async fn revoke(&self, revocation: Revocation) -> Result<usize, StoreError> {
        http::admin::revoke(&self.inner.routes.admin, &self.inner.store, revocation).await
    }

    /// A token for `sub` granting `docs` for `ttl_secs`, signed with the
    /// engine's token keys (`None` without them, i.e. with `auth.mode = "none"`).
    pub fn mint_token(&self, sub: &str, docs: Grants, ttl_secs: u64) -> Option<MintedToken> {
        let keys = self.inner.routes.admin.token_keys.as_ref()?;
        Some(keys.mint(sub, docs, ttl_secs, unix_now()))
    }
}

/// The webhooks of `options`, when it has URLs; invalid ones are logged
/// and left out (`from_settings` refuses them before).
fn start_webhooks(options: &EngineOptions, metrics: &Arc<Metrics>) -> Option<Webhooks> {
    if options.webhooks.urls.is_empty() {
        return None;
    }
    match Webhooks::start(&options.webhooks, metrics.clone()) {
        Ok(webhooks) => Some(webhooks),
        Err(e) => {
            log::error!("webhooks not started: {e}");
            None
        }
    }
}
