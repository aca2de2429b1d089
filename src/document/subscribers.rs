//! Who a document sends its events to: the joined WebSocket sessions and
//! the listeners (change feeds, forwarders), each with the backlog of
//! committed ops it has been sent and not handled yet.

use std::collections::HashMap;
use std::sync::Arc;

use actix::Recipient;

use super::events::{Backlog, BacklogLimits, DocumentEvent};
use crate::vocabulary::{
    Access, CommittedOp, Permission, Refusal, RefusalReason, SessionId, close_code,
};

/// Where one subscriber's events go.
struct Outbox {
    recipient: Recipient<DocumentEvent>,
    /// `Some` while the subscriber's join is reading from storage: live
    /// events are held here so they follow the catch-up instead of
    /// preceding it.
    held: Option<Vec<DocumentEvent>>,
    /// Committed ops sent and not yet handled by the subscriber.
    backlog: Backlog,
}

impl Outbox {
    fn new(recipient: Recipient<DocumentEvent>, catching_up: bool) -> Self {
        Outbox {
            recipient,
            held: catching_up.then(Vec::new),
            backlog: Backlog::default(),
        }
    }

    /// Sends `event`, or holds it while the join catches up.
    fn deliver(&mut self, event: DocumentEvent) {
        match &mut self.held {
            Some(held) => held.push(event),
            None => self.recipient.do_send(event),
        }
    }

    /// Sends whatever was held, and from now on sends at once.
    fn release_held(&mut self) {
        for event in self.held.take().unwrap_or_default() {
            self.recipient.do_send(event);
        }
    }

    /// Sends `ops` (of `bytes` bytes of updates) unless that takes the
    /// backlog past `limits`; `false` when the subscriber is too slow.
    fn deliver_committed(
        &mut self,
        ops: &Arc<[Arc<CommittedOp>]>,
        bytes: usize,
        limits: BacklogLimits,
    ) -> bool {
        if !self.backlog.has_room(ops.len(), bytes, limits) {
            return false;
        }
        let ticket = self.backlog.ticket(ops.len(), bytes);
        self.deliver(DocumentEvent::Committed {
            ops: ops.clone(),
            ticket,
        });
        true
    }

    /// Queues a close behind what was sent (and held), then sends the held events.
    fn close_after_pending(&mut self, code: u16, reason: &str) {
        self.deliver(DocumentEvent::Close {
            code,
            reason: reason.to_owned(),
        });
        self.release_held();
    }

    /// Closes at once, after `refusal` if any (nothing held is sent).
    fn close_now(&self, code: u16, reason: &str, refusal: Option<&Refusal>) {
        if let Some(refusal) = refusal {
            self.recipient.do_send(DocumentEvent::Refused {
                refusal: refusal.clone(),
                client_op_id: None,
            });
        }
        self.recipient.do_send(DocumentEvent::Close {
            code,
            reason: reason.to_owned(),
        });
    }
}

/// A joined WebSocket session.
pub(super) struct Session {
    pub client_id: Arc<str>,
    /// Who connected (access control on), and whether they may write.
    pub subject: Option<Arc<str>>,
    pub permission: Permission,
    /// The session is counted in its client's mark (see
    /// `ClientMarks::session_joined`); false while the mark could not be
    /// read yet (it is read with the session's first op).
    pub mark_counted: bool,
    /// An op of this session was refused (`unavailable`): every later op
    /// is refused too and the session is being closed, so no op of the
    /// client is accepted after an earlier one was lost (a resend of the
    /// earlier one would otherwise look like a duplicate).
    pub refused: bool,
    outbox: Outbox,
}

/// A subscriber that could not keep up, to be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TooSlow {
    Session(SessionId),
    Listener(u64),
}

/// Every subscriber of one document. See the module docs.
pub(super) struct Subscribers {
    sessions: HashMap<SessionId, Session>,
    listeners: HashMap<u64, Outbox>,
    /// Source of listener ids, unique within this document's actor.
    next_listener_id: u64,
}

impl Subscribers {
    pub fn new() -> Self {
        Subscribers {
            sessions: HashMap::new(),
            listeners: HashMap::new(),
            next_listener_id: 1,
        }
    }

    /// No session and no listener.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.listeners.is_empty()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    /// Adds a joined session; `catching_up` holds its live events back
    /// until [`Subscribers::welcome`].
    pub fn add_session(
        &mut self,
        session_id: SessionId,
        client_id: Arc<str>,
        access: &Access,
        recipient: Recipient<DocumentEvent>,
        mark_counted: bool,
        catching_up: bool,
    ) {
        let session = Session {
            client_id,
            subject: access.subject.clone(),
            permission: access.permission,
            mark_counted,
            refused: false,
            outbox: Outbox::new(recipient, catching_up),
        };
        self.sessions.insert(session_id, session);
    }

    pub fn session(&self, session_id: SessionId) -> Option<&Session> {
        self.sessions.get(&session_id)
    }

    pub fn session_mut(&mut self, session_id: SessionId) -> Option<&mut Session> {
        self.sessions.get_mut(&session_id)
    }

    pub fn remove_session(&mut self, session_id: SessionId) -> Option<Session> {
        self.sessions.remove(&session_id)
    }

    /// Adds a listener; returns its id.
    pub fn add_listener(&mut self, recipient: Recipient<DocumentEvent>) -> u64 {
        let id = self.next_listener_id;
        self.next_listener_id += 1;
        self.listeners.insert(id, Outbox::new(recipient, false));
        id
    }

    pub fn remove_listener(&mut self, listener_id: u64) -> bool {
        self.listeners.remove(&listener_id).is_some()
    }

