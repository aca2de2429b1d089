//! The native-protocol WebSocket session actor: one per connection.
//!
//! This is the only file that uses `actix-web-actors` (deprecated upstream,
//! kept because it is what the session actor is built on); everything it
//! needs from the rest of the crate comes through plain messages.
//!
//! Life of a session: `started` registers with the manager and starts the
//! heartbeat; the first text frame must be a `hello`, which becomes a join
//! (the session reads no further frame until the join is answered); after
//! that each `op` is validated here (base64, Yjs decoding, emptiness) and
//! handed to the document actor; `stopping` leaves the document and
//! unregisters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use bytes::BytesMut;
use bytestring::ByteString;

use crate::crdt;
use crate::document::state::SessionId;
use crate::document::{DocumentActor, JoinDocument, LeaveDocument, SubmitOp};
use crate::events::{CatchUp, SessionEvent};
use crate::protocol::{
    ClientMessage, ClientOp, ErrorCode, Hello, PROTOCOL_VERSION, Recovery, Rejection,
    ServerMessage, close_code, parse_client_message,
};
use crate::session_manager::{Join, RegisterSession, SessionManager, UnregisterSession};

/// What a session needs from the engine.
#[derive(Clone)]
pub struct SessionConfig {
    pub manager: Addr<SessionManager>,
    pub max_message_bytes: usize,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
}

/// Upgrades `req` to a native-protocol session on `document_id` (already validated).
pub fn start_native(
    session_id: SessionId,
    document_id: Arc<str>,
    config: &SessionConfig,
    req: &HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let session = WsSession {
        id: session_id,
        document_id,
        config: config.clone(),
        state: SessionState::AwaitingHello,
        last_alive: Instant::now(),
        fragments: None,
    };
    ws::WsResponseBuilder::new(session, req, stream)
        .frame_size(config.max_message_bytes)
        .start()
}

enum SessionState {
    /// Connected; the next text frame must be `hello`.
    AwaitingHello,
    /// `hello` received, join in progress (frames are not read meanwhile).
    Joining,
    /// Joined: ops go to `document`.
    Joined { document: Addr<DocumentActor> },
    /// Closing; nothing more is processed.
    Closed,
}

/// A message split over continuation frames, being reassembled.
struct Fragments {
    text: bool,
    data: BytesMut,
}

/// See the module docs.
pub struct WsSession {
    id: SessionId,
    document_id: Arc<str>,
    config: SessionConfig,
    state: SessionState,
    /// Last time the client showed life (any frame, pong included).
    last_alive: Instant,
    fragments: Option<Fragments>,
}

