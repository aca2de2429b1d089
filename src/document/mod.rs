//! The document actor: one per loaded document, the single writer of its
//! op log.
//!
//! It owns the sequencing (`server_seq`), the CRDT state, the subscribers
//! and the persistence of one document. Ops go through a group-commit
//! pipeline:
//!
//! ```text
//! SubmitOp ─► pending ──(no commit in flight)──► in_flight ──commit ok──► apply, ack, broadcast
//!                ▲                                   │
//!                └──── ops arriving meanwhile ◄──────┘ commit error ─► `unavailable`, restart
//! ```
//!
//! Everything that arrives while a commit is in flight shares the next
//! transaction. An op is applied to the Doc, acknowledged and broadcast only
//! after its transaction committed, so the Doc always equals the stored
//! snapshot plus the committed log.
//!
//! The actor runs under an actix `Supervisor`: stopping it (after a failed
//! commit or a caught panic) restarts it at the same address, and `started`
//! reloads the state from storage.

pub mod state;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::configuration::DocumentSettings;
use crate::crdt::{self, ValidUpdate};
use crate::events::{CatchUp, SessionEvent, Welcome};
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, Rejection, close_code};
use crate::session_manager::UnloadRequest;
use crate::store::{NewOp, NewSnapshot, Store, StoreError};
use state::{
    CommittedOp, DocumentState, LoggedOp, OpDisposition, RecoveryPlan, RestoreError, SessionId,
};

/// Most ops in one commit transaction.
const MAX_BATCH_OPS: usize = 2048;
/// Most ops waiting for a transaction; beyond it new ops are refused with
/// `unavailable` so a document that cannot commit fast enough (slow or
/// failing storage) does not grow without bound.
const MAX_PENDING_OPS: usize = 100_000;
/// How often an idle document checks whether it should unload.
const MAX_IDLE_CHECK: Duration = Duration::from_secs(5);

/// A session joins the document. Answered only after the session has been
/// sent its `welcome` and catch-up (through `recipient`).
#[derive(Message)]
#[rtype(result = "Result<(), JoinError>")]
pub struct JoinDocument {
    pub session_id: SessionId,
    pub client_id: Arc<str>,
    pub last_seen_server_seq: Option<u64>,
    pub epoch: Option<String>,
    pub recipient: Recipient<SessionEvent>,
}

/// Why a join failed: what to tell the client and how to close.
#[derive(Debug, Clone)]
pub struct JoinError {
    pub rejection: Rejection,
    pub close_code: u16,
}

impl JoinError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        JoinError {
            rejection: Rejection::new(ErrorCode::Unavailable, message),
            close_code: close_code::TRY_AGAIN_LATER,
        }
    }

    pub fn going_away() -> Self {
        JoinError {
            rejection: Rejection::new(ErrorCode::Unavailable, "the server is shutting down"),
            close_code: close_code::GOING_AWAY,
        }
    }
}

/// A joined session submits a validated op.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubmitOp {
    pub session_id: SessionId,
    pub client_op_id: u64,
    pub update: ValidUpdate,
}

/// A session leaves (its connection closed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveDocument {
    pub session_id: SessionId,
}

/// Graceful shutdown: commit what is pending, snapshot, close every session
/// with 1001. Answered when done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// The manager forgot this document: stop for good.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unload;

/// Where the actor is in its life.
enum Phase {
    /// Reading snapshot and log (the mailbox waits meanwhile).
    Loading,
    Ready(Box<DocumentState>),
    /// Cannot be served; the manager has been asked to drop it.
    Failed(String),
    /// Flushing for shutdown: no new ops.
    ShuttingDown(Box<DocumentState>),
    /// Dropped by the manager; never loads again.
    Unloaded,
}

/// A joined session.
struct Subscriber {
    client_id: Arc<str>,
    recipient: Recipient<SessionEvent>,
    /// `Some` while the join is reading from storage: live events are held
    /// here so they follow the catch-up instead of preceding it.
    held: Option<Vec<SessionEvent>>,
}

