//! Settings: built-in defaults, then `settings.toml` (optional), then
//! `COLLAB__SECTION__KEY` environment overrides.
//!
//! Every key has a default (the values of the shipped `settings.toml`,
//! which documents each key). An unknown key, a value of the wrong type or
//! out of range stops start-up with a [`SettingsError`] naming the key,
//! where it was set (file and line, or the variable), and the problem.
//!
//! - this file: the settings and their defaults;
//! - [`load`]: reading the layers, with the origin of every key;
//! - [`validate`]: the ranges serde cannot express;
//! - [`limits`] and [`webhooks`]: the `[limits]` and `[webhooks]` sections.

mod limits;
mod load;
#[cfg(test)]
mod tests;
mod validate;
mod webhooks;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use limits::LimitsSettings;
pub use load::{DEFAULT_FILE, LoadedSettings, Origin, SettingsError};
pub use validate::InvalidSetting;
pub use webhooks::{WebhookSettings, redact_query};

/// Prefix of environment overrides: `COLLAB__SERVER__PORT=9000` sets `server.port`.
pub const ENV_PREFIX: &str = "COLLAB";

/// Everything the server reads at start-up.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub persistence: PersistenceSettings,
    pub documents: DocumentSettings,
    pub auth: AuthSettings,
    pub limits: LimitsSettings,
    pub webhooks: WebhookSettings,
    pub debug: DebugSettings,
    pub logging: LoggingSettings,
    pub metrics: MetricsSettings,
}

/// `[server]`: the HTTP listener and WebSocket liveness.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind, e.g. `127.0.0.1` or `0.0.0.0`.
    pub host: String,
    /// TCP port; `0` picks a free port (used by the tests).
    pub port: u16,
    /// HTTP worker threads; `0` means one per CPU core.
    pub workers: usize,
    /// The server pings every client this often.
    pub heartbeat_interval_secs: u64,
    /// A client that sends nothing (not even a pong) for this long is dropped.
    pub client_timeout_secs: u64,
    /// Upper bound for a graceful shutdown (flush, snapshot, close sockets).
    pub shutdown_timeout_secs: u64,
    /// Origins (`scheme://host[:port]`) whose web pages may open a
    /// WebSocket to this server; empty: any. An upgrade with an `Origin`
    /// header not listed gets 403; one without (a non-browser client) is
    /// not refused for that. `COLLAB__SERVER__ALLOWED_ORIGINS`: comma-separated.
    pub allowed_origins: Vec<String>,
}

/// `[database]`: where the op log and snapshots live.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// Size of the connection pool.
    pub max_connections: u32,
    /// Run the schema migrations at start-up.
    pub run_migrations: bool,
    /// How long an operation waits for a pooled connection (or to connect)
    /// before it fails; its ops are then answered `unavailable`.
    pub acquire_timeout_ms: u64,
    /// SQLite only: how long a commit waits for the write lock (held by
    /// another process, or by another document's commit in this one)
    /// before it fails (and its ops are answered `unavailable`).
    pub sqlite_busy_timeout_ms: u64,
}

/// `[persistence]`: what an `ack` promises.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistenceSettings {
    pub durability: Durability,
}

/// How durable a commit is when its ops are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// The commit is on disk: SQLite `synchronous = FULL`, PostgreSQL
    /// `synchronous_commit = on`. Survives a power loss.
    #[default]
    Full,
    /// SQLite `synchronous = NORMAL` (WAL), PostgreSQL `synchronous_commit =
    /// off`. Survives a crash of this server; the last commits may be lost
    /// if the machine (SQLite) or the database server (PostgreSQL) crashes.
    Normal,
}

/// `[auth]`: who may read and write which document.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// HS256 key of tokens (its UTF-8 bytes, at least 32): verifies them,
    /// and signs the ones `POST /api/tokens` and `collab-engine token` mint.
    pub secret: String,
    /// Bearer key of the admin API (`/api/tokens`, `/api/revocations`);
    /// empty: the admin API refuses everyone.
    pub admin_key: String,
    /// With `mode = "none"`, allow listening on an address other than
    /// loopback (anyone who reaches the port reads and writes everything).
    pub allow_anonymous: bool,
    /// When set, only tokens whose `aud` includes it are accepted; when
    /// empty, tokens that carry an `aud` are refused.
    pub audience: String,
    /// Clock skew allowed when a token is checked at the upgrade, seconds.
    pub leeway_secs: u64,
}