impl WsSession {
    fn send(ctx: &mut ws::WebsocketContext<Self>, text: impl Into<ByteString>) {
        ctx.text(text);
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        if matches!(self.state, SessionState::Closed) {
            return;
        }
        let level = if matches!(
            code,
            close_code::POLICY_VIOLATION | close_code::MESSAGE_TOO_BIG
        ) {
            log::Level::Info
        } else {
            log::Level::Debug
        };
        log::log!(
            level,
            "session {} on {}: closing with {code} ({reason})",
            self.id,
            self.document_id
        );
        self.leave();
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code),
            description: Some(reason.to_owned()),
        }));
        ctx.stop();
    }

    fn reject_and_close(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        rejection: &Rejection,
        code: u16,
    ) {
        Self::send(ctx, rejection.to_json());
        self.close(ctx, code, &rejection.message);
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let parsed = parse_client_message(text);
        match (&self.state, parsed) {
            (SessionState::Closed | SessionState::Joining, _) => {}
            (SessionState::AwaitingHello, Err(rejection)) => {
                self.reject_and_close(ctx, &rejection, close_code::POLICY_VIOLATION)
            }
            (SessionState::AwaitingHello, Ok(ClientMessage::Hello(hello))) => {
                self.on_hello(hello, ctx)
            }
            (SessionState::AwaitingHello, Ok(ClientMessage::Op(_))) => self.reject_and_close(
                ctx,
                &Rejection::new(
                    ErrorCode::HelloRequired,
                    "the first message must be a hello",
                ),
                close_code::POLICY_VIOLATION,
            ),
            (SessionState::Joined { .. }, Err(rejection)) => Self::send(ctx, rejection.to_json()),
            (SessionState::Joined { .. }, Ok(ClientMessage::Hello(_))) => self.reject_and_close(
                ctx,
                &Rejection::new(
                    ErrorCode::BadMessage,
                    "hello was already received on this connection",
                ),
                close_code::POLICY_VIOLATION,
            ),
            (SessionState::Joined { document }, Ok(ClientMessage::Op(op))) => {
                let document = document.clone();
                self.on_op(op, &document, ctx)
            }
        }
    }

    fn on_hello(&mut self, hello: Hello, ctx: &mut ws::WebsocketContext<Self>) {
        if hello.protocol != PROTOCOL_VERSION {
            let rejection = Rejection::new(
                ErrorCode::UnsupportedProtocol,
                format!(
                    "protocol {} is not supported; this server speaks protocol {PROTOCOL_VERSION}",
                    hello.protocol
                ),
            );
            return self.reject_and_close(ctx, &rejection, close_code::POLICY_VIOLATION);
        }
        self.state = SessionState::Joining;
        let join = Join {
            document_id: self.document_id.clone(),
            request: JoinDocument {
                session_id: self.id,
                client_id: Arc::from(hello.client_id.as_str()),
                last_seen_server_seq: hello.last_seen_server_seq,
                epoch: hello.epoch,
                recipient: ctx.address().recipient(),
            },
        };
        // `wait`: no other frame is read until the join is answered, so ops
        // sent right after `hello` follow the welcome.
        ctx.wait(self.config.manager.send(join).into_actor(self).map(
            |result, act, ctx| match result {
                Ok(Ok(document)) => {
                    if matches!(act.state, SessionState::Joining) {
                        act.state = SessionState::Joined { document };
                    } else {
                        // Closed while the join was in progress.
                        document.do_send(LeaveDocument { session_id: act.id });
                    }
                }
                Ok(Err(e)) => act.reject_and_close(ctx, &e.rejection, e.close_code),
                Err(e) => act.reject_and_close(
                    ctx,
                    &Rejection::new(
                        ErrorCode::Unavailable,
                        format!("the server could not process the join: {e}"),
                    ),
                    close_code::INTERNAL_ERROR,
                ),
            },
        ));
    }

    fn on_op(
        &mut self,
        op: ClientOp,
        document: &Addr<DocumentActor>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        match crdt::decode_base64_update(&op.update) {
            Ok(update) => document.do_send(SubmitOp {
                session_id: self.id,
                client_op_id: op.client_op_id,
                update,
            }),
            Err(problem) => {
                log::info!(
                    "session {} on {}: op {} refused as invalid_update: {problem}",
                    self.id,
                    self.document_id,
                    op.client_op_id
                );
                Self::send(
                    ctx,
                    Rejection::for_op(ErrorCode::InvalidUpdate, problem, op.client_op_id).to_json(),
                );
            }
        }
    }

    fn on_binary(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let rejection = Rejection::new(
            ErrorCode::BadMessage,
            "binary frames are not part of the native protocol; send JSON text frames",
        );
        if matches!(self.state, SessionState::AwaitingHello) {
            self.reject_and_close(ctx, &rejection, close_code::POLICY_VIOLATION);
        } else {
            Self::send(ctx, rejection.to_json());
        }
    }

    fn too_large(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let rejection = Rejection::new(
            ErrorCode::TooLarge,
            format!(
                "message larger than the limit of {} bytes",
                self.config.max_message_bytes
            ),
        );
        self.reject_and_close(ctx, &rejection, close_code::MESSAGE_TOO_BIG);
    }

    fn on_fragment(&mut self, item: actix_http::ws::Item, ctx: &mut ws::WebsocketContext<Self>) {
        let (first, text, chunk, last) = match item {
            actix_http::ws::Item::FirstText(b) => (true, true, b, false),
            actix_http::ws::Item::FirstBinary(b) => (true, false, b, false),
            actix_http::ws::Item::Continue(b) => (false, false, b, false),
            actix_http::ws::Item::Last(b) => (false, false, b, true),
        };
        if first {
            self.fragments = Some(Fragments {
                text,
                data: BytesMut::new(),
            });
        }
        let Some(fragments) = self.fragments.as_mut() else {
            return self.reject_and_close(
                ctx,
                &Rejection::new(
                    ErrorCode::BadMessage,
                    "continuation frame without a first frame",
                ),
                close_code::POLICY_VIOLATION,
            );
        };
        if fragments.data.len() + chunk.len() > self.config.max_message_bytes {
            self.fragments = None;
            return self.too_large(ctx);
        }
        fragments.data.extend_from_slice(&chunk);
        if last && let Some(done) = self.fragments.take() {
            if !done.text {
                return self.on_binary(ctx);
            }
            match std::str::from_utf8(&done.data) {
                Ok(text) => self.on_text(text, ctx),
                Err(_) => {
                    let rejection =
                        Rejection::new(ErrorCode::BadMessage, "text message is not valid UTF-8");
                    self.reject_and_close(ctx, &rejection, close_code::POLICY_VIOLATION)
                }
            }
        }
    }

    fn write_event(&mut self, event: SessionEvent, ctx: &mut ws::WebsocketContext<Self>) {
        if matches!(self.state, SessionState::Closed) {
            return;
        }
        match event {
            SessionEvent::Welcome { welcome, catch_up } => {
                let recovery = match &catch_up {
                    CatchUp::Replay { .. } => Recovery::Replay,
                    CatchUp::Snapshot { .. } => Recovery::Snapshot,
                };
                Self::send(
                    ctx,
                    ServerMessage::Welcome {
                        document_id: &welcome.document_id,
                        epoch: &welcome.epoch,
                        server_seq: welcome.server_seq,
                        recovery,
                        last_client_op_id: welcome.last_client_op_id,
                    }
                    .to_json(),
                );
                match catch_up {
                    CatchUp::Replay { ops } => {
                        for op in ops {
                            Self::send(ctx, op.native_frame());
                        }
                    }
                    CatchUp::Snapshot { server_seq, state } => Self::send(
                        ctx,
                        ServerMessage::Snapshot {
                            server_seq,
                            state: &state,
                        }
                        .to_json(),
                    ),
                }
            }
            SessionEvent::Committed { ops } => {
                for op in ops.iter() {
                    if op.origin == Some(self.id) {
                        Self::send(
                            ctx,
                            ServerMessage::Ack {
                                client_op_id: op.client_op_id,
                                server_seq: Some(op.server_seq),
                                duplicate: false,
                            }
                            .to_json(),
                        );
                    } else {
                        Self::send(ctx, op.native_frame());
                    }
                }
            }
            SessionEvent::DuplicateAck {
                client_op_id,
                server_seq,
            } => Self::send(
                ctx,
                ServerMessage::Ack {
                    client_op_id,
                    server_seq,
                    duplicate: true,
                }
                .to_json(),
            ),
            SessionEvent::Rejected { rejection } => Self::send(ctx, rejection.to_json()),
            SessionEvent::Close { code, reason } => self.close(ctx, code, &reason),
        }
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        log::debug!(
            "session {} opened on document {}",
            self.id,
            self.document_id
        );
        self.config.manager.do_send(RegisterSession {
            session_id: self.id,
            recipient: ctx.address().recipient(),
        });
        ctx.run_interval(self.config.heartbeat_interval, |act, ctx| {
            if act.last_alive.elapsed() > act.config.client_timeout {
                log::info!(
                    "session {} on {}: no sign of life for {:?}; dropping it",
                    act.id,
                    act.document_id,
                    act.config.client_timeout
                );
                act.close(ctx, close_code::GOING_AWAY, "heartbeat timeout");
                return;
            }
            ctx.ping(b"");
        });
        ctx.run_later(self.config.client_timeout, |act, ctx| {
            if matches!(act.state, SessionState::AwaitingHello) {
                let rejection =
                    Rejection::new(ErrorCode::HelloRequired, "no hello received in time");
                act.reject_and_close(ctx, &rejection, close_code::POLICY_VIOLATION);
            }
        });
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        self.leave();
        self.config.manager.do_send(UnregisterSession {
            session_id: self.id,
        });
        log::debug!("session {} on {} closed", self.id, self.document_id);
        Running::Stop
    }
}

