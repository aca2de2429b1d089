//! The shared vocabulary: the words every layer of the engine uses, and
//! nothing else. This module depends on no other module of the crate.
//!
//! - [`DocumentId`], [`SessionId`]: who is who;
//! - [`CommittedOp`]: an op as it is logged, committed and broadcast, with
//!   the encodings the wire protocols share ([`Frame`], [`WireFormat`]);
//! - [`JoinMode`]: how a joining session catches up;
//! - [`Refusal`], [`JoinError`]: typed refusals that cross layers;
//! - [`close_code`]: the WebSocket close codes the engine uses;
//! - [`validate_document_id`], [`validate_client_id`]: which document ids,
//!   client ids and client op ids exist.

mod access;
mod client;
pub mod close_code;
mod document_id;
mod op;
mod refusal;

use std::sync::Arc;

pub use access::{Access, Permission};
pub use client::{
    InvalidClient, MAX_CLIENT_ID_CHARS, MAX_CLIENT_OP_ID, RESTORE_CLIENT_ID, validate_client_id,
    validate_client_op_id,
};
pub use document_id::{InvalidDocumentId, MAX_DOCUMENT_ID_BYTES, validate_document_id};
pub use op::{CommittedOp, Frame, WireFormat};
pub use refusal::{JoinError, Refusal, RefusalReason};

/// A document's id, as taken from the URL (see [`validate_document_id`]).
pub type DocumentId = Arc<str>;

/// Identifies one WebSocket session within an engine.
pub type SessionId = u64;

/// How a session catches up when it joins a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinMode {
    /// Native protocol: replay after `last_seen_server_seq`, or a snapshot.
    Native {
        last_seen_server_seq: Option<u64>,
        epoch: Option<String>,
    },
    /// y-websocket: the document's state vector (for sync step 1), then the
    /// client's own sync step 1 is answered with the difference.
    Yjs,
}
