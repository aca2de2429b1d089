//! The messages of joined sessions (leave, y-websocket sync; presence is
//! in [`super::presence`]) and of the manager (flush, unload), and the
//! panic drill.

use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{
    DocumentActor, DocumentEvent, Flush, InjectPanic, LeaveDocument, Phase, SyncStateVector, Unload,
};
use crate::vocabulary::close_code;

impl Handler<LeaveDocument> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: LeaveDocument, ctx: &mut Context<Self>) {
        self.guarded(ctx, "removing a session", |act, _ctx| {
            act.lifecycle.last_activity = Instant::now();
            if let Some(session) = act.subscribers.remove_session(msg.session_id) {
                act.forget_session(&session, msg.session_id);
            } else {
                act.remove_presence(msg.session_id);
            }
        });
    }
}

impl Handler<Flush> for DocumentActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Flush, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.lifecycle.flush_waiters.push(tx);
        let snapshot = msg.snapshot;
        self.lifecycle.flush_close = Some((msg.code, msg.reason));
        self.guarded(
            ctx,
            "starting the final flush",
            move |act, ctx| match std::mem::replace(&mut act.phase, Phase::Loading) {
                Phase::Ready(state) | Phase::ShuttingDown(state) => {
                    act.phase = Phase::ShuttingDown(state);
                    if snapshot {
                        act.pipeline.want_snapshot();
                    }
                    act.pump(ctx);
                    act.maybe_finish_flush();
                }
                other => {
                    act.phase = other;
                    act.maybe_finish_flush();
                }
            },
        );
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<Unload> for DocumentActor {
    type Result = ();

    fn handle(&mut self, _msg: Unload, ctx: &mut Context<Self>) {
        if !self.subscribers.is_empty() {
            log::warn!(
                "document {}: unload with {} sessions and {} listeners still subscribed; \
                 closing them",
                self.id,
                self.subscribers.session_count(),
                self.subscribers.listener_count()
            );
            self.close_all(close_code::TRY_AGAIN_LATER, "document unloaded", None);
        }
        if !matches!(self.phase, Phase::Failed(_)) {
            log::info!("document {} unloaded", self.id);
        }
        self.phase = Phase::Unloaded;
        self.lifecycle.loaded = None;
        self.answer_flush_waiters();
        // Answers already under way (a join refused just before, whose
        // reply is a future of this context) finish first: stopping now
        // would drop them unanswered. The manager runs on another thread,
        // so the unload can arrive in the same batch as such a message.
        ctx.run_later(Duration::ZERO, |_, ctx| ctx.stop());
    }
}

impl Handler<InjectPanic> for DocumentActor {
    type Result = ();

    fn handle(&mut self, _msg: InjectPanic, ctx: &mut Context<Self>) {
        log::warn!("document {}: panic injected through /debug", self.id);
        self.guarded(ctx, "handling an injected panic", |_act, _ctx| {
            panic!("injected panic (fault injection)")
        });
    }
}

impl Handler<SyncStateVector> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: SyncStateVector, ctx: &mut Context<Self>) {
        self.guarded(ctx, "answering a sync step 1", |act, _ctx| {
            let id = act.id.clone();
            let Some(state) = act.state_mut() else {
                return;
            };
            let event = match state.diff_since(&msg.state_vector) {
                Ok(update) => DocumentEvent::SyncStep2 { update },
                Err(problem) => {
                    log::info!(
                        "document {id}: sync step 1 of session {} refused: {problem}",
                        msg.session_id
                    );
                    DocumentEvent::Close {
                        code: close_code::INVALID_PAYLOAD,
                        reason: problem.to_string(),
                    }
                }
            };
            act.subscribers.deliver(msg.session_id, event);
        });
    }
}
