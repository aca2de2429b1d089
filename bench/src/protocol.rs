//! The wire protocols the load generator speaks, behind one interface:
//! the URL path of a document, the handshake, the frame of an op, and a
//! cheap decoder for what the server sends.
//!
//! - `native`: Collab-Engine protocol v1 (`/ws/{doc}`, JSON text frames).
//! - `yjs`: y-websocket / y-protocols binary sync (`{prefix}/{doc}`).
//! - `hocuspocus`: y-protocols with the document-name prefix and auth.
//! - `raw`: y-protocols update frames without any handshake (the bare relay).

use std::io;

use base64::Engine as _;
use clap::ValueEnum;

use crate::conn::Conn;
use crate::hocuspocus;
use crate::varint::{DecodeError, Reader, write_var_bytes, write_var_uint};
use crate::ws::{self, RecvBuf};

/// y-protocols message type `messageSync`.
const Y_MESSAGE_SYNC: u64 = 0;
/// y-protocols sync steps.
pub const SYNC_STEP1: u64 = 0;
pub const SYNC_STEP2: u64 = 1;
pub const SYNC_UPDATE: u64 = 2;

/// An empty state vector (`varUint 0`) and an empty update.
const EMPTY_STATE_VECTOR: &[u8] = &[0];
const EMPTY_UPDATE: &[u8] = &[0, 0];

/// A wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Collab-Engine native protocol v1: `{url}/ws/{doc}` unless the URL has a path.
    Native,
    /// y-websocket: `{url}/{doc}` (Collab-Engine: pass `ws://host:port/yjs`).
    Yjs,
    /// Hocuspocus 4.x framing; connects to the URL as given.
    Hocuspocus,
    /// y-protocols update frames, no handshake (for the bare relay): `{url}/{doc}`.
    Raw,
}

impl Protocol {
    /// The request path for `doc` under the URL path `prefix`.
    pub fn path(self, prefix: &str, doc: &str) -> String {
        match self {
            Protocol::Native if prefix.is_empty() => format!("/ws/{doc}"),
            Protocol::Hocuspocus if prefix.is_empty() => "/".to_string(),
            Protocol::Hocuspocus => prefix.to_string(),
            _ => format!("{prefix}/{doc}"),
        }
    }

    /// Whether senders get a per-op acknowledgement (native `ack`,
    /// Hocuspocus `SyncStatus`).
    pub fn has_acks(self) -> bool {
        matches!(self, Protocol::Native | Protocol::Hocuspocus)
    }

    /// Appends the WebSocket frame of op `client_op_id` carrying `update`.
    pub fn encode_op_frame(self, out: &mut Vec<u8>, doc: &str, client_op_id: u64, update: &[u8]) {
        let mut payload = Vec::with_capacity(update.len() * 2 + 64);
        let opcode = match self {
            Protocol::Native => {
                payload.extend_from_slice(b"{\"type\":\"op\",\"client_op_id\":");
                payload.extend_from_slice(client_op_id.to_string().as_bytes());
                payload.extend_from_slice(b",\"update\":\"");
                payload.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(update)
                        .as_bytes(),
                );
                payload.extend_from_slice(b"\"}");
                ws::OP_TEXT
            }
            Protocol::Yjs | Protocol::Raw => {
                write_y_sync(&mut payload, SYNC_UPDATE, update);
                ws::OP_BINARY
            }
            Protocol::Hocuspocus => {
                hocuspocus::encode_sync(&mut payload, doc, SYNC_UPDATE, update);
                ws::OP_BINARY
            }
        };
        ws::encode_client_frame(out, opcode, &payload);
    }

    /// Performs the handshake of a fresh client `name` on `doc` and returns
    /// once it is synced (nothing to do for `raw`).
    pub async fn handshake(
        self,
        conn: &Conn,
        rb: &mut RecvBuf,
        doc: &str,
        name: &str,
    ) -> io::Result<()> {
        match self {
            Protocol::Raw => Ok(()),
            Protocol::Native => native_handshake(conn, rb, name).await,
            Protocol::Yjs | Protocol::Hocuspocus => y_handshake(self, conn, rb, doc).await,
        }
    }

    /// Decodes a server message cheaply (no allocation, no JSON parser).
    pub fn decode(self, opcode: u8, payload: &[u8]) -> Result<Incoming<'_>, DecodeError> {
        match self {
            Protocol::Native => {
                if opcode != ws::OP_TEXT {
                    return Ok(Incoming::Other);
                }
                Ok(decode_native(payload))
            }
            Protocol::Yjs | Protocol::Raw => {
                let mut r = Reader::new(payload);
                if r.var_uint()? != Y_MESSAGE_SYNC {
                    return Ok(Incoming::Other);
                }
                let step = r.var_uint()?;
                Ok(sync_incoming(step, r.var_bytes()?))
            }
            Protocol::Hocuspocus => Ok(match hocuspocus::decode(payload)?.1 {
                hocuspocus::Message::Sync { step, payload } => sync_incoming(step, payload),
                hocuspocus::Message::Authenticated => Incoming::Authenticated,
                hocuspocus::Message::PermissionDenied(why) => Incoming::Error(why),
                hocuspocus::Message::SyncStatus(true) => Incoming::Ack(None),
                hocuspocus::Message::SyncStatus(false) => Incoming::Error(b"SyncStatus(false)"),
                hocuspocus::Message::Other(_) => Incoming::Other,
            }),
        }
    }
}

