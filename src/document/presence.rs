//! Presence handlers: the awareness updates of joined sessions, the
//! awareness query, and the removal of a leaving session's states.
//!
//! The registry ([`super::awareness`]) applies an update at once (so
//! joiners and queries see the latest states), keeping ownership and
//! `limits.max_awareness_clients_per_session`; its relay to the other
//! sessions follows `limits.awareness_per_sec_per_session`
//! ([`super::awareness_rate`]): the excess is coalesced and relayed from a
//! `run_later` at the next free slot. Removals of a leaving session are
//! relayed at once.

use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;

use super::awareness::Refused;
use super::awareness_rate::{Due, Relay};
use super::{DocumentActor, DocumentEvent, QueryAwareness, RelayAwareness};
use crate::vocabulary::SessionId;

impl Handler<RelayAwareness> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: RelayAwareness, ctx: &mut Context<Self>) {
        self.guarded(ctx, "relaying awareness", |act, ctx| {
            act.publish_awareness(msg, ctx)
        });
    }
}

impl Handler<QueryAwareness> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: QueryAwareness, _ctx: &mut Context<Self>) {
        let update = self.awareness.full_update().unwrap_or_else(|| {
            // An awareness update with no entries: "nobody is here".
            Bytes::from_static(&[0])
        });
        self.subscribers
            .deliver(msg.session_id, DocumentEvent::Awareness { update });
    }
}

impl DocumentActor {
    fn publish_awareness(&mut self, msg: RelayAwareness, ctx: &mut Context<Self>) {
        let session = msg.session_id;
        if self.subscribers.session(session).is_none() {
            return;
        }
        let max_clients = self.limits.max_awareness_clients_per_session;
        let applied = match self.awareness.apply(session, &msg.update, max_clients) {
            Ok(applied) => applied,
            Err(Refused::Invalid(problem)) => {
                // The session validated it: not expected, nothing to answer.
                log::info!(
                    "document {}: awareness from session {session} ignored: {problem}",
                    self.id
                );
                return;
            }
            Err(refused @ Refused::TooManyClients { .. }) => {
                log::info!(
                    "document {}: awareness from session {session} refused: {refused}",
                    self.id
                );
                let reason = refused.to_string();
                self.subscribers
                    .deliver(session, DocumentEvent::AwarenessRefused { reason });
                return;
            }
        };
        if applied.ignored > 0 {
            self.metrics.awareness_ignored(applied.ignored);
            log::debug!(
                "document {}: {} awareness entries of session {session} ignored: their client \
                 ids belong to other sessions",
                self.id,
                applied.ignored
            );
        }
        let Some(update) = applied.update else {
            return;
        };
        let now = Instant::now();
        match self
            .awareness_rate
            .changed(session, &applied.clients, msg.echo, now)
        {
            Relay::Now => self.relay_awareness(session, msg.echo, update),
            Relay::Later(Some((after, flush))) => {
                Self::schedule_awareness_flush(session, flush, after, ctx)
            }
            Relay::Later(None) => {}
        }
    }

    fn schedule_awareness_flush(
        session: SessionId,
        flush: u64,
        after: Duration,
        ctx: &mut Context<Self>,
    ) {
        ctx.run_later(after, move |act, ctx| {
            act.guarded(ctx, "relaying coalesced awareness", |act, ctx| {
                act.flush_awareness(session, flush, ctx)
            });
        });
    }

    /// The coalesced changes of `session` are due: relays the latest state
    /// of each changed client, once. Does nothing if the session left or
    /// the document restarted since (the rate forgot the flush).
    fn flush_awareness(&mut self, session: SessionId, flush: u64, ctx: &mut Context<Self>) {
        match self.awareness_rate.due(session, flush, Instant::now()) {
            Due::Nothing => {}
            Due::Wait(after) => Self::schedule_awareness_flush(session, flush, after, ctx),
            Due::Relay { clients, echo } => {
                if self.subscribers.session(session).is_none() {
                    return;
                }
                if let Some(update) = self.awareness.latest(session, &clients) {
                    self.relay_awareness(session, echo, update);
                }
            }
        }
    }

    /// Sends `update` of `session` to every other session (and, with
    /// `echo`, back to it).
    fn relay_awareness(&mut self, session: SessionId, echo: bool, update: Bytes) {
        let except = (!echo).then_some(session);
        self.subscribers
            .broadcast(except, || DocumentEvent::Awareness {
                update: update.clone(),
            });
    }

    /// Removes the states of a session that left (releasing its client
    /// ids) for everyone, at once; its coalesced changes are dropped.
    pub(super) fn remove_presence(&mut self, session: SessionId) {
        self.awareness_rate.forget(session);
        if let Some(removal) = self.awareness.remove_session(session) {
            self.subscribers
                .broadcast(None, || DocumentEvent::Awareness {
                    update: removal.clone(),
                });
        }
    }
}
