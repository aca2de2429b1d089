//! The document actor: one per loaded document, the single writer of its
//! op log.
//!
//! It owns the sequencing (`server_seq`), the CRDT state, the subscribers
//! and the persistence of one document. Ops go through a group-commit
//! pipeline ([`pipeline`]):
//!
//! ```text
//! SubmitOp ─► pending ──(no commit in flight)──► in_flight ──commit ok──► apply, ack, broadcast
//!                ▲                                   │
//!                └──── ops arriving meanwhile ◄──────┘ commit error ─► `unavailable`
//! ```
//!
//! Everything that arrives while a commit is in flight shares the next
//! transaction. An op is applied to the Doc, acknowledged and broadcast only
//! after its transaction committed, so the Doc always equals the stored
//! snapshot plus the committed log.
//!
//! The actor runs under an actix `Supervisor`. Any failure (a panic caught
//! in a handler, a broken invariant, a reload error) stops it; the
//! supervisor then calls `restarting` and `started` on the same instance at
//! the same address, which reloads the state from storage after a back-off
//! ([`lifecycle`]). Joins are in [`join`], loading in [`load`].

mod join;
mod lifecycle;
mod load;
mod pipeline;
pub mod state;

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::awareness::AwarenessRegistry;
use crate::configuration::DocumentSettings;
use crate::crdt::ValidUpdate;
use crate::events::{Backlog, SessionEvent};
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, Rejection, close_code};
use crate::session_manager::UnloadRequest;
use crate::sessions::JoinMode;
use crate::store::Store;
use state::{DocumentState, SessionId};

/// A session joins the document. Answered only after the session has been
/// sent its `welcome` and catch-up (through `recipient`).
#[derive(Message)]
#[rtype(result = "Result<(), JoinError>")]
pub struct JoinDocument {
    pub session_id: SessionId,
    pub client_id: Arc<str>,
    pub mode: JoinMode,
    /// The client id was generated for this connection: no history to read.
    pub fresh_client: bool,
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
    /// Drop it silently when it adds nothing to the document.
    pub skip_if_redundant: bool,
}

/// A session publishes presence (a y-protocols awareness update).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RelayAwareness {
    pub session_id: SessionId,
    pub update: Bytes,
    /// Send the change back to the publishing session as well.
    pub echo: bool,
}

/// A session asks for every awareness state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueryAwareness {
    pub session_id: SessionId,
}

/// y-websocket sync step 1: the session wants what its state vector lacks.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncStateVector {
    pub session_id: SessionId,
    pub state_vector: Bytes,
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

/// Fault injection: panic inside this message's handler.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// Fault injection: the next `count` commits fail. With `after_commit`,
/// each of them does reach storage and only the answer is a failure (a
/// commit whose outcome the server got wrong, as when the connection drops
/// during `COMMIT`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FailCommits {
    pub count: u32,
    pub after_commit: bool,
}

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

/// Whether the duplicate-detection mark of a subscriber's client is loaded.
enum MarkState {
    /// Loaded and counted in [`DocumentState`]; ops are classified at once.
    Known,
    /// Storage could not be read at join time; read it with the first op.
    Unknown,
    /// Being read; ops of the session wait here, in order.
    Loading { queued: Vec<(u64, ValidUpdate)> },
}

/// A joined session.
struct Subscriber {
    client_id: Arc<str>,
    recipient: Recipient<SessionEvent>,
    /// `Some` while the join is reading from storage: live events are held
    /// here so they follow the catch-up instead of preceding it.
    held: Option<Vec<SessionEvent>>,
    mark: MarkState,
    /// Committed ops sent to the session and not yet handled by it.
    backlog: Backlog,
    /// An op of this session was refused (`unavailable`): every later op
    /// is refused too and the session is being closed, so no op of the
    /// client is accepted after an earlier one was lost (a resend of the
    /// earlier one would otherwise look like a duplicate).
    refused: bool,
}

impl Subscriber {
    /// A new subscriber; `catching_up` holds live events back until its
    /// catch-up has been sent.
    fn new(
        client_id: Arc<str>,
        recipient: Recipient<SessionEvent>,
        mark: MarkState,
        catching_up: bool,
    ) -> Self {
        Subscriber {
            client_id,
            recipient,
            held: catching_up.then(Vec::new),
            mark,
            refused: false,
            backlog: Backlog::default(),
        }
    }
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
    /// Presence of the joined sessions (memory only).
    awareness: AwarenessRegistry,
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
    /// When the restarts of the current window happened (for back-off and
    /// the `max_restarts` limit).
    restart_times: VecDeque<Instant>,
    /// Set after a failed commit, whose outcome is unknown: the next commit
    /// first checks that the log still ends at `head`, and a mismatch
    /// (the "failed" commit did land) reloads the document.
    verify_head: bool,
    /// Fault injection: this many next commits fail...
    injected_commit_failures: u32,
    /// ...after having reached storage (see [`FailCommits`]).
    injected_after_commit: bool,
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
            awareness: AwarenessRegistry::default(),
            pending: Vec::new(),
            in_flight: None,
            joins_seen: 0,
            last_activity: Instant::now(),
            final_snapshot: false,
            flush_waiters: Vec::new(),
            restart_times: VecDeque::new(),
            verify_head: false,
            injected_commit_failures: 0,
            injected_after_commit: false,
        }
    }

    fn state_mut(&mut self) -> Option<&mut DocumentState> {
        match &mut self.phase {
            Phase::Ready(state) | Phase::ShuttingDown(state) => Some(state),
            _ => None,
        }
    }

    /// Runs `f`, turning a panic into a supervised restart: the panic is
    /// logged, the actor stops, and the supervisor reloads it from storage.
    /// Returns `None` when `f` panicked.
    fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        what: &str,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(|| f(self, ctx))) {
            Ok(result) => Some(result),
            Err(payload) => {
                log::error!(
                    "document {}: panic while {what}: {}; restarting from storage",
                    self.id,
                    panic_message(payload.as_ref())
                );
                ctx.stop();
                None
            }
        }
    }

    /// Sends `event` to a subscriber, or holds it while its join catches up.
    fn deliver(subscriber: &mut Subscriber, event: SessionEvent) {
        match &mut subscriber.held {
            Some(held) => held.push(event),
            None => subscriber.recipient.do_send(event),
        }
    }

    /// Sends `event` to every subscriber but `except`.
    fn broadcast(&mut self, except: Option<SessionId>, event: impl Fn() -> SessionEvent) {
        for (id, subscriber) in self.subscribers.iter_mut() {
            if Some(*id) != except {
                Self::deliver(subscriber, event());
            }
        }
    }

    /// Tells every subscriber `rejection` (if any), closes them with `code`
    /// and forgets them.
    fn close_all(&mut self, code: u16, reason: &str, rejection: Option<&Rejection>) {
        self.awareness.clear();
        for (_, subscriber) in self.subscribers.drain() {
            if let Some(rejection) = rejection {
                subscriber.recipient.do_send(SessionEvent::Rejected {
                    rejection: rejection.clone(),
                });
            }
            subscriber.recipient.do_send(SessionEvent::Close {
                code,
                reason: reason.to_owned(),
            });
        }
    }

    fn answer_flush_waiters(&mut self) {
        for waiter in self.flush_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_owned()
    }
}

