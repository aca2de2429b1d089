//! `[limits]`: what one client, one address or one document may take, so
//! that no client can stall, starve or bloat the server for the others.
//! docs/protocol.md says how each limit is answered.

use serde::{Deserialize, Serialize};

/// `[limits]`. Defaults are for production; benchmarks and load tests
/// raise the ones in their way explicitly.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// WebSocket connections of the whole server; beyond it an upgrade
    /// gets 503 `server_full`.
    pub max_connections: usize,
    /// WebSocket connections from one IP address (plain HTTP requests do
    /// not count); beyond it an upgrade gets 429 `too_many_connections`.
    pub max_connections_per_ip: usize,
    /// Upgrades one IP address may make per second (a burst of as many is
    /// allowed); beyond it an upgrade gets 429 `too_many_upgrades`.
    pub upgrades_per_ip_per_sec: u32,
    /// Sessions of one document, both routes together; beyond it an
    /// upgrade gets 429 `document_full`.
    pub max_sessions_per_document: usize,
    /// Ops one session may submit per second, sustained; a burst of twice
    /// that is allowed. A faster client is slowed down: its socket is not
    /// read until it is within the rate again (nothing is refused).
    pub ops_per_sec_per_session: u32,
    /// Bytes of messages one session may send per second, sustained (a
    /// burst of twice that); enforced like `ops_per_sec_per_session`.
    pub bytes_per_sec_per_session: u64,
    /// Awareness updates of one session relayed per second (a burst of as
    /// many); the excess is coalesced: only the latest state of each client
    /// is relayed, at the next slot.
    pub awareness_per_sec_per_session: u32,
    /// Largest JSON state of one awareness client, in bytes; a larger one
    /// is refused with `invalid_awareness` (y-websocket: close 1007).
    pub max_awareness_state_bytes: usize,
    /// Awareness client ids one session may publish (and owns while joined:
    /// no other session may change them); updates for more are refused
    /// with `invalid_awareness` (y-websocket: close 1007).
    pub max_awareness_clients_per_session: usize,
    /// Encoded state of one document, in bytes (estimated from the last
    /// snapshot plus the updates since): an op that would take it past
    /// this is refused with `document_too_large` and the session closed
    /// with 4413.
    pub max_document_bytes: u64,
    /// Encoded bytes of updates that wait for missing dependencies, per
    /// document: an op that would take them past this is refused like one
    /// over `max_document_bytes`.
    pub max_pending_update_bytes: u64,
    /// Bytes of committed ops a session may be behind (its client reads
    /// too slowly), next to `documents.max_session_backlog_ops`; beyond
    /// either the session is dropped and closed with 1013.
    pub max_session_backlog_bytes: u64,
    /// Documents one IP address may create per minute (a document is
    /// created by its first op); beyond it joining a document that does
    /// not exist yet gets 429 `too_many_documents`.
    pub documents_created_per_ip_per_min: u32,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            max_connections: 10_000,
            max_connections_per_ip: 500,
            upgrades_per_ip_per_sec: 50,
            max_sessions_per_document: 500,
            ops_per_sec_per_session: 500,
            bytes_per_sec_per_session: 4 * 1024 * 1024,
            awareness_per_sec_per_session: 60,
            max_awareness_state_bytes: 64 * 1024,
            max_awareness_clients_per_session: 4,
            max_document_bytes: 256 * 1024 * 1024,
            max_pending_update_bytes: 4 * 1024 * 1024,
            max_session_backlog_bytes: 64 * 1024 * 1024,
            documents_created_per_ip_per_min: 120,
        }
    }
}

impl LimitsSettings {
    /// Limits out of the way of benchmarks and load tests (which say so):
    /// every count and rate as large as it can usefully be.
    pub fn unlimited() -> Self {
        LimitsSettings {
            max_connections: 1_000_000,
            max_connections_per_ip: 1_000_000,
            upgrades_per_ip_per_sec: 1_000_000,
            max_sessions_per_document: 1_000_000,
            ops_per_sec_per_session: 1_000_000,
            bytes_per_sec_per_session: 1 << 40,
            awareness_per_sec_per_session: 1_000_000,
            max_awareness_state_bytes: 1 << 30,
            max_awareness_clients_per_session: 1_000_000,
            max_document_bytes: 1 << 40,
            max_pending_update_bytes: 1 << 40,
            max_session_backlog_bytes: 1 << 40,
            documents_created_per_ip_per_min: 1_000_000,
        }
    }

    /// The first key whose value is 0 (every limit must allow something).
    pub(super) fn first_zero(&self) -> Option<&'static str> {
        let counts: [(&'static str, u64); 13] = [
            ("limits.max_connections", self.max_connections as u64),
            (
                "limits.max_connections_per_ip",
                self.max_connections_per_ip as u64,
            ),
            (
                "limits.upgrades_per_ip_per_sec",
                self.upgrades_per_ip_per_sec.into(),
            ),
            (
                "limits.max_sessions_per_document",
                self.max_sessions_per_document as u64,
            ),
            (
                "limits.ops_per_sec_per_session",
                self.ops_per_sec_per_session.into(),
            ),
            (
                "limits.bytes_per_sec_per_session",
                self.bytes_per_sec_per_session,
            ),
            (
                "limits.awareness_per_sec_per_session",
                self.awareness_per_sec_per_session.into(),
            ),
            (
                "limits.max_awareness_state_bytes",
                self.max_awareness_state_bytes as u64,
            ),
            (
                "limits.max_awareness_clients_per_session",
                self.max_awareness_clients_per_session as u64,
            ),
            ("limits.max_document_bytes", self.max_document_bytes),
            (
                "limits.max_pending_update_bytes",
                self.max_pending_update_bytes,
            ),
            (
                "limits.max_session_backlog_bytes",
                self.max_session_backlog_bytes,
            ),
            (
                "limits.documents_created_per_ip_per_min",
                self.documents_created_per_ip_per_min.into(),
            ),
        ];
        counts.iter().find(|(_, v)| *v == 0).map(|(k, _)| *k)
    }
}
