//! Joining a document: welcome, then replay or snapshot, without breaking
//! the session's contiguous seq stream.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::state::RecoveryPlan;
use super::{CatchUp, DocumentActor, DocumentEvent, JoinDocument, Phase, Welcome};
use crate::metrics::JoinRecovery;
use crate::store::{ClientHistory, StoreError};
use crate::vocabulary::{CommittedOp, JoinError, JoinMode, Refusal, SessionId};

/// The join of a subject with a client id that belongs to another one:
/// refused, without saying anything about that client's history.
fn not_yours(client_id: &str) -> JoinError {
    JoinError::from(Refusal::forbidden(format!(
        "client_id {client_id:?} belongs to another subject on this document; use a client id of your own"
    )))
}

impl Handler<JoinDocument> for DocumentActor {
    type Result = ResponseActFuture<Self, Result<(), JoinError>>;

    fn handle(&mut self, msg: JoinDocument, ctx: &mut Context<Self>) -> Self::Result {
        self.lifecycle.last_activity = Instant::now();
        match self.guarded(ctx, "joining a session", |act, _ctx| act.join(msg)) {
            Some(answer) => answer,
            None => Box::pin(fut::ready(Err(JoinError::unavailable(
                "the document failed while joining; retry",
            )))),
        }
    }
}

/// Who is joining through the slow path.
struct Joining {
    session_id: SessionId,
    client_id: Arc<str>,
    subject: Option<Arc<str>>,
}

/// What a slow join reads from storage.
struct JoinRead {
    /// The client's mark (`None` when it was already in memory).
    mark: Option<Result<Option<ClientHistory>, StoreError>>,
    /// The missing ops (`None` when the replay comes from memory).
    logged: Option<Result<Vec<CommittedOp>, StoreError>>,
}

impl DocumentActor {
    fn join(&mut self, msg: JoinDocument) -> ResponseActFuture<Self, Result<(), JoinError>> {
        let max_replay_ops = self.settings.max_replay_ops;
        let document_id = self.id.clone();
        let state = match &mut self.phase {
            Phase::Ready(state) => state,
            Phase::ShuttingDown(_) => return Box::pin(fut::ready(Err(JoinError::going_away()))),
            Phase::Failed(reason) => {
                return Box::pin(fut::ready(Err(JoinError::unavailable(reason.clone()))));
            }
            Phase::Loading | Phase::Unloaded => {
                return Box::pin(fut::ready(Err(JoinError::unavailable(
                    "the document is not loaded; retry",
                ))));
            }
        };
        let head = state.head();
        let (last_seen, claimed_epoch) = match &msg.mode {
            JoinMode::Native {
                last_seen_server_seq,
                epoch,
            } => (*last_seen_server_seq, epoch.as_deref()),
            JoinMode::Yjs => {
                // y-websocket: the state vector now, the difference when the
                // client sends its own sync step 1.
                let catch_up = CatchUp::StateVector {
                    state_vector: state.state_vector_v1(),
                };
                return Box::pin(fut::ready(self.join_now(msg, catch_up)));
            }
        };
        let plan = state.plan_recovery(last_seen, claimed_epoch, max_replay_ops);
        // A fresh client id has no history: nothing to read.
        let knows_client = msg.fresh_client || state.marks().knows(&msg.client_id);
        let snapshot = matches!(plan, RecoveryPlan::Snapshot).then(|| state.full_state_base64());

        // Fast path: everything is in memory.
        if knows_client && !matches!(plan, RecoveryPlan::ReplayFromLog { .. }) {
            let catch_up = match (plan, snapshot) {
                (RecoveryPlan::Replay(ops), _) => CatchUp::Replay { ops },
                (_, Some(state)) => CatchUp::Snapshot {
                    server_seq: head,
                    state,
                },
                _ => CatchUp::Replay { ops: Vec::new() },
            };
            return Box::pin(fut::ready(self.join_now(msg, catch_up)));
        }

        // Slow path: read the client's mark and/or the missing ops from the
        // log while live events for this session are held back. A mark
        // already in memory is pinned now (counted for this session); one
        // being read is kept meanwhile (see `ClientMarks`).
        if knows_client {
            if state
                .marks()
                .owned_by_other(&msg.client_id, msg.access.subject.as_deref())
            {
                return Box::pin(fut::ready(Err(not_yours(&msg.client_id))));
            }
            state.marks_mut().session_joined(&msg.client_id, None);
        } else {
            state.marks_mut().read_started(&msg.client_id);
        }
        self.subscribers.add_session(
            msg.session_id,
            msg.client_id.clone(),
            &msg.access,
            msg.recipient,
            knows_client,
            true,
        );
        let store = self.store.clone();
        let client_id = msg.client_id.clone();
        let session_id = msg.session_id;
        let subject = msg.access.subject.clone();
        let replay_range = match &plan {
            RecoveryPlan::ReplayFromLog { after, upto } => Some((*after, *upto)),
            _ => None,
        };
        let read = async move {
            let mark = if knows_client {
                None
            } else {
                Some(store.client_mark(&document_id, &client_id).await)
            };
            let logged = match replay_range {
                Some((after, upto)) => {
                    Some(store.ops_between(&document_id, after, Some(upto)).await)
                }
                None => None,
            };
            JoinRead { mark, logged }
        };
        Box::pin(read.into_actor(self).map(move |read, act, ctx| {
            let finished = act.guarded(ctx, "finishing a join", |act, _ctx| {
                let joining = Joining {
                    session_id,
                    client_id: msg.client_id,
                    subject,
                };
                act.finish_join(joining, head, plan, snapshot, read)
            });
            finished.unwrap_or_else(|| {
                Err(JoinError::unavailable(
                    "the document failed while joining; retry",
                ))
            })
        }))
    }

