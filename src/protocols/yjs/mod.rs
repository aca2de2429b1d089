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

mod frame;

use std::sync::Arc;

use bytes::Bytes;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;

use super::{Action, JoinRequest, ProtocolLimits, SessionProtocol};
use crate::crdt;
use crate::document::{CatchUp, DocumentEvent};
use crate::metrics::SessionRoute;
use crate::vocabulary::close_code::{
    INVALID_PAYLOAD, MESSAGE_TOO_BIG, POLICY_VIOLATION, UNSUPPORTED_DATA,
};
use crate::vocabulary::{Access, CommittedOp, Frame, JoinError, JoinMode, SessionId, WireFormat};
use frame::{Incoming, decode_frame};

/// The y-websocket state machine of one session.
#[derive(Debug)]
pub struct YjsProtocol {
    /// Numbers the updates of this connection (its `client_op_id`s).
    next_op_id: u64,
    closed: bool,
    /// The session may only read: its updates are dropped (not logged, not
    /// broadcast); it keeps receiving.
    read_only: bool,
    limits: ProtocolLimits,
}

impl Default for YjsProtocol {
    /// A session that may write, with the default limits.
    fn default() -> Self {
        YjsProtocol {
            next_op_id: 1,
            closed: false,
            read_only: false,
            limits: ProtocolLimits::default(),
        }
    }
}

fn binary(message: Message) -> Action {
    Action::Send(Frame::Binary(Bytes::from(message.encode_v1())))
}

/// The sync `Update` message of `op`, built once per op and shared by
/// every y-websocket session that receives it.
fn op_frame(op: &CommittedOp) -> Action {
    Action::Send(op.frame(WireFormat::YjsSync, |op| {
        Frame::Binary(frame::update_frame(&op.update))
    }))
}

fn awareness_message(update: &[u8]) -> Option<Action> {
    crdt::decode_awareness(update)
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

impl SessionProtocol for YjsProtocol {
    const NAME: &'static str = "y-websocket";
    const ROUTE: SessionRoute = SessionRoute::Yjs;

    fn for_access(access: &Access, limits: ProtocolLimits) -> Self {
        YjsProtocol {
            read_only: !access.permission.can_write(),
            limits,
            ..YjsProtocol::default()
        }
    }

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
        let messages = match decode_frame(data, &self.limits) {
            Ok(messages) => messages,
            Err((code, reason)) => return self.close(code, reason, out),
        };
        let mut actions = Vec::with_capacity(messages.len());
        for message in messages {
            match message {
                Incoming::SyncStep1(state_vector) => {
                    actions.push(Action::SyncStep1 { state_vector })
                }
                Incoming::Update(_) if self.read_only => {}
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
            MESSAGE_TOO_BIG,
            format!("message larger than the limit of {limit} bytes (documents.max_message_bytes)"),
            out,
        );
    }

    fn on_join_timeout(&mut self, out: &mut Vec<Action>) {
        let reason = "the document did not answer the join in time".to_owned();
        self.close(POLICY_VIOLATION, reason, out);
    }

    fn on_join_failed(&mut self, error: JoinError, out: &mut Vec<Action>) {
        self.close(error.close_code, error.refusal.message, out);
    }

    fn on_event(&mut self, own: SessionId, event: DocumentEvent, out: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        match event {
            DocumentEvent::Welcome {
                catch_up,
                awareness,
                ..
            } => {
                if let CatchUp::StateVector { state_vector } = catch_up {
                    match crdt::decode_state_vector(&state_vector) {
                        Ok(sv) => out.push(binary(Message::Sync(SyncMessage::SyncStep1(sv)))),
                        Err(e) => log::error!("document sent an undecodable state vector: {e}"),
                    }
                }
                if let Some(action) = awareness.as_deref().and_then(awareness_message) {
                    out.push(action);
                }
            }
            DocumentEvent::Committed { ops, .. } => {
                for op in ops.iter().filter(|op| op.origin != Some(own)) {
                    out.push(op_frame(op));
                }
            }
            DocumentEvent::SyncStep2 { update } => {
                out.push(Action::Send(frame::sync_step2(update)))
            }
            DocumentEvent::Awareness { update } => {
                if let Some(action) = awareness_message(&update) {
                    out.push(action);
                }
            }
            // Over an awareness limit: like an invalid awareness state.
            DocumentEvent::AwarenessRefused { reason } => self.close(INVALID_PAYLOAD, reason, out),
            // A refused update is followed by a close (1013): the provider
            // reconnects and its sync step sends the update again.
            DocumentEvent::Refused { .. } | DocumentEvent::DuplicateAck { .. } => {}
            DocumentEvent::Close { code, reason } => self.close(code, reason, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, StateVector, Text, Transact};

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
    fn a_read_only_session_submits_no_update_but_keeps_syncing() {
        let reader = Access {
            permission: crate::vocabulary::Permission::Read,
            ..Access::anonymous()
        };
        let mut p = YjsProtocol::for_access(&reader, ProtocolLimits::default());
        let frame = Message::Sync(SyncMessage::Update(update())).encode_v1();
        let step2 = Message::Sync(SyncMessage::SyncStep2(update())).encode_v1();
        assert!(actions(&mut p, &frame).is_empty());
        assert!(actions(&mut p, &step2).is_empty());
        let step1 = Message::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
        assert!(matches!(
            actions(&mut p, &step1).as_slice(),
            [Action::SyncStep1 { .. }]
        ));
        assert!(!p.closed, "the connection stays open");
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

    #[test]
    fn awareness_over_a_limit_closes_with_1007_naming_it() {
        let limits = ProtocolLimits {
            max_awareness_state_bytes: 8,
        };
        let mut p = YjsProtocol::for_access(&Access::anonymous(), limits);
        // Awareness message: one state of client 42, clock 1, 11 bytes.
        let mut frame = vec![1u8, 15, 1, 42, 1, 11];
        frame.extend(br#""123456789""#);
        match actions(&mut p, &frame).as_slice() {
            [Action::Close { code, reason }] => {
                assert_eq!(*code, INVALID_PAYLOAD);
                assert!(
                    reason.contains("limits.max_awareness_state_bytes (8)"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        let mut p = YjsProtocol::default();
        let mut out = Vec::new();
        let reason = "over limits.max_awareness_clients_per_session (4)".to_owned();
        p.on_event(1, DocumentEvent::AwarenessRefused { reason }, &mut out);
        assert!(
            matches!(out.as_slice(), [Action::Close { code: INVALID_PAYLOAD, reason }]
                if reason.contains("max_awareness_clients_per_session")),
            "{out:?}"
        );
    }
}
