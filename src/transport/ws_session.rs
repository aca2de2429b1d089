//! The WebSocket session actor: one per connection, for either protocol.
//!
//! This is the only file that uses `actix-web-actors` (deprecated upstream,
//! kept because it is what the session actor is built on). The actor is
//! the transport: it reassembles fragmented messages, enforces the size
//! limit, pings the client and drops it when silent, registers with the
//! session manager, joins the document and leaves it. What the frames mean
//! is decided by its [`SessionProtocol`] ([`crate::protocols`]), which turns
//! frames and document events into [`Action`]s that this actor carries out.
//!
//! Life of a session: `started` registers with the manager and starts the
//! heartbeat; a join (the native `hello`, or the opening of a y-websocket
//! connection) goes through the manager, and no further frame is read until
//! it is answered, so ops sent right after `hello` follow the welcome;
//! `stopping` leaves the document and unregisters.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;

use super::connections::ConnectionPermit;
use super::fragments::{Fragments, Reassembled, close_reason};
use super::inbound_gate::{GatedPayload, InboundGate};
use super::inbound_rate::InboundRate;
use super::outgoing::{Outgoing, Write};
use super::session_config::{NewSession, SessionConfig};
use super::slots::SessionSlot;
use crate::document::{
    BacklogTicket, DocumentActor, DocumentEvent, JoinDocument, LeaveDocument, QueryAwareness,
    RelayAwareness, SubmitOp, Submitter, SyncStateVector, counted_as,
};
use crate::metrics::LiveSession;
use crate::protocols::{Action, JoinRequest, SessionProtocol};
use crate::session_manager::{Join, RegisterSession, UnregisterSession};
use crate::vocabulary::{Access, Frame, JoinError, SessionId, close_code};

/// Upgrades `req` to the session `new`.
pub fn start<P: SessionProtocol>(
    new: NewSession<P>,
    config: &SessionConfig,
    req: &HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let gate = Rc::new(InboundGate::default());
    let session = WsSession {
        id: new.id,
        peer: req.peer_addr().map(|address| address.ip()),
        document_id: new.document_id,
        access: new.access,
        _slot: new.slot,
        _connection: new.connection,
        _live: config.metrics.session_opened(P::ROUTE),
        config: config.clone(),
        protocol: new.protocol,
        document: None,
        closed: false,
        last_alive: Instant::now(),
        fragments: Fragments::default(),
        rate: InboundRate::new(config.rates),
        outgoing: Outgoing::default(),
        gate: gate.clone(),
    };
    // Frames are let in only as fast as the session handles them.
    ws::WsResponseBuilder::new(session, req, GatedPayload::new(stream, gate))
        .frame_size(config.max_message_bytes)
        .start()
}

/// See the module docs.
pub struct WsSession<P: SessionProtocol> {
    id: SessionId,
    /// The client's address, for log lines.
    peer: Option<IpAddr>,
    /// Who connected and what they may do, until when.
    access: Access,
    /// Counts the session on its document while it lives.
    _slot: SessionSlot,
    _connection: Option<ConnectionPermit>,
    /// Counts the session in `collab_sessions` while it lives.
    _live: LiveSession,
    document_id: Arc<str>,
    config: SessionConfig,
    protocol: P,
    /// The joined document, once the join succeeded.
    document: Option<Addr<DocumentActor>>,
    /// A close was sent; nothing more is processed.
    closed: bool,
    /// Last time the client showed life (any frame, pong included).
    last_alive: Instant,
    /// A message split over continuation frames, being reassembled.
    fragments: Fragments,
    /// How far ahead of its ops and bytes rates the client is.
    rate: InboundRate,
    /// Frames waiting behind a big message being sent in fragments.
    outgoing: Outgoing,
    /// Counts the frames handled, so that no more than a few are read
    /// ahead of them from the client (`inbound_gate.rs`).
    gate: Rc<InboundGate>,
}

impl<P: SessionProtocol> WsSession<P> {
    /// Carries out `actions` in order.
    fn run(&mut self, actions: Vec<Action>, ctx: &mut ws::WebsocketContext<Self>) {
        for action in actions {
            if self.closed {
                return;
            }
            match action {
                Action::Send(frame) => self.send(frame, ctx),
                Action::Join(request) => self.join(request, ctx),
                Action::Submit {
                    client_op_id,
                    update,
                    skip_if_redundant,
                } => {
                    self.rate.op();
                    if let Some(document) = &self.document {
                        document.do_send(SubmitOp {
                            submitter: Submitter::Session(self.id),
                            client_op_id,
                            update,
                            skip_if_redundant,
                        });
                    }
                }
                Action::Awareness { update, echo } => {
                    if let Some(document) = &self.document {
                        document.do_send(RelayAwareness {
                            session_id: self.id,
                            update,
                            echo,
                        });
                    }
                }
                Action::QueryAwareness => {
                    if let Some(document) = &self.document {
                        document.do_send(QueryAwareness {
                            session_id: self.id,
                        });
                    }
                }
                Action::SyncStep1 { state_vector } => {
                    if let Some(document) = &self.document {
                        document.do_send(SyncStateVector {
                            session_id: self.id,
                            state_vector,
                        });
                    }
                }
                Action::Close { code, reason } => self.close(ctx, code, &reason),
            }
        }
    }

