//! The document API: every message a document actor answers, and the
//! message it sends its manager. Any caller can use it, not only a
//! WebSocket session: sessions send the session messages straight to the
//! document's address once joined; everything else goes through the
//! `SessionManager` (which loads the document when needed, counts what it
//! forwards in [`Forwarded`] and refuses while shutting down).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;

use super::events::DocumentEvent;
use crate::crdt::ValidUpdate;
use crate::vocabulary::{Access, CommittedOp, JoinError, JoinMode, Refusal, SessionId};

/// Who submits an op.
#[derive(Debug, Clone)]
pub enum Submitter {
    /// A joined session: the op is its client's, its `ack` (or refusal)
    /// also comes as an event to the session, in seq order with the ops it
    /// receives.
    Session(SessionId),
    /// A caller without a session, writing as `client_id` (an HTTP
    /// handler, an import). Its ops of one `client_id` must be submitted
    /// one at a time (awaiting each answer): a refused op followed by an
    /// accepted later one would make a resend of the refused one look like
    /// a duplicate. `subject`: who writes (see [`Access::subject`]): a
    /// client id that belongs to another subject on the document is refused.
    Client {
        client_id: Arc<str>,
        subject: Option<Arc<str>>,
    },
}

/// Submits an op. Answered after its commit: `Committed`, or a refusal
/// (nothing accepted; resend later).
#[derive(Debug, Message)]
#[rtype(result = "Result<Committed, Refusal>")]
pub struct SubmitOp {
    pub submitter: Submitter,
    pub client_op_id: u64,
    pub update: ValidUpdate,
    /// Drop it silently when it adds nothing to the document.
    pub skip_if_redundant: bool,
}

/// An accepted op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The op's seq: always set for a new op (`duplicate: false`); for a
    /// duplicate, set when the server still knows it. `None` with
    /// `duplicate: true` is also the answer for an update that adds nothing
    /// to the document (`skip_if_redundant`): nothing was logged.
    pub server_seq: Option<u64>,
    /// The op was already in the log (a resend); it was not logged again.
    pub duplicate: bool,
}

/// A session joins the document (through the manager). Answered only after
/// the session has been sent its `welcome` and catch-up (through `recipient`).
#[derive(Message)]
#[rtype(result = "Result<(), JoinError>")]
pub struct JoinDocument {
    pub session_id: SessionId,
    pub client_id: Arc<str>,
    pub mode: JoinMode,
    /// The client id was generated for this connection: no history to read.
    pub fresh_client: bool,
    /// Who connects and what they may do (a read-only session's ops are
    /// refused; a client id belongs to the subject that first wrote with it).
    pub access: Access,
    pub recipient: Recipient<DocumentEvent>,
}

/// A session leaves (its connection closed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveDocument {
    pub session_id: SessionId,
}

/// A session publishes presence (a y-protocols awareness update).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RelayAwareness {
    pub session_id: SessionId,
    pub update: Bytes,
    /// Send the change back to the publishing session as well.
    pub echo: bool,
}

/// A session asks for every awareness state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueryAwareness {
    pub session_id: SessionId,
}

/// y-websocket sync step 1: the session wants what its state vector lacks.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncStateVector {
    pub session_id: SessionId,
    pub state_vector: Bytes,
}

/// Reads the whole state at the head, or with `state_vector` (a Yjs v1
/// state vector) only what it lacks. A state vector that does not decode
/// is refused as [`RefusalReason::Invalid`](crate::vocabulary::RefusalReason).
#[derive(Debug, Default, Message)]
#[rtype(result = "Result<StateAtHead, Refusal>")]
pub struct ReadState {
    pub state_vector: Option<Bytes>,
}

/// The committed state of a document.
#[derive(Debug, Clone)]
pub struct StateAtHead {
    pub epoch: Arc<str>,
    /// The head: `update` holds exactly the ops `1..=server_seq`.
    pub server_seq: u64,
    /// The whole state as one Yjs v1 update (or, for a [`ReadState`] with
    /// a state vector, what that state vector lacks).
    pub update: Bytes,
}

/// Most ops one [`ReadOps`] answers.
pub const MAX_OPS_PER_READ: usize = 10_000;