/// An entry of the commit pipeline, in arrival order.
enum PipelineItem {
    Op {
        session_id: SessionId,
        client_id: Arc<str>,
        client_op_id: u64,
        raw: Bytes,
    },
    /// A resend of an op that is itself still in the pipeline: answered
    /// after that op committed.
    Duplicate {
        session_id: SessionId,
        client_id: Arc<str>,
        client_op_id: u64,
    },
}

/// The transaction currently being committed.
struct InFlight {
    items: Vec<PipelineItem>,
    snapshot_seq: Option<u64>,
}

/// See the module docs.
pub struct DocumentActor {
    /// The document id; fixed for the actor's life.
    id: Arc<str>,
    /// Distinguishes this actor from earlier ones of the same document in
    /// the manager's bookkeeping.
    instance: u64,
    store: Store,
    settings: Arc<DocumentSettings>,
    manager: Recipient<UnloadRequest>,
    metrics: Arc<Metrics>,
    phase: Phase,
    /// Joined sessions by id. Cleared (each told to reconnect) on restart.
    subscribers: HashMap<SessionId, Subscriber>,
    /// Accepted ops waiting for the next transaction.
    pending: Vec<PipelineItem>,
    /// At most one transaction at a time: seqs are assigned when it starts,
    /// so they are contiguous and in commit order.
    in_flight: Option<InFlight>,
    /// Joins received; the manager compares it with the joins it forwarded
    /// before letting the document unload (no join may be in transit).
    joins_seen: u64,
    /// Last join, leave or op: idle time counts from here.
    last_activity: Instant,
    /// Write a snapshot at the next opportunity even if not due (unload, shutdown).
    final_snapshot: bool,
    /// Callers of [`Flush`] waiting for the pipeline to drain.
    flush_waiters: Vec<oneshot::Sender<()>>,
    /// Supervised restarts so far.
    restarts: u32,
}

impl DocumentActor {
    pub fn new(
        id: Arc<str>,
        instance: u64,
        store: Store,
        settings: Arc<DocumentSettings>,
        manager: Recipient<UnloadRequest>,
        metrics: Arc<Metrics>,
    ) -> Self {
        DocumentActor {
            id,
            instance,
            store,
            settings,
            manager,
            metrics,
            phase: Phase::Loading,
            subscribers: HashMap::new(),
            pending: Vec::new(),
            in_flight: None,
            joins_seen: 0,
            last_activity: Instant::now(),
            final_snapshot: false,
            flush_waiters: Vec::new(),
            restarts: 0,
        }
    }

