//! Hocuspocus (v2+ wire format, as spoken by `@hocuspocus/provider` and
//! `@hocuspocus/server` 4.x): every message starts with the document name as
//! a `varString`, then a `varUint` message type, then the type's body. Sync
//! bodies are y-protocols sync messages (`varUint` step, `varUint8Array`).
//!
//! The provider opens with an auth message
//! `[docName, Auth(2), Token(0), varString token, varString providerVersion]`
//! (`AuthenticationMessage` in the provider); an open server (no
//! `onAuthenticate` hook) answers `[docName, Auth(2), Authenticated(2),
//! varString scope]`. Every applied update is answered with
//! `[docName, SyncStatus(8), varUint 1]`.

use crate::varint::{DecodeError, Reader, write_var_bytes, write_var_string, write_var_uint};

/// `MessageType.Sync`.
pub const MSG_SYNC: u64 = 0;
/// `MessageType.Auth`.
pub const MSG_AUTH: u64 = 2;
/// `MessageType.SyncReply`: a sync message that must not trigger another step 1.
pub const MSG_SYNC_REPLY: u64 = 4;
/// `MessageType.SyncStatus`: the server applied (1) or refused (0) an update.
pub const MSG_SYNC_STATUS: u64 = 8;

/// `AuthMessageType.Token`.
pub const AUTH_TOKEN: u64 = 0;
/// `AuthMessageType.PermissionDenied`.
pub const AUTH_PERMISSION_DENIED: u64 = 1;
/// `AuthMessageType.Authenticated`.
pub const AUTH_AUTHENTICATED: u64 = 2;

/// The provider version sent in the auth message (the provider we mimic).
pub const PROVIDER_VERSION: &str = "4.7.0";

/// The auth message a provider sends first for `doc`.
pub fn encode_auth(doc: &str, token: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(doc.len() + token.len() + 16);
    write_var_string(&mut out, doc);
    write_var_uint(&mut out, MSG_AUTH);
    write_var_uint(&mut out, AUTH_TOKEN);
    write_var_string(&mut out, token);
    write_var_string(&mut out, PROVIDER_VERSION);
    out
}

/// A sync message for `doc`: `[doc, Sync, step, varUint8Array(payload)]`.
pub fn encode_sync(out: &mut Vec<u8>, doc: &str, step: u64, payload: &[u8]) {
    write_var_string(out, doc);
    write_var_uint(out, MSG_SYNC);
    write_var_uint(out, step);
    write_var_bytes(out, payload);
}

/// A decoded server message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A sync (or sync reply) message: its step and payload.
    Sync {
        step: u64,
        payload: &'a [u8],
    },
    Authenticated,
    PermissionDenied(&'a [u8]),
    /// `SyncStatus`: whether the update was applied.
    SyncStatus(bool),
    /// Awareness and everything else.
    Other(u64),
}

/// Splits a message into its document name and body.
pub fn decode(payload: &[u8]) -> Result<(&[u8], Message<'_>), DecodeError> {
    let mut r = Reader::new(payload);
    let doc = r.var_string()?;
    let msg = match r.var_uint()? {
        MSG_SYNC | MSG_SYNC_REPLY => {
            let step = r.var_uint()?;
            Message::Sync {
                step,
                payload: r.var_bytes()?,
            }
        }
        MSG_AUTH => match r.var_uint()? {
            AUTH_AUTHENTICATED => Message::Authenticated,
            AUTH_PERMISSION_DENIED => Message::PermissionDenied(r.var_string()?),
            other => Message::Other(other),
        },
        MSG_SYNC_STATUS => Message::SyncStatus(r.var_uint()? == 1),
        other => Message::Other(other),
    };
    Ok((doc, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_message_matches_the_provider_bytes() {
        // writeVarString("d1"), writeVarUint(2), writeVarUint(0),
        // writeVarString("tok"), writeVarString("4.7.0")
        let mut expected = vec![2, b'd', b'1', 2, 0, 3, b't', b'o', b'k', 5];
        expected.extend_from_slice(b"4.7.0");
        assert_eq!(encode_auth("d1", "tok"), expected);
    }

    #[test]
    fn sync_messages_round_trip() {
        let mut out = Vec::new();
        encode_sync(&mut out, "doc", 2, &[1, 2, 3]);
        assert_eq!(out, [3, b'd', b'o', b'c', 0, 2, 3, 1, 2, 3]);
        assert_eq!(
            decode(&out),
            Ok((
                &b"doc"[..],
                Message::Sync {
                    step: 2,
                    payload: &[1, 2, 3]
                }
            ))
        );
    }

    #[test]
    fn server_replies_decode() {
        // [doc, Auth, Authenticated, "read-write"]
        let mut m = vec![1, b'x', 2, 2, 10];
        m.extend_from_slice(b"read-write");
        assert_eq!(decode(&m), Ok((&b"x"[..], Message::Authenticated)));
        // [doc, Auth, PermissionDenied, "no"]
        let m = [1, b'x', 2, 1, 2, b'n', b'o'];
        assert_eq!(
            decode(&m),
            Ok((&b"x"[..], Message::PermissionDenied(b"no")))
        );
        // [doc, SyncStatus, 1]
        assert_eq!(
            decode(&[1, b'x', 8, 1]),
            Ok((&b"x"[..], Message::SyncStatus(true)))
        );
        // [doc, SyncReply, step 1, sv]
        assert_eq!(
            decode(&[1, b'x', 4, 0, 1, 0]),
            Ok((
                &b"x"[..],
                Message::Sync {
                    step: 0,
                    payload: &[0]
                }
            ))
        );
        assert_eq!(decode(&[1, b'x', 1, 0]), Ok((&b"x"[..], Message::Other(1))));
        assert_eq!(decode(&[5, b'x']), Err(DecodeError));
    }
}
