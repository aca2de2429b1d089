//! Every series of an engine: the `prometheus-client` metric objects (each
//! an atomic or a small lock, shared by handle), their names, help texts
//! and buckets. docs/operations.md lists the same series.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::labels::{
    HttpLabels, JoinRecovery, OutcomeLabel, ReasonLabel, RecoveryLabel, RefusalKind, RouteLabel,
    SessionRoute, WebhookOutcome,
};

/// Upper bounds of `collab_commit_duration_seconds`: 0.5 ms to 10 s.
const COMMIT_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metric objects. Cloning one clones its handle (the same atomic).
#[derive(Debug)]
pub(super) struct Series {
    pub commits: Counter,
    pub ops_committed: Counter,
    pub snapshots_written: Counter,
    pub commit_failures: Counter,
    /// 1 while the latest commit failed and nothing wrote since, else 0.
    pub commits_failing: Gauge,
    pub commit_duration: Histogram,
    pub commit_batch_ops: Histogram,
    pub document_loads: Counter,
    pub documents_loaded: Gauge,
    pub document_restarts: Counter,
    pub sessions: Family<RouteLabel, Gauge>,
    pub joins: Family<RecoveryLabel, Counter>,
    pub slow_sessions_dropped: Counter,
    pub refusals: Family<ReasonLabel, Counter>,
    pub messages_too_large: Counter,
    pub ops_refused_document_too_large: Counter,
    pub sessions_throttled: Counter,
    pub awareness_ignored: Counter,
    pub http_requests: Family<HttpLabels, Counter>,
    pub webhook_deliveries: Family<OutcomeLabel, Counter>,
}

impl Series {
    /// Every series at zero, with every label value of the closed label
    /// sets present (so each shows up, at 0, from the first scrape).
    pub fn new() -> Series {
        let series = Series {
            commits: Counter::default(),
            ops_committed: Counter::default(),
            snapshots_written: Counter::default(),
            commit_failures: Counter::default(),
            commits_failing: Gauge::default(),
            commit_duration: Histogram::new(COMMIT_SECONDS),
            // 1 to 2048 ops: a transaction takes at most 2048.
            commit_batch_ops: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            document_loads: Counter::default(),
            documents_loaded: Gauge::default(),
            document_restarts: Counter::default(),
            sessions: Family::default(),
            joins: Family::default(),
            slow_sessions_dropped: Counter::default(),
            refusals: Family::default(),
            messages_too_large: Counter::default(),
            ops_refused_document_too_large: Counter::default(),
            sessions_throttled: Counter::default(),
            awareness_ignored: Counter::default(),
            http_requests: Family::default(),
            webhook_deliveries: Family::default(),
        };
        for route in SessionRoute::ALL {
            series.sessions.get_or_create_owned(&RouteLabel { route });
        }
        for recovery in JoinRecovery::ALL {
            series
                .joins
                .get_or_create_owned(&RecoveryLabel { recovery });
        }
        for reason in RefusalKind::ALL {
            series.refusals.get_or_create_owned(&ReasonLabel { reason });
        }
        for outcome in WebhookOutcome::ALL {
            series
                .webhook_deliveries
                .get_or_create_owned(&OutcomeLabel { outcome });
        }
        series
    }

    /// A registry of this engine's own holding every series (counters get
    /// their `_total` suffix from the encoder).
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        let s = self;
        r.register(
            "collab_ops_committed",
            "Ops appended to the op log",
            s.ops_committed.clone(),
        );
        r.register(
            "collab_commits",
            "Transactions committed to the op log (group commits, snapshot-only ones included)",
            s.commits.clone(),
        );
        r.register_with_unit(
            "collab_commit_duration",
            "Time of one commit transaction, successful or not",
            Unit::Seconds,
            s.commit_duration.clone(),
        );
        r.register(
            "collab_commit_batch_ops",
            "Ops per committed transaction (the group-commit batch)",
            s.commit_batch_ops.clone(),
        );
        r.register(
            "collab_commit_failures",
            "Commits that failed (their ops were answered unavailable)",
            s.commit_failures.clone(),
        );
        r.register(
            "collab_commits_failing",
            "1 while the latest commit failed and no write has succeeded since (then /ready answers 503)",
            s.commits_failing.clone(),
        );
        r.register(
            "collab_snapshots_written",
            "Snapshots written to storage",
            s.snapshots_written.clone(),
        );
        r.register(
            "collab_documents_loaded",
            "Documents loaded in memory now",
            s.documents_loaded.clone(),
        );
        r.register(
            "collab_document_loads",
            "Loads of a document from snapshot and op log",
            s.document_loads.clone(),
        );
        r.register(
            "collab_document_restarts",
            "Supervised restarts of document actors (panic, log head mismatch, failed load)",
            s.document_restarts.clone(),
        );
        r.register(
            "collab_sessions",
            "WebSocket sessions open now, by route",
            s.sessions.clone(),
        );
        r.register(
            "collab_joins",
            "Sessions joined to a document, by how they caught up",
            s.joins.clone(),
        );
        r.register(
            "collab_slow_sessions_dropped",
            "Sessions and listeners dropped (close 1013) for reading too slowly",
            s.slow_sessions_dropped.clone(),
        );
        r.register(
            "collab_refusals",
            "Connections, joins and ops refused, by reason",
            s.refusals.clone(),
        );
        r.register(
            "collab_messages_too_large",
            "Messages over documents.max_message_bytes (each closed its session with 1009)",
            s.messages_too_large.clone(),
        );
        r.register(
            "collab_ops_refused_document_too_large",
            "Ops refused for taking their document past limits.max_document_bytes or max_pending_update_bytes",
            s.ops_refused_document_too_large.clone(),
        );
        r.register(
            "collab_sessions_throttled",
            "Times a session stopped being read for being ahead of its ops or bytes rate",
            s.sessions_throttled.clone(),
        );
        r.register(
            "collab_awareness_entries_ignored",
            "Awareness entries dropped for naming another session's client id",
            s.awareness_ignored.clone(),
        );
        r.register(
            "collab_http_requests",
            "HTTP requests answered by the engine's routes, by route pattern and status",
            Listed(s.http_requests.clone()),
        );
        r.register(
            "collab_webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            s.webhook_deliveries.clone(),
        );
        r
    }
}

/// A family whose label values are not known in advance, listed with its
/// `# HELP` and `# TYPE` even before its first sample (`prometheus-client`
/// leaves an empty family out, and a scrape should show every series).
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}
