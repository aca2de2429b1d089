//! Native-protocol sessions that follow the seq stream: a `hello` with
//! `last_seen_server_seq` and `epoch`, the `welcome`, and the catch-up that
//! follows it (a replay checked for gaps, or a snapshot). Used by W3
//! (reconnect storm), W4 (cold load) and the resync check after W1 overload.

use std::time::Instant;

use base64::Engine as _;
use serde::Deserialize;

use crate::conn::Conn;
use crate::protocol::{json_str, native_seq};
use crate::ws::{self, RecvBuf};

/// What the server announced in its `welcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub epoch: String,
    /// The document's head when the session joined.
    pub server_seq: u64,
    /// `true`: a replay follows; `false`: a snapshot.
    pub replay: bool,
    pub last_client_op_id: Option<u64>,
}

#[derive(Deserialize)]
struct WelcomeMsg {
    epoch: String,
    server_seq: u64,
    recovery: String,
    last_client_op_id: Option<u64>,
}

#[derive(Deserialize)]
struct SnapshotMsg {
    server_seq: u64,
    state: String,
}

/// The `hello` of `client_id`, optionally resuming at `last_seen` of `epoch`.
pub fn hello_json(client_id: &str, last_seen: Option<u64>, epoch: Option<&str>) -> String {
    let mut hello = serde_json::json!({
        "type": "hello",
        "protocol": 1,
        "client_id": client_id,
    });
    if let Some(seq) = last_seen {
        hello["last_seen_server_seq"] = seq.into();
    }
    if let Some(epoch) = epoch {
        hello["epoch"] = epoch.into();
    }
    hello.to_string()
}

/// Parses a `welcome` message (`None` for any other message).
pub fn parse_welcome(payload: &[u8]) -> Option<Result<Welcome, String>> {
    if json_str(payload, b"\"type\":\"") != Some(b"welcome") {
        return None;
    }
    Some(
        serde_json::from_slice::<WelcomeMsg>(payload)
            .map_err(|e| format!("bad welcome: {e}"))
            .and_then(|w| {
                let replay = match w.recovery.as_str() {
                    "replay" => true,
                    "snapshot" => false,
                    other => return Err(format!("unknown recovery {other:?}")),
                };
                Ok(Welcome {
                    epoch: w.epoch,
                    server_seq: w.server_seq,
                    replay,
                    last_client_op_id: w.last_client_op_id,
                })
            }),
    )
}

fn kind(payload: &[u8]) -> &[u8] {
    json_str(payload, b"\"type\":\"").unwrap_or(b"?")
}

async fn next(conn: &Conn, rb: &mut RecvBuf) -> Result<Vec<u8>, String> {
    match conn.next_message(rb).await {
        Ok((ws::OP_TEXT, payload)) => Ok(payload),
        Ok((opcode, _)) => Err(format!("unexpected frame with opcode {opcode}")),
        Err(e) => Err(format!("{e} ({:?})", conn.ended())),
    }
}

/// Sends the `hello` and waits for the `welcome`.
pub async fn join(
    conn: &Conn,
    rb: &mut RecvBuf,
    client_id: &str,
    last_seen: Option<u64>,
    epoch: Option<&str>,
) -> Result<Welcome, String> {
    let hello = hello_json(client_id, last_seen, epoch);
    if !conn.send_message(ws::OP_TEXT, hello.as_bytes()) {
        return Err(format!("cannot send the hello ({:?})", conn.ended()));
    }
    loop {
        let payload = next(conn, rb).await?;
        if let Some(welcome) = parse_welcome(&payload) {
            return welcome;
        }
        if kind(&payload) == b"error" {
            return Err(format!(
                "server refused the hello: {}",
                String::from_utf8_lossy(&payload)
            ));
        }
    }
}