/// How connections are authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Everyone may read and write every document.
    #[default]
    None,
    /// A JWT (`Authorization: Bearer`, or `?token=` on WebSocket routes)
    /// says who connects and what they may do.
    Token,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mode: AuthMode::None,
            secret: String::new(),
            admin_key: String::new(),
            allow_anonymous: false,
            audience: String::new(),
            leeway_secs: 5,
        }
    }
}

/// `[debug]`: operator drills and tests.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugSettings {
    /// Mount the fault-injection endpoints under `/debug/` (never in production).
    pub fault_injection: bool,
}

/// `[documents]`: per-document behaviour of the engine.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentSettings {
    /// Write a full-state snapshot after this many accepted ops.
    pub snapshot_every_ops: u64,
    /// A reconnecting client further behind than this gets a snapshot, not a replay.
    pub max_replay_ops: u64,
    /// Unload a document (after a final snapshot) once it had no session for this long.
    pub idle_unload_secs: u64,
    /// Largest WebSocket message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// A document that restarts more than this many times within
    /// `restart_window_secs` is marked failed.
    pub max_restarts: u32,
    /// The window for `max_restarts`, in seconds.
    pub restart_window_secs: u64,
    /// Delay before the first reload after a restart; doubles with every
    /// restart in the window.
    pub restart_backoff_initial_ms: u64,
    /// Upper bound of that delay; also how long a failed document refuses
    /// connections before the next attempt to load it.
    pub restart_backoff_max_ms: u64,
    /// A session this many committed ops behind (its client reads too
    /// slowly) is dropped and closed with 1013; it catches up on reconnect.
    pub max_session_backlog_ops: usize,
    /// DocumentActors run on this many arbiters (threads), each document
    /// pinned to one by a hash of its id, so a busy document slows only
    /// the documents that share its thread; 0: one per core.
    pub arbiters: usize,
}

/// `[metrics]`: `GET /metrics` (Prometheus text format).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// When set, `GET /metrics` needs `Authorization: Bearer <bearer_key>`
    /// (else 401); empty: open to whoever reaches the port.
    pub bearer_key: String,
}

/// `[logging]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSettings {
    /// An env_logger filter: `info`, or `info,sqlx=warn`. `RUST_LOG` overrides it.
    pub level: String,
}

impl Settings {
    /// The client timeout as a [`Duration`].
    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.server.client_timeout_secs)
    }

    /// A copy fit to print: the database password, the keys and the
    /// webhook secret masked (and the query of webhook URLs).
    pub fn redacted(&self) -> Settings {
        let mut copy = self.clone();
        copy.database.url = redact_url(&copy.database.url);
        copy.webhooks = copy.webhooks.redacted();
        for secret in [
            &mut copy.auth.secret,
            &mut copy.auth.admin_key,
            &mut copy.metrics.bearer_key,
        ] {
            if !secret.is_empty() {
                *secret = "***".to_owned();
            }
        }
        copy
    }
}

impl Default for ServerSettings {
    /// The values of the shipped `settings.toml`.
    fn default() -> Self {
        ServerSettings {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            workers: 0,
            heartbeat_interval_secs: 5,
            client_timeout_secs: 30,
            shutdown_timeout_secs: 10,
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for DatabaseSettings {
    /// The values of the shipped `settings.toml`.
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://collab.db".to_owned(),
            max_connections: 8,
            run_migrations: true,
            acquire_timeout_ms: 5000,
            sqlite_busy_timeout_ms: 5000,
        }
    }
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            level: "info".to_owned(),
        }
    }
}

impl DocumentSettings {
    /// Delay before reload number `restarts` (1-based) within the window.
    pub fn restart_backoff(&self, restarts: u32) -> Duration {
        let factor = 1u64 << restarts.saturating_sub(1).min(32);
        Duration::from_millis(
            self.restart_backoff_initial_ms
                .saturating_mul(factor)
                .min(self.restart_backoff_max_ms),
        )
    }

    /// The number of document arbiters `arbiters` asks for.
    pub fn arbiter_count(&self) -> usize {
        match self.arbiters {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// How long a document stays loaded without sessions.
    pub fn idle_unload(&self) -> Duration {
        Duration::from_secs(self.idle_unload_secs)
    }
}

impl Default for DocumentSettings {
    /// The values of the shipped `settings.toml`.
    fn default() -> Self {
        DocumentSettings {
            snapshot_every_ops: 1000,
            max_replay_ops: 10_000,
            idle_unload_secs: 60,
            max_message_bytes: 32 << 20,
            max_restarts: 5,
            restart_window_secs: 60,
            restart_backoff_initial_ms: 10,
            restart_backoff_max_ms: 5000,
            max_session_backlog_ops: 50_000,
            arbiters: 0,
        }
    }
}

/// Hides the password of a database URL for log lines and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
