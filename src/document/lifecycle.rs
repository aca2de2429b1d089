//! Start, restart with back-off, failure, idle unload and shutdown of a
//! document actor.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::load::load_state;
use super::{DocumentActor, Phase, UnloadRequest};
use crate::vocabulary::{Refusal, close_code};

/// How often an idle document checks whether it should unload, at most.
const MAX_IDLE_CHECK: Duration = Duration::from_secs(5);

impl DocumentActor {
    pub(super) fn on_started(&mut self, ctx: &mut Context<Self>) {
        match self.phase {
            Phase::Unloaded | Phase::Failed(_) => {
                // Restarted by the supervisor although the manager dropped
                // this actor (an address was still alive): stay down and
                // stop again once the addresses are gone.
                ctx.run_later(Duration::from_secs(1), |_, ctx| ctx.stop());
                return;
            }
            _ => {}
        }
        let every = self.settings.idle_unload().min(MAX_IDLE_CHECK);
        ctx.run_interval(every, |act, ctx| {
            act.guarded(ctx, "checking for idleness", |act, ctx| act.idle_check(ctx));
        });
        let restarts = self.lifecycle.restart_times.len() as u32;
        let delay = if restarts == 0 {
            Duration::ZERO
        } else {
            self.settings.restart_backoff(restarts)
        };
        self.load(delay, ctx);
    }

    /// Called by the supervisor before `started` runs again.
    pub(super) fn on_restarting(&mut self) {
        if matches!(self.phase, Phase::Unloaded | Phase::Failed(_)) {
            return;
        }
        self.metrics.document_restarted();
        self.lifecycle.loaded = None;
        let now = Instant::now();
        let window = Duration::from_secs(self.settings.restart_window_secs);
        let restarts = &mut self.lifecycle.restart_times;
        restarts.push_back(now);
        while restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            restarts.pop_front();
        }
        let restarts = restarts.len();
        let dropped = self.pipeline.clear();
        // No per-session close here: every session is closed with 1012 below.
        let refusal = Refusal::unavailable(
            "the document restarted before the op was committed; reconnect and resend it",
        );
        self.refuse_ops(dropped, &refusal, false);
        let waiting = std::mem::take(&mut self.mark_reads);
        let senders = waiting.into_values().flatten().map(|op| op.into_sender());
        self.refuse_ops(senders.collect(), &refusal, false);
        if restarts > self.settings.max_restarts as usize {
            let reason = format!(
                "document {} restarted {restarts} times within {} s; marked failed",
                self.id, self.settings.restart_window_secs
            );
            self.fail(reason, close_code::INTERNAL_ERROR);
            return;
        }
        log::warn!(
            "document {} restarting (restart {restarts} within {} s): reloading from storage",
            self.id,
            self.settings.restart_window_secs
        );
        self.close_all(
            close_code::SERVICE_RESTART,
            "document restarted; reconnect with last_seen_server_seq",
            None,
        );
        // A shutdown flush in progress ends here: the sessions are closed
        // and nothing uncommitted remains.
        self.answer_flush_waiters();
        self.phase = Phase::Loading;
    }

    /// Loads (after `delay`) the latest snapshot plus the log after it. The
    /// mailbox waits meanwhile, so joins and ops queue up instead of being
    /// refused.
    fn load(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        self.phase = Phase::Loading;
        let store = self.store.clone();
        let id = self.id.clone();
        let max_replay_ops = self.settings.max_replay_ops;
        if !delay.is_zero() {
            log::info!(
                "document {}: reloading in {} ms",
                self.id,
                delay.as_millis()
            );
        }
        ctx.wait(
            async move {
                actix_web::rt::time::sleep(delay).await;
                let started = Instant::now();
                load_state(&store, &id, max_replay_ops)
                    .await
                    .map(|(state, timings)| (state, timings, started.elapsed()))
            }
            .into_actor(self)
            .map(|result, act, ctx| match result {
                Ok((state, timings, took)) => {
                    log::info!(
                        "document {} loaded: head {}, snapshot at {}, epoch {}, {} ops replayed, \
                         read {} ms, applied {} ms ({} ms)",
                        act.id,
                        state.head(),
                        state.snapshot_seq(),
                        state.epoch(),
                        timings.replayed,
                        timings.read.as_millis(),
                        timings.apply.as_millis(),
                        took.as_millis()
                    );
                    act.phase = Phase::Ready(Box::new(state));
                    act.lifecycle.last_activity = Instant::now();
                    act.lifecycle.loaded = Some(act.metrics.document_loaded());
                }
                Err(reason) if reason.is_refusal() => {
                    let reason = format!("document {} cannot be served: {reason}", act.id);
                    act.fail(reason, close_code::TRY_AGAIN_LATER);
                }
                Err(reason) => {
                    log::error!("document {}: load failed: {reason}", act.id);
                    act.close_all(
                        close_code::TRY_AGAIN_LATER,
                        "document unavailable",
                        Some(&Refusal::unavailable(format!(
                            "the document cannot be loaded: {reason}"
                        ))),
                    );
                    ctx.stop();
                }
            }),
        );
    }

    /// Marks the document as not servable: its sessions get `unavailable`
    /// and are closed with `code`, and the manager drops it and refuses new
    /// connections for `restart_backoff_max_ms`.
    pub(super) fn fail(&mut self, reason: String, code: u16) {
        log::error!("{reason}; refusing to serve it");
        let refusal = Refusal::unavailable(reason.clone());
        self.close_all(code, "document unavailable", Some(&refusal));
        self.phase = Phase::Failed(reason);
        self.lifecycle.loaded = None;
        self.answer_flush_waiters();
        self.manager.do_send(UnloadRequest {
            document_id: self.id.clone(),
            instance: self.instance,
            forwarded_seen: self.lifecycle.forwarded_seen,
            failed_for: Some(Duration::from_millis(self.settings.restart_backoff_max_ms)),
        });
    }

    /// Periodic: unload after `idle_unload_secs` without sessions.
    fn idle_check(&mut self, ctx: &mut Context<Self>) {
        let gone = self.subscribers.prune_gone_listeners();
        if gone > 0 {
            log::debug!("document {}: {gone} listeners are gone", self.id);
        }
        if !matches!(self.phase, Phase::Ready(_))
            || !self.subscribers.is_empty()
            || !self.pipeline.is_idle()
            || !self.mark_reads.is_empty()
            || self.lifecycle.last_activity.elapsed() < self.settings.idle_unload()
        {
            return;
        }
        let needs_snapshot = self.state().is_some_and(|s| s.head() > s.snapshot_seq());
        if needs_snapshot {
            self.pipeline.want_snapshot();
            self.pump(ctx);
            return;
        }
        log::debug!("document {} idle; asking to unload", self.id);
        self.manager.do_send(UnloadRequest {
            document_id: self.id.clone(),
            instance: self.instance,
            forwarded_seen: self.lifecycle.forwarded_seen,
            failed_for: None,
        });
    }

    /// Completes a shutdown flush once nothing is left to write.
    pub(super) fn maybe_finish_flush(&mut self) {
        if self.lifecycle.flush_waiters.is_empty() || !self.pipeline.is_idle() {
            return;
        }
        let (code, reason) = self
            .lifecycle
            .flush_close
            .take()
            .unwrap_or((close_code::GOING_AWAY, "server shutting down".to_owned()));
        self.close_all(code, &reason, None);
        self.answer_flush_waiters();
    }
}