    fn state_mut(&mut self) -> Option<&mut DocumentState> {
        match &mut self.phase {
            Phase::Ready(state) | Phase::ShuttingDown(state) => Some(state),
            _ => None,
        }
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Loading;
        let store = self.store.clone();
        let id = self.id.clone();
        let max_replay_ops = self.settings.max_replay_ops;
        let started = Instant::now();
        ctx.wait(
            async move { load_state(&store, &id, max_replay_ops).await }
                .into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(state) => {
                        log::info!(
                            "document {} loaded: head {}, snapshot at {}, epoch {} ({} ms)",
                            act.id,
                            state.head(),
                            state.snapshot_seq(),
                            state.epoch(),
                            started.elapsed().as_millis()
                        );
                        act.phase = Phase::Ready(Box::new(state));
                        act.last_activity = Instant::now();
                        act.metrics.document_loaded();
                    }
                    Err(e) => act.fail(format!("document {} cannot be loaded: {e}", act.id), ctx),
                }),
        );
    }

    /// Marks the document as not servable and asks the manager to drop it.
    fn fail(&mut self, reason: String, _ctx: &mut Context<Self>) {
        log::error!("{reason}; refusing to serve it");
        for (_, subscriber) in self.subscribers.drain() {
            subscriber.recipient.do_send(SessionEvent::Rejected {
                rejection: Rejection::new(ErrorCode::Unavailable, reason.clone()),
            });
            subscriber.recipient.do_send(SessionEvent::Close {
                code: close_code::TRY_AGAIN_LATER,
                reason: "document unavailable".to_owned(),
            });
        }
        self.phase = Phase::Failed(reason);
        self.answer_flush_waiters();
        self.manager.do_send(UnloadRequest {
            document_id: self.id.clone(),
            instance: self.instance,
            joins_seen: self.joins_seen,
            force: true,
        });
    }

    /// Sends `event` to a subscriber, or holds it while its join catches up.
    fn deliver(subscriber: &mut Subscriber, event: SessionEvent) {
        match &mut subscriber.held {
            Some(held) => held.push(event),
            None => subscriber.recipient.do_send(event),
        }
    }

    /// Starts the next transaction if none is in flight and there is
    /// something to write.
    fn pump(&mut self, ctx: &mut Context<Self>) {
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
        let mut next_seq = state.head();
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
        if items.is_empty() && snapshot.is_none() {
            return;
        }
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
        ctx.spawn(
            async move { store.commit(&id, &ops, snapshot.as_ref()).await }
                .into_actor(self)
                .map(|result, act, ctx| act.commit_done(result, ctx)),
        );
    }

    /// The transaction in flight finished.
    fn commit_done(&mut self, result: Result<(), StoreError>, ctx: &mut Context<Self>) {
        let Some(in_flight) = self.in_flight.take() else {
            return;
        };
        if let Err(e) = result {
            self.metrics.commit_failed();
            log::error!(
                "document {}: commit of {} ops failed: {e}; answering `unavailable` and reloading from storage",
                self.id,
                in_flight.items.len()
            );
            let mut failed = in_flight.items;
            failed.append(&mut self.pending);
            self.reject_items(
                failed,
                "the op was not committed (storage failed); resend it",
            );
            if let Some(state) = self.state_mut() {
                state.clear_reservations();
            }
            ctx.stop();
            return;
        }
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
        let applied = catch_unwind(AssertUnwindSafe(|| self.apply_and_broadcast(in_flight)));
        if applied.is_err() {
            log::error!(
                "document {}: panic while applying committed ops; restarting from storage",
                self.id
            );
            ctx.stop();
            return;
        }
        self.pump(ctx);
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
        state.apply_committed(committed);
        if !ops.is_empty() {
            for subscriber in self.subscribers.values_mut() {
                Self::deliver(subscriber, SessionEvent::Committed { ops: ops.clone() });
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
    }

    /// Answers `unavailable` for every op in `items`.
    fn reject_items(&mut self, items: Vec<PipelineItem>, message: &str) {
        for item in items {
            let (session_id, client_op_id) = match item {
                PipelineItem::Op {
                    session_id,
                    client_op_id,
                    ..
                }
                | PipelineItem::Duplicate {
                    session_id,
                    client_op_id,
                    ..
                } => (session_id, client_op_id),
            };
            if let Some(subscriber) = self.subscribers.get_mut(&session_id) {
                Self::deliver(
                    subscriber,
                    SessionEvent::Rejected {
                        rejection: Rejection::for_op(ErrorCode::Unavailable, message, client_op_id),
                    },
                );
            }
        }
    }

    /// Completes a shutdown flush once nothing is left to write.
    fn maybe_finish_flush(&mut self) {
        if self.flush_waiters.is_empty() || self.in_flight.is_some() || !self.pending.is_empty() {
            return;
        }
        for (_, subscriber) in self.subscribers.drain() {
            subscriber.recipient.do_send(SessionEvent::Close {
                code: close_code::GOING_AWAY,
                reason: "server shutting down".to_owned(),
            });
        }
        self.answer_flush_waiters();
    }

    fn answer_flush_waiters(&mut self) {
        for waiter in self.flush_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Periodic: unload after `idle_unload_secs` without sessions.
    fn idle_check(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.phase, Phase::Ready(_))
            || !self.subscribers.is_empty()
            || self.in_flight.is_some()
            || !self.pending.is_empty()
            || self.last_activity.elapsed() < self.settings.idle_unload()
        {
            return;
        }
        let needs_snapshot = self
            .state_mut()
            .is_some_and(|s| s.head() > s.snapshot_seq());
        if needs_snapshot {
            self.final_snapshot = true;
            self.pump(ctx);
            return;
        }
        log::debug!("document {} idle; asking to unload", self.id);
        self.manager.do_send(UnloadRequest {
            document_id: self.id.clone(),
            instance: self.instance,
            joins_seen: self.joins_seen,
            force: false,
        });
    }

    /// Sends the welcome and catch-up, then whatever was held meanwhile.
    fn complete_join(
        &mut self,
        session_id: SessionId,
        welcome: Welcome,
        catch_up: CatchUp,
    ) -> Result<(), JoinError> {
        let Some(subscriber) = self.subscribers.get_mut(&session_id) else {
            return Err(JoinError::unavailable("the session left while joining"));
        };
        let how = match &catch_up {
            CatchUp::Replay { ops } => format!("replay of {} ops", ops.len()),
            CatchUp::Snapshot { server_seq, .. } => format!("snapshot at {server_seq}"),
        };
        log::info!(
            "document {}: session {session_id} (client {}) joined at seq {}: {how}",
            self.id,
            subscriber.client_id,
            welcome.server_seq
        );
        subscriber
            .recipient
            .do_send(SessionEvent::Welcome { welcome, catch_up });
        for event in subscriber.held.take().unwrap_or_default() {
            subscriber.recipient.do_send(event);
        }
        Ok(())
    }
}

/// Reads snapshot and log and rebuilds the state. An undecodable snapshot
/// is skipped for the previous one (or the whole log); a gap is refused.
async fn load_state(store: &Store, id: &str, max_replay_ops: u64) -> Result<DocumentState, String> {
    let epoch = store.open_document(id).await.map_err(|e| e.to_string())?;
    let snapshots = store.snapshots(id).await.map_err(|e| e.to_string())?;
    let mut candidates: Vec<Option<(u64, Vec<u8>)>> = snapshots.into_iter().map(Some).collect();
    candidates.push(None);
    for candidate in candidates {
        let after = candidate.as_ref().map_or(0, |(seq, _)| *seq);
        let ops: Vec<LoggedOp> = store
            .ops_between(id, after, None)
            .await
            .map_err(|e| e.to_string())?;
        let snapshot = candidate
            .as_ref()
            .map(|(seq, state)| (*seq, state.as_slice()));
        let restored = catch_unwind(AssertUnwindSafe(|| {
            DocumentState::restore(&epoch, snapshot, ops, max_replay_ops)
        }))
        .map_err(|_| "yrs panicked while rebuilding the document".to_owned())?;
        match restored {
            Ok(state) => return Ok(state),
            Err(e @ RestoreError::BadSnapshot { .. }) => {
                log::error!(
                    "document {id}: {e}; falling back to an older snapshot or the full log"
                );
            }
            Err(e @ RestoreError::Gap { .. }) => return Err(e.to_string()),
        }
    }
    Err("no usable snapshot and the op log does not start at server_seq 1".to_owned())
}

impl Actor for DocumentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Unloaded) {
            // Restarted by the supervisor after unloading because an address
            // was still alive: stay down and try to stop again later.
            ctx.run_later(Duration::from_secs(1), |_, ctx| ctx.stop());
            return;
        }
        let every = self.settings.idle_unload().min(MAX_IDLE_CHECK);
        ctx.run_interval(every, |act, ctx| act.idle_check(ctx));
        self.load(ctx);
    }
}

