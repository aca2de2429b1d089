//! The document core: one [`DocumentActor`] per loaded document, the single
//! writer of its op log. It knows no wire protocol and no transport: it
//! answers the messages of [`messages`] (the document API) and tells its
//! subscribers what happened through [`DocumentEvent`]s.
//!
//! The actor composes parts with one job each:
//! - [`state`]: the CRDT state (yrs `Doc`, head, epoch), with the replay
//!   tail ([`replay_tail`]) and the clients' marks ([`client_marks`]);
//! - [`pipeline`]: the group-commit pipeline (pending, in flight, seq
//!   assignment, head verification), driven by [`commit`];
//! - [`subscribers`]: sessions and listeners, delivery, backlog, dropping
//!   the slow ones;
//! - [`awareness`]: presence, in memory only, with the rate of its relays
//!   ([`awareness_rate`]);
//! - [`changes`]: the notice it gives after each committed batch
//!   ([`DocumentChanged`], to the context's [`ChangeListener`]).
//!
//! Its handlers: ops in [`submit`], joins in [`join`], reads and
//! subscriptions in [`queries`], presence in [`presence`], the other
//! session messages in [`handlers`];
//! loading in [`load`], start, restart, failure, idle unload and shutdown
//! in [`lifecycle`].
//!
//! An op is applied to the Doc, acknowledged and broadcast only after its
//! transaction committed, so the Doc always equals the stored snapshot
//! plus the committed log.
//!
//! The actor runs under an actix `Supervisor`. Any failure (a panic caught
//! in a handler, a broken invariant, a reload error) stops it; the
//! supervisor then calls `restarting` and `started` on the same instance at
//! the same address, which reloads the state from storage after a back-off.

pub mod awareness;
pub mod awareness_rate;
mod changes;
pub mod client_marks;
mod commit;
pub mod events;
mod handlers;
mod join;
mod lifecycle;
mod load;
pub mod messages;
mod pipeline;
mod presence;
mod queries;
pub mod replay_tail;
pub mod state;
mod submit;
mod subscribers;

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::configuration::{DocumentSettings, LimitsSettings};
use crate::metrics::{LoadedDocument, Metrics};
use crate::store::Store;
use awareness::AwarenessRegistry;
use awareness_rate::AwarenessRate;
pub use changes::{ChangeListener, DocumentChanged};
pub use events::{Backlog, BacklogLimits, BacklogTicket, CatchUp, DocumentEvent, Welcome};
pub use messages::*;
use pipeline::CommitPipeline;
use state::DocumentState;
use submit::QueuedOp;
pub use submit::counted_as;
use subscribers::Subscribers;

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

/// The actor's bookkeeping of its own life (see [`lifecycle`]).
struct Lifecycle {
    /// Messages received through the manager ([`Forwarded`]); the manager
    /// compares it with what it forwarded before letting the document
    /// unload (nothing may be in transit).
    forwarded_seen: u64,
    /// Last join, leave, op or forwarded message: idle time counts from here.
    last_activity: Instant,
    /// Callers of [`Flush`] waiting for the pipeline to drain.
    flush_waiters: Vec<oneshot::Sender<()>>,
    /// How the [`Flush`] in progress closes the sessions.
    flush_close: Option<(u16, String)>,
    /// When the restarts of the current window happened (for back-off and
    /// the `max_restarts` limit).
    restart_times: VecDeque<Instant>,
    /// Counts the document in `collab_documents_loaded` from its load
    /// until it restarts, fails or unloads (or the actor goes away).
    loaded: Option<LoadedDocument>,
}

