//! The session manager: one per engine. It knows every session and every
//! loaded document, starts each document actor under a `Supervisor` on
//! first use, forwards joins and every other message for a document to it
//! ([`ToDocument`]; [`Documents`] wraps that as the document API), and
//! forgets a document when it unloads.
//!
//! Everything for a document passes through the manager, so it can tell
//! whether something is on its way to a document that asked to unload: it
//! counts what it forwarded, the document counts what it received
//! ([`Forwarded`]), and the unload is granted only when both agree.

mod arbiters;
mod deletion;
mod documents;
mod memory;
mod messages;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;

use crate::document::{
    DocumentActor, DocumentContext, DocumentEvent, Flush, Forwarded, Unload, UnloadRequest,
};
use crate::vocabulary::{JoinError, Refusal, SessionId, close_code};
use arbiters::DocumentArbiters;
pub use arbiters::arbiter_index;
pub use deletion::DeleteDocument;
pub use documents::Documents;
use memory::release_memory;
pub use messages::*;

/// How long after an unload the freed memory is handed back to the OS.
const RELEASE_DELAY: Duration = Duration::from_secs(2);

/// An open session, as the manager knows it.
struct RegisteredSession {
    recipient: Recipient<DocumentEvent>,
    subject: Option<Arc<str>>,
    token_id: Option<Arc<str>>,
}

struct DocumentEntry {
    addr: Addr<DocumentActor>,
    instance: u64,
    /// Messages forwarded to this instance (see the module docs).
    forwarded: u64,
}

/// See the module docs.
pub struct SessionManager {
    /// Given to every document actor it starts.
    context: DocumentContext,
    /// The threads document actors run on.
    arbiters: DocumentArbiters,
    /// Loaded documents. An entry exists exactly while its actor may serve.
    documents: HashMap<Arc<str>, DocumentEntry>,
    /// Every open session, joined or not, so shutdown can close them all.
    sessions: HashMap<SessionId, RegisteredSession>,
    /// Documents that failed, refused until the given time.
    failed_until: HashMap<Arc<str>, Instant>,
    /// Documents being deleted: refused until the deletion is done.
    deleting: HashSet<Arc<str>>,
    /// Source of document instance numbers.
    next_instance: u64,
    /// Set by [`Shutdown`]: nothing more is forwarded.
    shutting_down: bool,
    /// A memory release is scheduled (see [`release_memory`]).
    release_scheduled: bool,
}

impl SessionManager {
    /// A manager whose documents run on `arbiters` threads (at least 1).
    /// Must be called inside a running actix system.
    pub fn new(context: DocumentContext, arbiters: usize) -> Self {
        let arbiters = DocumentArbiters::new(arbiters);
        log::info!("documents run on {} arbiter threads", arbiters.len());
        SessionManager {
            context,
            arbiters,
            documents: HashMap::new(),
            sessions: HashMap::new(),
            failed_until: HashMap::new(),
            deleting: HashSet::new(),
            next_instance: 0,
            shutting_down: false,
            release_scheduled: false,
        }
    }

    /// The address to forward one message for `id` to (counted), starting
    /// the document's actor if needed and allowed; or why not.
    fn route(
        &mut self,
        id: &Arc<str>,
        loading: Loading,
        ctx: &mut Context<Self>,
    ) -> Result<Addr<DocumentActor>, Refusal> {
        if self.shutting_down {
            return Err(Refusal::shutting_down());
        }
        if self.deleting.contains(id) {
            return Err(Refusal::unavailable(format!(
                "document {id} is being deleted; retry"
            )));
        }
        if let Some(until) = self.failed_until.get(id) {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(Refusal::unavailable(format!(
                    "document {id} failed and is refused for another {} ms; retry later",
                    left.as_millis()
                )));
            }
            self.failed_until.remove(id);
        }
        if loading == Loading::OnlyIfLoaded && !self.documents.contains_key(id) {
            return Err(Refusal::not_loaded(id));
        }
        let entry = self.document(id, ctx);
        entry.forwarded += 1;
        Ok(entry.addr.clone())
    }

    fn document(&mut self, id: &Arc<str>, ctx: &mut Context<Self>) -> &mut DocumentEntry {
        let next_instance = &mut self.next_instance;
        let context = &self.context;
        let arbiters = &self.arbiters;
        self.documents.entry(id.clone()).or_insert_with(|| {
            *next_instance += 1;
            let instance = *next_instance;
            let context = context.clone();
            let manager = ctx.address().recipient();
            let doc_id = id.clone();
            log::debug!("document {id} starting (instance {instance})");
            let addr = Supervisor::start_in_arbiter(&arbiters.for_document(id), move |_| {
                DocumentActor::new(doc_id, instance, context, manager)
            });
            DocumentEntry {
                addr,
                instance,
                forwarded: 0,
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
            msg.recipient.do_send(DocumentEvent::Close {
                code: close_code::GOING_AWAY,
                reason: "server shutting down".to_owned(),
            });
            return;
        }
        let session = RegisteredSession {
            recipient: msg.recipient,
            subject: msg.subject,
            token_id: msg.token_id,
        };
        self.sessions.insert(msg.session_id, session);
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
        let addr = match self.route(&msg.document_id, Loading::LoadIfNeeded, ctx) {
            Ok(addr) => addr,
            Err(refusal) => return Box::pin(async move { Err(JoinError::from(refusal)) }),
        };
        let joined = addr.send(Forwarded {
            message: msg.request,
        });
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

impl<M> Handler<ToDocument<M>> for SessionManager
where
    M: Message + Send + 'static,
    M::Result: Send,
    DocumentActor: Handler<Forwarded<M>>,
{
    type Result = ResponseFuture<Result<M::Result, Refusal>>;

    fn handle(&mut self, msg: ToDocument<M>, ctx: &mut Context<Self>) -> Self::Result {
        let addr = match self.route(&msg.document_id, msg.loading, ctx) {
            Ok(addr) => addr,
            Err(refusal) => return Box::pin(async move { Err(refusal) }),
        };
        let sent = addr.send(Forwarded {
            message: msg.message,
        });
        Box::pin(async move {
            sent.await.map_err(|e| {
                Refusal::unavailable(format!("the document did not answer ({e}); retry"))
            })
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
        if msg.failed_for.is_none() && entry.forwarded != msg.forwarded_seen {
            log::debug!(
                "document {}: unload refused, a message is in transit",
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
            .map(|e| e.addr.send(Flush::shutdown()))
            .collect();
        Box::pin(
            async move {
                join_all(flushes).await;
            }
            .into_actor(self)
            .map(|(), act, _ctx| {
                for (_, session) in act.sessions.drain() {
                    session.recipient.do_send(DocumentEvent::Close {
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

impl Handler<CloseSessionsOf> for SessionManager {
    type Result = usize;

    fn handle(&mut self, msg: CloseSessionsOf, _ctx: &mut Context<Self>) -> usize {
        let mut closed = 0;
        for session in self.sessions.values() {
            let theirs = match &msg.who {
                SessionsOf::Subject(subject) => {
                    session.subject.as_deref() == Some(subject.as_str())
                }
                SessionsOf::Token(token_id) => {
                    session.token_id.as_deref() == Some(token_id.as_str())
                }
            };
            if theirs {
                session.recipient.do_send(DocumentEvent::Close {
                    code: msg.code,
                    reason: msg.reason.clone(),
                });
                closed += 1;
            }
        }
        log::info!(
            "{closed} sessions of {:?} closed with {} ({})",
            msg.who,
            msg.code,
            msg.reason
        );
        closed
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