impl Supervised for DocumentActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Unloaded) {
            return;
        }
        self.restarts += 1;
        self.metrics.document_restarted();
        log::warn!(
            "document {} restarting (restart #{}): reloading from storage",
            self.id,
            self.restarts
        );
        let mut dropped: Vec<PipelineItem> =
            self.in_flight.take().map(|f| f.items).unwrap_or_default();
        dropped.append(&mut self.pending);
        self.reject_items(
            dropped,
            "the document restarted before the op was committed; resend it",
        );
        for (_, subscriber) in self.subscribers.drain() {
            subscriber.recipient.do_send(SessionEvent::Close {
                code: close_code::SERVICE_RESTART,
                reason: "document restarted; reconnect with last_seen_server_seq".to_owned(),
            });
        }
        // A shutdown flush in progress ends here: the sessions are closed
        // and nothing uncommitted remains.
        self.answer_flush_waiters();
        self.final_snapshot = false;
        self.phase = Phase::Loading;
    }
}

impl Handler<JoinDocument> for DocumentActor {
    type Result = ResponseActFuture<Self, Result<(), JoinError>>;

    fn handle(&mut self, msg: JoinDocument, _ctx: &mut Context<Self>) -> Self::Result {
        self.joins_seen += 1;
        self.last_activity = Instant::now();
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
        let plan = state.plan_recovery(
            msg.last_seen_server_seq,
            msg.epoch.as_deref(),
            max_replay_ops,
        );
        let head = state.head();
        let epoch = state.epoch().clone();
        let knows_client = state.knows_client(&msg.client_id);
        let snapshot = matches!(plan, RecoveryPlan::Snapshot).then(|| state.full_state_base64());

        // Fast path: everything is in memory.
        if knows_client && !matches!(plan, RecoveryPlan::ReplayFromLog { .. }) {
            let last_client_op_id = state.client_joined(&msg.client_id, None);
            let catch_up = match (plan, snapshot) {
                (RecoveryPlan::Replay(ops), _) => CatchUp::Replay { ops },
                (_, Some(state)) => CatchUp::Snapshot {
                    server_seq: head,
                    state,
                },
                _ => CatchUp::Replay { ops: Vec::new() },
            };
            self.subscribers.insert(
                msg.session_id,
                Subscriber {
                    client_id: msg.client_id,
                    recipient: msg.recipient,
                    held: None,
                },
            );
            let welcome = Welcome {
                document_id,
                epoch,
                server_seq: head,
                last_client_op_id,
            };
            return Box::pin(fut::ready(self.complete_join(
                msg.session_id,
                welcome,
                catch_up,
            )));
        }

        // Slow path: read the client's mark and/or the missing ops from the
        // log while live events for this session are held back.
        self.subscribers.insert(
            msg.session_id,
            Subscriber {
                client_id: msg.client_id.clone(),
                recipient: msg.recipient,
                held: Some(Vec::new()),
            },
        );
        let store = self.store.clone();
        let client_id = msg.client_id.clone();
        let session_id = msg.session_id;
        let replay_range = match &plan {
            RecoveryPlan::ReplayFromLog { after, upto } => Some((*after, *upto)),
            _ => None,
        };
        let read = async move {
            let mark = if knows_client {
                None
            } else {
                Some(store.client_mark(&document_id, &client_id).await?)
            };
            let logged = match replay_range {
                Some((after, upto)) => {
                    Some(store.ops_between(&document_id, after, Some(upto)).await?)
                }
                None => None,
            };
            Ok::<_, StoreError>((mark, logged))
        };
        Box::pin(read.into_actor(self).map(move |result, act, _ctx| {
            let (mark, logged) = match result {
                Ok(found) => found,
                Err(e) => {
                    act.subscribers.remove(&session_id);
                    log::error!("document {}: join read failed: {e}", act.id);
                    return Err(JoinError::unavailable(format!(
                        "the document's storage could not be read: {e}"
                    )));
                }
            };
            if !act.subscribers.contains_key(&session_id) {
                return Err(JoinError::unavailable(
                    "the document restarted while joining; retry",
                ));
            }
            let document_id = act.id.clone();
            let Some(state) = act.state_mut() else {
                return Err(JoinError::unavailable("the document is not loaded; retry"));
            };
            let last_client_op_id = state.client_joined(&msg.client_id, mark.flatten());
            let epoch = state.epoch().clone();
            let mut welcome_seq = head;
            let catch_up = match (plan, snapshot, logged) {
                (RecoveryPlan::Replay(ops), _, _) => CatchUp::Replay { ops },
                (_, Some(snapshot_state), _) => CatchUp::Snapshot {
                    server_seq: head,
                    state: snapshot_state,
                },
                (RecoveryPlan::ReplayFromLog { after, upto }, _, Some(logged))
                    if is_contiguous(&logged, after, upto) =>
                {
                    CatchUp::Replay {
                        ops: logged
                            .into_iter()
                            .map(|op| {
                                Arc::new(CommittedOp::new(
                                    op.server_seq,
                                    Arc::from(op.client_id.as_str()),
                                    op.client_op_id,
                                    Bytes::from(op.update),
                                    None,
                                ))
                            })
                            .collect(),
                    }
                }
                _ => {
                    // The log no longer holds those ops: snapshot at the
                    // current head, and drop held events it already covers.
                    welcome_seq = state.head();
                    let state_now = state.full_state_base64();
                    if let Some(subscriber) = act.subscribers.get_mut(&session_id) {
                        subscriber.held = Some(Vec::new());
                    }
                    CatchUp::Snapshot {
                        server_seq: welcome_seq,
                        state: state_now,
                    }
                }
            };
            let welcome = Welcome {
                document_id,
                epoch,
                server_seq: welcome_seq,
                last_client_op_id,
            };
            act.complete_join(session_id, welcome, catch_up)
        }))
    }
}