    /// Sends `frame`: at once, or behind a big message being written.
    fn send(&mut self, frame: Frame, ctx: &mut ws::WebsocketContext<Self>) {
        match frame {
            Frame::Text(text) if !self.outgoing.in_progress() => ctx.text(text),
            Frame::Binary(data) if !self.outgoing.in_progress() => ctx.binary(data),
            frame => {
                let idle = !self.outgoing.in_progress();
                self.outgoing.push(frame);
                if idle {
                    self.write_outgoing(ctx);
                }
            }
        }
    }

    /// Writes what is queued up to the next fragment of a big message,
    /// and comes back for the rest on a later turn: the context runs again
    /// only once the socket took what was written, so a slow reader holds
    /// one fragment, not the whole message.
    fn write_outgoing(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.closed {
            return;
        }
        for write in self.outgoing.next_writes() {
            let message = match write {
                Write::Text(text) => ws::Message::Text(text),
                Write::Binary(data) => ws::Message::Binary(data),
                Write::Fragment {
                    text,
                    first,
                    last,
                    data,
                } => ws::Message::Continuation(match (first, last, text) {
                    (true, _, true) => Item::FirstText(data),
                    (true, _, false) => Item::FirstBinary(data),
                    (false, false, _) => Item::Continue(data),
                    (false, true, _) => Item::Last(data),
                }),
            };
            ctx.write_raw(message);
        }
        if self.outgoing.in_progress() {
            ctx.run_later(Duration::ZERO, |act, ctx| act.write_outgoing(ctx));
        }
    }

    fn with_protocol(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        f: impl FnOnce(&mut P, &mut Vec<Action>),
    ) {
        let mut actions = Vec::new();
        f(&mut self.protocol, &mut actions);
        self.run(actions, ctx);
    }

    fn join(&mut self, request: JoinRequest, ctx: &mut ws::WebsocketContext<Self>) {
        let join = Join {
            document_id: self.document_id.clone(),
            request: JoinDocument {
                session_id: self.id,
                client_id: request.client_id,
                mode: request.mode,
                fresh_client: request.fresh_client,
                access: self.access.clone(),
                recipient: ctx.address().recipient(),
            },
        };
        // `wait`: no other frame is read until the join is answered.
        ctx.wait(
            self.config
                .manager
                .send(join)
                .into_actor(self)
                .map(|result, act, ctx| {
                    let error = match result {
                        Ok(Ok(document)) => {
                            if act.closed {
                                // Closed while the join was in progress.
                                document.do_send(LeaveDocument { session_id: act.id });
                            } else {
                                act.document = Some(document);
                            }
                            return;
                        }
                        Ok(Err(e)) => e,
                        Err(e) => JoinError::internal(format!(
                            "the server could not process the join: {e}"
                        )),
                    };
                    if let Some(kind) = counted_as(&error.refusal) {
                        act.config.metrics.refused(kind);
                    }
                    act.with_protocol(ctx, |p, out| p.on_join_failed(error, out));
                }),
        );
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        if self.closed {
            return;
        }
        // An oversized message was reported by `too_large` already.
        let level = if close_code::is_client_error(code) && code != close_code::MESSAGE_TOO_BIG {
            log::Level::Info
        } else {
            log::Level::Debug
        };
        log::log!(
            level,
            "{} session {} on {}: closing with {code} ({reason})",
            P::NAME,
            self.id,
            self.document_id
        );
        self.leave();
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code),
            description: Some(close_reason(reason).to_owned()),
        }));
        ctx.stop();
    }

    /// Leaves the document (if joined) and marks the session closed.
    fn leave(&mut self) {
        self.closed = true;
        if let Some(document) = self.document.take() {
            document.do_send(LeaveDocument {
                session_id: self.id,
            });
        }
    }

    fn too_large(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.config.max_message_bytes;
        self.config.metrics.message_too_large();
        let who = format!("{} session {} on {}", P::NAME, self.id, self.document_id);
        self.config.oversize.report(&who, self.peer, limit);
        self.with_protocol(ctx, |p, out| p.on_too_large(limit, out));
        // Whatever the protocol said, an oversized message ends the session.
        self.close(ctx, close_code::MESSAGE_TOO_BIG, "message too large");
    }

    fn on_fragment(&mut self, item: actix_http::ws::Item, ctx: &mut ws::WebsocketContext<Self>) {
        match self.fragments.push(item, self.config.max_message_bytes) {
            Reassembled::Pending => {}
            Reassembled::Text(Ok(text)) => self.with_protocol(ctx, |p, out| p.on_text(&text, out)),
            Reassembled::Text(Err(_)) => self.close(
                ctx,
                close_code::INVALID_PAYLOAD,
                "text message is not valid UTF-8",
            ),
            Reassembled::Binary(data) => self.with_protocol(ctx, |p, out| p.on_binary(&data, out)),
            Reassembled::TooLarge => self.too_large(ctx),
            Reassembled::NoFirstFrame => self.close(
                ctx,
                close_code::POLICY_VIOLATION,
                "continuation frame without a first frame",
            ),
        }
    }
}