/// What every document actor of an engine gets from it.
#[derive(Clone)]
pub struct DocumentContext {
    pub store: Store,
    pub settings: Arc<DocumentSettings>,
    /// `[limits]`: what one session or document may take.
    pub limits: Arc<LimitsSettings>,
    pub metrics: Arc<Metrics>,
    /// Told after every committed batch of ops ([`DocumentChanged`]);
    /// `None`: nobody listens.
    pub changes: Option<Arc<dyn ChangeListener>>,
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
    limits: Arc<LimitsSettings>,
    manager: Recipient<UnloadRequest>,
    metrics: Arc<Metrics>,
    /// See [`DocumentContext::changes`].
    changes: Option<Arc<dyn ChangeListener>>,
    phase: Phase,
    /// Joined sessions and listeners. Cleared (each told to reconnect) on restart.
    subscribers: Subscribers,
    /// Presence of the joined sessions (memory only).
    awareness: AwarenessRegistry,
    /// How often each session's presence changes are relayed; the excess
    /// waits here (coalesced). Cleared with `awareness`.
    awareness_rate: AwarenessRate,
    /// Accepted ops on their way to the op log.
    pipeline: CommitPipeline,
    /// Ops waiting for their client's mark to be read from the log, by
    /// client, in arrival order (one read per client at a time).
    mark_reads: HashMap<Arc<str>, Vec<QueuedOp>>,
    lifecycle: Lifecycle,
}

impl DocumentActor {
    /// The actor of document `id` (its `instance`-th since the engine
    /// started), which asks `manager` to unload it when idle.
    pub fn new(
        id: Arc<str>,
        instance: u64,
        context: DocumentContext,
        manager: Recipient<UnloadRequest>,
    ) -> Self {
        let DocumentContext {
            store,
            settings,
            limits,
            metrics,
            changes,
        } = context;
        let awareness_rate = AwarenessRate::new(limits.awareness_per_sec_per_session);
        DocumentActor {
            id,
            instance,
            store,
            settings,
            limits,
            manager,
            metrics,
            changes,
            phase: Phase::Loading,
            subscribers: Subscribers::new(),
            awareness: AwarenessRegistry::default(),
            awareness_rate,
            pipeline: CommitPipeline::default(),
            mark_reads: HashMap::new(),
            lifecycle: Lifecycle {
                forwarded_seen: 0,
                last_activity: Instant::now(),
                flush_waiters: Vec::new(),
                flush_close: None,
                restart_times: VecDeque::new(),
                loaded: None,
            },
        }
    }

    fn state(&self) -> Option<&DocumentState> {
        match &self.phase {
            Phase::Ready(state) | Phase::ShuttingDown(state) => Some(state),
            _ => None,
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

    /// Removes a session that left or is dropped: its client's mark and its
    /// presence go with it.
    fn forget_session(&mut self, session: &subscribers::Session, session_id: u64) {
        if session.mark_counted
            && let Some(state) = self.state_mut()
        {
            state.marks_mut().session_left(&session.client_id);
        }
        self.remove_presence(session_id);
    }

    /// Tells every subscriber `refusal` (if any), closes them with `code`
    /// and forgets them (their presence too).
    fn close_all(&mut self, code: u16, reason: &str, refusal: Option<&crate::vocabulary::Refusal>) {
        self.awareness.clear();
        self.awareness_rate.clear();
        let (sessions, _) = self.subscribers.close_all(code, reason, refusal);
        if let Some(state) = self.state_mut() {
            for session in sessions.iter().filter(|s| s.mark_counted) {
                state.marks_mut().session_left(&session.client_id);
            }
        }
    }

    fn answer_flush_waiters(&mut self) {
        for waiter in self.lifecycle.flush_waiters.drain(..) {
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

/// Handles a message the manager forwards: counted (see [`Forwarded`]),
/// then handled as itself.
macro_rules! forwarded {
    ($($message:ty),* $(,)?) => {$(
        impl Handler<Forwarded<$message>> for DocumentActor {
            type Result = <DocumentActor as Handler<$message>>::Result;

            fn handle(&mut self, msg: Forwarded<$message>, ctx: &mut Context<Self>) -> Self::Result {
                self.lifecycle.forwarded_seen += 1;
                self.lifecycle.last_activity = Instant::now();
                <Self as Handler<$message>>::handle(self, msg.message, ctx)
            }
        }
    )*};
}

forwarded!(
    JoinDocument,
    SubmitOp,
    ReadState,
    ReadOps,
    ReadInfo,
    Subscribe,
    Unsubscribe,
    CloseSessions,
    InjectPanic,
);