fn is_contiguous(ops: &[LoggedOp], after: u64, upto: u64) -> bool {
    ops.len() as u64 == upto - after
        && ops
            .iter()
            .enumerate()
            .all(|(i, op)| op.server_seq == after + 1 + i as u64)
}

impl Handler<SubmitOp> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: SubmitOp, ctx: &mut Context<Self>) {
        self.last_activity = Instant::now();
        let Some(subscriber) = self.subscribers.get(&msg.session_id) else {
            log::debug!(
                "document {}: op {} from session {} that is not joined; ignored",
                self.id,
                msg.client_op_id,
                msg.session_id
            );
            return;
        };
        let client_id = subscriber.client_id.clone();
        let recipient = subscriber.recipient.clone();
        let Phase::Ready(state) = &mut self.phase else {
            recipient.do_send(SessionEvent::Rejected {
                rejection: Rejection::for_op(
                    ErrorCode::Unavailable,
                    "the document is shutting down; the op was not accepted",
                    msg.client_op_id,
                ),
            });
            return;
        };
        if self.pending.len() >= MAX_PENDING_OPS {
            log::warn!(
                "document {}: {} ops waiting for storage; refusing op {} of {client_id}",
                self.id,
                self.pending.len(),
                msg.client_op_id
            );
            recipient.do_send(SessionEvent::Rejected {
                rejection: Rejection::for_op(
                    ErrorCode::Unavailable,
                    "the document is overloaded (storage too slow); resend the op later",
                    msg.client_op_id,
                ),
            });
            return;
        }
        match state.classify(&client_id, msg.client_op_id) {
            OpDisposition::Fresh => {
                state.reserve(&client_id, msg.client_op_id);
                self.pending.push(PipelineItem::Op {
                    session_id: msg.session_id,
                    client_id,
                    client_op_id: msg.client_op_id,
                    raw: msg.update.into_bytes(),
                });
            }
            OpDisposition::Duplicate { server_seq } => {
                recipient.do_send(SessionEvent::DuplicateAck {
                    client_op_id: msg.client_op_id,
                    server_seq,
                });
            }
            OpDisposition::DuplicateInFlight => self.pending.push(PipelineItem::Duplicate {
                session_id: msg.session_id,
                client_id,
                client_op_id: msg.client_op_id,
            }),
        }
        self.pump(ctx);
    }
}

