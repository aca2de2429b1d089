//! What the session manager answers: session registration, joins, messages
//! for a document by id, shutdown and statistics.

use std::sync::Arc;

use actix::prelude::*;

use crate::document::{DocumentActor, DocumentEvent, JoinDocument};
use crate::vocabulary::{JoinError, Refusal, SessionId};

/// A session announces itself (for shutdown and statistics).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterSession {
    pub session_id: SessionId,
    /// Who connected (access control on), and with which token, so that a
    /// revocation can close the session.
    pub subject: Option<Arc<str>>,
    pub token_id: Option<Arc<str>>,
    pub recipient: Recipient<DocumentEvent>,
}

/// Closes every session of a subject, or of one token (a revocation);
/// answers how many.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseSessionsOf {
    pub who: SessionsOf,
    pub code: u16,
    pub reason: String,
}

/// Whose sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsOf {
    Subject(String),
    Token(String),
}

/// A session is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterSession {
    pub session_id: SessionId,
}

/// A session asks to join `document_id`; on success it gets the document's
/// address for its ops.
#[derive(Message)]
#[rtype(result = "Result<Addr<DocumentActor>, JoinError>")]
pub struct Join {
    pub document_id: Arc<str>,
    pub request: JoinDocument,
}

/// Whether a [`ToDocument`] may load the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loading {
    /// Load the document if it is not loaded (reads, writes, subscriptions).
    LoadIfNeeded,
    /// Only a loaded document gets the message (closing its sessions, drills).
    OnlyIfLoaded,
}

/// Sends `message` to the document `document_id` and returns its answer;
/// refused while shutting down, while the document is marked failed, or
/// (with [`Loading::OnlyIfLoaded`]) when it is not loaded.
pub struct ToDocument<M> {
    pub document_id: Arc<str>,
    pub message: M,
    pub loading: Loading,
}

impl<M> Message for ToDocument<M>
where
    M: Message,
    M::Result: Send,
{
    type Result = Result<M::Result, Refusal>;
}

/// Graceful shutdown of every document and session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Counters for tests and operators.
#[derive(Message)]
#[rtype(result = "EngineStats")]
pub struct GetStats;

/// What the engine currently holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Documents loaded in memory (each with its actor).
    pub documents_loaded: usize,
    /// Open WebSocket sessions.
    pub sessions: usize,
}
