//! The ranges serde cannot express, checked once every layer is read.

use super::{AuthMode, AuthSettings, DatabaseSettings, DocumentSettings, Settings, redact_url};

/// A value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}`: {problem}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub problem: String,
}

impl Settings {
    /// Checks the ranges serde cannot express.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let invalid = |key, problem: &str| {
            Err(InvalidSetting {
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
        self.auth.validate(&self.server.host)?;
        if let Some(key) = self.limits.first_zero() {
            return invalid(key, "must be at least 1");
        }
        if let Some(origin) =
            self.server.allowed_origins.iter().find(|o| {
                !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/')
            })
        {
            return Err(InvalidSetting {
                key: "server.allowed_origins",
                problem: format!(
                    "`{origin}` is not an origin: write scheme://host[:port], e.g. https://app.example.com"
                ),
            });
        }
        self.database.validate()?;
        self.documents.validate()?;
        self.webhooks.validate()?;
        if !is_valid_log_filter(&self.logging.level) {
            return invalid(
                "logging.level",
                "must be an env_logger filter such as `info` or `info,sqlx=warn` (levels: off, error, warn, info, debug, trace)",
            );
        }
        Ok(())
    }
}

impl DatabaseSettings {
    /// Checks the URL scheme and pool size.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if !(self.url.starts_with("sqlite:")
            || self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://"))
        {
            return Err(InvalidSetting {
                key: "database.url",
                problem: format!(
                    "`{}` is neither a sqlite: nor a postgres:// URL",
                    redact_url(&self.url)
                ),
            });
        }
        if self.max_connections == 0 {
            return Err(InvalidSetting {
                key: "database.max_connections",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.acquire_timeout_ms < 100 {
            return Err(InvalidSetting {
                key: "database.acquire_timeout_ms",
                problem: "must be at least 100".to_owned(),
            });
        }
        Ok(())
    }
}

impl AuthSettings {
    /// Checks the keys, and that an open server is open on purpose.
    pub fn validate(&self, host: &str) -> Result<(), InvalidSetting> {
        let invalid = |key, problem: String| Err(InvalidSetting { key, problem });
        match self.mode {
            AuthMode::Token if self.secret.len() < 32 => {
                return invalid(
                    "auth.secret",
                    format!(
                        "auth.mode = \"token\" needs a secret of at least 32 bytes (got {}); set COLLAB__AUTH__SECRET",
                        self.secret.len()
                    ),
                );
            }
            AuthMode::None if !self.allow_anonymous && !is_loopback(host) => {
                return invalid(
                    "auth.mode",
                    format!(
                        "is \"none\" while server.host = {host:?} is not a loopback address: anyone who \
                         reaches the port would read and write every document; set auth.mode = \"token\" \
                         (with auth.secret), or auth.allow_anonymous = true if that is what you want"
                    ),
                );
            }
            _ => {}
        }
        if !self.admin_key.is_empty() && self.admin_key.len() < 16 {
            return invalid(
                "auth.admin_key",
                format!(
                    "must be empty (no admin API) or at least 16 bytes, got {}",
                    self.admin_key.len()
                ),
            );
        }
        Ok(())
    }
}

/// Whether `host` (as in `server.host`) only listens on this machine.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl DocumentSettings {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.snapshot_every_ops == 0 {
            return Err(InvalidSetting {
                key: "documents.snapshot_every_ops",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.idle_unload_secs == 0 {
            return Err(InvalidSetting {
                key: "documents.idle_unload_secs",
                problem: "must be at least 1".to_owned(),
            });
        }
        if !(1024..=(256 << 20)).contains(&self.max_message_bytes) {
            return Err(InvalidSetting {
                key: "documents.max_message_bytes",
                problem: "must be between 1024 and 268435456".to_owned(),
            });
        }
        if self.max_session_backlog_ops == 0 {
            return Err(InvalidSetting {
                key: "documents.max_session_backlog_ops",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.restart_window_secs == 0 {
            return Err(InvalidSetting {
                key: "documents.restart_window_secs",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.restart_backoff_initial_ms == 0 {
            return Err(InvalidSetting {
                key: "documents.restart_backoff_initial_ms",
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.restart_backoff_max_ms < self.restart_backoff_initial_ms {
            return Err(InvalidSetting {
                key: "documents.restart_backoff_max_ms",
                problem: "must be at least documents.restart_backoff_initial_ms".to_owned(),
            });
        }
        Ok(())
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
