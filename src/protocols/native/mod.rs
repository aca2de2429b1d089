//! Native protocol v1 session logic (see `docs/protocol.md`): `hello`
//! first, then `op` and `awareness` messages; every frame one JSON object.
//! The messages themselves are in [`messages`].

pub mod messages;

use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;

use super::{Action, JoinRequest, ProtocolLimits, SessionProtocol};
use crate::crdt;
use crate::document::{CatchUp, DocumentEvent};
use crate::metrics::SessionRoute;
use crate::vocabulary::{
    Access, CommittedOp, Frame, JoinError, JoinMode, SessionId, WireFormat, close_code,
};
use messages::{
    ClientMessage, ErrorCode, Hello, PROTOCOL_VERSION, Recovery, Rejection, ServerMessage,
    parse_client_message,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next message must be `hello`.
    AwaitingHello,
    /// `hello` accepted (the join is answered before the next frame is read).
    Joined,
    /// A close was requested; nothing more is processed.
    Closed,
}

/// The native protocol state machine of one session.
#[derive(Debug)]
pub struct NativeProtocol {
    state: State,
    /// The session may only read: its ops are answered `forbidden`.
    read_only: bool,
    limits: ProtocolLimits,
}

impl Default for NativeProtocol {
    /// A session that may write, with the default limits.
    fn default() -> Self {
        NativeProtocol {
            state: State::AwaitingHello,
            read_only: false,
            limits: ProtocolLimits::default(),
        }
    }
}

fn text(json: String) -> Action {
    Action::Send(Frame::Text(ByteString::from(json)))
}