/// Reads the committed ops after `after`, oldest first, at most `limit`
/// (and at most [`MAX_OPS_PER_READ`]); from memory when the replay tail
/// holds them, from the op log otherwise.
#[derive(Debug, Message)]
#[rtype(result = "Result<OpsAfter, Refusal>")]
pub struct ReadOps {
    pub after: u64,
    pub limit: usize,
}

/// Answer to [`ReadOps`].
#[derive(Debug, Clone)]
pub struct OpsAfter {
    pub epoch: Arc<str>,
    /// Consecutive ops from `after + 1`.
    pub ops: Vec<Arc<CommittedOp>>,
    /// The head when the ops were read: more exist when the last op's seq
    /// is below it.
    pub head: u64,
}

/// Reads what a document is now.
#[derive(Debug, Message)]
#[rtype(result = "Result<DocumentInfo, Refusal>")]
pub struct ReadInfo;

/// Answer to [`ReadInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    pub epoch: Arc<str>,
    /// The head.
    pub server_seq: u64,
    /// The newest snapshot in storage (0: none).
    pub snapshot_seq: u64,
    /// Joined WebSocket sessions.
    pub sessions: usize,
    /// Subscribed listeners.
    pub listeners: usize,
}

/// Subscribes a listener that is not a session (a change feed, a
/// forwarder) to the document's committed ops. From the answer's
/// `server_seq` on, it gets every op after it in order, as
/// [`DocumentEvent::Committed`] events (ops before it are read with
/// [`ReadOps`]), and a [`DocumentEvent::Close`] when the document stops
/// serving it (restart 1012, unload or shutdown 1001, too slow 1013).
#[derive(Message)]
#[rtype(result = "Result<Subscribed, Refusal>")]
pub struct Subscribe {
    pub listener: Recipient<DocumentEvent>,
}

/// Answer to [`Subscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// Names the subscription for [`Unsubscribe`] (unique per document).
    pub listener_id: u64,
    pub epoch: Arc<str>,
    /// The head at subscription: events continue at `server_seq + 1`.
    pub server_seq: u64,
}

/// Ends a subscription.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub listener_id: u64,
}

/// Closes every session and listener of the document with `code` and
/// `reason` (deletion, revocation).
#[derive(Debug, Message)]
#[rtype(result = "ClosedSessions")]
pub struct CloseSessions {
    pub code: u16,
    pub reason: String,
}

/// Answer to [`CloseSessions`]: how many were closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClosedSessions {
    pub sessions: usize,
    pub listeners: usize,
}

/// Stop serving: accept nothing more, commit what is pending (and, for a
/// shutdown, snapshot), then close every session and listener with `code`
/// and `reason`. Answered when done.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Flush {
    /// Write a snapshot at the end (not worth it for a document about to
    /// be deleted).
    pub snapshot: bool,
    pub code: u16,
    pub reason: String,
}

impl Flush {
    /// Graceful shutdown: snapshot, close with 1001.
    pub fn shutdown() -> Self {
        Flush {
            snapshot: true,
            code: crate::vocabulary::close_code::GOING_AWAY,
            reason: "server shutting down".to_owned(),
        }
    }

    /// Before the document is deleted: close with 4404.
    pub fn deletion() -> Self {
        Flush {
            snapshot: false,
            code: crate::vocabulary::close_code::DOCUMENT_DELETED,
            reason: "document deleted".to_owned(),
        }
    }
}

/// The manager forgot this document: stop for good.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unload;

/// The panic drill: the document's actor panics inside this message's
/// handler, and restarts from storage as after any failure.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// A message the manager forwards. The document counts these, so the
/// manager can tell whether one is on its way to a document that asked to
/// unload (see [`UnloadRequest`]).
pub struct Forwarded<M> {
    pub message: M,
}

impl<M: Message> Message for Forwarded<M> {
    type Result = M::Result;
}

/// A document asks its manager to be forgotten: idle (granted only if no
/// forwarded message is in transit, i.e. the manager forwarded
/// `forwarded_seen`), or failed (`failed_for`: always granted, and the
/// document is refused for that long before it is tried again).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnloadRequest {
    pub document_id: Arc<str>,
    pub instance: u64,
    pub forwarded_seen: u64,
    pub failed_for: Option<Duration>,
}