    /// Sends `event` to one session (held while it catches up).
    pub fn deliver(&mut self, session_id: SessionId, event: DocumentEvent) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.outbox.deliver(event);
        }
    }

    /// Sends `event` to every session but `except`.
    pub fn broadcast(&mut self, except: Option<SessionId>, event: impl Fn() -> DocumentEvent) {
        for (id, session) in self.sessions.iter_mut() {
            if Some(*id) != except {
                session.outbox.deliver(event());
            }
        }
    }

    /// Sends committed `ops` (one shared list) to every session and
    /// listener whose backlog stays within `limits`; returns the others.
    pub fn broadcast_committed(
        &mut self,
        ops: &Arc<[Arc<CommittedOp>]>,
        limits: BacklogLimits,
    ) -> Vec<TooSlow> {
        let bytes = ops.iter().map(|op| op.update.len()).sum();
        let mut too_slow = Vec::new();
        for (id, session) in self.sessions.iter_mut() {
            if !session.outbox.deliver_committed(ops, bytes, limits) {
                too_slow.push(TooSlow::Session(*id));
            }
        }
        // A listener whose actor is gone will never unsubscribe: forget it.
        self.prune_gone_listeners();
        for (id, listener) in self.listeners.iter_mut() {
            if !listener.deliver_committed(ops, bytes, limits) {
                too_slow.push(TooSlow::Listener(*id));
            }
        }
        too_slow
    }

    /// Forgets listeners whose recipient is gone (their actor stopped
    /// without unsubscribing); returns how many.
    pub fn prune_gone_listeners(&mut self) -> usize {
        let before = self.listeners.len();
        self.listeners
            .retain(|_, listener| listener.recipient.connected());
        before - self.listeners.len()
    }

    /// Ops of `target` sent and not yet handled, and their bytes.
    pub fn backlog(&self, target: TooSlow) -> (usize, usize) {
        match target {
            TooSlow::Session(id) => self.sessions.get(&id).map(|s| &s.outbox),
            TooSlow::Listener(id) => self.listeners.get(&id),
        }
        .map_or((0, 0), |outbox| {
            (outbox.backlog.len(), outbox.backlog.bytes())
        })
    }

    /// Removes a subscriber that does not keep up: what it was sent stays
    /// queued for it, then a close with 1013. Returns the session, if it
    /// was one.
    pub fn drop_slow(&mut self, target: TooSlow) -> Option<Session> {
        const REASON: &str = "too slow: reconnect with last_seen_server_seq to catch up";
        match target {
            TooSlow::Session(id) => {
                let mut session = self.sessions.remove(&id)?;
                session
                    .outbox
                    .close_after_pending(close_code::TRY_AGAIN_LATER, REASON);
                Some(session)
            }
            TooSlow::Listener(id) => {
                if let Some(mut listener) = self.listeners.remove(&id) {
                    listener.close_after_pending(close_code::TRY_AGAIN_LATER, REASON);
                }
                None
            }
        }
    }

    /// Answers the ops `client_op_ids` of a session with `refusal`. With
    /// `close`, the session (and any other session of the same client) is
    /// marked refused and closed with 1013: no later op of that client may
    /// be accepted on it, because the refused op, resent after it, would
    /// look like a duplicate and be lost. The client reconnects, learns
    /// `last_client_op_id` and resends the rest in order.
    pub fn refuse(
        &mut self,
        session_id: SessionId,
        client_op_ids: impl IntoIterator<Item = u64>,
        refusal: &Refusal,
        close: bool,
    ) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        for client_op_id in client_op_ids {
            session.outbox.deliver(DocumentEvent::Refused {
                refusal: refusal.clone(),
                client_op_id: Some(client_op_id),
            });
        }
        if !close {
            return;
        }
        let client_id = session.client_id.clone();
        for session in self.sessions.values_mut() {
            if session.client_id == client_id && !session.refused {
                session.refused = true;
                let close = match refusal.reason {
                    RefusalReason::DocumentTooLarge => DocumentEvent::Close {
                        code: close_code::DOCUMENT_TOO_LARGE,
                        reason: "document too large; an op was refused".to_owned(),
                    },
                    _ => DocumentEvent::Close {
                        code: close_code::TRY_AGAIN_LATER,
                        reason: "an op was refused; reconnect and resend from last_client_op_id"
                            .to_owned(),
                    },
                };
                session.outbox.deliver(close);
            }
        }
    }

    /// Sends a joining session its welcome (`event`) ahead of anything
    /// held, then what was held.
    pub fn welcome(&mut self, session_id: SessionId, event: DocumentEvent) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.outbox.recipient.do_send(event);
            session.outbox.release_held();
        }
    }

    /// Drops what is held for a joining session (its catch-up, a snapshot
    /// at the current head, covers it) and keeps holding.
    pub fn reset_held(&mut self, session_id: SessionId) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.outbox.held = Some(Vec::new());
        }
    }

    /// Tells every session and listener `refusal` (if any), closes them
    /// with `code` and forgets them; returns the sessions.
    pub fn close_all(
        &mut self,
        code: u16,
        reason: &str,
        refusal: Option<&Refusal>,
    ) -> (Vec<Session>, usize) {
        let sessions: Vec<Session> = self.sessions.drain().map(|(_, s)| s).collect();
        for session in &sessions {
            session.outbox.close_now(code, reason, refusal);
        }
        let listeners = self.listeners.len();
        for (_, listener) in self.listeners.drain() {
            listener.close_now(code, reason, refusal);
        }
        (sessions, listeners)
    }
}