/// The `snapshot` message, made of parts around the document's shared
/// base64 state (built once per head and shared by every joiner): the
/// transport sends it in fragments, so no joiner needs a copy of it.
fn snapshot_frame(server_seq: u64, state: Arc<str>) -> Action {
    /// The shared state as bytes, without a copy.
    struct SharedState(Arc<str>);
    impl AsRef<[u8]> for SharedState {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    let prefix = format!(r#"{{"type":"snapshot","server_seq":{server_seq},"state":""#);
    Action::Send(Frame::Parts {
        text: true,
        parts: vec![
            Bytes::from(prefix),
            Bytes::from_owner(SharedState(state)),
            Bytes::from_static(br#""}"#),
        ],
    })
}

/// `{"type":"op",...}` for `op`, built once per op and shared by every
/// native session that receives it.
fn op_frame(op: &CommittedOp) -> Action {
    Action::Send(op.frame(WireFormat::NativeJson, |op| {
        let update = crdt::to_base64(&op.update);
        Frame::Text(ByteString::from(
            ServerMessage::Op {
                server_seq: op.server_seq,
                client_id: &op.client_id,
                client_op_id: op.client_op_id,
                update: &update,
            }
            .to_json(),
        ))
    }))
}

impl NativeProtocol {
    fn reject_and_close(&mut self, rejection: &Rejection, code: u16, out: &mut Vec<Action>) {
        out.push(text(rejection.to_json()));
        self.close(code, &rejection.message, out);
    }

    fn close(&mut self, code: u16, reason: &str, out: &mut Vec<Action>) {
        if self.state != State::Closed {
            self.state = State::Closed;
            out.push(Action::Close {
                code,
                reason: reason.to_owned(),
            });
        }
    }

    fn on_hello(&mut self, hello: Hello, out: &mut Vec<Action>) {
        if hello.protocol != PROTOCOL_VERSION {
            let rejection = Rejection::new(
                ErrorCode::UnsupportedProtocol,
                format!(
                    "protocol {} is not supported; this server speaks protocol {PROTOCOL_VERSION}",
                    hello.protocol
                ),
            );
            return self.reject_and_close(&rejection, close_code::POLICY_VIOLATION, out);
        }
        self.state = State::Joined;
        out.push(Action::Join(JoinRequest {
            client_id: Arc::from(hello.client_id.as_str()),
            mode: JoinMode::Native {
                last_seen_server_seq: hello.last_seen_server_seq,
                epoch: hello.epoch,
            },
            fresh_client: false,
        }));
    }

    fn on_message(&mut self, message: ClientMessage, out: &mut Vec<Action>) {
        match message {
            ClientMessage::Hello(_) => self.reject_and_close(
                &Rejection::new(
                    ErrorCode::BadMessage,
                    "hello was already received on this connection",
                ),
                close_code::POLICY_VIOLATION,
                out,
            ),
            ClientMessage::Op(op) if self.read_only => out.push(text(
                Rejection::for_op(
                    ErrorCode::Forbidden,
                    "this session may only read the document (the token grants read)",
                    op.client_op_id,
                )
                .to_json(),
            )),
            ClientMessage::Op(op) => match crdt::decode_base64_update(&op.update) {
                Ok(update) => out.push(Action::Submit {
                    client_op_id: op.client_op_id,
                    update,
                    skip_if_redundant: false,
                }),
                Err(problem) => {
                    log::info!(
                        "op {} refused as invalid_update: {problem}",
                        op.client_op_id
                    );
                    out.push(text(
                        Rejection::for_op(
                            ErrorCode::InvalidUpdate,
                            problem.to_string(),
                            op.client_op_id,
                        )
                        .to_json(),
                    ));
                }
            },
            ClientMessage::Awareness(awareness) => {
                let max_state_bytes = self.limits.max_awareness_state_bytes;
                match crdt::decode_base64_awareness(&awareness.update, max_state_bytes) {
                    Ok(update) => out.push(Action::Awareness {
                        update,
                        echo: false,
                    }),
                    Err(problem) => {
                        // A limit is `invalid_awareness`; garbage stays
                        // `bad_message`, as it always was.
                        let code = match problem {
                            crdt::AwarenessProblem::StateTooLarge { .. } => {
                                ErrorCode::InvalidAwareness
                            }
                            _ => ErrorCode::BadMessage,
                        };
                        out.push(text(Rejection::new(code, problem.to_string()).to_json()))
                    }
                }
            }
        }
    }
}

impl SessionProtocol for NativeProtocol {
    const NAME: &'static str = "native";
    const ROUTE: SessionRoute = SessionRoute::Native;

    fn for_access(access: &Access, limits: ProtocolLimits) -> Self {
        NativeProtocol {
            read_only: !access.permission.can_write(),
            limits,
            ..NativeProtocol::default()
        }
    }

    fn on_open(&mut self, _out: &mut Vec<Action>) {}

    fn on_text(&mut self, text_frame: &str, out: &mut Vec<Action>) {
        let parsed = parse_client_message(text_frame);
        match (self.state, parsed) {
            (State::Closed, _) => {}
            (State::AwaitingHello, Err(rejection)) => {
                self.reject_and_close(&rejection, close_code::POLICY_VIOLATION, out)
            }
            (State::AwaitingHello, Ok(ClientMessage::Hello(hello))) => self.on_hello(hello, out),
            (State::AwaitingHello, Ok(_)) => self.reject_and_close(
                &Rejection::new(
                    ErrorCode::HelloRequired,
                    "the first message must be a hello",
                ),
                close_code::POLICY_VIOLATION,
                out,
            ),
            (State::Joined, Err(rejection)) => out.push(text(rejection.to_json())),
            (State::Joined, Ok(message)) => self.on_message(message, out),
        }
    }

    fn on_binary(&mut self, _data: &[u8], out: &mut Vec<Action>) {
        let rejection = Rejection::new(
            ErrorCode::BadMessage,
            "binary frames are not part of the native protocol; send JSON text frames",
        );
        match self.state {
            State::AwaitingHello => {
                self.reject_and_close(&rejection, close_code::POLICY_VIOLATION, out)
            }
            State::Joined => out.push(text(rejection.to_json())),
            State::Closed => {}
        }
    }

    fn on_too_large(&mut self, limit: usize, out: &mut Vec<Action>) {
        let rejection = Rejection::new(
            ErrorCode::TooLarge,
            format!("message larger than the limit of {limit} bytes (documents.max_message_bytes)"),
        );
        self.reject_and_close(&rejection, close_code::MESSAGE_TOO_BIG, out);
    }

    fn on_join_timeout(&mut self, out: &mut Vec<Action>) {
        let rejection = Rejection::new(ErrorCode::HelloRequired, "no hello received in time");
        self.reject_and_close(&rejection, close_code::POLICY_VIOLATION, out);
    }

    fn on_join_failed(&mut self, error: JoinError, out: &mut Vec<Action>) {
        let rejection = Rejection::from_refusal(&error.refusal, None);
        self.reject_and_close(&rejection, error.close_code, out);
    }

    fn on_event(&mut self, own: SessionId, event: DocumentEvent, out: &mut Vec<Action>) {
        if self.state == State::Closed {
            return;
        }
        match event {
            DocumentEvent::Welcome {
                welcome,
                catch_up,
                awareness,
            } => {
                let recovery = match &catch_up {
                    CatchUp::Snapshot { .. } => Recovery::Snapshot,
                    CatchUp::Replay { .. } | CatchUp::StateVector { .. } => Recovery::Replay,
                };
                out.push(text(
                    ServerMessage::Welcome {
                        document_id: &welcome.document_id,
                        epoch: &welcome.epoch,
                        server_seq: welcome.server_seq,
                        recovery,
                        last_client_op_id: welcome.last_client_op_id,
                    }
                    .to_json(),
                ));
                match catch_up {
                    CatchUp::Replay { ops } => out.extend(ops.iter().map(|op| op_frame(op))),
                    CatchUp::Snapshot { server_seq, state } => {
                        out.push(snapshot_frame(server_seq, state))
                    }
                    CatchUp::StateVector { .. } => {}
                }
                if let Some(update) = awareness {
                    out.push(awareness_frame(&update));
                }
            }
            DocumentEvent::Committed { ops, .. } => {
                for op in ops.iter() {
                    if op.origin == Some(own) {
                        out.push(text(
                            ServerMessage::Ack {
                                client_op_id: op.client_op_id,
                                server_seq: Some(op.server_seq),
                                duplicate: false,
                            }
                            .to_json(),
                        ));
                    } else {
                        out.push(op_frame(op));
                    }
                }
            }
            DocumentEvent::DuplicateAck {
                client_op_id,
                server_seq,
            } => out.push(text(
                ServerMessage::Ack {
                    client_op_id,
                    server_seq,
                    duplicate: true,
                }
                .to_json(),
            )),
            DocumentEvent::Refused {
                refusal,
                client_op_id,
            } => out.push(text(
                Rejection::from_refusal(&refusal, client_op_id).to_json(),
            )),
            DocumentEvent::Awareness { update } => out.push(awareness_frame(&update)),
            DocumentEvent::AwarenessRefused { reason } => out.push(text(
                Rejection::new(ErrorCode::InvalidAwareness, reason).to_json(),
            )),
            DocumentEvent::SyncStep2 { .. } => {}
            DocumentEvent::Close { code, reason } => self.close(code, &reason, out),
        }
    }
}

fn awareness_frame(update: &Bytes) -> Action {
    text(
        ServerMessage::Awareness {
            update: &crdt::to_base64(update),
        }
        .to_json(),
    )
}

#[cfg(test)]
mod tests;
