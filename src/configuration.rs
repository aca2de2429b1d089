//! Settings: `settings.toml`, then `COLLAB__SECTION__KEY` environment overrides.
//!
//! Every key is required (the shipped `settings.toml` holds them all, each
//! with its default and a comment). A missing, unknown or invalid key stops
//! start-up with a [`SettingsError`] naming the key and the problem.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of environment overrides: `COLLAB__SERVER__PORT=9000` sets `server.port`.
pub const ENV_PREFIX: &str = "COLLAB";

/// Everything the server reads at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub persistence: PersistenceSettings,
    pub documents: DocumentSettings,
    pub debug: DebugSettings,
    pub logging: LoggingSettings,
}

/// `[server]`: the HTTP listener and WebSocket liveness.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
}

/// `[database]`: where the op log and snapshots live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceSettings {
    pub durability: Durability,
}

/// How durable a commit is when its ops are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
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

/// `[debug]`: operator drills and tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugSettings {
    /// Mount the fault-injection endpoints under `/debug/` (never in production).
    pub fault_injection: bool,
}

/// `[documents]`: per-document behaviour of the engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
}

/// `[logging]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    /// An env_logger filter: `info`, or `info,sqlx=warn`. `RUST_LOG` overrides it.
    pub level: String,
}

/// Why the settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration file {path} not found")]
    FileNotFound { path: PathBuf },
    #[error("configuration could not be read: {0}")]
    Read(String),
    #[error("configuration key `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Settings {
    /// Reads `path`, applies `COLLAB__SECTION__KEY` overrides from the
    /// environment, and validates the result.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        if !path.is_file() {
            return Err(SettingsError::FileNotFound {
                path: path.to_path_buf(),
            });
        }
        let raw = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| SettingsError::Read(e.to_string()))?;
        let settings: Settings = raw
            .try_deserialize()
            .map_err(|e| SettingsError::Read(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the ranges serde cannot express.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| {
            Err(SettingsError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        if self.server.host.trim().is_empty() {
            return invalid("server.host", "must not be empty");
        }
        if self.server.heartbeat_interval_secs == 0 {
            return invalid("server.heartbeat_interval_secs", "must be at least 1");
        }
        if self.server.client_timeout_secs <= self.server.heartbeat_interval_secs {
            return invalid(
                "server.client_timeout_secs",
                "must be greater than server.heartbeat_interval_secs",
            );
        }
        if self.server.shutdown_timeout_secs == 0 {
            return invalid("server.shutdown_timeout_secs", "must be at least 1");
        }
        self.database.validate()?;
        self.documents.validate()?;
        if !is_valid_log_filter(&self.logging.level) {
            return invalid(
                "logging.level",
                "must be an env_logger filter such as `info` or `info,sqlx=warn` (levels: off, error, warn, info, debug, trace)",
            );
        }
        Ok(())
    }

    /// The client timeout as a [`Duration`].
    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.server.client_timeout_secs)
    }
}

impl DatabaseSettings {
    /// Checks the URL scheme and pool size.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(self.url.starts_with("sqlite:")
            || self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://"))
        {
            return Err(SettingsError::Invalid {
                key: "database.url",
                problem: format!(
                    "`{}` is neither a sqlite: nor a postgres:// URL",
                    redact_url(&self.url)
                ),
            });
        }
        if self.max_connections == 0 {
            return Err(SettingsError::Invalid {
                key: "database.max_connections",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.acquire_timeout_ms < 100 {
            return Err(SettingsError::Invalid {
                key: "database.acquire_timeout_ms",
                problem: "must be at least 100".to_owned(),
            });
        }
        Ok(())
    }
}

impl DocumentSettings {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.snapshot_every_ops == 0 {
            return Err(SettingsError::Invalid {
                key: "documents.snapshot_every_ops",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.idle_unload_secs == 0 {
            return Err(SettingsError::Invalid {
                key: "documents.idle_unload_secs",
                problem: "must be at least 1".to_owned(),
            });
        }
        if !(1024..=(256 << 20)).contains(&self.max_message_bytes) {
            return Err(SettingsError::Invalid {
                key: "documents.max_message_bytes",
                problem: "must be between 1024 and 268435456".to_owned(),
            });
        }
        if self.max_session_backlog_ops == 0 {
            return Err(SettingsError::Invalid {
                key: "documents.max_session_backlog_ops",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.restart_window_secs == 0 {
            return Err(SettingsError::Invalid {
                key: "documents.restart_window_secs",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.restart_backoff_initial_ms == 0 {
            return Err(SettingsError::Invalid {
                key: "documents.restart_backoff_initial_ms",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.restart_backoff_max_ms < self.restart_backoff_initial_ms {
            return Err(SettingsError::Invalid {
                key: "documents.restart_backoff_max_ms",
                problem: "must be at least documents.restart_backoff_initial_ms".to_owned(),
            });
        }
        Ok(())
    }

    /// Delay before reload number `restarts` (1-based) within the window.
    pub fn restart_backoff(&self, restarts: u32) -> Duration {
        let factor = 1u64 << restarts.saturating_sub(1).min(32);
        Duration::from_millis(
            self.restart_backoff_initial_ms
                .saturating_mul(factor)
                .min(self.restart_backoff_max_ms),
        )
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

fn is_valid_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let valid_level = |level: &str| LEVELS.contains(&level.to_ascii_lowercase().as_str());
    !filter.trim().is_empty()
        && filter.split(',').all(|directive| {
            let directive = directive.trim();
            match directive.split_once('=') {
                Some((module, level)) => !module.is_empty() && valid_level(level),
                None => {
                    valid_level(directive)
                        || (!directive.is_empty()
                            && directive
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filters() {
        assert!(is_valid_log_filter("info"));
        assert!(is_valid_log_filter("info,sqlx=warn"));
        assert!(is_valid_log_filter("collab_engine=debug"));
        assert!(!is_valid_log_filter(""));
        assert!(!is_valid_log_filter("info,sqlx=loud"));
        assert!(!is_valid_log_filter("very loud"));
    }

    #[test]
    fn restart_backoff_doubles_up_to_the_maximum() {
        let settings = DocumentSettings::default();
        let delays: Vec<u128> = (1..=11)
            .map(|n| settings.restart_backoff(n).as_millis())
            .collect();
        assert_eq!(
            delays,
            vec![10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5000, 5000]
        );
        assert_eq!(settings.restart_backoff(1000).as_millis(), 5000);
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://bob:secret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(
            redact_url("postgres://bob@db:5432/x"),
            "postgres://bob@db:5432/x"
        );
        assert_eq!(
            redact_url("sqlite://collab.db?mode=rwc"),
            "sqlite://collab.db?mode=rwc"
        );
    }
}
