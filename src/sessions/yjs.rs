//! y-websocket protocol session logic (y-protocols: sync step 1, sync step
//! 2, update; awareness; query awareness), one message per frame.
//!
//! A connection joins at once with a fresh client id (`yjs-<uuid>`). Every
//! update it sends (sync step 2 or update) becomes an op like a native one:
//! `server_seq`, commit, then broadcast, to y-websocket clients as sync
//! `Update` messages and to native clients as `op` messages. Empty updates
//! and updates that add nothing to the document are dropped.
//!
//! Malformed frames close the connection: an unknown message type or a
//! text frame with 1003 (unsupported data), a truncated or undecodable
//! message with 1007 (invalid payload); nothing of that frame is logged.

use std::sync::Arc;

use bytes::Bytes;
use yrs::StateVector;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

use super::{Action, JoinMode, JoinRequest, SessionProtocol};
use crate::crdt;
use crate::document::JoinError;
use crate::document::state::SessionId;
use crate::events::{CatchUp, SessionEvent};

/// WebSocket close code for a message type the protocol does not know.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// WebSocket close code for a message that cannot be decoded.
pub const INVALID_PAYLOAD: u16 = 1007;

/// The y-websocket state machine of one session.
#[derive(Debug)]
pub struct YjsProtocol {
    /// Numbers the updates of this connection (its `client_op_id`s).
    next_op_id: u64,
    closed: bool,
}

impl Default for YjsProtocol {
    fn default() -> Self {
        YjsProtocol {
            next_op_id: 1,
            closed: false,
        }
    }
}

/// One y-protocols sync `Update` message carrying `update`.
pub fn update_frame(update: &[u8]) -> Bytes {
    Bytes::from(Message::Sync(SyncMessage::Update(update.to_vec())).encode_v1())
}

fn binary(message: Message) -> Action {
    Action::SendBinary(Bytes::from(message.encode_v1()))
}

fn awareness_message(update: &[u8]) -> Option<Action> {
    yrs::sync::AwarenessUpdate::decode_v1(update)
        .ok()
        .map(|update| binary(Message::Awareness(update)))
}

impl YjsProtocol {
    fn close(&mut self, code: u16, reason: String, out: &mut Vec<Action>) {
        if !self.closed {
            self.closed = true;
            out.push(Action::Close { code, reason });
        }
    }
}

/// One decoded y-protocols message of a frame.
#[derive(Debug)]
enum Incoming {
    SyncStep1(Bytes),
    /// Sync step 2 or update: both carry an update to apply.
    Update(Bytes),
    Awareness(Bytes),
    QueryAwareness,
}

/// Why a frame was refused: the close code and reason.
type FrameError = (u16, String);

/// lib0 encoding reader over one frame.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn var_uint(&mut self, what: &str) -> Result<u64, FrameError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.data.get(self.at) else {
                return Err((INVALID_PAYLOAD, format!("truncated {what}")));
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err((INVALID_PAYLOAD, format!("{what} is not a valid varUint")))
    }

    fn buf(&mut self, what: &str) -> Result<&'a [u8], FrameError> {
        let len = self.var_uint(what)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.at.checked_add(len))
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| (INVALID_PAYLOAD, format!("truncated {what}")))?;
        let buf = &self.data[self.at..end];
        self.at = end;
        Ok(buf)
    }

    fn done(&self) -> bool {
        self.at == self.data.len()
    }
}

