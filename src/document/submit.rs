//! Submitting an op: who sent it, whether it may be accepted, whether its
//! client's mark must be read first, and whether it is new or a resend.

use std::sync::Arc;
use std::time::Instant;

use actix::dev::{MessageResponse, OneshotSender};
use actix::prelude::*;
use tokio::sync::oneshot;

use super::client_marks::OpDisposition;
use super::pipeline::{MAX_PENDING_OPS, PipelineItem, Reply, Sender, answer};
use super::state::DocumentState;
use super::subscribers::Subscribers;
use super::{Committed, DocumentActor, DocumentEvent, Phase, SubmitOp, Submitter};
use crate::crdt::ValidUpdate;
use crate::metrics::RefusalKind;
use crate::store::{ClientHistory, StoreError};
use crate::vocabulary::{Refusal, RefusalReason};

/// An op that has not entered the pipeline yet (it may wait for its
/// client's mark).
pub(super) struct QueuedOp {
    sender: Sender,
    update: ValidUpdate,
    skip_if_redundant: bool,
}

impl QueuedOp {
    /// Who to answer when the op is refused before it got anywhere.
    pub(super) fn into_sender(self) -> Sender {
        self.sender
    }
}

/// The answer to a [`SubmitOp`], sent once the op committed (or was
/// refused). Nothing is spawned for callers that do not wait for it
/// (`do_send`, as WebSocket sessions do: their acks come as events).
pub struct SubmitReply(oneshot::Receiver<Result<Committed, Refusal>>);

impl<M> MessageResponse<DocumentActor, M> for SubmitReply
where
    M: Message<Result = Result<Committed, Refusal>>,
{
    fn handle(self, _ctx: &mut Context<DocumentActor>, tx: Option<OneshotSender<M::Result>>) {
        let Some(tx) = tx else {
            return;
        };
        actix::spawn(async move {
            let result = self.0.await.unwrap_or_else(|_| {
                Err(Refusal::unavailable(
                    "the document stopped before the op was committed; resend it",
                ))
            });
            let _ = tx.send(result);
        });
    }
}

impl Handler<SubmitOp> for DocumentActor {
    type Result = SubmitReply;

    fn handle(&mut self, msg: SubmitOp, ctx: &mut Context<Self>) -> SubmitReply {
        let (reply, answer) = oneshot::channel();
        self.guarded(ctx, "accepting an op", |act, ctx| {
            act.submit(msg, reply, ctx)
        });
        SubmitReply(answer)
    }
}

impl DocumentActor {
    fn submit(&mut self, msg: SubmitOp, reply: Reply, ctx: &mut Context<Self>) {
        self.lifecycle.last_activity = Instant::now();
        let (session, subject, client_id, mark_known) = match msg.submitter {
            Submitter::Session(session_id) => {
                let Some(session) = self.subscribers.session(session_id) else {
                    log::debug!(
                        "document {}: op {} from session {session_id} that is not joined; ignored",
                        self.id,
                        msg.client_op_id,
                    );
                    let refusal = Refusal::unavailable("the session is not joined to the document");
                    return answer(Some(reply), Err(refusal));
                };
                (
                    Some(session_id),
                    session.subject.clone(),
                    session.client_id.clone(),
                    session.mark_counted,
                )
            }
            Submitter::Client { client_id, subject } => {
                let known = self.state().is_some_and(|s| s.marks().knows(&client_id));
                (None, subject, client_id, known)
            }
        };
        let sender = Sender {
            session,
            subject,
            client_id,
            client_op_id: msg.client_op_id,
            reply: Some(reply),
        };
        let read_only = session
            .and_then(|id| self.subscribers.session(id))
            .is_some_and(|s| !s.permission.can_write());
        if read_only {
            // Read-only: refused, nothing logged; the session stays open.
            let refusal = Refusal::forbidden("this session may only read the document");
            return self.refuse_ops(vec![sender], &refusal, false);
        }
        if let Some(message) = self.refusal_for(&sender) {
            // While shutting down every op is refused and every session is
            // about to be closed with 1001: no extra close needed.
            let close = !matches!(self.phase, Phase::ShuttingDown(_));
            return self.refuse_ops(vec![sender], &Refusal::unavailable(message), close);
        }
        let op = QueuedOp {
            sender,
            update: msg.update,
            skip_if_redundant: msg.skip_if_redundant,
        };
        // Ops of a client whose mark is being read wait behind the read,
        // in order, whoever sent them.
        if !mark_known || self.mark_reads.contains_key(&op.sender.client_id) {
            return self.queue_for_mark(op, ctx);
        }
        self.accept(op);
        self.pump(ctx);
    }

