//! The label values of the labelled series: small closed sets, so that
//! no series can grow without bound (there is no per-document label).

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// Which WebSocket route a session came through (`collab_sessions{route}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionRoute {
    /// `/ws/{id}`, the native protocol.
    Native,
    /// `/yjs/{id}`, y-websocket.
    Yjs,
}

/// How a joining session caught up (`collab_joins_total{recovery}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinRecovery {
    /// The ops it missed, from memory or the op log.
    Replay,
    /// The whole state (a new client, one too far behind, or another epoch).
    Snapshot,
    /// y-websocket: the state vectors are exchanged (sync steps 1 and 2).
    Sync,
}

/// Why the engine refused a connection, a join or an op
/// (`collab_refusals_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// No valid credentials (401).
    Unauthorized,
    /// Credentials that do not allow it (403, `forbidden`).
    Forbidden,
    /// Over a per-address or per-document limit (429).
    RateLimited,
    /// A message or a document over its size limit (1009, 4413).
    TooLarge,
    /// The engine could not take it now: storage failed, the document is
    /// failed or restarting, the server is full or shutting down (503, 1013).
    Unavailable,
}

/// What became of one webhook delivery attempt
/// (`collab_webhook_deliveries_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The attempt failed and will be retried.
    Retried,
    /// The attempt failed and no retry is left: the delivery is given up.
    Failed,
}

impl SessionRoute {
    pub const ALL: [SessionRoute; 2] = [SessionRoute::Native, SessionRoute::Yjs];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionRoute::Native => "native",
            SessionRoute::Yjs => "yjs",
        }
    }
}

impl JoinRecovery {
    pub const ALL: [JoinRecovery; 3] = [
        JoinRecovery::Replay,
        JoinRecovery::Snapshot,
        JoinRecovery::Sync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JoinRecovery::Replay => "replay",
            JoinRecovery::Snapshot => "snapshot",
            JoinRecovery::Sync => "sync",
        }
    }
}

impl RefusalKind {
    pub const ALL: [RefusalKind; 5] = [
        RefusalKind::Unauthorized,
        RefusalKind::Forbidden,
        RefusalKind::RateLimited,
        RefusalKind::TooLarge,
        RefusalKind::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Unauthorized => "unauthorized",
            RefusalKind::Forbidden => "forbidden",
            RefusalKind::RateLimited => "rate_limited",
            RefusalKind::TooLarge => "too_large",
            RefusalKind::Unavailable => "unavailable",
        }
    }

    /// The kind of an HTTP refusal with `status` (`None`: not one counted,
    /// e.g. 400 for a malformed request).
    pub fn of_status(status: u16) -> Option<RefusalKind> {
        match status {
            401 => Some(RefusalKind::Unauthorized),
            403 => Some(RefusalKind::Forbidden),
            413 => Some(RefusalKind::TooLarge),
            429 => Some(RefusalKind::RateLimited),
            503 => Some(RefusalKind::Unavailable),
            _ => None,
        }
    }
}

impl WebhookOutcome {
    pub const ALL: [WebhookOutcome; 3] = [
        WebhookOutcome::Delivered,
        WebhookOutcome::Retried,
        WebhookOutcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Delivered => "delivered",
            WebhookOutcome::Retried => "retried",
            WebhookOutcome::Failed => "failed",
        }
    }
}

macro_rules! label_value {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    )*};
}

label_value!(SessionRoute, JoinRecovery, RefusalKind, WebhookOutcome);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RouteLabel {
    pub route: SessionRoute,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RecoveryLabel {
    pub recovery: JoinRecovery,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ReasonLabel {
    pub reason: RefusalKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct OutcomeLabel {
    pub outcome: WebhookOutcome,
}

/// `collab_http_requests_total{route, status}`: `route` is the matched
/// pattern (`/ws/{document_id:.*}`), never the path, so the number of
/// series is bounded by the routes times the statuses they answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct HttpLabels {
    pub route: String,
    pub status: u16,
}