/// Decodes and validates every message of a frame before any is acted on,
/// so a frame with one bad message contributes nothing.
fn decode_frame(data: &[u8]) -> Result<Vec<Incoming>, FrameError> {
    let mut reader = Reader { data, at: 0 };
    let mut messages = Vec::new();
    if data.is_empty() {
        return Err((INVALID_PAYLOAD, "empty binary frame".to_owned()));
    }
    while !reader.done() {
        match reader.var_uint("message type")? {
            MESSAGE_SYNC => match reader.var_uint("sync message type")? {
                SYNC_STEP_1 => {
                    let sv = reader.buf("state vector")?;
                    StateVector::decode_v1(sv).map_err(|e| {
                        (
                            INVALID_PAYLOAD,
                            format!("state vector cannot be decoded: {e}"),
                        )
                    })?;
                    messages.push(Incoming::SyncStep1(Bytes::copy_from_slice(sv)));
                }
                SYNC_STEP_2 | SYNC_UPDATE => {
                    let update = reader.buf("update")?;
                    messages.push(Incoming::Update(Bytes::copy_from_slice(update)));
                }
                other => {
                    return Err((
                        UNSUPPORTED_DATA,
                        format!("unknown sync message type {other}"),
                    ));
                }
            },
            MESSAGE_AWARENESS => {
                let update = reader.buf("awareness update")?;
                crdt::validate_awareness(update).map_err(|e| (INVALID_PAYLOAD, e))?;
                messages.push(Incoming::Awareness(Bytes::copy_from_slice(update)));
            }
            MESSAGE_QUERY_AWARENESS => messages.push(Incoming::QueryAwareness),
            MESSAGE_AUTH => {
                return Err((
                    UNSUPPORTED_DATA,
                    "auth messages are not supported".to_owned(),
                ));
            }
            other => {
                return Err((
                    UNSUPPORTED_DATA,
                    format!("unknown y-protocols message type {other}"),
                ));
            }
        }
    }
    Ok(messages)
}

const MESSAGE_SYNC: u64 = 0;
const MESSAGE_AWARENESS: u64 = 1;
const MESSAGE_AUTH: u64 = 2;
const MESSAGE_QUERY_AWARENESS: u64 = 3;
const SYNC_STEP_1: u64 = 0;
const SYNC_STEP_2: u64 = 1;
const SYNC_UPDATE: u64 = 2;

impl SessionProtocol for YjsProtocol {
    const NAME: &'static str = "y-websocket";

    fn on_open(&mut self, out: &mut Vec<Action>) {
        out.push(Action::Join(JoinRequest {
            client_id: Arc::from(format!("yjs-{}", uuid::Uuid::new_v4().simple())),
            mode: JoinMode::Yjs,
            fresh_client: true,
        }));
    }

    fn on_text(&mut self, _text: &str, out: &mut Vec<Action>) {
        self.close(
            UNSUPPORTED_DATA,
            "text frames are not part of the y-websocket protocol".to_owned(),
            out,
        );
    }

    fn on_binary(&mut self, data: &[u8], out: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        let messages = match decode_frame(data) {
            Ok(messages) => messages,
            Err((code, reason)) => return self.close(code, reason, out),
        };
        let mut actions = Vec::with_capacity(messages.len());
        for message in messages {
            match message {
                Incoming::SyncStep1(state_vector) => {
                    actions.push(Action::SyncStep1 { state_vector })
                }
                Incoming::Update(update) => match crdt::decode_update(update) {
                    Ok(update) => {
                        let client_op_id = self.next_op_id;
                        self.next_op_id += 1;
                        actions.push(Action::Submit {
                            client_op_id,
                            update,
                            skip_if_redundant: true,
                        });
                    }
                    // Nothing to log or broadcast; not an error.
                    Err(crdt::UpdateProblem::Empty) => {}
                    Err(problem) => return self.close(INVALID_PAYLOAD, problem.to_string(), out),
                },
                Incoming::Awareness(update) => {
                    actions.push(Action::Awareness { update, echo: true })
                }
                Incoming::QueryAwareness => actions.push(Action::QueryAwareness),
            }
        }
        out.extend(actions);
    }

    fn on_too_large(&mut self, limit: usize, out: &mut Vec<Action>) {
        self.close(
            crate::protocol::close_code::MESSAGE_TOO_BIG,
            format!("message larger than the limit of {limit} bytes"),
            out,
        );
    }

    fn on_join_failed(&mut self, error: JoinError, out: &mut Vec<Action>) {
        self.close(error.close_code, error.rejection.message, out);
    }