impl Handler<SessionEvent> for WsSession {
    type Result = ();

    fn handle(&mut self, event: SessionEvent, ctx: &mut Self::Context) {
        self.write_event(event, ctx);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_alive = Instant::now();
        match item {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Binary(_)) => self.on_binary(ctx),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                log::debug!("session {}: client closed ({reason:?})", self.id);
                self.state_closed_by_client(ctx, reason);
            }
            Err(ws::ProtocolError::Overflow) => self.too_large(ctx),
            Err(ws::ProtocolError::Io(e)) => {
                log::debug!(
                    "session {} on {}: connection lost ({e})",
                    self.id,
                    self.document_id
                );
                self.leave();
                ctx.stop();
            }
            Err(e) => {
                log::info!(
                    "session {} on {}: protocol error: {e}",
                    self.id,
                    self.document_id
                );
                let rejection = Rejection::new(
                    ErrorCode::BadMessage,
                    format!("websocket protocol error: {e}"),
                );
                self.reject_and_close(ctx, &rejection, close_code::POLICY_VIOLATION);
            }
        }
    }
}

impl WsSession {
    fn state_closed_by_client(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reason: Option<ws::CloseReason>,
    ) {
        self.leave();
        ctx.close(reason);
        ctx.stop();
    }

    /// Leaves the document (if joined) and marks the session closed.
    fn leave(&mut self) {
        if let SessionState::Joined { document } =
            std::mem::replace(&mut self.state, SessionState::Closed)
        {
            document.do_send(LeaveDocument {
                session_id: self.id,
            });
        }
    }
}