    /// Why an op must be refused right away, if it must.
    fn refusal_for(&self, sender: &Sender) -> Option<&'static str> {
        if sender
            .session
            .and_then(|id| self.subscribers.session(id))
            .is_some_and(|s| s.refused)
        {
            Some("an earlier op of this session was refused; reconnect and resend")
        } else if !matches!(self.phase, Phase::Ready(_)) {
            Some(
                "the document is not accepting ops right now (shutting down or reloading); resend the op later",
            )
        } else if self.pipeline.pending_len() >= MAX_PENDING_OPS {
            log::warn!(
                "document {}: {} ops waiting for storage; refusing op {} of {}",
                self.id,
                self.pipeline.pending_len(),
                sender.client_op_id,
                sender.client_id
            );
            Some("the document is overloaded (storage too slow); resend the op later")
        } else {
            None
        }
    }

    /// Reads the mark of the op's client (one read per client at a time);
    /// its ops wait until then.
    fn queue_for_mark(&mut self, op: QueuedOp, ctx: &mut Context<Self>) {
        let client_id = op.sender.client_id.clone();
        if let Some(queued) = self.mark_reads.get_mut(&client_id) {
            queued.push(op);
            return;
        }
        self.mark_reads.insert(client_id.clone(), vec![op]);
        if let Some(state) = self.state_mut() {
            state.marks_mut().read_started(&client_id);
        }
        let store = self.store.clone();
        let id = self.id.clone();
        ctx.spawn(
            async move {
                let result = store.client_mark(&id, &client_id).await;
                (client_id, result)
            }
            .into_actor(self)
            .map(|(client_id, result), act, ctx| {
                act.guarded(ctx, "loading a client mark", |act, ctx| {
                    act.mark_read(client_id, result, ctx)
                });
            }),
        );
    }

    /// The mark of `client_id` was read: its waiting ops go on (or are
    /// refused when the read failed).
    fn mark_read(
        &mut self,
        client_id: Arc<str>,
        result: Result<Option<ClientHistory>, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        let queued = self.mark_reads.remove(&client_id).unwrap_or_default();
        let ready = matches!(self.phase, Phase::Ready(_));
        let stored = match result {
            Ok(stored) if ready => stored,
            failed => {
                if let Some(state) = self.state_mut() {
                    state.marks_mut().read_finished(&client_id);
                }
                let why = match failed {
                    Err(e) => format!("storage cannot be read: {e}"),
                    Ok(_) => "the document is not accepting ops right now".to_owned(),
                };
                let message = format!("the op was not accepted: {why}; reconnect and resend it");
                let senders = queued.into_iter().map(|op| op.sender).collect();
                // While shutting down every session is closed with 1001 anyway.
                let close = !matches!(self.phase, Phase::ShuttingDown(_));
                return self.refuse_ops(senders, &Refusal::unavailable(message), close);
            }
        };
        if let Some(state) = self.state_mut() {
            state
                .marks_mut()
                .insert_if_absent(&client_id, stored.as_ref());
        }
        for op in queued {
            if let Some(session_id) = op.sender.session {
                let Some(session) = self.subscribers.session_mut(session_id) else {
                    continue; // it left; nobody waits for the op
                };
                if !session.mark_counted {
                    session.mark_counted = true;
                    if let Some(state) = self.state_mut() {
                        state.marks_mut().session_joined(&client_id, None);
                    }
                }
            }
            self.accept(op);
        }
        if let Some(state) = self.state_mut() {
            state.marks_mut().read_finished(&client_id);
        }
        self.pump(ctx);
    }

    /// Classifies an op whose client's mark is loaded and queues it.
    fn accept(&mut self, op: QueuedOp) {
        let QueuedOp {
            sender,
            update,
            skip_if_redundant,
        } = op;
        let Phase::Ready(state) = &mut self.phase else {
            let refusal = Refusal::unavailable("the document is not accepting ops right now");
            return self.refuse_ops(vec![sender], &refusal, false);
        };
        if skip_if_redundant && state.is_redundant(update.bytes()) {
            log::debug!(
                "document {}: update {} of {} adds nothing; dropped",
                self.id,
                sender.client_op_id,
                sender.client_id
            );
            let nothing_new = Committed {
                server_seq: None,
                duplicate: true,
            };
            return answer(sender.reply, Ok(nothing_new));
        }
        if state
            .marks()
            .owned_by_other(&sender.client_id, sender.subject.as_deref())
        {
            // Another subject's client id: refused (nothing logged), and the
            // session closed, like any refusal that later ops must not pass.
            let refusal = Refusal::forbidden(format!(
                "client_id {:?} belongs to another subject on this document",
                sender.client_id
            ));
            return self.refuse_ops(vec![sender], &refusal, true);
        }
        match classify(state, &sender) {
            OpDisposition::Fresh => {
                let fits = state.size().admits(
                    update.bytes().len(),
                    self.pipeline.uncommitted_bytes(),
                    self.limits.max_document_bytes,
                    self.limits.max_pending_update_bytes,
                );
                if let Err(too_big) = fits {
                    // Refused and the session closed (4413), like any
                    // refusal that later ops of the session must not pass.
                    log::warn!(
                        "document {}: op {} of {} refused: {too_big}",
                        self.id,
                        sender.client_op_id,
                        sender.client_id
                    );
                    self.metrics.op_refused_document_too_large();
                    let refusal = Refusal::document_too_large(too_big.to_string());
                    return self.refuse_ops(vec![sender], &refusal, true);
                }
                let marks = state.marks_mut();
                marks.reserve(&sender.client_id, sender.client_op_id);
                marks.claim(&sender.client_id, sender.subject.as_ref());
                self.pipeline.push(PipelineItem::Op {
                    sender,
                    update: update.into_bytes(),
                });
            }
            OpDisposition::Duplicate { server_seq } => {
                answer_duplicate(&mut self.subscribers, sender, server_seq)
            }
            OpDisposition::DuplicateInFlight => {
                self.pipeline.push(PipelineItem::Duplicate { sender })
            }
        }
    }

    /// Refuses ops with `refusal`: their senders are answered, and each
    /// session among them is told (in one go per session); with `close`,
    /// those sessions are closed too (see `Subscribers::refuse`).
    pub(super) fn refuse_ops(&mut self, senders: Vec<Sender>, refusal: &Refusal, close: bool) {
        let mut by_session: Vec<(u64, Vec<u64>)> = Vec::new();
        let counted = counted_as(refusal);
        for sender in senders {
            if let Some(kind) = counted {
                self.metrics.refused(kind);
            }
            if let Some(session_id) = sender.session {
                match by_session.iter_mut().find(|(s, _)| *s == session_id) {
                    Some((_, ids)) => ids.push(sender.client_op_id),
                    None => by_session.push((session_id, vec![sender.client_op_id])),
                }
            }
            answer(sender.reply, Err(refusal.clone()));
        }
        for (session_id, ids) in by_session {
            self.subscribers.refuse(session_id, ids, refusal, close);
        }
    }
}

