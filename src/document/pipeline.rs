//! The group-commit pipeline of a document: accepting ops, committing
//! them in batches, then applying, acknowledging and broadcasting them.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::state::{CommittedOp, OpDisposition, SessionId};
use super::{DocumentActor, InFlight, MarkState, Phase, PipelineItem};
use crate::crdt::{self, ValidUpdate};
use crate::events::SessionEvent;
use crate::protocol::{ErrorCode, Rejection, close_code};
use crate::store::{NewOp, NewSnapshot, StoreError};

/// Most ops in one commit transaction.
const MAX_BATCH_OPS: usize = 2048;
/// Most ops waiting for a transaction; beyond it new ops are refused with
/// `unavailable` so a document that cannot commit fast enough (slow or
/// failing storage) does not grow without bound.
const MAX_PENDING_OPS: usize = 100_000;

impl DocumentActor {
    /// A joined session sent an op.
    pub(super) fn submit(&mut self, msg: super::SubmitOp, ctx: &mut Context<Self>) {
        self.last_activity = Instant::now();
        let Some(subscriber) = self.subscribers.get_mut(&msg.session_id) else {
            log::debug!(
                "document {}: op {} from session {} that is not joined; ignored",
                self.id,
                msg.client_op_id,
                msg.session_id
            );
            return;
        };
        let refusal = if subscriber.refused {
            Some("an earlier op of this session was refused; reconnect and resend")
        } else if !matches!(self.phase, Phase::Ready(_)) {
            Some(
                "the document is not accepting ops right now (shutting down or reloading); resend the op later",
            )
        } else if self.pending.len() >= MAX_PENDING_OPS {
            log::warn!(
                "document {}: {} ops waiting for storage; refusing op {} of {}",
                self.id,
                self.pending.len(),
                msg.client_op_id,
                subscriber.client_id
            );
            Some("the document is overloaded (storage too slow); resend the op later")
        } else {
            None
        };
        if let Some(message) = refusal {
            // While shutting down every op is refused and every session is
            // about to be closed with 1001: no extra close needed.
            let close = !matches!(self.phase, Phase::ShuttingDown(_));
            self.refuse(msg.session_id, [msg.client_op_id], message, close);
            return;
        }
        match &mut subscriber.mark {
            MarkState::Known => {}
            MarkState::Loading { queued } => {
                queued.push((msg.client_op_id, msg.update));
                return;
            }
            MarkState::Unknown => {
                subscriber.mark = MarkState::Loading {
                    queued: vec![(msg.client_op_id, msg.update)],
                };
                self.load_mark(msg.session_id, ctx);
                return;
            }
        }
        if msg.skip_if_redundant
            && let Phase::Ready(state) = &mut self.phase
            && state.is_redundant(msg.update.bytes())
        {
            log::debug!(
                "document {}: update {} of session {} adds nothing; dropped",
                self.id,
                msg.client_op_id,
                msg.session_id
            );
            return;
        }
        self.accept(msg.session_id, msg.client_op_id, msg.update);
        self.pump(ctx);
    }

    /// Reads the client's mark for a session that joined while storage was
    /// unreadable; its ops wait until then.
    fn load_mark(&mut self, session_id: SessionId, ctx: &mut Context<Self>) {
        let Some(subscriber) = self.subscribers.get(&session_id) else {
            return;
        };
        let store = self.store.clone();
        let id = self.id.clone();
        let client_id = subscriber.client_id.clone();
        ctx.spawn(
            async move { store.client_mark(&id, &client_id).await }
                .into_actor(self)
                .map(move |result, act, ctx| {
                    act.guarded(ctx, "loading a client mark", |act, ctx| {
                        act.mark_loaded(session_id, result, ctx)
                    });
                }),
        );
    }

