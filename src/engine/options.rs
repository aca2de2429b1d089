//! What an engine is started with, besides its store.

use std::sync::Arc;
use std::time::Duration;

use super::EngineError;
use crate::auth::{AllowAll, Authorizer, Revocations, TokenAuthorizer, TokenKeys};
use crate::configuration::{AuthMode, DocumentSettings, LimitsSettings, Settings, WebhookSettings};
use crate::store::Store;

/// The admin API (`POST /api/tokens`, `POST /api/revocations`).
#[derive(Clone, Default)]
pub struct AdminOptions {
    /// Its bearer key; `None`: the admin API refuses everyone (401).
    pub key: Option<String>,
    /// Keys to mint tokens with; `None`: `/api/tokens` answers 404.
    pub token_keys: Option<TokenKeys>,
}

/// Tuning of an engine that is not about the database.
#[derive(Clone)]
pub struct EngineOptions {
    pub documents: DocumentSettings,
    /// The server pings each client this often.
    pub heartbeat_interval: Duration,
    /// A client silent for this long is dropped.
    pub client_timeout: Duration,
    /// Mount the `/debug/` fault-injection endpoints (tests and drills only).
    pub fault_injection: bool,
    /// Who may connect to which document: [`AllowAll`] by default; a host
    /// application passes its own.
    pub authorizer: Arc<dyn Authorizer>,
    /// Origins whose pages may open WebSockets (empty: any).
    pub allowed_origins: Vec<String>,
    /// What one client, address or document may take (`[limits]`).
    pub limits: LimitsSettings,
    pub admin: AdminOptions,
    /// The bearer key `GET /metrics` asks for; `None`: it is open.
    pub metrics_key: Option<String>,
    /// Revoked subjects and tokens: consulted by the token authorizer,
    /// extended by [`CollabEngine::revoke`](super::CollabEngine::revoke).
    pub revocations: Arc<Revocations>,
    /// Who is told that a document changed (`[webhooks]`; no URLs: nobody).
    /// [`CollabEngine::from_settings`](super::CollabEngine::from_settings)
    /// refuses invalid ones; [`CollabEngine::start`](super::CollabEngine::start)
    /// logs an error and runs without webhooks, so check them first with
    /// [`WebhookSettings::validate`].
    pub webhooks: WebhookSettings,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("documents", &self.documents)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("client_timeout", &self.client_timeout)
            .field("fault_injection", &self.fault_injection)
            .field("allowed_origins", &self.allowed_origins)
            .field("limits", &self.limits)
            .field("admin_key", &self.admin.key.as_ref().map(|_| "***"))
            .field("webhooks", &self.webhooks.redacted())
            .field("metrics_key", &self.metrics_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            documents: DocumentSettings::default(),
            heartbeat_interval: Duration::from_secs(5),
            client_timeout: Duration::from_secs(30),
            fault_injection: false,
            authorizer: Arc::new(AllowAll),
            allowed_origins: Vec::new(),
            limits: LimitsSettings::default(),
            admin: AdminOptions::default(),
            metrics_key: None,
            revocations: Arc::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

impl EngineOptions {
    /// The engine part of the server settings; with `auth.mode = "token"`
    /// the token authorizer, with the revocations `store` holds.
    pub async fn from_settings(settings: &Settings, store: &Store) -> Result<Self, EngineError> {
        let auth = &settings.auth;
        let revocations = Arc::new(
            Revocations::load(store)
                .await
                .map_err(EngineError::Revocations)?,
        );
        let (authorizer, token_keys): (Arc<dyn Authorizer>, _) = match auth.mode {
            AuthMode::None => (Arc::new(AllowAll), None),
            AuthMode::Token => {
                let keys = TokenKeys::new(&auth.secret, &auth.audience, auth.leeway_secs)?;
                let authorizer = TokenAuthorizer::new(keys.clone(), revocations.clone());
                (Arc::new(authorizer), Some(keys))
            }
        };
        Ok(EngineOptions {
            documents: settings.documents.clone(),
            heartbeat_interval: Duration::from_secs(settings.server.heartbeat_interval_secs),
            client_timeout: settings.client_timeout(),
            fault_injection: settings.debug.fault_injection,
            authorizer,
            allowed_origins: settings.server.allowed_origins.clone(),
            limits: settings.limits.clone(),
            admin: AdminOptions {
                key: Some(auth.admin_key.clone()).filter(|k| !k.is_empty()),
                token_keys,
            },
            metrics_key: Some(settings.metrics.bearer_key.clone()).filter(|k| !k.is_empty()),
            revocations,
            webhooks: settings.webhooks.clone(),
        })
    }
}