/// How `refusal` counts in `collab_refusals_total` (`None`: not counted;
/// a request that is wrong in itself is no refusal of the engine's).
pub fn counted_as(refusal: &Refusal) -> Option<RefusalKind> {
    match refusal.reason {
        RefusalReason::Unavailable | RefusalReason::ShuttingDown => Some(RefusalKind::Unavailable),
        RefusalReason::Forbidden => Some(RefusalKind::Forbidden),
        RefusalReason::DocumentTooLarge => Some(RefusalKind::TooLarge),
        RefusalReason::NotLoaded | RefusalReason::Invalid => None,
    }
}

/// Answers a resend of an op that is in the log (`server_seq`: its seq,
/// when still known): a duplicate ack to its session, if any, and its reply.
pub(super) fn answer_duplicate(
    subscribers: &mut Subscribers,
    sender: Sender,
    server_seq: Option<u64>,
) {
    if let Some(session_id) = sender.session {
        let ack = DocumentEvent::DuplicateAck {
            client_op_id: sender.client_op_id,
            server_seq,
        };
        subscribers.deliver(session_id, ack);
    }
    let duplicate = Committed {
        server_seq,
        duplicate: true,
    };
    answer(sender.reply, Ok(duplicate));
}

fn classify(state: &DocumentState, sender: &Sender) -> OpDisposition {
    state.classify(&sender.client_id, sender.client_op_id)
}
