//! Engine-wide counters, shared by every document actor of an engine.
//!
//! Plain atomics: documents increment them on their own threads without
//! locking; [`Metrics::snapshot`] reads them for tests and operators.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Live counters (see [`MetricsSnapshot`] for their meaning).
#[derive(Debug, Default)]
pub struct Metrics {
    commits: AtomicU64,
    ops_committed: AtomicU64,
    snapshots_written: AtomicU64,
    commit_failures: AtomicU64,
    document_restarts: AtomicU64,
    documents_loaded: AtomicU64,
    slow_sessions_dropped: AtomicU64,
    messages_too_large: AtomicU64,
    sessions_throttled: AtomicU64,
    ops_refused_document_too_large: AtomicU64,
    awareness_ignored: AtomicU64,
    webhooks_delivered: AtomicU64,
    webhooks_retried: AtomicU64,
    webhooks_failed: AtomicU64,
    /// The latest commit of any document failed, and no commit (nor a
    /// readiness probe) has succeeded since.
    commits_failing: AtomicBool,
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
    /// Document loads (from snapshot + log).
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

impl Metrics {
    pub fn commit(&self, ops: usize, snapshot: bool) {
        self.commits_failing.store(false, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.ops_committed.fetch_add(ops as u64, Ordering::Relaxed);
        if snapshot {
            self.snapshots_written.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn commit_failed(&self) {
        self.commits_failing.store(true, Ordering::Relaxed);
        self.commit_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the latest commit failed (and nothing wrote since).
    pub fn commits_failing(&self) -> bool {
        self.commits_failing.load(Ordering::Relaxed)
    }

    /// A write went through again (a readiness probe succeeded).
    pub fn commits_recovered(&self) {
        self.commits_failing.store(false, Ordering::Relaxed);
    }

    pub fn document_restarted(&self) {
        self.document_restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn document_loaded(&self) {
        self.documents_loaded.fetch_add(1, Ordering::Relaxed);
    }

    pub fn slow_session_dropped(&self) {
        self.slow_sessions_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn message_too_large(&self) {
        self.messages_too_large.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_throttled(&self) {
        self.sessions_throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn op_refused_document_too_large(&self) {
        self.ops_refused_document_too_large
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn awareness_ignored(&self, entries: usize) {
        self.awareness_ignored
            .fetch_add(entries as u64, Ordering::Relaxed);
    }

    pub fn webhook_delivered(&self) {
        self.webhooks_delivered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn webhook_retried(&self) {
        self.webhooks_retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn webhook_failed(&self) {
        self.webhooks_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            commits: self.commits.load(Ordering::Relaxed),
            ops_committed: self.ops_committed.load(Ordering::Relaxed),
            snapshots_written: self.snapshots_written.load(Ordering::Relaxed),
            commit_failures: self.commit_failures.load(Ordering::Relaxed),
            document_restarts: self.document_restarts.load(Ordering::Relaxed),
            documents_loaded: self.documents_loaded.load(Ordering::Relaxed),
            slow_sessions_dropped: self.slow_sessions_dropped.load(Ordering::Relaxed),
            messages_too_large: self.messages_too_large.load(Ordering::Relaxed),
            sessions_throttled: self.sessions_throttled.load(Ordering::Relaxed),
            ops_refused_document_too_large: self
                .ops_refused_document_too_large
                .load(Ordering::Relaxed),
            awareness_ignored: self.awareness_ignored.load(Ordering::Relaxed),
            webhooks_delivered: self.webhooks_delivered.load(Ordering::Relaxed),
            webhooks_retried: self.webhooks_retried.load(Ordering::Relaxed),
            webhooks_failed: self.webhooks_failed.load(Ordering::Relaxed),
        }
    }
}
