//! Driving the commit pipeline: starting a transaction, then, when it
//! committed, applying, acknowledging and broadcasting its ops, or, when it
//! failed, refusing them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use actix::prelude::*;

use super::events::BacklogLimits;
use super::pipeline::{Batch, NextCommit, answer};
use super::state::DocumentState;
use super::submit::answer_duplicate;
use super::subscribers::TooSlow;
use super::{Committed, DocumentActor, DocumentChanged, Phase};
use crate::crdt;
use crate::store::StoreError;
use crate::vocabulary::Refusal;

impl DocumentActor {
    /// Starts the next transaction if none is in flight and there is
    /// something to write.
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        self.pump_with(None, ctx);
    }

    /// [`DocumentActor::pump`] with the snapshot of `head` already encoded
    /// (`encoded`). A snapshot that is due is first encoded on a blocking
    /// thread (a big document takes a while), the document waiting for it.
    fn pump_with(&mut self, encoded: Option<(u64, Vec<u8>)>, ctx: &mut Context<Self>) {
        let snapshot_every = self.settings.snapshot_every_ops;
        let Some(state) = self.state() else {
            return;
        };
        let head = state.head();
        let encoded = encoded.filter(|(seq, _)| *seq == head);
        if encoded.is_none()
            && self
                .pipeline
                .snapshot_due(head, state.snapshot_seq(), snapshot_every)
        {
            // yrs' Doc is a shared handle: the blocking thread reads the
            // same document, which nothing changes until it is done.
            let doc = state.doc().clone();
            self.pipeline.set_encoding_snapshot(true);
            let encoding =
                actix_web::rt::task::spawn_blocking(move || crdt::encode_full_state(&doc));
            ctx.wait(encoding.into_actor(self).map(move |encoded, act, ctx| {
                act.pipeline.set_encoding_snapshot(false);
                match encoded {
                Ok(bytes) => {
                    act.pump_with(Some((head, bytes)), ctx);
                    act.maybe_finish_flush();
                }
                Err(_) => {
                    log::error!(
                        "document {}: yrs panicked while encoding a snapshot; restarting from storage",
                        act.id
                    );
                    ctx.stop();
                }
            }
            }));
            return;
        }
        let mut encoded = encoded.map(|(_, bytes)| bytes);
        let (next, create) = match &self.phase {
            Phase::Ready(state) | Phase::ShuttingDown(state) => (
                self.pipeline
                    .start(state.head(), state.snapshot_seq(), snapshot_every, || {
                        encoded
                            .take()
                            .unwrap_or_else(|| crdt::encode_full_state(state.doc()))
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
                let started = Instant::now();
                let result = store
                    .commit(&id, &ops, snapshot, expected_head, create.as_deref())
                    .await;
                (result, started.elapsed())
            }
            .into_actor(self)
            .map(|(result, took), act, ctx| {
                act.metrics.commit_took(took);
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
        if let Some(state) = self.state_mut() {
            if !batch.ops.is_empty() || batch.snapshot_seq.is_some() {
                // The commit wrote the document's row if it did not exist.
                state.set_row_stored(true);
            }
            if let Some(seq) = batch.snapshot_seq {
                // Encoded before the batch's ops were applied: they follow.
                state.snapshot_stored(seq, batch.snapshot_bytes);
            }
        }
        if let Some(seq) = batch.snapshot_seq {
            log::debug!("document {}: snapshot at {seq} stored", self.id);
        }
        self.apply_then_broadcast(batch, ctx);
    }

    /// Applies a committed batch to the state on a blocking thread (yrs
    /// can take long to integrate some updates: conflicting inserts of many
    /// clients, huge deletions), so that the other documents of this
    /// actor's arbiter keep being served meanwhile; this document handles
    /// nothing else until then (`ctx.wait`), which keeps every step in
    /// order. Then answers and broadcasts the batch and starts the next.
    fn apply_then_broadcast(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        let finish = |act: &mut Self, batch: Batch, ctx: &mut Context<Self>| {
            act.answer_and_broadcast(batch);
            act.pump(ctx);
            act.maybe_finish_flush();
        };
        let shutting_down = matches!(self.phase, Phase::ShuttingDown(_));
        let state = match std::mem::replace(&mut self.phase, Phase::Loading) {
            Phase::Ready(state) | Phase::ShuttingDown(state) => state,
            other => {
                self.phase = other;
                return;
            }
        };
        if batch.ops.is_empty() {
            self.phase = restore(state, shutting_down);
            return finish(self, batch, ctx);
        }
        let ops = batch.ops.clone();
        let applying = actix_web::rt::task::spawn_blocking(move || {
            let mut state = state;
            let applied = catch_unwind(AssertUnwindSafe(|| state.apply_committed(&ops)));
            applied.is_ok().then_some(state)
        });
        ctx.wait(applying.into_actor(self).map(move |applied, act, ctx| {
            match applied {
                Ok(Some(state)) => {
                    act.phase = restore(state, shutting_down);
                    finish(act, batch, ctx);
                }
                _ => {
                    // The batch is committed: reloading from storage applies
                    // it again; its senders get `unavailable` and their
                    // resends are acked as duplicates.
                    log::error!(
                        "document {}: yrs panicked while applying committed ops; restarting from storage",
                        act.id
                    );
                    ctx.stop();
                }
            }
        }));
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

    /// Answers the senders of a committed batch that is applied (acks
    /// through the broadcast, replies directly), broadcasts it, then tells
    /// the change listener (a non-blocking notice) when it had ops.
    fn answer_and_broadcast(&mut self, batch: Batch) {
        let backlog_limits = self.backlog_limits();
        let (Phase::Ready(state) | Phase::ShuttingDown(state)) = &mut self.phase else {
            return;
        };
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
        if let (Some(listener), Some(last)) = (&self.changes, batch.ops.last()) {
            listener.document_changed(DocumentChanged {
                document_id: self.id.clone(),
                epoch: state.epoch().clone(),
                server_seq: last.server_seq,
            });
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

/// The phase a document had before its state was lent to a blocking thread.
fn restore(state: Box<DocumentState>, shutting_down: bool) -> Phase {
    if shutting_down {
        Phase::ShuttingDown(state)
    } else {
        Phase::Ready(state)
    }
}