impl Actor for DocumentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.on_started(ctx);
    }
}

impl Supervised for DocumentActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.on_restarting();
    }
}

impl Handler<SubmitOp> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: SubmitOp, ctx: &mut Context<Self>) {
        self.guarded(ctx, "accepting an op", |act, ctx| act.submit(msg, ctx));
    }
}

impl Handler<LeaveDocument> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: LeaveDocument, ctx: &mut Context<Self>) {
        self.guarded(ctx, "removing a session", |act, _ctx| {
            act.last_activity = Instant::now();
            if let Some(subscriber) = act.subscribers.remove(&msg.session_id)
                && matches!(subscriber.mark, MarkState::Known)
                && let Some(state) = act.state_mut()
            {
                state.client_left(&subscriber.client_id);
            }
            if let Some(removal) = act.awareness.remove_session(msg.session_id) {
                act.broadcast(None, || SessionEvent::Awareness {
                    update: removal.clone(),
                });
            }
        });
    }
}

impl Handler<Flush> for DocumentActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: Flush, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.flush_waiters.push(tx);
        self.guarded(
            ctx,
            "starting the shutdown flush",
            |act, ctx| match std::mem::replace(&mut act.phase, Phase::Loading) {
                Phase::Ready(state) | Phase::ShuttingDown(state) => {
                    act.phase = Phase::ShuttingDown(state);
                    act.final_snapshot = true;
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
                "document {}: unload with {} sessions still joined; closing them",
                self.id,
                self.subscribers.len()
            );
            self.close_all(close_code::TRY_AGAIN_LATER, "document unloaded", None);
        }
        if !matches!(self.phase, Phase::Failed(_)) {
            log::info!("document {} unloaded", self.id);
        }
        self.phase = Phase::Unloaded;
        self.answer_flush_waiters();
        ctx.stop();
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

impl Handler<FailCommits> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: FailCommits, _ctx: &mut Context<Self>) {
        log::warn!(
            "document {}: the next {} commits will fail{} (fault injection)",
            self.id,
            msg.count,
            if msg.after_commit {
                " after reaching storage"
            } else {
                ""
            }
        );
        self.injected_commit_failures = msg.count;
        self.injected_after_commit = msg.after_commit;
    }
}

impl Handler<RelayAwareness> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: RelayAwareness, ctx: &mut Context<Self>) {
        self.guarded(ctx, "relaying awareness", |act, _ctx| {
            if !act.subscribers.contains_key(&msg.session_id) {
                return;
            }
            match act.awareness.apply(msg.session_id, &msg.update) {
                Ok(Some(update)) => {
                    let except = (!msg.echo).then_some(msg.session_id);
                    act.broadcast(except, || SessionEvent::Awareness {
                        update: update.clone(),
                    })
                }
                Ok(None) => {}
                Err(problem) => log::info!(
                    "document {}: awareness from session {} ignored: {problem}",
                    act.id,
                    msg.session_id
                ),
            }
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
        if let Some(subscriber) = self.subscribers.get_mut(&msg.session_id) {
            Self::deliver(subscriber, SessionEvent::Awareness { update });
        }
    }
}

impl Handler<SyncStateVector> for DocumentActor {
    type Result = ();

    fn handle(&mut self, msg: SyncStateVector, ctx: &mut Context<Self>) {
        self.guarded(ctx, "answering a sync step 1", |act, _ctx| {
            let Some(state) = act.state_mut() else {
                return;
            };
            let diff = match state.diff_since(&msg.state_vector) {
                Ok(diff) => diff,
                Err(problem) => {
                    log::info!(
                        "document {}: sync step 1 of session {} refused: {problem}",
                        act.id,
                        msg.session_id
                    );
                    if let Some(subscriber) = act.subscribers.get_mut(&msg.session_id) {
                        Self::deliver(
                            subscriber,
                            SessionEvent::Close {
                                code: crate::sessions::yjs::INVALID_PAYLOAD,
                                reason: problem,
                            },
                        );
                    }
                    return;
                }
            };
            if let Some(subscriber) = act.subscribers.get_mut(&msg.session_id) {
                Self::deliver(subscriber, SessionEvent::SyncStep2 { update: diff });
            }
        });
    }
}
