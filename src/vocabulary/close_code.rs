//! WebSocket close codes the engine uses (RFC 6455 section 7.4.1). The
//! document core decides when a session ends and with which code; the
//! transport sends the close frame.

/// The server is shutting down, or the client was silent too long.
pub const GOING_AWAY: u16 = 1001;
/// A message type the protocol does not know (y-websocket), or a text
/// frame where only binary ones are allowed.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A message that cannot be decoded (bad UTF-8, a truncated y-protocols
/// message, an undecodable state vector).
pub const INVALID_PAYLOAD: u16 = 1007;
/// The client broke the protocol (no `hello` first, second `hello`, bad version).
pub const POLICY_VIOLATION: u16 = 1008;
/// A message was larger than `documents.max_message_bytes`.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The server hit an unexpected condition.
pub const INTERNAL_ERROR: u16 = 1011;
/// The document restarted; reconnect with `last_seen_server_seq`.
pub const SERVICE_RESTART: u16 = 1012;
/// The document cannot be served right now, or an op was refused
/// (`unavailable`); reconnect (with back-off) and resend.
pub const TRY_AGAIN_LATER: u16 = 1013;

/// The session's token expired (its `exp` passed): get a new one and
/// reconnect with `last_seen_server_seq`.
pub const TOKEN_EXPIRED: u16 = 4401;
/// The session's access was revoked.
pub const ACCESS_REVOKED: u16 = 4403;
/// An op was refused because its document is too large
/// (`limits.max_document_bytes`, `limits.max_pending_update_bytes`).
pub const DOCUMENT_TOO_LARGE: u16 = 4413;
/// The document was deleted (`DELETE /api/documents/{id}`); a new
/// connection creates a new one, with a new epoch.
pub const DOCUMENT_DELETED: u16 = 4404;

/// Whether a close with `code` is the client's fault (worth an `info` log
/// line rather than `debug`).
pub fn is_client_error(code: u16) -> bool {
    matches!(
        code,
        UNSUPPORTED_DATA | INVALID_PAYLOAD | POLICY_VIOLATION | MESSAGE_TOO_BIG
    )
}
