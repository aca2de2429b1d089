//! Engine-wide metrics, shared by every document actor, session and route
//! of one engine, and rendered in the Prometheus text format for
//! `GET /metrics`.
//!
//! Each counter exists once: the `prometheus-client` metric objects
//! (atomics themselves, [`series`]) are owned here and registered in the
//! engine's own [`Registry`], not a global one, so several engines in one
//! process (as in the tests) each count their own. Documents and sessions
//! record events through the methods of [`Metrics`] on their own threads
//! without locking (the histograms take a short lock); [`Metrics::snapshot`]
//! reads the plain counters for tests and operators, [`Metrics::render`]
//! encodes every series for a scrape. This module uses nothing else of the
//! crate: every layer may use it.

mod labels;
mod series;

use std::fmt;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use labels::{HttpLabels, OutcomeLabel, ReasonLabel, RecoveryLabel, RouteLabel};
pub use labels::{JoinRecovery, RefusalKind, SessionRoute, WebhookOutcome};
use series::Series;

/// The `Content-Type` of [`Metrics::render`]'s text (format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Live metrics of one engine (see [`MetricsSnapshot`] and docs/operations.md
/// for their meaning).
pub struct Metrics {
    series: Series,
    /// Holds handles of the same metric objects as `series`.
    registry: Registry,
}

/// The counters at one moment, all since the engine started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Transactions committed to the op log (group commits).
    pub commits: u64,
    /// Ops appended to the op log. `ops_committed / commits` is the
    /// average group-commit batch.
    pub ops_committed: u64,
    /// Snapshots written.
    pub snapshots_written: u64,
    /// Commits that failed (their ops were answered `unavailable`).
    pub commit_failures: u64,
    /// Supervised restarts of document actors.
    pub document_restarts: u64,
    /// Document loads (from snapshot + log), since the start; the
    /// documents loaded now are the gauge `collab_documents_loaded`.
    pub documents_loaded: u64,
    /// Sessions dropped because their client read too slowly.
    pub slow_sessions_dropped: u64,
    /// Messages refused for being over `documents.max_message_bytes`
    /// (each closed its session with 1009).
    pub messages_too_large: u64,
    /// Times a session stopped reading its client for being ahead of
    /// `limits.ops_per_sec_per_session` or `bytes_per_sec_per_session`.
    pub sessions_throttled: u64,
    /// Ops refused because the document would grow past
    /// `limits.max_document_bytes` or `max_pending_update_bytes`.
    pub ops_refused_document_too_large: u64,
    /// Entries of awareness updates dropped because their client id
    /// belongs to another session (an attempt to change or remove someone
    /// else's presence); the rest of each update was applied.
    pub awareness_ignored: u64,
    /// Webhook requests answered 2xx (`collab_webhook_deliveries_total{outcome="delivered"}`).
    pub webhooks_delivered: u64,
    /// Webhook requests that failed (non-2xx, no connection, timeout) and
    /// are retried (`outcome="retried"`).
    pub webhooks_retried: u64,
    /// Webhook deliveries given up after `webhooks.max_attempts` failed
    /// requests (`outcome="failed"`).
    pub webhooks_failed: u64,
}

/// Counts one open WebSocket session in `collab_sessions{route}` until
/// dropped (with the session).
#[must_use = "the session is counted only while this lives"]
#[derive(Debug)]
pub struct LiveSession(Gauge);

/// Counts one document in `collab_documents_loaded` until dropped (when
/// the document restarts, fails, unloads or its actor goes away).
#[must_use = "the document is counted only while this lives"]
#[derive(Debug)]
pub struct LoadedDocument(Gauge);

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Drop for LoadedDocument {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let series = Series::new();
        let registry = series.registry();
        Metrics { series, registry }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Metrics").field(&self.snapshot()).finish()
    }
}

impl Metrics {
    /// A transaction of `ops` ops (and a snapshot, if `snapshot`) committed.
    pub fn commit(&self, ops: usize, snapshot: bool) {
        let s = &self.series;
        s.commits_failing.set(0);
        s.commits.inc();
        s.ops_committed.inc_by(ops as u64);
        if ops > 0 {
            s.commit_batch_ops.observe(ops as f64);
        }
        if snapshot {
            s.snapshots_written.inc();
        }
    }

