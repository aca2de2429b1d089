//! The session manager: one per engine. It knows every session and every
//! loaded document, starts each document actor under a `Supervisor` on first
//! use, routes joins to it and forgets it when it unloads.
//!
//! Joins always pass through the manager, so it can tell whether a join is
//! on its way to a document that asked to unload: it counts the joins it
//! forwarded, the document counts the joins it received, and the unload is
//! granted only when both agree.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;

use crate::configuration::DocumentSettings;
use crate::document::state::SessionId;
use crate::document::{
    DocumentActor, FailCommits, Flush, InjectPanic, JoinDocument, JoinError, Unload,
};
use crate::events::SessionEvent;
use crate::metrics::Metrics;
use crate::protocol::close_code;
use crate::store::Store;

/// How long after an unload the freed memory is handed back to the OS.
const RELEASE_DELAY: Duration = Duration::from_secs(2);

/// Returns freed heap memory to the OS. glibc's allocator keeps freed memory
/// mapped for reuse, so without this an unloaded document's memory would
/// stay in the process's RSS (reused by the next documents, but never
/// returned). Runs on a blocking thread: trimming a large heap takes a few
/// milliseconds.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    actix_web::rt::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only walks and trims the allocator's own
        // arenas under their locks; it has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}

/// A session announces itself (for shutdown and statistics).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterSession {
    pub session_id: SessionId,
    pub recipient: Recipient<SessionEvent>,
}

/// A session is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterSession {
    pub session_id: SessionId,
}

/// A session asks to join `document_id`; on success it gets the document's
/// address for its ops.
#[derive(Message)]
#[rtype(result = "Result<Addr<DocumentActor>, JoinError>")]
pub struct Join {
    pub document_id: Arc<str>,
    pub request: JoinDocument,
}

/// A document asks to be forgotten: idle (granted only if no join is in
/// transit), or failed (`failed_for`: always granted, and new connections
/// are refused for that long before the document is tried again).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnloadRequest {
    pub document_id: Arc<str>,
    pub instance: u64,
    pub joins_seen: u64,
    pub failed_for: Option<Duration>,
}

/// Fault injection (only routed when `debug.fault_injection` is on).
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Panic inside a handler of the document actor.
    Panic,
    /// Fail the next `count` commits (after they reached storage when
    /// `after_commit`).
    FailCommits { count: u32, after_commit: bool },
}

/// Injects `fault` into the loaded document `document_id`.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct InjectFault {
    pub document_id: Arc<str>,
    pub fault: Fault,
}

/// Graceful shutdown of every document and session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Counters for tests and operators.
#[derive(Message)]
#[rtype(result = "EngineStats")]
pub struct GetStats;

/// What the engine currently holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Documents loaded in memory (each with its actor).
    pub documents_loaded: usize,
    /// Open WebSocket sessions.
    pub sessions: usize,
}

struct DocumentEntry {
    addr: Addr<DocumentActor>,
    instance: u64,
    /// Joins forwarded to this instance (see the module docs).
    joins_sent: u64,
}

/// See the module docs.
pub struct SessionManager {
    store: Store,
    settings: Arc<DocumentSettings>,
    metrics: Arc<Metrics>,
    /// Loaded documents. An entry exists exactly while its actor may serve.
    documents: HashMap<Arc<str>, DocumentEntry>,
    /// Every open session, joined or not, so shutdown can close them all.
    sessions: HashMap<SessionId, Recipient<SessionEvent>>,
    /// Documents that failed, refused until the given time.
    failed_until: HashMap<Arc<str>, Instant>,
    /// Source of document instance numbers.
    next_instance: u64,
    /// Set by [`Shutdown`]: no new joins.
    shutting_down: bool,
    /// A memory release is scheduled (see [`release_memory`]).
    release_scheduled: bool,
}

impl SessionManager {
    pub fn new(store: Store, settings: Arc<DocumentSettings>, metrics: Arc<Metrics>) -> Self {
        SessionManager {
            store,
            settings,
            metrics,
            documents: HashMap::new(),
            sessions: HashMap::new(),
            failed_until: HashMap::new(),
            next_instance: 0,
            shutting_down: false,
            release_scheduled: false,
        }
    }

    fn document(&mut self, id: &Arc<str>, ctx: &mut Context<Self>) -> &mut DocumentEntry {
        let next_instance = &mut self.next_instance;
        let store = &self.store;
        let settings = &self.settings;
        let metrics = &self.metrics;
        self.documents.entry(id.clone()).or_insert_with(|| {
            *next_instance += 1;
            let instance = *next_instance;
            let store = store.clone();
            let settings = settings.clone();
            let metrics = metrics.clone();
            let manager = ctx.address().recipient();
            let doc_id = id.clone();
            log::debug!("document {id} starting (instance {instance})");
            let addr = Supervisor::start(move |_| {
                DocumentActor::new(doc_id, instance, store, settings, manager, metrics)
            });
            DocumentEntry {
                addr,
                instance,
                joins_sent: 0,
            }
        })
    }
}