impl<P: SessionProtocol> Actor for WsSession<P> {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        log::debug!(
            "{} session {} opened on document {}",
            P::NAME,
            self.id,
            self.document_id
        );
        self.config.manager.do_send(RegisterSession {
            session_id: self.id,
            subject: self.access.subject.clone(),
            token_id: self.access.token_id.clone(),
            recipient: ctx.address().recipient(),
        });
        if let Some(expires_at) = self.access.expires_at {
            // The token's `exp` is the deadline of the session.
            let now_ms = chrono::Utc::now().timestamp_millis();
            let left_ms = expires_at
                .saturating_mul(1000)
                .saturating_sub(now_ms)
                .max(0);
            ctx.run_later(Duration::from_millis(left_ms as u64), |act, ctx| {
                act.close(ctx, close_code::TOKEN_EXPIRED, "token expired");
            });
        }
        ctx.run_interval(self.config.heartbeat_interval, |act, ctx| {
            if act.last_alive.elapsed() > act.config.client_timeout {
                log::info!(
                    "{} session {} on {}: no sign of life for {:?}; dropping it",
                    P::NAME,
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
            if act.document.is_none() && !act.closed {
                act.with_protocol(ctx, |p, out| p.on_join_timeout(out));
                // Whatever the protocol said, the session ends here.
                act.close(
                    ctx,
                    close_code::POLICY_VIOLATION,
                    "no hello received in time",
                );
            }
        });
        self.with_protocol(ctx, |p, out| p.on_open(out));
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        self.leave();
        self.config.manager.do_send(UnregisterSession {
            session_id: self.id,
        });
        log::debug!(
            "{} session {} on {} closed",
            P::NAME,
            self.id,
            self.document_id
        );
        Running::Stop
    }
}

impl<P: SessionProtocol> Handler<DocumentEvent> for WsSession<P> {
    type Result = ();

    fn handle(&mut self, mut event: DocumentEvent, ctx: &mut Self::Context) {
        if self.closed {
            return;
        }
        if self.outgoing.in_progress()
            && let DocumentEvent::Committed { ticket, .. } = &mut event
        {
            // Its frames wait behind a big message: it stays in the
            // session's backlog until they are written.
            self.outgoing
                .hold(std::mem::replace(ticket, BacklogTicket::detached()));
        }
        let own = self.id;
        self.with_protocol(ctx, |p, out| p.on_event(own, event, out));
    }
}

impl<P: SessionProtocol> StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession<P> {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.gate.handled_frame();
        self.last_alive = Instant::now();
        if self.closed {
            return;
        }
        match &item {
            Ok(ws::Message::Text(text)) => self.rate.message(text.len()),
            Ok(ws::Message::Binary(data)) => self.rate.message(data.len()),
            Ok(ws::Message::Continuation(
                actix_http::ws::Item::FirstText(data)
                | actix_http::ws::Item::FirstBinary(data)
                | actix_http::ws::Item::Continue(data)
                | actix_http::ws::Item::Last(data),
            )) => self.rate.message(data.len()),
            _ => {}
        }
        self.on_message(item, ctx);
        if let Some(wait) = self.rate.pause()
            && !self.closed
        {
            // Ahead of its rate: read nothing more from this client (nor
            // anything else) until it is back within it.
            self.config.metrics.session_throttled();
            log::debug!(
                "{} session {} on {}: over its rate; not reading for {} ms",
                P::NAME,
                self.id,
                self.document_id,
                wait.as_millis()
            );
            ctx.wait(actix_web::rt::time::sleep(wait).into_actor(self));
        }
    }
}

impl<P: SessionProtocol> WsSession<P> {
    fn on_message(
        &mut self,
        item: Result<ws::Message, ws::ProtocolError>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        match item {
            Ok(ws::Message::Text(text)) => self.with_protocol(ctx, |p, out| p.on_text(&text, out)),
            Ok(ws::Message::Binary(data)) => {
                self.with_protocol(ctx, |p, out| p.on_binary(&data, out))
            }
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                log::debug!("session {}: client closed ({reason:?})", self.id);
                self.leave();
                ctx.close(reason);
                ctx.stop();
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
                    "{} session {} on {}: websocket protocol error: {e}",
                    P::NAME,
                    self.id,
                    self.document_id
                );
                self.close(
                    ctx,
                    close_code::POLICY_VIOLATION,
                    &format!("websocket protocol error: {e}"),
                );
            }
        }
    }
}