    /// A commit transaction (successful or not) took `took`.
    pub fn commit_took(&self, took: Duration) {
        self.series.commit_duration.observe(took.as_secs_f64());
    }

    pub fn commit_failed(&self) {
        self.series.commits_failing.set(1);
        self.series.commit_failures.inc();
    }

    /// Whether the latest commit failed (and nothing wrote since).
    pub fn commits_failing(&self) -> bool {
        self.series.commits_failing.get() != 0
    }

    /// A write went through again (a readiness probe succeeded).
    pub fn commits_recovered(&self) {
        self.series.commits_failing.set(0);
    }

    pub fn document_restarted(&self) {
        self.series.document_restarts.inc();
    }

    /// A document was loaded: counted as loaded while the answer lives.
    pub fn document_loaded(&self) -> LoadedDocument {
        self.series.document_loads.inc();
        self.series.documents_loaded.inc();
        LoadedDocument(self.series.documents_loaded.clone())
    }

    /// A WebSocket session of `route` opened: counted while the answer lives.
    pub fn session_opened(&self, route: SessionRoute) -> LiveSession {
        let gauge = self
            .series
            .sessions
            .get_or_create(&RouteLabel { route })
            .clone();
        gauge.inc();
        LiveSession(gauge)
    }

    /// A session joined a document, catching up by `recovery`.
    pub fn joined(&self, recovery: JoinRecovery) {
        self.series
            .joins
            .get_or_create(&RecoveryLabel { recovery })
            .inc();
    }

    /// A connection, join or op was refused for `reason`.
    pub fn refused(&self, reason: RefusalKind) {
        self.series
            .refusals
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn slow_session_dropped(&self) {
        self.series.slow_sessions_dropped.inc();
    }

    /// A message over the size limit (a `too_large` refusal too).
    pub fn message_too_large(&self) {
        self.series.messages_too_large.inc();
        self.refused(RefusalKind::TooLarge);
    }

    pub fn session_throttled(&self) {
        self.series.sessions_throttled.inc();
    }

    /// An op refused for its document's size (the refusal itself is
    /// counted with the others, by [`Metrics::refused`]).
    pub fn op_refused_document_too_large(&self) {
        self.series.ops_refused_document_too_large.inc();
    }

    pub fn awareness_ignored(&self, entries: usize) {
        self.series.awareness_ignored.inc_by(entries as u64);
    }

    /// An HTTP request matched the route `pattern` and was answered `status`.
    pub fn http_request(&self, pattern: &str, status: u16) {
        let labels = HttpLabels {
            route: pattern.to_owned(),
            status,
        };
        self.series.http_requests.get_or_create(&labels).inc();
    }

    /// One webhook delivery attempt ended with `outcome`.
    pub fn webhook_delivery(&self, outcome: WebhookOutcome) {
        self.series
            .webhook_deliveries
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let s = &self.series;
        MetricsSnapshot {
            commits: s.commits.get(),
            ops_committed: s.ops_committed.get(),
            snapshots_written: s.snapshots_written.get(),
            commit_failures: s.commit_failures.get(),
            document_restarts: s.document_restarts.get(),
            documents_loaded: s.document_loads.get(),
            slow_sessions_dropped: s.slow_sessions_dropped.get(),
            messages_too_large: s.messages_too_large.get(),
            sessions_throttled: s.sessions_throttled.get(),
            ops_refused_document_too_large: s.ops_refused_document_too_large.get(),
            awareness_ignored: s.awareness_ignored.get(),
            webhooks_delivered: self.webhook_count(WebhookOutcome::Delivered),
            webhooks_retried: self.webhook_count(WebhookOutcome::Retried),
            webhooks_failed: self.webhook_count(WebhookOutcome::Failed),
        }
    }

    fn webhook_count(&self, outcome: WebhookOutcome) -> u64 {
        self.series
            .webhook_deliveries
            .get_or_create(&OutcomeLabel { outcome })
            .get()
    }

    /// Every series in the Prometheus text format (version 0.0.4, served
    /// as [`CONTENT_TYPE`]).
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut text = String::with_capacity(8 << 10);
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests;