    fn mark_loaded(
        &mut self,
        session_id: SessionId,
        result: Result<Option<(u64, u64)>, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(subscriber) = self.subscribers.get_mut(&session_id) else {
            return;
        };
        let queued = match std::mem::replace(&mut subscriber.mark, MarkState::Unknown) {
            MarkState::Loading { queued } => queued,
            other => {
                subscriber.mark = other;
                return;
            }
        };
        let client_id = subscriber.client_id.clone();
        match (result, self.state_mut()) {
            (Ok(stored), Some(state)) => {
                state.client_joined(&client_id, stored);
                if let Some(subscriber) = self.subscribers.get_mut(&session_id) {
                    subscriber.mark = MarkState::Known;
                }
                for (client_op_id, update) in queued {
                    self.accept(session_id, client_op_id, update);
                }
                self.pump(ctx);
            }
            (result, _) => {
                let why = match result {
                    Err(e) => format!("storage cannot be read: {e}"),
                    Ok(_) => "the document is not accepting ops right now".to_owned(),
                };
                self.refuse(
                    session_id,
                    queued.into_iter().map(|(client_op_id, _)| client_op_id),
                    &format!("the op was not accepted: {why}; reconnect and resend it"),
                    true,
                );
            }
        }
    }

    /// Classifies an op of a session whose mark is known and queues it.
    fn accept(&mut self, session_id: SessionId, client_op_id: u64, update: ValidUpdate) {
        let Some(subscriber) = self.subscribers.get(&session_id) else {
            return;
        };
        let client_id = subscriber.client_id.clone();
        let recipient = subscriber.recipient.clone();
        let Phase::Ready(state) = &mut self.phase else {
            return;
        };
        match state.classify(&client_id, client_op_id) {
            OpDisposition::Fresh => {
                state.reserve(&client_id, client_op_id);
                self.pending.push(PipelineItem::Op {
                    session_id,
                    client_id,
                    client_op_id,
                    raw: update.into_bytes(),
                });
            }
            OpDisposition::Duplicate { server_seq } => {
                recipient.do_send(SessionEvent::DuplicateAck {
                    client_op_id,
                    server_seq,
                });
            }
            OpDisposition::DuplicateInFlight => self.pending.push(PipelineItem::Duplicate {
                session_id,
                client_id,
                client_op_id,
            }),
        }
    }