impl Handler<LeaveDocument> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: LeaveDocument, _ctx: &mut Context<Self>) {
        self.last_activity = Instant::now();
        if let Some(subscriber) = self.subscribers.remove(&msg.session_id)
            && let Some(state) = self.state_mut()
        {
            state.client_left(&subscriber.client_id);
        }
    }
}

impl Handler<Flush> for DocumentActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: Flush, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.flush_waiters.push(tx);
        match std::mem::replace(&mut self.phase, Phase::Loading) {
            Phase::Ready(state) | Phase::ShuttingDown(state) => {
                self.phase = Phase::ShuttingDown(state);
                self.final_snapshot = true;
                self.pump(ctx);
                self.maybe_finish_flush();
            }
            other => {
                self.phase = other;
                self.maybe_finish_flush();
            }
        }
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
                "document {}: unload with {} sessions still joined; closing them",
                self.id,
                self.subscribers.len()
            );
            for (_, subscriber) in self.subscribers.drain() {
                subscriber.recipient.do_send(SessionEvent::Close {
                    code: close_code::TRY_AGAIN_LATER,
                    reason: "document unloaded".to_owned(),
                });
            }
        }
        log::info!("document {} unloaded", self.id);
        self.phase = Phase::Unloaded;
        ctx.stop();
    }
}