    /// Second half of a slow join, once storage answered (or failed).
    /// Storage failures degrade instead of refusing: an unreadable mark is
    /// read again with the client's first op, an unreadable log becomes a
    /// snapshot from memory.
    fn finish_join(
        &mut self,
        joining: Joining,
        head: u64,
        plan: RecoveryPlan,
        snapshot: Option<Arc<str>>,
        read: JoinRead,
    ) -> Result<(), JoinError> {
        let Joining {
            session_id,
            client_id,
            subject,
        } = joining;
        let document_id = self.id.clone();
        let joined = self.subscribers.session(session_id).is_some();
        let Some(state) = self.state_mut() else {
            self.subscribers.remove_session(session_id);
            return Err(JoinError::unavailable("the document is not loaded; retry"));
        };
        if !joined {
            if read.mark.is_some() {
                state.marks_mut().read_finished(&client_id);
            }
            return Err(JoinError::unavailable(
                "the session left or the document restarted while joining; retry",
            ));
        }
        let mark_was_read = read.mark.is_some();
        let (mark_known, last_client_op_id) = match read.mark {
            // Pinned when the join started.
            None => (true, state.marks().last_client_op_id(&client_id)),
            // A mark loaded meanwhile by another session wins over `stored`.
            Some(Ok(stored)) => {
                state
                    .marks_mut()
                    .insert_if_absent(&client_id, stored.as_ref());
                if state.marks().owned_by_other(&client_id, subject.as_deref()) {
                    state.marks_mut().read_finished(&client_id);
                    self.subscribers.remove_session(session_id);
                    return Err(not_yours(&client_id));
                }
                (true, state.marks_mut().session_joined(&client_id, None))
            }
            Some(Err(e)) => {
                log::warn!(
                    "document {document_id}: client {client_id}'s history cannot be read ({e}); \
                     it joins read-only until its first op"
                );
                (false, None)
            }
        };
        // Only now: the mark read must not be forgotten before the session
        // counted in it (see `ClientMarks`).
        if mark_was_read {
            state.marks_mut().read_finished(&client_id);
        }
        let epoch = state.epoch().clone();
        let mut welcome_seq = head;
        let mut drop_held = false;
        let catch_up = match (plan, snapshot, read.logged) {
            (RecoveryPlan::Replay(ops), _, _) => CatchUp::Replay { ops },
            (_, Some(snapshot_state), _) => CatchUp::Snapshot {
                server_seq: head,
                state: snapshot_state,
            },
            (RecoveryPlan::ReplayFromLog { after, upto }, _, Some(Ok(logged)))
                if is_contiguous(&logged, after, upto) =>
            {
                CatchUp::Replay {
                    ops: logged.into_iter().map(Arc::new).collect(),
                }
            }
            (_, _, logged) => {
                if let Some(Err(e)) = logged {
                    log::warn!(
                        "document {document_id}: the op log cannot be read for a replay ({e}); \
                         sending a snapshot instead"
                    );
                }
                // Snapshot at the current head; held events it covers go.
                welcome_seq = state.head();
                drop_held = true;
                CatchUp::Snapshot {
                    server_seq: welcome_seq,
                    state: state.full_state_base64(),
                }
            }
        };
        if mark_known && let Some(session) = self.subscribers.session_mut(session_id) {
            session.mark_counted = true;
        }
        if drop_held {
            self.subscribers.reset_held(session_id);
        }
        let welcome = Welcome {
            document_id,
            epoch,
            server_seq: welcome_seq,
            last_client_op_id,
        };
        self.complete_join(session_id, welcome, catch_up)
    }

