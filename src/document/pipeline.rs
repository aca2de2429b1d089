//! The group-commit pipeline of one document, free of actix and I/O:
//! accepted ops wait in `pending`; when no transaction is in flight,
//! everything pending (up to [`MAX_BATCH_OPS`]) becomes the next one, and
//! its seqs are assigned right then, once:
//!
//! ```text
//! accept ─► pending ──(no commit in flight)──► in_flight ──commit ok──► apply, ack, broadcast
//!              ▲                                   │
//!              └──── ops arriving meanwhile ◄──────┘ commit error ─► every op refused
//! ```
//!
//! Invariant: at most one transaction is in flight, and its ops hold the
//! seqs `head + 1 ..` in arrival order, so seqs are contiguous and in
//! commit order.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::messages::Committed;
use crate::store::NewSnapshot;
use crate::vocabulary::{CommittedOp, Refusal, SessionId};

/// Most ops in one commit transaction.
pub const MAX_BATCH_OPS: usize = 2048;
/// Most ops waiting for a transaction; beyond it new ops are refused so a
/// document that cannot commit fast enough (slow or failing storage) does
/// not grow without bound.
pub const MAX_PENDING_OPS: usize = 100_000;

/// Where the answer to a submitted op goes (dropped when nobody waits).
pub(super) type Reply = oneshot::Sender<Result<Committed, Refusal>>;

/// Answers `reply`, if anyone still waits for it.
pub(super) fn answer(reply: Option<Reply>, result: Result<Committed, Refusal>) {
    if let Some(reply) = reply {
        let _ = reply.send(result);
    }
}

/// Who sent an op in the pipeline, and where its answer goes.
#[derive(Debug)]
pub(super) struct Sender {
    /// The session that sent it (it gets `ack` or refusal events too).
    pub session: Option<SessionId>,
    /// Who wrote it (access control on); stored with the op.
    pub subject: Option<Arc<str>>,
    pub client_id: Arc<str>,
    pub client_op_id: u64,
    pub reply: Option<Reply>,
}

/// An entry of the pipeline, in arrival order.
#[derive(Debug)]
pub(super) enum PipelineItem {
    /// A new op with its update.
    Op { sender: Sender, update: Bytes },
    /// A resend of an op that is itself still in the pipeline: answered
    /// after that op committed.
    Duplicate { sender: Sender },
}

/// The transaction in flight.
#[derive(Debug)]
pub(super) struct Batch {
    /// Its ops, seqs assigned; shared with the store's commit and, once
    /// committed, with every subscriber.
    pub ops: Arc<[Arc<CommittedOp>]>,
    /// Who to answer for each op of `ops`, in the same order.
    pub senders: Vec<Sender>,
    /// Resends waiting for their original (in this batch or before).
    pub duplicates: Vec<Sender>,
    /// The seq of the snapshot written with the batch, if any.
    pub snapshot_seq: Option<u64>,
    /// That snapshot's size in bytes (0 without one).
    pub snapshot_bytes: usize,
}

/// What the pipeline wants written next.
pub(super) enum NextCommit {
    /// Nothing (or a transaction is already in flight).
    Idle,
    /// Only resends whose originals are committed: answer them at once
    /// ([`CommitPipeline::finished`]), nothing to write.
    AnswerOnly,
    /// Write `ops` and `snapshot` in one transaction; with `expected_head`,
    /// first check that the log still ends there. Then call
    /// [`CommitPipeline::finished`] or [`CommitPipeline::failed`].
    Write {
        ops: Arc<[Arc<CommittedOp>]>,
        snapshot: Option<NewSnapshot>,
        expected_head: Option<u64>,
    },
}

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct CommitPipeline {
    /// Accepted items waiting for the next transaction, in arrival order.
    pending: Vec<PipelineItem>,
    /// The transaction being committed; at most one.
    in_flight: Option<Batch>,
    /// Set after a failed commit, whose outcome is unknown: the next commit
    /// first checks that the log still ends at the head, and a mismatch
    /// (the "failed" commit did land) reloads the document.
    verify_head: bool,
    /// Write a snapshot with the next transaction even if not due (unload,
    /// shutdown).
    snapshot_wanted: bool,
    /// Bytes of the updates of accepted ops not committed yet (pending
    /// and in flight), for `limits.max_document_bytes`.
    uncommitted_bytes: u64,
    /// A due snapshot is being encoded (off the actor's thread) before the
    /// next transaction starts: the pipeline is not idle meanwhile.
    encoding_snapshot: bool,
}

