//! Reading a document and following it without being a session: its state,
//! its ops, what it is now, subscriptions of listeners, and closing all of
//! its sessions.

use actix::prelude::*;

use super::{
    CloseSessions, ClosedSessions, DocumentActor, DocumentInfo, MAX_OPS_PER_READ, OpsAfter, Phase,
    ReadInfo, ReadOps, ReadState, StateAtHead, Subscribe, Subscribed, Unsubscribe,
};
use crate::vocabulary::Refusal;

impl DocumentActor {
    /// The loaded state, or why there is none to read.
    fn readable(&mut self) -> Result<&mut super::state::DocumentState, Refusal> {
        match &mut self.phase {
            Phase::Ready(state) | Phase::ShuttingDown(state) => Ok(state),
            Phase::Failed(reason) => Err(Refusal::unavailable(reason.clone())),
            Phase::Loading | Phase::Unloaded => {
                Err(Refusal::unavailable("the document is not loaded; retry"))
            }
        }
    }
}

impl Handler<ReadState> for DocumentActor {
    type Result = Result<StateAtHead, Refusal>;

    fn handle(&mut self, msg: ReadState, ctx: &mut Context<Self>) -> Self::Result {
        let read = self.guarded(ctx, "encoding the state", |act, _ctx| {
            let state = act.readable()?;
            let update = match &msg.state_vector {
                None => state.full_state(),
                Some(sv) => state
                    .diff_since(sv)
                    .map_err(|e| Refusal::invalid(e.to_string()))?,
            };
            Ok(StateAtHead {
                epoch: state.epoch().clone(),
                server_seq: state.head(),
                update,
            })
        });
        read.unwrap_or_else(|| Err(Refusal::unavailable("the document failed; retry")))
    }
}

impl Handler<ReadOps> for DocumentActor {
    type Result = ResponseFuture<Result<OpsAfter, Refusal>>;

    fn handle(&mut self, msg: ReadOps, _ctx: &mut Context<Self>) -> Self::Result {
        let state = match self.readable() {
            Ok(state) => state,
            Err(refusal) => return Box::pin(async move { Err(refusal) }),
        };
        let head = state.head();
        let epoch = state.epoch().clone();
        let limit = msg.limit.clamp(1, MAX_OPS_PER_READ) as u64;
        let upto = head.min(msg.after.saturating_add(limit));
        if let Some(ops) = state.tail().after(msg.after, upto) {
            let ops = ops
                .into_iter()
                .take_while(|op| op.server_seq <= upto)
                .collect();
            return Box::pin(async move { Ok(OpsAfter { epoch, ops, head }) });
        }
        let store = self.store.clone();
        let id = self.id.clone();
        Box::pin(async move {
            let logged = store
                .ops_between(&id, msg.after, Some(upto))
                .await
                .map_err(|e| Refusal::unavailable(format!("the op log cannot be read: {e}")))?;
            Ok(OpsAfter {
                epoch,
                ops: logged.into_iter().map(std::sync::Arc::new).collect(),
                head,
            })
        })
    }
}

impl Handler<ReadInfo> for DocumentActor {
    type Result = Result<DocumentInfo, Refusal>;

    fn handle(&mut self, _msg: ReadInfo, _ctx: &mut Context<Self>) -> Self::Result {
        let sessions = self.subscribers.session_count();
        let listeners = self.subscribers.listener_count();
        let state = self.readable()?;
        Ok(DocumentInfo {
            epoch: state.epoch().clone(),
            server_seq: state.head(),
            snapshot_seq: state.snapshot_seq(),
            sessions,
            listeners,
        })
    }
}

impl Handler<Subscribe> for DocumentActor {
    type Result = Result<Subscribed, Refusal>;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> Self::Result {
        if matches!(self.phase, Phase::ShuttingDown(_)) {
            return Err(Refusal::shutting_down());
        }
        let state = self.readable()?;
        let (epoch, server_seq) = (state.epoch().clone(), state.head());
        let listener_id = self.subscribers.add_listener(msg.listener);
        log::debug!(
            "document {}: listener {listener_id} subscribed at {server_seq}",
            self.id
        );
        Ok(Subscribed {
            listener_id,
            epoch,
            server_seq,
        })
    }
}

impl Handler<Unsubscribe> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) {
        if self.subscribers.remove_listener(msg.listener_id) {
            log::debug!(
                "document {}: listener {} unsubscribed",
                self.id,
                msg.listener_id
            );
        }
    }
}

impl Handler<CloseSessions> for DocumentActor {
    type Result = ResponseFuture<ClosedSessions>;

    fn handle(&mut self, msg: CloseSessions, _ctx: &mut Context<Self>) -> Self::Result {
        let closed = ClosedSessions {
            sessions: self.subscribers.session_count(),
            listeners: self.subscribers.listener_count(),
        };
        log::info!(
            "document {}: closing {} sessions and {} listeners with {} ({})",
            self.id,
            closed.sessions,
            closed.listeners,
            msg.code,
            msg.reason
        );
        self.close_all(msg.code, &msg.reason, None);
        Box::pin(async move { closed })
    }
}