    /// Starts the next transaction if none is in flight and there is
    /// something to write.
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight.is_some() {
            return;
        }
        let snapshot_every = self.settings.snapshot_every_ops;
        let final_snapshot = self.final_snapshot;
        let Some(state) = (match &mut self.phase {
            Phase::Ready(state) | Phase::ShuttingDown(state) => Some(state),
            _ => None,
        }) else {
            return;
        };
        let take = self.pending.len().min(MAX_BATCH_OPS);
        let items: Vec<PipelineItem> = self.pending.drain(..take).collect();
        let lag = state.head() - state.snapshot_seq();
        let snapshot =
            (lag > 0 && (final_snapshot || lag >= snapshot_every)).then(|| NewSnapshot {
                server_seq: state.head(),
                state: crdt::encode_full_state(state.doc()),
                prune_below: state.snapshot_seq(),
            });
        if items.is_empty() && snapshot.is_none() {
            return;
        }
        let head = state.head();
        let mut next_seq = head;
        let ops: Vec<NewOp> = items
            .iter()
            .filter_map(|item| match item {
                PipelineItem::Op {
                    client_id,
                    client_op_id,
                    raw,
                    ..
                } => {
                    next_seq += 1;
                    Some(NewOp {
                        server_seq: next_seq,
                        client_id: client_id.clone(),
                        client_op_id: *client_op_id,
                        update: raw.clone(),
                    })
                }
                PipelineItem::Duplicate { .. } => None,
            })
            .collect();
        if ops.is_empty() && snapshot.is_none() {
            // Only duplicate markers (their originals are committed): answer now.
            self.in_flight = Some(InFlight {
                items,
                snapshot_seq: None,
            });
            self.commit_done(Ok(()), ctx);
            return;
        }
        let snapshot_seq = snapshot.as_ref().map(|s| s.server_seq);
        self.in_flight = Some(InFlight {
            items,
            snapshot_seq,
        });
        let store = self.store.clone();
        let id = self.id.clone();
        let expected_head = self.verify_head.then_some(head);
        let (fail_before, fail_after) = if self.injected_commit_failures > 0 {
            self.injected_commit_failures -= 1;
            (!self.injected_after_commit, self.injected_after_commit)
        } else {
            (false, false)
        };
        ctx.spawn(
            async move {
                if fail_before {
                    return Err(StoreError::Injected(
                        "commit failure requested through /debug",
                    ));
                }
                store
                    .commit(&id, &ops, snapshot.as_ref(), expected_head)
                    .await?;
                if fail_after {
                    return Err(StoreError::Injected(
                        "commit reported as failed after it reached storage (/debug)",
                    ));
                }
                Ok(())
            }
            .into_actor(self)
            .map(|result, act, ctx| {
                act.guarded(ctx, "completing a commit", |act, ctx| {
                    act.commit_done(result, ctx)
                });
            }),
        );
    }

    /// The transaction in flight finished.
    fn commit_done(&mut self, result: Result<(), StoreError>, ctx: &mut Context<Self>) {
        let Some(in_flight) = self.in_flight.take() else {
            return;
        };
        if let Err(e) = result {
            self.commit_failed(in_flight, e, ctx);
            return;
        }
        self.verify_head = false;
        let ops = in_flight
            .items
            .iter()
            .filter(|item| matches!(item, PipelineItem::Op { .. }))
            .count();
        if ops > 0 || in_flight.snapshot_seq.is_some() {
            self.metrics.commit(ops, in_flight.snapshot_seq.is_some());
        }
        if in_flight.snapshot_seq.is_some() && matches!(self.phase, Phase::Ready(_)) {
            self.final_snapshot = false;
        }
        self.apply_and_broadcast(in_flight);
        self.pump(ctx);
        self.maybe_finish_flush();
    }

    /// A commit failed. Its ops and every pending one are answered
    /// `unavailable` (never acked, never broadcast). The in-memory state is
    /// untouched (nothing uncommitted is applied), so the document keeps
    /// serving; the next commit first checks the log head, in case the
    /// failed commit did land, and a mismatch reloads the document.
    fn commit_failed(&mut self, in_flight: InFlight, error: StoreError, ctx: &mut Context<Self>) {
        self.metrics.commit_failed();
        let mut failed = in_flight.items;
        failed.append(&mut self.pending);
        log::error!(
            "document {}: commit failed ({error}); {} ops answered `unavailable`",
            self.id,
            failed.len()
        );
        let head_mismatch = matches!(error, StoreError::HeadMismatch { .. });
        // On a head mismatch every session is closed with 1012 by the restart.
        self.reject_items(
            failed,
            "the op was not committed (storage failed); reconnect and resend it",
            !head_mismatch,
        );
        if let Some(state) = self.state_mut() {
            state.clear_reservations();
        }
        if head_mismatch {
            // Memory no longer matches storage: reload.
            ctx.stop();
            return;
        }
        self.verify_head = true;
        self.maybe_finish_flush();
    }

    fn apply_and_broadcast(&mut self, in_flight: InFlight) {
        let Some(state) = (match &mut self.phase {
            Phase::Ready(state) | Phase::ShuttingDown(state) => Some(state),
            _ => None,
        }) else {
            return;
        };
        if let Some(seq) = in_flight.snapshot_seq {
            state.snapshot_stored(seq);
            log::debug!("document {}: snapshot at {seq} stored", self.id);
        }
        let mut committed = Vec::with_capacity(in_flight.items.len());
        let mut duplicates = Vec::new();
        let mut next_seq = state.head();
        for item in in_flight.items {
            match item {
                PipelineItem::Op {
                    session_id,
                    client_id,
                    client_op_id,
                    raw,
                } => {
                    next_seq += 1;
                    committed.push(Arc::new(CommittedOp::new(
                        next_seq,
                        client_id,
                        client_op_id,
                        raw,
                        Some(session_id),
                    )));
                }
                PipelineItem::Duplicate {
                    session_id,
                    client_id,
                    client_op_id,
                } => duplicates.push((session_id, client_id, client_op_id)),
            }
        }
        let ops: Arc<[Arc<CommittedOp>]> = committed.iter().cloned().collect();
        let mut too_slow = Vec::new();
        state.apply_committed(committed);
        if !ops.is_empty() {
            let limit = self.settings.max_session_backlog_ops;
            for (id, subscriber) in self.subscribers.iter_mut() {
                if subscriber.backlog.len() + ops.len() > limit {
                    too_slow.push(*id);
                    continue;
                }
                let ticket = subscriber.backlog.ticket(ops.len());
                Self::deliver(
                    subscriber,
                    SessionEvent::Committed {
                        ops: ops.clone(),
                        ticket,
                    },
                );
            }
        }
        for (session_id, client_id, client_op_id) in duplicates {
            let server_seq = state.committed_seq_of(&client_id, client_op_id);
            if let Some(subscriber) = self.subscribers.get_mut(&session_id) {
                Self::deliver(
                    subscriber,
                    SessionEvent::DuplicateAck {
                        client_op_id,
                        server_seq,
                    },
                );
            }
        }
        for id in too_slow {
            self.drop_slow_subscriber(id);
        }
    }

    /// Stops sending to a session whose client does not keep up: what it was
    /// sent stays queued for it, then it is closed with 1013 and catches up
    /// by replay or snapshot when it reconnects. Memory stays bounded.
    fn drop_slow_subscriber(&mut self, session_id: SessionId) {
        let Some(mut subscriber) = self.subscribers.remove(&session_id) else {
            return;
        };
        log::warn!(
            "document {}: session {session_id} (client {}) is {} ops behind; dropping it (close 1013)",
            self.id,
            subscriber.client_id,
            subscriber.backlog.len()
        );
        self.metrics.slow_session_dropped();
        if matches!(subscriber.mark, MarkState::Known)
            && let Some(state) = self.state_mut()
        {
            state.client_left(&subscriber.client_id);
        }
        Self::deliver(
            &mut subscriber,
            SessionEvent::Close {
                code: close_code::TRY_AGAIN_LATER,
                reason: "too slow: reconnect with last_seen_server_seq to catch up".to_owned(),
            },
        );
        if let Some(held) = subscriber.held.take() {
            for event in held {
                subscriber.recipient.do_send(event);
            }
        }
        if let Some(removal) = self.awareness.remove_session(session_id) {
            self.broadcast(None, || SessionEvent::Awareness {
                update: removal.clone(),
            });
        }
    }

    /// Answers `unavailable` for every op in `items`, grouped by session;
    /// with `close`, each of those sessions is closed (see [`Self::refuse`]).
    pub(super) fn reject_items(&mut self, items: Vec<PipelineItem>, message: &str, close: bool) {
        let mut by_session: Vec<(SessionId, Vec<u64>)> = Vec::new();
        for item in items {
            let (PipelineItem::Op {
                session_id,
                client_op_id,
                ..
            }
            | PipelineItem::Duplicate {
                session_id,
                client_op_id,
                ..
            }) = item;
            match by_session.iter_mut().find(|(s, _)| *s == session_id) {
                Some((_, ids)) => ids.push(client_op_id),
                None => by_session.push((session_id, vec![client_op_id])),
            }
        }
        for (session_id, ids) in by_session {
            self.refuse(session_id, ids, message, close);
        }
    }

    /// Answers `unavailable` for ops of a session. With `close`, the
    /// session (and any other session of the same client) is marked
    /// refused and closed with 1013: no later op of that client may be
    /// accepted on it, because the refused op, resent after it, would look
    /// like a duplicate and be lost. The client reconnects, learns
    /// `last_client_op_id` and resends the rest in order.
    pub(super) fn refuse(
        &mut self,
        session_id: SessionId,
        client_op_ids: impl IntoIterator<Item = u64>,
        message: &str,
        close: bool,
    ) {
        let Some(subscriber) = self.subscribers.get_mut(&session_id) else {
            return;
        };
        for client_op_id in client_op_ids {
            Self::deliver(
                subscriber,
                SessionEvent::Rejected {
                    rejection: Rejection::for_op(ErrorCode::Unavailable, message, client_op_id),
                },
            );
        }
        if !close {
            return;
        }
        let client_id = subscriber.client_id.clone();
        for subscriber in self.subscribers.values_mut() {
            if subscriber.client_id == client_id && !subscriber.refused {
                subscriber.refused = true;
                Self::deliver(
                    subscriber,
                    SessionEvent::Close {
                        code: close_code::TRY_AGAIN_LATER,
                        reason: "an op was refused; reconnect and resend from last_client_op_id"
                            .to_owned(),
                    },
                );
            }
        }
    }
}
