//! `[webhooks]`: who is told, over HTTP, that a document changed
//! (docs/webhooks.md), and how hard the server tries.

use std::time::Duration;

use actix_web::http::Uri;
use serde::{Deserialize, Deserializer, Serialize};

use super::InvalidSetting;

/// `[webhooks]`. With no `urls` nothing is sent and nothing runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Each gets `POST {"document_id", "epoch", "server_seq"}` after a
    /// document changed; plain `http://` only. `COLLAB__WEBHOOKS__URLS`:
    /// comma-separated (blanks around each are dropped).
    #[serde(deserialize_with = "trimmed")]
    pub urls: Vec<String>,
    /// HMAC-SHA256 key of the `X-Collab-Signature` header (its UTF-8
    /// bytes); empty: requests are not signed.
    pub secret: String,
    /// At most one request per document per URL this often; the changes
    /// in between are coalesced into the next one (the latest seq).
    pub debounce_ms: u64,
    /// A request not answered within this long failed (and is retried).
    pub timeout_ms: u64,
    /// Requests for one change before giving up on it (1: no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles with every failed attempt.
    pub retry_initial_ms: u64,
    /// Upper bound of that delay.
    pub retry_max_ms: u64,
    /// Requests in flight at once, over every URL and document; the others
    /// wait their turn.
    pub max_concurrent: usize,
}

impl Default for WebhookSettings {
    /// The values of the shipped `settings.toml`.
    fn default() -> Self {
        WebhookSettings {
            urls: Vec::new(),
            secret: String::new(),
            debounce_ms: 1000,
            timeout_ms: 5000,
            max_attempts: 5,
            retry_initial_ms: 1000,
            retry_max_ms: 60_000,
            max_concurrent: 32,
        }
    }
}

impl WebhookSettings {
    /// The URLs, parsed; the first one that is not an `http://` URL with a
    /// host is an error naming `webhooks.urls`.
    pub fn parsed_urls(&self) -> Result<Vec<Uri>, InvalidSetting> {
        let invalid = |problem: String| InvalidSetting {
            key: "webhooks.urls",
            problem,
        };
        let mut parsed: Vec<Uri> = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let shown = redact_query(url);
            let uri = url.parse::<Uri>().map_err(|e| {
                invalid(format!(
                    "`{shown}` is not a URL ({e}): write http://host[:port]/path"
                ))
            })?;
            match uri.scheme_str() {
                Some("http") => {}
                Some("https") => {
                    return Err(invalid(format!(
                        "`{shown}`: this build sends webhooks over plain http:// only \
                         (no TLS client is built in); put a TLS-terminating proxy on \
                         this host or network and point the URL at it"
                    )));
                }
                _ => {
                    return Err(invalid(format!(
                        "`{shown}` is not an http:// URL: write http://host[:port]/path"
                    )));
                }
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err(invalid(format!("`{shown}` has no host")));
            }
            if parsed.contains(&uri) {
                return Err(invalid(format!("`{shown}` is listed twice")));
            }
            parsed.push(uri);
        }
        Ok(parsed)
    }

    /// Checks the URLs and that every bound allows something.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.parsed_urls()?;
        let at_least_one: [(&'static str, u64); 4] = [
            ("webhooks.timeout_ms", self.timeout_ms),
            ("webhooks.max_attempts", self.max_attempts.into()),
            ("webhooks.retry_initial_ms", self.retry_initial_ms),
            ("webhooks.max_concurrent", self.max_concurrent as u64),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(InvalidSetting {
                key,
                problem: "must be at least 1".to_owned(),
            });
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return Err(InvalidSetting {
                key: "webhooks.retry_max_ms",
                problem: "must be at least webhooks.retry_initial_ms".to_owned(),
            });
        }
        Ok(())
    }

    pub fn debounce(&self) -> Duration {
        Duration::from_millis(self.debounce_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Delay before the retry that follows failed attempt number
    /// `failures` (1-based): `retry_initial_ms`, doubling, at most
    /// `retry_max_ms`.
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let factor = 1u64 << failures.saturating_sub(1).min(32);
        Duration::from_millis(
            self.retry_initial_ms
                .saturating_mul(factor)
                .min(self.retry_max_ms),
        )
    }

    /// A copy fit to print: the secret masked, and the query of each URL
    /// (which may hold a token).
    pub fn redacted(&self) -> WebhookSettings {
        let mut copy = self.clone();
        if !copy.secret.is_empty() {
            copy.secret = "***".to_owned();
        }
        copy.urls = copy.urls.iter().map(|url| redact_query(url)).collect();
        copy
    }
}

/// A list of strings, each trimmed, empty ones left out (a list from the
/// environment is split at commas only).
fn trimmed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let items = Vec::<String>::deserialize(deserializer)?;
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect())
}

/// `url` with its query string (which may hold a token) masked, for log
/// lines, error messages and `check-config`.
pub fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?***"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_urls(urls: &[&str]) -> WebhookSettings {
        WebhookSettings {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            ..WebhookSettings::default()
        }
    }

    #[test]
    fn urls_must_be_plain_http_with_a_host_and_listed_once() {
        assert!(with_urls(&[]).validate().is_ok());
        assert!(
            with_urls(&["http://127.0.0.1:9000/hook", "http://indexer/x?k=1"])
                .validate()
                .is_ok()
        );
        for (url, says) in [
            ("not a url", "is not a URL"),
            ("https://example.com/hook", "plain http:// only"),
            ("ftp://example.com/hook", "is not an http:// URL"),
            ("/hook", "is not an http:// URL"),
            ("http:///hook", "is not a URL"),
        ] {
            let err = with_urls(&[url]).validate().expect_err(url);
            assert_eq!(err.key, "webhooks.urls");
            assert!(err.problem.contains(says), "{url}: {}", err.problem);
        }
        let err = with_urls(&["http://a/hook", "http://a/hook"])
            .validate()
            .expect_err("twice");
        assert!(err.problem.contains("listed twice"), "{}", err.problem);
        let err = with_urls(&["https://a/hook?token=s3cret"])
            .validate()
            .expect_err("https");
        assert!(!err.problem.contains("s3cret"), "{}", err.problem);
    }

    #[test]
    fn retries_double_up_to_the_maximum() {
        let settings = WebhookSettings {
            retry_initial_ms: 100,
            retry_max_ms: 1000,
            ..WebhookSettings::default()
        };
        let delays: Vec<u128> = (1..=6)
            .map(|n| settings.retry_delay(n).as_millis())
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(settings.retry_delay(u32::MAX).as_millis(), 1000);
    }

    #[test]
    fn bounds_must_allow_something() {
        for adjust in [
            |s: &mut WebhookSettings| s.timeout_ms = 0,
            |s: &mut WebhookSettings| s.max_attempts = 0,
            |s: &mut WebhookSettings| s.max_concurrent = 0,
            |s: &mut WebhookSettings| s.retry_max_ms = 1,
        ] {
            let mut settings = WebhookSettings::default();
            adjust(&mut settings);
            let err = settings.validate().expect_err("out of range");
            assert!(err.key.starts_with("webhooks."), "{err}");
        }
    }

    #[test]
    fn redaction_masks_the_secret_and_queries() {
        let settings = WebhookSettings {
            urls: vec!["http://a/hook?token=t0k".into(), "http://b/hook".into()],
            secret: "k3y".into(),
            ..WebhookSettings::default()
        };
        let shown = settings.redacted();
        assert_eq!(shown.secret, "***");
        assert_eq!(shown.urls, vec!["http://a/hook?***", "http://b/hook"]);
        assert_eq!(WebhookSettings::default().redacted().secret, "");
    }
}
