//! Driving the commit pipeline: starting a transaction, then, when it
//! committed, applying, acknowledging and broadcasting its ops, or, when it
//! failed, refusing them.

use actix::prelude::*;

use super::events::BacklogLimits;
use super::pipeline::{Batch, NextCommit, answer};
use super::submit::answer_duplicate;
use super::subscribers::TooSlow;
use super::{Committed, DocumentActor, Phase};
use crate::crdt;
use crate::store::StoreError;
use crate::vocabulary::Refusal;

impl DocumentActor {
    /// Starts the next transaction if none is in flight and there is
    /// something to write.
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        let snapshot_every = self.settings.snapshot_every_ops;
        let (next, create) = match &self.phase {
            Phase::Ready(state) | Phase::ShuttingDown(state) => (
                self.pipeline
                    .start(state.head(), state.snapshot_seq(), snapshot_every, || {
                        crdt::encode_full_state(state.doc())
                    }),
                state.row_to_create(),
            ),
            _ => return,
        };
        let (ops, snapshot, expected_head) = match next {
            NextCommit::Idle => return,
            NextCommit::AnswerOnly => return self.commit_done(Ok(()), ctx),
            NextCommit::Write {
                ops,
                snapshot,
                expected_head,
            } => (ops, snapshot, expected_head),
        };
        let store = self.store.clone();
        let id = self.id.clone();
        ctx.spawn(
            async move {
                store
                    .commit(&id, &ops, snapshot, expected_head, create.as_deref())
                    .await
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
        if let Err(e) = result {
            return self.commit_failed(e, ctx);
        }
        let final_flush = matches!(self.phase, Phase::ShuttingDown(_));
        let Some(batch) = self.pipeline.finished(final_flush) else {
            return;
        };
        if !batch.ops.is_empty() || batch.snapshot_seq.is_some() {
            self.metrics
                .commit(batch.ops.len(), batch.snapshot_seq.is_some());
        }
        self.apply_and_broadcast(batch);
        self.pump(ctx);
        self.maybe_finish_flush();
    }

    /// A commit failed. Its ops and every pending one are refused
    /// (`unavailable`: never acked, never broadcast). The in-memory state is
    /// untouched (nothing uncommitted is applied), so the document keeps
    /// serving; the next commit first checks the log head, in case the
    /// failed commit did land, and a mismatch reloads the document.
    fn commit_failed(&mut self, error: StoreError, ctx: &mut Context<Self>) {
        self.metrics.commit_failed();
        let failed = self.pipeline.failed();
        log::error!(
            "document {}: commit failed ({error}); {} ops answered `unavailable`",
            self.id,
            failed.len()
        );
        let head_mismatch = matches!(error, StoreError::HeadMismatch { .. });
        // On a head mismatch every session is closed with 1012 by the restart.
        let refusal = Refusal::unavailable(
            "the op was not committed (storage failed); reconnect and resend it",
        );
        self.refuse_ops(failed, &refusal, !head_mismatch);
        if let Some(state) = self.state_mut() {
            state.marks_mut().clear_reservations();
        }
        if head_mismatch {
            // Memory no longer matches storage: reload.
            ctx.stop();
            return;
        }
        self.maybe_finish_flush();
    }

    /// Applies a committed batch, answers its senders (acks through the
    /// broadcast, replies directly) and broadcasts it.
    fn apply_and_broadcast(&mut self, batch: Batch) {
        let backlog_limits = self.backlog_limits();
        let (Phase::Ready(state) | Phase::ShuttingDown(state)) = &mut self.phase else {
            return;
        };
        if !batch.ops.is_empty() || batch.snapshot_seq.is_some() {
            // The commit wrote the document's row if it did not exist.
            state.set_row_stored(true);
        }
        if let Some(seq) = batch.snapshot_seq {
            state.snapshot_stored(seq, batch.snapshot_bytes);
            log::debug!("document {}: snapshot at {seq} stored", self.id);
        }
        state.apply_committed(&batch.ops);
        for (op, sender) in batch.ops.iter().zip(batch.senders) {
            let committed = Committed {
                server_seq: Some(op.server_seq),
                duplicate: false,
            };
            answer(sender.reply, Ok(committed));
        }
        let too_slow = if batch.ops.is_empty() {
            Vec::new()
        } else {
            self.subscribers
                .broadcast_committed(&batch.ops, backlog_limits)
        };
        for sender in batch.duplicates {
            let server_seq = state.committed_seq_of(&sender.client_id, sender.client_op_id);
            answer_duplicate(&mut self.subscribers, sender, server_seq);
        }
        for target in too_slow {
            self.drop_slow_subscriber(target);
        }
    }

    /// How far behind a subscriber may fall before it is dropped.
    fn backlog_limits(&self) -> BacklogLimits {
        BacklogLimits {
            ops: self.settings.max_session_backlog_ops,
            bytes: usize::try_from(self.limits.max_session_backlog_bytes).unwrap_or(usize::MAX),
        }
    }

    /// Stops sending to a subscriber that does not keep up: what it was
    /// sent stays queued for it, then it is closed with 1013 and catches up
    /// by replay or snapshot when it reconnects. Memory stays bounded.
    fn drop_slow_subscriber(&mut self, target: TooSlow) {
        let (ops, bytes) = self.subscribers.backlog(target);
        let behind = format!("{ops} ops ({bytes} bytes)");
        self.metrics.slow_session_dropped();
        match target {
            TooSlow::Session(session_id) => {
                let Some(session) = self.subscribers.drop_slow(target) else {
                    return;
                };
                log::warn!(
                    "document {}: session {session_id} (client {}) is {behind} behind; \
                     dropping it (close 1013)",
                    self.id,
                    session.client_id,
                );
                self.forget_session(&session, session_id);
            }
            TooSlow::Listener(listener_id) => {
                self.subscribers.drop_slow(target);
                log::warn!(
                    "document {}: listener {listener_id} is {behind} behind; dropping it \
                     (close 1013)",
                    self.id,
                );
            }
        }
    }
}