impl Actor for SessionManager {
    type Context = Context<Self>;
}

impl Handler<RegisterSession> for SessionManager {
    type Result = ();

    fn handle(&mut self, msg: RegisterSession, _ctx: &mut Context<Self>) {
        if self.shutting_down {
            msg.recipient.do_send(SessionEvent::Close {
                code: close_code::GOING_AWAY,
                reason: "server shutting down".to_owned(),
            });
            return;
        }
        self.sessions.insert(msg.session_id, msg.recipient);
    }
}

impl Handler<UnregisterSession> for SessionManager {
    type Result = ();

    fn handle(&mut self, msg: UnregisterSession, _ctx: &mut Context<Self>) {
        self.sessions.remove(&msg.session_id);
    }
}

impl Handler<Join> for SessionManager {
    type Result = ResponseFuture<Result<Addr<DocumentActor>, JoinError>>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Box::pin(async { Err(JoinError::going_away()) });
        }
        if let Some(until) = self.failed_until.get(&msg.document_id) {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                let error = JoinError::unavailable(format!(
                    "document {} failed and is refused for another {} ms; retry later",
                    msg.document_id,
                    left.as_millis()
                ));
                return Box::pin(async move { Err(error) });
            }
            self.failed_until.remove(&msg.document_id);
        }
        let entry = self.document(&msg.document_id, ctx);
        entry.joins_sent += 1;
        let addr = entry.addr.clone();
        let joined = addr.send(msg.request);
        Box::pin(async move {
            match joined.await {
                Ok(Ok(())) => Ok(addr),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(JoinError::unavailable(format!(
                    "the document did not answer the join ({e}); retry"
                ))),
            }
        })
    }
}

impl Handler<UnloadRequest> for SessionManager {
    type Result = ();

    fn handle(&mut self, msg: UnloadRequest, ctx: &mut Context<Self>) {
        let Some(entry) = self.documents.get(&msg.document_id) else {
            return;
        };
        if entry.instance != msg.instance {
            return;
        }
        if msg.failed_for.is_none() && entry.joins_sent != msg.joins_seen {
            log::debug!(
                "document {}: unload refused, a join is in transit",
                msg.document_id
            );
            return;
        }
        if let Some(entry) = self.documents.remove(&msg.document_id) {
            entry.addr.do_send(Unload);
            // Once the documents unloading now are gone, give their memory
            // back to the OS (one release for a whole wave of unloads).
            if !self.release_scheduled {
                self.release_scheduled = true;
                ctx.run_later(RELEASE_DELAY, |act, _ctx| {
                    act.release_scheduled = false;
                    release_memory();
                });
            }
        }
        if let Some(failed_for) = msg.failed_for {
            self.failed_until.retain(|_, until| *until > Instant::now());
            self.failed_until
                .insert(msg.document_id, Instant::now() + failed_for);
        }
    }
}

impl Handler<InjectFault> for SessionManager {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: InjectFault, _ctx: &mut Context<Self>) -> Self::Result {
        let Some(entry) = self.documents.get(&msg.document_id) else {
            let error = format!("document {} is not loaded", msg.document_id);
            return Box::pin(async move { Err(error) });
        };
        let addr = entry.addr.clone();
        Box::pin(async move {
            let sent = match msg.fault {
                Fault::Panic => addr.send(InjectPanic).await,
                Fault::FailCommits {
                    count,
                    after_commit,
                } => {
                    addr.send(FailCommits {
                        count,
                        after_commit,
                    })
                    .await
                }
            };
            sent.map_err(|e| format!("the document did not answer: {e}"))
        })
    }
}

impl Handler<Shutdown> for SessionManager {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        log::info!(
            "shutting down: flushing {} documents, closing {} sessions",
            self.documents.len(),
            self.sessions.len()
        );
        let flushes: Vec<_> = self
            .documents
            .values()
            .map(|e| e.addr.send(Flush))
            .collect();
        Box::pin(
            async move {
                join_all(flushes).await;
            }
            .into_actor(self)
            .map(|(), act, _ctx| {
                for (_, session) in act.sessions.drain() {
                    session.do_send(SessionEvent::Close {
                        code: close_code::GOING_AWAY,
                        reason: "server shutting down".to_owned(),
                    });
                }
                for (_, entry) in act.documents.drain() {
                    entry.addr.do_send(Unload);
                }
            }),
        )
    }
}

impl Handler<GetStats> for SessionManager {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _msg: GetStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(EngineStats {
            documents_loaded: self.documents.len(),
            sessions: self.sessions.len(),
        })
    }
}