    fn on_event(&mut self, own: SessionId, event: SessionEvent, out: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        match event {
            SessionEvent::Welcome {
                catch_up,
                awareness,
                ..
            } => {
                if let CatchUp::StateVector { state_vector } = catch_up {
                    match StateVector::decode_v1(&state_vector) {
                        Ok(sv) => out.push(binary(Message::Sync(SyncMessage::SyncStep1(sv)))),
                        Err(e) => log::error!("document sent an undecodable state vector: {e}"),
                    }
                }
                if let Some(action) = awareness.as_deref().and_then(awareness_message) {
                    out.push(action);
                }
            }
            SessionEvent::Committed { ops, .. } => {
                for op in ops.iter().filter(|op| op.origin != Some(own)) {
                    out.push(Action::SendBinary(op.yjs_frame()));
                }
            }
            SessionEvent::SyncStep2 { update } => out.push(binary(Message::Sync(
                SyncMessage::SyncStep2(update.to_vec()),
            ))),
            SessionEvent::Awareness { update } => {
                if let Some(action) = awareness_message(&update) {
                    out.push(action);
                }
            }
            // A refused update is followed by a close (1013): the provider
            // reconnects and its sync step sends the update again.
            SessionEvent::Rejected { .. } | SessionEvent::DuplicateAck { .. } => {}
            SessionEvent::Close { code, reason } => self.close(code, reason, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Text, Transact};

    fn actions(protocol: &mut YjsProtocol, frame: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        protocol.on_binary(frame, &mut out);
        out
    }

    fn update() -> Vec<u8> {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "x");
        txn.encode_update_v1()
    }

    #[test]
    fn updates_become_numbered_ops() {
        let mut p = YjsProtocol::default();
        let frame = Message::Sync(SyncMessage::Update(update())).encode_v1();
        let step2 = Message::Sync(SyncMessage::SyncStep2(update())).encode_v1();
        let ids: Vec<u64> = [frame, step2]
            .iter()
            .flat_map(|f| actions(&mut p, f))
            .map(|a| match a {
                Action::Submit {
                    client_op_id,
                    skip_if_redundant: true,
                    ..
                } => client_op_id,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn empty_updates_are_dropped_silently() {
        let mut p = YjsProtocol::default();
        let frame = Message::Sync(SyncMessage::SyncStep2(vec![0, 0])).encode_v1();
        assert!(actions(&mut p, &frame).is_empty());
    }

    #[test]
    fn malformed_frames_close_with_the_right_code() {
        let truncated = &Message::Sync(SyncMessage::Update(update())).encode_v1()[..5];
        let garbage_update = Message::Sync(SyncMessage::Update(vec![0xff, 0xff, 0x01])).encode_v1();
        let unknown_type = [7u8, 1, 0];
        let mut trailing_garbage = Message::Sync(SyncMessage::Update(update())).encode_v1();
        trailing_garbage.push(0xff);
        let bad_awareness = [1u8, 6, 1, 42, 1, 2, b'{', b'{'];
        for (frame, code) in [
            (truncated.to_vec(), INVALID_PAYLOAD),
            (garbage_update, INVALID_PAYLOAD),
            (unknown_type.to_vec(), UNSUPPORTED_DATA),
            (vec![0, 5, 0], UNSUPPORTED_DATA),
            (vec![2, 0], UNSUPPORTED_DATA),
            (Vec::new(), INVALID_PAYLOAD),
            (trailing_garbage, INVALID_PAYLOAD),
            (vec![3, 0xff], INVALID_PAYLOAD),
            (vec![0xff, 0xff, 0xff], INVALID_PAYLOAD),
            (bad_awareness.to_vec(), INVALID_PAYLOAD),
        ] {
            let mut p = YjsProtocol::default();
            match actions(&mut p, &frame).as_slice() {
                [Action::Close { code: c, reason }] => {
                    assert_eq!(*c, code, "{frame:?}");
                    // Only an empty frame is called empty.
                    assert_eq!(
                        frame.is_empty(),
                        reason == "empty binary frame",
                        "{frame:?}"
                    );
                }
                other => panic!("{frame:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_bad_message_discards_the_good_ones_of_the_same_frame() {
        let mut frame = Message::Sync(SyncMessage::Update(update())).encode_v1();
        frame.extend([7u8, 1, 0]);
        let mut p = YjsProtocol::default();
        let out = actions(&mut p, &frame);
        assert!(matches!(out.as_slice(), [Action::Close { .. }]), "{out:?}");
    }

    #[test]
    fn sync_step_1_and_awareness_query_are_forwarded() {
        let mut p = YjsProtocol::default();
        let step1 = Message::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
        assert!(matches!(
            actions(&mut p, &step1).as_slice(),
            [Action::SyncStep1 { .. }]
        ));
        let query = Message::AwarenessQuery.encode_v1();
        assert!(matches!(
            actions(&mut p, &query).as_slice(),
            [Action::QueryAwareness]
        ));
    }
}