    /// Joins a session whose catch-up is entirely in memory and whose
    /// client's mark is loaded (or needs none): count it in the mark,
    /// subscribe it, send welcome and catch-up.
    fn join_now(&mut self, msg: JoinDocument, catch_up: CatchUp) -> Result<(), JoinError> {
        let document_id = self.id.clone();
        let Some(state) = self.state_mut() else {
            return Err(JoinError::unavailable("the document is not loaded; retry"));
        };
        if state
            .marks()
            .owned_by_other(&msg.client_id, msg.access.subject.as_deref())
        {
            return Err(not_yours(&msg.client_id));
        }
        let welcome = Welcome {
            document_id,
            epoch: state.epoch().clone(),
            server_seq: state.head(),
            last_client_op_id: state.marks_mut().session_joined(&msg.client_id, None),
        };
        self.subscribers.add_session(
            msg.session_id,
            msg.client_id,
            &msg.access,
            msg.recipient,
            true,
            false,
        );
        self.complete_join(msg.session_id, welcome, catch_up)
    }

    /// Sends the welcome and catch-up, then whatever was held meanwhile.
    fn complete_join(
        &mut self,
        session_id: SessionId,
        welcome: Welcome,
        catch_up: CatchUp,
    ) -> Result<(), JoinError> {
        let Some(session) = self.subscribers.session(session_id) else {
            return Err(JoinError::unavailable("the session left while joining"));
        };
        let (how, recovery) = match &catch_up {
            CatchUp::Replay { ops } => {
                (format!("replay of {} ops", ops.len()), JoinRecovery::Replay)
            }
            CatchUp::Snapshot { server_seq, .. } => {
                (format!("snapshot at {server_seq}"), JoinRecovery::Snapshot)
            }
            CatchUp::StateVector { .. } => ("y-websocket sync".to_owned(), JoinRecovery::Sync),
        };
        self.metrics.joined(recovery);
        log::info!(
            "document {}: session {session_id} (client {}) joined at seq {}: {how}",
            self.id,
            session.client_id,
            welcome.server_seq
        );
        let welcome = DocumentEvent::Welcome {
            welcome,
            catch_up,
            awareness: self.awareness.full_update(),
        };
        self.subscribers.welcome(session_id, welcome);
        Ok(())
    }
}

fn is_contiguous(ops: &[CommittedOp], after: u64, upto: u64) -> bool {
    ops.len() as u64 == upto - after
        && ops
            .iter()
            .enumerate()
            .all(|(i, op)| op.server_seq == after + 1 + i as u64)
}