/// A decoded server message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A Yjs v1 update from the server (sync update, or step 2 when `step2`).
    Update { update: &'a [u8], step2: bool },
    /// The server's sync step 1 (its state vector).
    SyncStep1,
    /// A native `op` of another client.
    NativeOp {
        client_id: &'a [u8],
        client_op_id: u64,
    },
    /// An acknowledgement of one of our ops (native: its `client_op_id`).
    Ack(Option<u64>),
    /// Native `welcome`; `snapshot_follows` when recovery is `snapshot`.
    Welcome { snapshot_follows: bool },
    /// Native `snapshot`.
    Snapshot,
    /// Hocuspocus accepted the auth message.
    Authenticated,
    /// An error the server reported (native `error`, Hocuspocus refusal).
    Error(&'a [u8]),
    /// Anything else (awareness, …).
    Other,
}

fn sync_incoming(step: u64, payload: &[u8]) -> Incoming<'_> {
    match step {
        SYNC_STEP1 => Incoming::SyncStep1,
        SYNC_STEP2 => Incoming::Update {
            update: payload,
            step2: true,
        },
        SYNC_UPDATE => Incoming::Update {
            update: payload,
            step2: false,
        },
        _ => Incoming::Other,
    }
}

/// Appends a y-websocket sync message `[messageSync, step, varUint8Array]`.
pub fn write_y_sync(out: &mut Vec<u8>, step: u64, payload: &[u8]) {
    write_var_uint(out, Y_MESSAGE_SYNC);
    write_var_uint(out, step);
    write_var_bytes(out, payload);
}

/// A y sync message in the framing of `protocol` (yjs or hocuspocus).
fn y_sync_message(protocol: Protocol, doc: &str, step: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + doc.len() + 8);
    if protocol == Protocol::Hocuspocus {
        hocuspocus::encode_sync(&mut out, doc, step, payload);
    } else {
        write_y_sync(&mut out, step, payload);
    }
    out
}

async fn native_handshake(conn: &Conn, rb: &mut RecvBuf, name: &str) -> io::Result<()> {
    let hello = format!("{{\"type\":\"hello\",\"protocol\":1,\"client_id\":\"{name}\"}}");
    conn.send_message(ws::OP_TEXT, hello.as_bytes());
    let mut welcomed = false;
    loop {
        let (opcode, payload) = conn.next_message(rb).await?;
        match Protocol::Native.decode(opcode, &payload) {
            Ok(Incoming::Welcome { snapshot_follows }) => {
                if !snapshot_follows {
                    return Ok(());
                }
                welcomed = true;
            }
            Ok(Incoming::Snapshot) if welcomed => return Ok(()),
            Ok(Incoming::Error(_)) => {
                return Err(io::Error::other(format!(
                    "server refused the hello: {}",
                    String::from_utf8_lossy(&payload)
                )));
            }
            _ => {}
        }
    }
}

