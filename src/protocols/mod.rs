//! The wire protocols of a session, sans-IO: no actix, no sockets.
//!
//! A protocol turns what arrives on the WebSocket (text or binary frames)
//! and what the document sends (a [`DocumentEvent`]) into [`Action`]s:
//! frames to send, a join, ops to submit, awareness to relay, a close. The
//! transport (`crate::transport`) carries the actions out. Two protocols
//! exist: [`native`] (JSON, `GET /ws/{id}`) and [`yjs`] (y-websocket,
//! `GET /yjs/{id}`); both reach the same document actors, so a document can
//! be edited through both at once. Each builds its own frames from the
//! shared vocabulary; the document core knows neither.

pub mod native;
pub mod yjs;

use std::sync::Arc;

use bytes::Bytes;

use crate::configuration::LimitsSettings;
use crate::crdt::ValidUpdate;
use crate::document::DocumentEvent;
use crate::metrics::SessionRoute;
use crate::vocabulary::{Access, Frame, JoinError, JoinMode, SessionId};

/// The `[limits]` a protocol checks itself, on the session's thread,
/// before anything reaches the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolLimits {
    /// `limits.max_awareness_state_bytes`: largest JSON state of one
    /// awareness client.
    pub max_awareness_state_bytes: usize,
}

impl ProtocolLimits {
    pub fn from_settings(limits: &LimitsSettings) -> Self {
        ProtocolLimits {
            max_awareness_state_bytes: limits.max_awareness_state_bytes,
        }
    }
}

impl Default for ProtocolLimits {
    /// The production defaults of `[limits]`.
    fn default() -> Self {
        ProtocolLimits::from_settings(&LimitsSettings::default())
    }
}

/// A join the protocol asks for.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub client_id: Arc<str>,
    pub mode: JoinMode,
    /// The client id is new (generated for this connection): there is no
    /// history to look up.
    pub fresh_client: bool,
}

/// What the transport must do, in order.
#[derive(Debug)]
pub enum Action {
    /// Send a text or binary WebSocket message.
    Send(Frame),
    /// Join the document; no further frame is read until it is answered.
    Join(JoinRequest),
    /// Submit an op to the document.
    Submit {
        client_op_id: u64,
        update: ValidUpdate,
        /// Drop it silently if it adds nothing to the document (y-websocket
        /// clients resend what the server has, e.g. their whole delete set).
        skip_if_redundant: bool,
    },
    /// Relay an awareness update (y-protocols encoding) to the others;
    /// with `echo`, back to this session too (y-websocket providers count
    /// the echo as a sign of life of the connection).
    Awareness { update: Bytes, echo: bool },
    /// Ask for every awareness state.
    QueryAwareness,
    /// y-websocket sync step 1: ask for the difference to this state vector.
    SyncStep1 { state_vector: Bytes },
    /// Close the connection.
    Close { code: u16, reason: String },
}

/// A session's wire protocol. See the module docs.
pub trait SessionProtocol: Unpin + 'static {
    /// Name for log lines.
    const NAME: &'static str;
    /// Its route in the metrics (`collab_sessions{route}`).
    const ROUTE: SessionRoute;

    /// The protocol of a new session with `access` (a read-only session
    /// sends no op to the document), checking `limits`.
    fn for_access(access: &Access, limits: ProtocolLimits) -> Self
    where
        Self: Sized;

    /// The connection is open.
    fn on_open(&mut self, out: &mut Vec<Action>);
    /// A complete text message arrived.
    fn on_text(&mut self, text: &str, out: &mut Vec<Action>);
    /// A complete binary message arrived.
    fn on_binary(&mut self, data: &[u8], out: &mut Vec<Action>);
    /// A message exceeded `limit` bytes; the transport closes after `out`.
    fn on_too_large(&mut self, limit: usize, out: &mut Vec<Action>);
    /// The join was refused.
    fn on_join_failed(&mut self, error: JoinError, out: &mut Vec<Action>);
    /// No join happened within the client timeout (the native client sent
    /// no `hello`); the transport closes with 1008 after `out`.
    fn on_join_timeout(&mut self, out: &mut Vec<Action>);
    /// The document sent `event` to this session (`own` is its id).
    fn on_event(&mut self, own: SessionId, event: DocumentEvent, out: &mut Vec<Action>);
}
