//! What a document (or the manager) tells its subscribers: the one message
//! type a subscriber must accept, so documents hold a
//! `Recipient<DocumentEvent>` and depend on no session type. WebSocket
//! sessions of either protocol and non-WebSocket listeners (see
//! [`super::Subscribe`]) get the same events.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix::Message;
use bytes::Bytes;

use crate::vocabulary::{CommittedOp, Refusal};

/// Answer to a `hello`, followed by how the client catches up.
#[derive(Debug)]
pub struct Welcome {
    pub document_id: Arc<str>,
    pub epoch: Arc<str>,
    /// Head at the moment of joining; the session's stream continues at `server_seq + 1`.
    pub server_seq: u64,
    /// Highest `client_op_id` in the log for this client (None: never wrote).
    pub last_client_op_id: Option<u64>,
}

/// How a joining client is brought up to date.
#[derive(Debug)]
pub enum CatchUp {
    /// Every op after the client's `last_seen_server_seq`, in order.
    Replay { ops: Vec<Arc<CommittedOp>> },
    /// The full state at `server_seq` (base64 of a Yjs v1 update).
    Snapshot { server_seq: u64, state: Arc<str> },
    /// y-websocket: the document's state vector (v1), for sync step 1; the
    /// client's own sync step 1 is answered with [`DocumentEvent::SyncStep2`].
    StateVector { state_vector: Bytes },
}

/// An event for one subscriber. Events from one document arrive in the
/// order the document sent them, which is `server_seq` order.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum DocumentEvent {
    /// The join succeeded: send `welcome`, then the catch-up, then the
    /// current awareness states (if any).
    Welcome {
        welcome: Welcome,
        catch_up: CatchUp,
        awareness: Option<Bytes>,
    },
    /// Ops just committed, in `server_seq` order: `ack` the session's own
    /// (`origin`), `op` the others'. Shared by every subscriber.
    Committed {
        ops: Arc<[Arc<CommittedOp>]>,
        /// Counts these ops in the session's backlog until the event is
        /// handled (dropped).
        ticket: BacklogTicket,
    },
    /// A resent op that is already in the log.
    DuplicateAck {
        client_op_id: u64,
        server_seq: Option<u64>,
    },
    /// Something the session sent was refused: the op `client_op_id`, or
    /// (`None`) the session as a whole.
    Refused {
        refusal: Refusal,
        client_op_id: Option<u64>,
    },
    /// Answer to a y-websocket sync step 1: what the client lacks (v1 update).
    SyncStep2 { update: Bytes },
    /// Awareness states changed (y-protocols awareness update).
    Awareness { update: Bytes },
    /// An awareness update of the session was refused as a whole (over
    /// `limits.max_awareness_clients_per_session`); `reason` names the limit.
    AwarenessRefused { reason: String },
    /// Close the connection with this WebSocket close code.
    Close { code: u16, reason: String },
}

/// How many committed ops, and how many bytes of their updates, a
/// document has sent to a subscriber that it has not handled yet. A
/// session whose client reads too slowly stops handling its mailbox (the
/// socket does not drain), so its backlog grows; past
/// `documents.max_session_backlog_ops` or `limits.max_session_backlog_bytes`
/// the document drops it.
#[derive(Debug, Clone, Default)]
pub struct Backlog(Arc<BacklogCounts>);

#[derive(Debug, Default)]
struct BacklogCounts {
    ops: AtomicUsize,
    bytes: AtomicUsize,
}

/// How far behind a subscriber may fall.
#[derive(Debug, Clone, Copy)]
pub struct BacklogLimits {
    pub ops: usize,
    pub bytes: usize,
}

impl Backlog {
    /// Ops sent and not yet handled.
    pub fn len(&self) -> usize {
        self.0.ops.load(Ordering::Relaxed)
    }

    /// Bytes of the updates of those ops.
    pub fn bytes(&self) -> usize {
        self.0.bytes.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `ops` more ops of `bytes` bytes would stay within `limits`.
    pub fn has_room(&self, ops: usize, bytes: usize, limits: BacklogLimits) -> bool {
        self.len() + ops <= limits.ops && self.bytes() + bytes <= limits.bytes
    }

    /// Counts `ops` more ops of `bytes` bytes until the returned ticket is
    /// dropped.
    pub fn ticket(&self, ops: usize, bytes: usize) -> BacklogTicket {
        self.0.ops.fetch_add(ops, Ordering::Relaxed);
        self.0.bytes.fetch_add(bytes, Ordering::Relaxed);
        BacklogTicket {
            counts: self.0.clone(),
            ops,
            bytes,
        }
    }
}

/// Part of a [`Backlog`], released when the event carrying it is dropped.
#[derive(Debug)]
pub struct BacklogTicket {
    counts: Arc<BacklogCounts>,
    ops: usize,
    bytes: usize,
}

impl BacklogTicket {
    /// A ticket that counts nothing (to stand in for one taken out of an
    /// event).
    pub fn detached() -> Self {
        Backlog::default().ticket(0, 0)
    }
}

impl Drop for BacklogTicket {
    fn drop(&mut self) {
        self.counts.ops.fetch_sub(self.ops, Ordering::Relaxed);
        self.counts.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_count_until_dropped() {
        let backlog = Backlog::default();
        let a = backlog.ticket(3, 300);
        let b = backlog.ticket(2, 20);
        assert_eq!((backlog.len(), backlog.bytes()), (5, 320));
        let limits = BacklogLimits { ops: 6, bytes: 330 };
        assert!(backlog.has_room(1, 10, limits));
        assert!(!backlog.has_room(2, 0, limits), "ops");
        assert!(!backlog.has_room(1, 11, limits), "bytes");
        drop(a);
        assert_eq!((backlog.len(), backlog.bytes()), (2, 20));
        drop(b);
        assert!(backlog.is_empty());
        assert_eq!(backlog.bytes(), 0);
    }
}