/// y-websocket and Hocuspocus: (auth,) our sync step 1, answer the server's
/// step 1 with an empty step 2, done when the server's step 2 arrived.
async fn y_handshake(
    protocol: Protocol,
    conn: &Conn,
    rb: &mut RecvBuf,
    doc: &str,
) -> io::Result<()> {
    if protocol == Protocol::Hocuspocus {
        conn.send_message(ws::OP_BINARY, &hocuspocus::encode_auth(doc, "collab-bench"));
    }
    conn.send_message(
        ws::OP_BINARY,
        &y_sync_message(protocol, doc, SYNC_STEP1, EMPTY_STATE_VECTOR),
    );
    let mut authenticated = protocol != Protocol::Hocuspocus;
    let mut synced = false;
    while !(authenticated && synced) {
        let (opcode, payload) = conn.next_message(rb).await?;
        match protocol.decode(opcode, &payload) {
            Ok(Incoming::SyncStep1) => {
                conn.send_message(
                    ws::OP_BINARY,
                    &y_sync_message(protocol, doc, SYNC_STEP2, EMPTY_UPDATE),
                );
            }
            Ok(Incoming::Update { step2: true, .. }) => synced = true,
            Ok(Incoming::Authenticated) => authenticated = true,
            Ok(Incoming::Error(why)) => {
                return Err(io::Error::other(format!(
                    "server refused the handshake: {}",
                    String::from_utf8_lossy(why)
                )));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(io::Error::other(format!(
                    "undecodable message during the handshake: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Classifies a native JSON message by its `type` and pulls out the fields
/// the generator needs, by scanning (the server writes `type` first).
fn decode_native(payload: &[u8]) -> Incoming<'_> {
    let Some(kind) = json_str(payload, b"\"type\":\"") else {
        return Incoming::Other;
    };
    match kind {
        b"op" => match (
            json_str(payload, b"\"client_id\":\""),
            json_u64(payload, b"\"client_op_id\":"),
        ) {
            (Some(client_id), Some(client_op_id)) => Incoming::NativeOp {
                client_id,
                client_op_id,
            },
            _ => Incoming::Other,
        },
        b"ack" => Incoming::Ack(json_u64(payload, b"\"client_op_id\":")),
        b"welcome" => Incoming::Welcome {
            snapshot_follows: find(payload, b"\"recovery\":\"snapshot\"").is_some(),
        },
        b"snapshot" => Incoming::Snapshot,
        b"error" => Incoming::Error(payload),
        _ => Incoming::Other,
    }
}

/// Whether a native message is an `ack` (the cheapest possible test, for
/// receivers that only count).
pub fn native_is_ack(payload: &[u8]) -> bool {
    payload.starts_with(b"{\"type\":\"ack\"")
        || (!payload.starts_with(b"{\"type\":\"")
            && json_str(payload, b"\"type\":\"") == Some(b"ack"))
}

/// Whether a native message is an `error`.
pub fn native_is_error(payload: &[u8]) -> bool {
    payload.starts_with(b"{\"type\":\"error\"")
        || (!payload.starts_with(b"{\"type\":\"")
            && json_str(payload, b"\"type\":\"") == Some(b"error"))
}

/// The `server_seq` of a native `op` or `ack` (`None` for anything else, and
/// for a duplicate ack with `"server_seq":null`). Cheap: the server writes
/// `type` first and, in an `op`, `server_seq` right after it.
pub fn native_seq(payload: &[u8]) -> Option<u64> {
    const OP: &[u8] = b"{\"type\":\"op\",\"server_seq\":";
    if let Some(rest) = payload.strip_prefix(OP) {
        return leading_u64(rest);
    }
    if native_is_ack(payload) && find(payload, b"\"duplicate\":true").is_none() {
        return json_u64(payload, b"\"server_seq\":");
    }
    if json_str(payload, b"\"type\":\"") == Some(b"op") {
        return json_u64(payload, b"\"server_seq\":");
    }
    None
}

fn leading_u64(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    Some(
        bytes[..digits]
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The string value after `key` (which ends with the opening quote); JSON
/// escapes are not decoded (ids and types have none).
pub fn json_str<'a>(payload: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = find(payload, key)? + key.len();
    let len = payload[start..].iter().position(|&b| b == b'"')?;
    Some(&payload[start..start + len])
}

/// The unsigned integer value after `key` (which ends with the colon).
pub fn json_u64(payload: &[u8], key: &[u8]) -> Option<u64> {
    let start = find(payload, key)? + key.len();
    let digits = payload[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    std::str::from_utf8(&payload[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{Frame, RecvBuf};

    #[test]
    fn native_server_messages_decode() {
        let op =
            br#"{"type":"op","server_seq":58,"client_id":"c17","client_op_id":3,"update":"AQ=="}"#;
        assert_eq!(
            Protocol::Native.decode(ws::OP_TEXT, op),
            Ok(Incoming::NativeOp {
                client_id: b"c17",
                client_op_id: 3
            })
        );
        let ack = br#"{"type":"ack","client_op_id":13,"server_seq":58}"#;
        assert_eq!(
            Protocol::Native.decode(ws::OP_TEXT, ack),
            Ok(Incoming::Ack(Some(13)))
        );
        assert!(native_is_ack(ack));
        assert!(!native_is_ack(op));
        let welcome = br#"{"type":"welcome","document_id":"d","epoch":"e","server_seq":0,"recovery":"snapshot","last_client_op_id":null}"#;
        assert_eq!(
            Protocol::Native.decode(ws::OP_TEXT, welcome),
            Ok(Incoming::Welcome {
                snapshot_follows: true
            })
        );
        let err = br#"{"type":"error","code":"unavailable","message":"x","client_op_id":4}"#;
        assert!(native_is_error(err));
        assert_eq!(
            Protocol::Native.decode(ws::OP_TEXT, err),
            Ok(Incoming::Error(&err[..]))
        );
        // Field order is not relied upon.
        let reordered = br#"{"client_op_id":9,"type":"ack"}"#;
        assert!(native_is_ack(reordered));
        assert_eq!(native_seq(op), Some(58));
        assert_eq!(native_seq(ack), Some(58));
        assert_eq!(
            native_seq(br#"{"server_seq":7,"type":"op","client_id":"c"}"#),
            Some(7)
        );
        assert_eq!(
            native_seq(br#"{"type":"ack","client_op_id":1,"server_seq":3,"duplicate":true}"#),
            None
        );
        assert_eq!(native_seq(welcome), None);
        assert_eq!(native_seq(err), None);
    }

    #[test]
    fn op_frames_carry_the_update_in_each_framing() {
        let update = [1u8, 1, 5, 0, 4, 1, 7];
        for protocol in [
            Protocol::Native,
            Protocol::Yjs,
            Protocol::Raw,
            Protocol::Hocuspocus,
        ] {
            let mut frame = Vec::new();
            protocol.encode_op_frame(&mut frame, "doc", 42, &update);
            let mut rb = RecvBuf::new(64, &frame);
            let Ok(Some(Frame::Data { opcode })) = rb.next_frame() else {
                panic!("{protocol:?}: no frame");
            };
            let payload = rb.payload().to_vec();
            match protocol {
                Protocol::Native => {
                    assert_eq!(opcode, ws::OP_TEXT);
                    let v: serde_json::Value = serde_json::from_slice(&payload).expect("json");
                    assert_eq!(v["type"], "op");
                    assert_eq!(v["client_op_id"], 42);
                    let b64 = v["update"].as_str().expect("update");
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .expect("base64");
                    assert_eq!(decoded, update);
                }
                Protocol::Hocuspocus => {
                    assert_eq!(
                        hocuspocus::decode(&payload),
                        Ok((
                            &b"doc"[..],
                            hocuspocus::Message::Sync {
                                step: SYNC_UPDATE,
                                payload: &update
                            }
                        ))
                    );
                }
                Protocol::Yjs | Protocol::Raw => {
                    assert_eq!(
                        protocol.decode(opcode, &payload),
                        Ok(Incoming::Update {
                            update: &update,
                            step2: false
                        })
                    );
                }
            }
        }
    }

    #[test]
    fn paths_per_protocol() {
        assert_eq!(Protocol::Native.path("", "d"), "/ws/d");
        assert_eq!(Protocol::Native.path("/collab/ws", "d"), "/collab/ws/d");
        assert_eq!(Protocol::Yjs.path("/yjs", "d"), "/yjs/d");
        assert_eq!(Protocol::Yjs.path("", "d"), "/d");
        assert_eq!(Protocol::Raw.path("", "d"), "/d");
        assert_eq!(Protocol::Hocuspocus.path("", "d"), "/");
    }

    #[test]
    fn hocuspocus_sync_status_is_an_ack() {
        assert_eq!(
            Protocol::Hocuspocus.decode(ws::OP_BINARY, &[1, b'x', 8, 1]),
            Ok(Incoming::Ack(None))
        );
    }
}