/// The end of a catch-up.
#[derive(Debug)]
pub struct CaughtUp {
    /// The seq reached (the welcome's `server_seq`).
    pub head: u64,
    /// Ops received by replay.
    pub replayed: u64,
    /// The snapshot's Yjs state (v1), when recovery was `snapshot`.
    pub snapshot: Option<Vec<u8>>,
    /// Size of the snapshot message, bytes.
    pub snapshot_message_bytes: usize,
    /// When the last message of the catch-up was read (before any parsing
    /// of a snapshot).
    pub done_at: Instant,
}

/// Reads the catch-up announced by `welcome`: for a replay, every op from
/// `last_seen + 1` to the welcome's `server_seq`, in order and without a gap
/// (checked); for a snapshot, the `snapshot` message (its state decoded).
pub async fn catch_up(
    conn: &Conn,
    rb: &mut RecvBuf,
    welcome: &Welcome,
    last_seen: Option<u64>,
) -> Result<CaughtUp, String> {
    if welcome.replay {
        let mut last = last_seen.ok_or("replay announced to a client without last_seen")?;
        let mut replayed = 0;
        let mut done_at = Instant::now();
        while last < welcome.server_seq {
            let payload = next(conn, rb).await?;
            done_at = Instant::now();
            match kind(&payload) {
                b"op" => {
                    let seq = native_seq(&payload).ok_or("op without server_seq")?;
                    if seq != last + 1 {
                        return Err(format!("replay gap: got seq {seq} after {last}"));
                    }
                    last = seq;
                    replayed += 1;
                }
                b"error" => {
                    return Err(format!(
                        "error during the replay: {}",
                        String::from_utf8_lossy(&payload)
                    ));
                }
                _ => {}
            }
        }
        return Ok(CaughtUp {
            head: last,
            replayed,
            snapshot: None,
            snapshot_message_bytes: 0,
            done_at,
        });
    }
    loop {
        let payload = next(conn, rb).await?;
        let done_at = Instant::now();
        match kind(&payload) {
            b"snapshot" => {
                let msg: SnapshotMsg = serde_json::from_slice(&payload)
                    .map_err(|e| format!("bad snapshot message: {e}"))?;
                let state = base64::engine::general_purpose::STANDARD
                    .decode(msg.state.as_bytes())
                    .map_err(|e| format!("snapshot state is not base64: {e}"))?;
                return Ok(CaughtUp {
                    head: msg.server_seq,
                    replayed: 0,
                    snapshot: Some(state),
                    snapshot_message_bytes: payload.len(),
                    done_at,
                });
            }
            b"error" => {
                return Err(format!(
                    "error instead of the snapshot: {}",
                    String::from_utf8_lossy(&payload)
                ));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_carries_the_resume_point_only_when_given() {
        let fresh: serde_json::Value = serde_json::from_str(&hello_json("c1", None, None)).unwrap();
        assert_eq!(fresh["type"], "hello");
        assert_eq!(fresh["protocol"], 1);
        assert!(fresh.get("last_seen_server_seq").is_none());
        assert!(fresh.get("epoch").is_none());
        let back: serde_json::Value =
            serde_json::from_str(&hello_json("c1", Some(42), Some("9b2c"))).unwrap();
        assert_eq!(back["last_seen_server_seq"], 42);
        assert_eq!(back["epoch"], "9b2c");
    }

    #[test]
    fn welcomes_parse() {
        let w = br#"{"type":"welcome","document_id":"d","epoch":"e1","server_seq":57,"recovery":"replay","last_client_op_id":12}"#;
        assert_eq!(
            parse_welcome(w),
            Some(Ok(Welcome {
                epoch: "e1".into(),
                server_seq: 57,
                replay: true,
                last_client_op_id: Some(12)
            }))
        );
        let s = br#"{"type":"welcome","document_id":"d","epoch":"e1","server_seq":0,"recovery":"snapshot","last_client_op_id":null}"#;
        assert!(matches!(
            parse_welcome(s),
            Some(Ok(Welcome { replay: false, .. }))
        ));
        assert!(parse_welcome(br#"{"type":"ack","client_op_id":1,"server_seq":2}"#).is_none());
    }
}