impl CommitPipeline {
    /// Nothing pending, nothing in flight, no snapshot being encoded.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none() && self.pending.is_empty() && !self.encoding_snapshot
    }

    /// Records that a due snapshot is being encoded (`true`) or is done.
    pub fn set_encoding_snapshot(&mut self, encoding: bool) {
        self.encoding_snapshot = encoding;
    }

    /// Items waiting for a transaction.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn push(&mut self, item: PipelineItem) {
        if let PipelineItem::Op { update, .. } = &item {
            self.uncommitted_bytes += update.len() as u64;
        }
        self.pending.push(item);
    }

    /// Bytes of accepted updates not committed yet.
    pub fn uncommitted_bytes(&self) -> u64 {
        self.uncommitted_bytes
    }

    /// Whether the next [`CommitPipeline::start`] would write a snapshot
    /// (so its caller can encode it beforehand, off the actor's thread).
    pub fn snapshot_due(&self, head: u64, snapshot_seq: u64, snapshot_every: u64) -> bool {
        let lag = head - snapshot_seq;
        self.in_flight.is_none() && lag > 0 && (self.snapshot_wanted || lag >= snapshot_every)
    }

    /// Asks for a snapshot with the next transaction, due or not.
    pub fn want_snapshot(&mut self) {
        self.snapshot_wanted = true;
    }

    /// Starts the next transaction, if none is in flight and there is
    /// something to write: seqs `head + 1 ..` go to the pending ops in
    /// arrival order; a snapshot (made by `encode`) rides along when
    /// `snapshot_every` ops passed since `snapshot_seq` or one is wanted.
    pub fn start(
        &mut self,
        head: u64,
        snapshot_seq: u64,
        snapshot_every: u64,
        encode: impl FnOnce() -> Vec<u8>,
    ) -> NextCommit {
        if self.in_flight.is_some() {
            return NextCommit::Idle;
        }
        let lag = head - snapshot_seq;
        let snapshot =
            (lag > 0 && (self.snapshot_wanted || lag >= snapshot_every)).then(|| NewSnapshot {
                server_seq: head,
                state: encode(),
                prune_below: snapshot_seq,
            });
        if self.pending.is_empty() && snapshot.is_none() {
            return NextCommit::Idle;
        }
        let take = self.pending.len().min(MAX_BATCH_OPS);
        let mut ops = Vec::with_capacity(take);
        let mut senders = Vec::with_capacity(take);
        let mut duplicates = Vec::new();
        for item in self.pending.drain(..take) {
            match item {
                PipelineItem::Op { sender, update } => {
                    let server_seq = head + 1 + ops.len() as u64;
                    ops.push(Arc::new(
                        CommittedOp::new(
                            server_seq,
                            sender.client_id.clone(),
                            sender.client_op_id,
                            update,
                            sender.session,
                        )
                        .with_subject(sender.subject.clone()),
                    ));
                    senders.push(sender);
                }
                PipelineItem::Duplicate { sender } => duplicates.push(sender),
            }
        }
        let ops: Arc<[Arc<CommittedOp>]> = ops.into();
        let write = !ops.is_empty() || snapshot.is_some();
        self.in_flight = Some(Batch {
            ops: ops.clone(),
            senders,
            duplicates,
            snapshot_seq: snapshot.as_ref().map(|s| s.server_seq),
            snapshot_bytes: snapshot.as_ref().map_or(0, |s| s.state.len()),
        });
        if !write {
            return NextCommit::AnswerOnly;
        }
        NextCommit::Write {
            ops,
            snapshot,
            expected_head: self.verify_head.then_some(head),
        }
    }

    /// The transaction in flight committed: its batch, to apply and answer.
    /// A wanted snapshot is then written; during a `final_flush`
    /// (shutdown) the wish stays, so the ops committed after that snapshot
    /// get one too.
    pub fn finished(&mut self, final_flush: bool) -> Option<Batch> {
        let batch = self.in_flight.take()?;
        let committed: u64 = batch.ops.iter().map(|op| op.update.len() as u64).sum();
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(committed);
        self.verify_head = false;
        if batch.snapshot_seq.is_some() && !final_flush {
            self.snapshot_wanted = false;
        }
        Some(batch)
    }

    /// The transaction in flight failed: everything in flight and pending
    /// is returned, to be refused; the next commit verifies the head.
    pub fn failed(&mut self) -> Vec<Sender> {
        self.verify_head = true;
        self.drain()
    }

    /// Drops everything (the document restarts): returned to be refused.
    pub fn clear(&mut self) -> Vec<Sender> {
        self.verify_head = false;
        self.snapshot_wanted = false;
        // A restart drops the encoding in progress with the actor's futures.
        self.encoding_snapshot = false;
        self.drain()
    }

    fn drain(&mut self) -> Vec<Sender> {
        self.uncommitted_bytes = 0;
        let mut senders = Vec::new();
        if let Some(batch) = self.in_flight.take() {
            senders.extend(batch.senders);
            senders.extend(batch.duplicates);
        }
        senders.extend(self.pending.drain(..).map(|item| match item {
            PipelineItem::Op { sender, .. } | PipelineItem::Duplicate { sender } => sender,
        }));
        senders
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client_op_id: u64) -> PipelineItem {
        PipelineItem::Op {
            sender: sender(client_op_id),
            update: Bytes::from_static(b"u"),
        }
    }

    fn sender(client_op_id: u64) -> Sender {
        Sender {
            session: Some(7),
            subject: None,
            client_id: Arc::from("c"),
            client_op_id,
            reply: None,
        }
    }

    fn written(next: NextCommit) -> (Vec<u64>, Option<u64>, Option<u64>) {
        match next {
            NextCommit::Write {
                ops,
                snapshot,
                expected_head,
            } => (
                ops.iter().map(|op| op.server_seq).collect(),
                snapshot.map(|s| s.server_seq),
                expected_head,
            ),
            NextCommit::Idle => panic!("nothing to write"),
            NextCommit::AnswerOnly => panic!("only answers"),
        }
    }

    #[test]
    fn seqs_are_assigned_once_in_arrival_order_one_batch_at_a_time() {
        let mut pipeline = CommitPipeline::default();
        pipeline.push(op(1));
        pipeline.push(PipelineItem::Duplicate { sender: sender(1) });
        pipeline.push(op(2));
        assert_eq!(
            written(pipeline.start(10, 10, 100, Vec::new)),
            (vec![11, 12], None, None)
        );
        pipeline.push(op(3));
        assert!(matches!(
            pipeline.start(10, 10, 100, Vec::new),
            NextCommit::Idle
        ));
        let batch = pipeline.finished(false).expect("in flight");
        assert_eq!(batch.senders.len(), 2);
        assert_eq!(batch.duplicates.len(), 1);
        assert_eq!(batch.ops[1].origin, Some(7));
        assert_eq!(written(pipeline.start(12, 10, 100, Vec::new)).0, vec![13]);
    }

    #[test]
    fn snapshots_ride_along_when_due_or_wanted() {
        let mut pipeline = CommitPipeline::default();
        assert!(matches!(
            pipeline.start(5, 0, 5, Vec::new),
            NextCommit::Write { .. }
        ));
        pipeline.finished(false);
        pipeline.want_snapshot();
        assert_eq!(written(pipeline.start(6, 5, 100, Vec::new)).1, Some(6));
        pipeline.finished(false);
        assert!(matches!(
            pipeline.start(6, 6, 100, Vec::new),
            NextCommit::Idle
        ));
        pipeline.push(PipelineItem::Duplicate { sender: sender(1) });
        assert!(matches!(
            pipeline.start(6, 6, 100, Vec::new),
            NextCommit::AnswerOnly
        ));
    }

    #[test]
    fn a_failed_commit_refuses_everything_and_the_next_one_verifies_the_head() {
        let mut pipeline = CommitPipeline::default();
        pipeline.push(op(1));
        written(pipeline.start(0, 0, 100, Vec::new));
        pipeline.push(op(2));
        let refused: Vec<u64> = pipeline.failed().iter().map(|s| s.client_op_id).collect();
        assert_eq!(refused, vec![1, 2]);
        assert!(pipeline.is_idle());
        pipeline.push(op(3));
        assert_eq!(
            written(pipeline.start(0, 0, 100, Vec::new)),
            (vec![1], None, Some(0))
        );
        pipeline.finished(false);
        pipeline.push(op(4));
        assert_eq!(written(pipeline.start(1, 0, 100, Vec::new)).2, None);
    }
}
