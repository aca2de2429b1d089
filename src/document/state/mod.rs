//! The in-memory state of one loaded document, free of actix and I/O: the
//! yrs `Doc`, the head, the replay tail and the clients' marks.
//!
//! Invariant: `doc` holds exactly the latest snapshot plus every committed
//! op up to `head`, applied in `server_seq` order. Nothing uncommitted is ever
//! applied here, so a snapshot encoded from `doc` is always the state at
//! `head` and can be sent to a joining client as is.

use std::sync::Arc;

use bytes::Bytes;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, IdSet, ReadTxn, StateVector, Transact, Update};

use super::client_marks::{ClientMarks, OpDisposition};
use super::replay_tail::ReplayTail;
use crate::crdt::{self, BadStateVector};
use crate::vocabulary::CommittedOp;
use size::DocumentSize;

/// Logged ops applied per yrs transaction when a document is rebuilt. yrs
/// integrates a long run of updates in one transaction several times more
/// slowly than in transactions of about a thousand (100,000 ops of the
/// automerge-paper trace: ~320 ms in one transaction, ~85 ms in chunks of
/// 1,024), and a chunk bounds what a load holds in memory.
pub const REPLAY_CHUNK_OPS: usize = 1024;

/// How to bring a joining client up to date.
#[derive(Debug)]
pub enum RecoveryPlan {
    /// Every missing op is in memory (possibly none).
    Replay(Vec<Arc<CommittedOp>>),
    /// Missing ops `(after, upto]` must be read from the op log.
    ReplayFromLog { after: u64, upto: u64 },
    /// Send the full state at `head`.
    Snapshot,
}

/// Why a stored document could not be turned into a state.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("snapshot at server_seq {server_seq} cannot be decoded: {reason}")]
    BadSnapshot { server_seq: u64, reason: String },
    #[error("op log has a gap: expected server_seq {expected}, found {found}")]
    Gap { expected: u64, found: u64 },
}

/// The loaded document. See the module docs for its invariant.
pub struct DocumentState {
    doc: Doc,
    /// The incarnation of the document (from the `documents` row).
    epoch: Arc<str>,
    /// Whether the `documents` row exists. False for a document nobody
    /// wrote to yet: its epoch lives in memory until the first commit
    /// writes the row, so opening an id leaves nothing behind.
    row_stored: bool,
    /// Highest committed `server_seq`; 0 for an empty document.
    head: u64,
    /// `server_seq` of the newest snapshot in storage (0: none).
    snapshot_seq: u64,
    /// The newest committed ops, for replay without I/O.
    tail: ReplayTail,
    /// Duplicate detection, per client that needed it during this load.
    marks: ClientMarks,
    /// The full state at `.0` (v1 update, and its base64): reused by every
    /// reader until the next commit changes `head`.
    state_cache: Option<(u64, Bytes, Option<Arc<str>>)>,
    /// The delete set at `.0`, for [`DocumentState::is_redundant`].
    deleted_cache: Option<(u64, IdSet)>,
    /// The state vector at `.0`, for [`DocumentState::is_redundant`]: one
    /// per head, not one per op (it costs a pass over every client).
    known_cache: Option<(u64, StateVector)>,
    /// How big the state is (estimated) and what yrs holds pending.
    size: DocumentSize,
}

impl DocumentState {
    /// Rebuilds a document from its snapshot (if any) and every logged op
    /// after it. `ops` must be in `server_seq` order; a gap is refused.
    /// Loading from storage uses the same steps without holding the whole
    /// log in memory: [`DocumentState::from_snapshot`], then
    /// [`DocumentState::replay`] chunk by chunk, then
    /// [`DocumentState::replay_tail`] for the newest ops.
    pub fn restore(
        epoch: &str,
        snapshot: Option<(u64, &[u8])>,
        mut ops: Vec<CommittedOp>,
        max_replay_ops: u64,
    ) -> Result<DocumentState, RestoreError> {
        let mut state = DocumentState::from_snapshot(epoch, snapshot, max_replay_ops)?;
        let tail = ops.split_off(ops.len().saturating_sub(state.tail_capacity()));
        for chunk in ops.chunks(REPLAY_CHUNK_OPS) {
            state.replay(chunk.iter().map(|op| (op.server_seq, &op.update[..])))?;
        }
        state.replay_tail(tail)?;
        Ok(state)
    }

    /// The state at `snapshot` (its `server_seq` and full state), or an
    /// empty document: the first step of a rebuild.
    pub fn from_snapshot(
        epoch: &str,
        snapshot: Option<(u64, &[u8])>,
        max_replay_ops: u64,
    ) -> Result<DocumentState, RestoreError> {
        let doc = Doc::new();
        let mut size = DocumentSize::default();
        let snapshot_seq = match snapshot {
            Some((server_seq, state)) => {
                let bad = |reason: String| RestoreError::BadSnapshot { server_seq, reason };
                let update = Update::decode_v1(state).map_err(|e| bad(e.to_string()))?;
                doc.transact_mut()
                    .apply_update(update)
                    .map_err(|e| bad(e.to_string()))?;
                size.snapshot(state.len());
                server_seq
            }
            None => 0,
        };
        Ok(DocumentState {
            doc,
            epoch: Arc::from(epoch),
            row_stored: true,
            head: snapshot_seq,
            snapshot_seq,
            tail: ReplayTail::new(max_replay_ops),
            marks: ClientMarks::default(),
            state_cache: None,
            deleted_cache: None,
            known_cache: None,
            size,
        })
    }

    /// How many of the newest logged ops a rebuild hands to
    /// [`DocumentState::replay_tail`] (the rest go through `replay`).
    pub fn tail_capacity(&self) -> usize {
        self.tail.capacity()
    }

    /// Applies logged ops `(server_seq, update)` that continue the log right
    /// after `head`, in one yrs transaction. Callers pass at most about
    /// [`REPLAY_CHUNK_OPS`] at a time. A gap is refused.
    pub fn replay<'a>(
        &mut self,
        ops: impl IntoIterator<Item = (u64, &'a [u8])>,
    ) -> Result<(), RestoreError> {
        let mut txn = self.doc.transact_mut();
        for (server_seq, update) in ops {
            let expected = self.head + 1;
            if server_seq != expected {
                return Err(RestoreError::Gap {
                    expected,
                    found: server_seq,
                });
            }
            apply_logged(&mut txn, server_seq, update);
            self.size.applied(update.len());
            self.head = server_seq;
        }
        self.size.measure_pending(&txn);
        Ok(())
    }

    /// Like [`DocumentState::replay`], and keeps the ops in the in-memory
    /// replay tail: the last step of a rebuild, with the newest ops.
    pub fn replay_tail(&mut self, ops: Vec<CommittedOp>) -> Result<(), RestoreError> {
        for chunk in ops.chunks(REPLAY_CHUNK_OPS) {
            self.replay(chunk.iter().map(|op| (op.server_seq, &op.update[..])))?;
        }
        for op in ops {
            self.tail.push(Arc::new(op));
        }
        Ok(())
    }

    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    /// The epoch to write the document's row with at the next commit, if
    /// the row does not exist yet.
    pub fn row_to_create(&self) -> Option<Arc<str>> {
        (!self.row_stored).then(|| self.epoch.clone())
    }

    /// Records whether the document's row exists (see `row_stored`).
    pub fn set_row_stored(&mut self, stored: bool) {
        self.row_stored = stored;
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn snapshot_seq(&self) -> u64 {
        self.snapshot_seq
    }

    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// The clients' marks (duplicate detection).
    pub fn marks(&self) -> &ClientMarks {
        &self.marks
    }

    pub fn marks_mut(&mut self) -> &mut ClientMarks {
        &mut self.marks
    }

    /// The replay tail (newest committed ops).
    pub fn tail(&self) -> &ReplayTail {
        &self.tail
    }

    /// Records that a snapshot at `server_seq`, of `bytes`, is now in
    /// storage (the ops committed with it are applied after).
    pub fn snapshot_stored(&mut self, server_seq: u64, bytes: usize) {
        self.snapshot_seq = self.snapshot_seq.max(server_seq);
        self.size.snapshot(bytes);
    }

    /// How big the document is.
    pub fn size(&self) -> &DocumentSize {
        &self.size
    }

    /// Applies committed ops (which must continue at `head + 1`) in one yrs
    /// transaction, appends them to the replay tail, advances `head` and
    /// the marks of their clients.
    pub fn apply_committed(&mut self, ops: &[Arc<CommittedOp>]) {
        if ops.is_empty() {
            return;
        }
        {
            let mut txn = self.doc.transact_mut();
            for op in ops {
                debug_assert_eq!(op.server_seq, self.head + 1);
                self.head = op.server_seq;
                apply_logged(&mut txn, op.server_seq, &op.update);
                self.size.applied(op.update.len());
            }
            self.size.measure_pending(&txn);
        }
        for op in ops {
            self.marks
                .committed(&op.client_id, op.client_op_id, op.server_seq);
            self.tail.push(op.clone());
        }
        for op in ops {
            self.marks.forget_if_unused(&op.client_id);
        }
        self.state_cache = None;
    }

    /// Decides what to do with op `client_op_id` of `client_id`.
    pub fn classify(&self, client_id: &str, client_op_id: u64) -> OpDisposition {
        self.marks.classify(client_id, client_op_id, || {
            self.tail.seq_of(client_id, client_op_id)
        })
    }

    /// The seq a committed op got, if it is still findable in memory.
    pub fn committed_seq_of(&self, client_id: &str, client_op_id: u64) -> Option<u64> {
        self.marks
            .committed_seq(client_id, client_op_id)
            .or_else(|| self.tail.seq_of(client_id, client_op_id))
    }

    /// Chooses replay or snapshot for a client that last saw
    /// `last_seen_server_seq` of incarnation `epoch`.
    pub fn plan_recovery(
        &self,
        last_seen: Option<u64>,
        epoch: Option<&str>,
        max_replay_ops: u64,
    ) -> RecoveryPlan {
        let Some(last_seen) = last_seen else {
            return RecoveryPlan::Snapshot;
        };
        if epoch.is_some_and(|e| e != &*self.epoch)
            || last_seen > self.head
            || self.head - last_seen > max_replay_ops
        {
            return RecoveryPlan::Snapshot;
        }
        match self.tail.after(last_seen, self.head) {
            Some(ops) => RecoveryPlan::Replay(ops),
            None => RecoveryPlan::ReplayFromLog {
                after: last_seen,
                upto: self.head,
            },
        }
    }

    /// The full state at `head` as one v1 update, encoded once per `head`.
    pub fn full_state(&mut self) -> Bytes {
        match &self.state_cache {
            Some((seq, state, _)) if *seq == self.head => state.clone(),
            _ => {
                let state = Bytes::from(crdt::encode_full_state(&self.doc));
                self.state_cache = Some((self.head, state.clone(), None));
                state
            }
        }
    }

    /// Base64 of [`DocumentState::full_state`], encoded once per `head`.
    pub fn full_state_base64(&mut self) -> Arc<str> {
        let state = self.full_state();
        if let Some((_, _, Some(base64))) = &self.state_cache {
            return base64.clone();
        }
        let base64: Arc<str> = Arc::from(crdt::to_base64(&state));
        if let Some((_, _, cached)) = &mut self.state_cache {
            *cached = Some(base64.clone());
        }
        base64
    }

    /// The state vector (v1) of the committed state.
    pub fn state_vector_v1(&self) -> Bytes {
        Bytes::from(self.doc.transact().state_vector().encode_v1())
    }

    /// What a peer with state vector `state_vector` (v1) lacks, as one v1
    /// update (pending structs and the whole delete set included). A peer
    /// with nothing gets the shared [`DocumentState::full_state`]: every new
    /// joiner of a head shares one encoding.
    pub fn diff_since(&mut self, state_vector: &[u8]) -> Result<Bytes, BadStateVector> {
        let sv = crdt::decode_state_vector(state_vector)?;
        if sv.is_empty() {
            return Ok(self.full_state());
        }
        Ok(Bytes::from(
            self.doc.transact().encode_state_as_update_v1(&sv),
        ))
    }

    /// Whether `update` (v1) adds nothing to the committed state: every
    /// block it carries is already below the document's state vector, and
    /// every deletion is already applied. (An update whose blocks lie
    /// beyond the state vector, e.g. one building on a previous update not
    /// yet committed, is not redundant.)
    pub fn is_redundant(&mut self, update: &[u8]) -> bool {
        let Ok(update) = Update::decode_v1(update) else {
            return false;
        };
        let txn = self.doc.transact();
        let known = match &self.known_cache {
            Some((seq, known)) if *seq == self.head => known,
            _ => &self.known_cache.insert((self.head, txn.state_vector())).1,
        };
        let beyond_known = update
            .insertions(true)
            .iter()
            .any(|(client, ranges)| ranges.iter().any(|range| range.end > known.get(client)));
        if beyond_known {
            return false;
        }
        if update.delete_set().is_empty() {
            return true;
        }
        let deleted = match &self.deleted_cache {
            Some((seq, deleted)) if *seq == self.head => deleted,
            _ => {
                let deleted = txn.snapshot().delete_set;
                &self.deleted_cache.insert((self.head, deleted)).1
            }
        };
        update.delete_set().diff(deleted).is_empty()
    }
}

/// Applies one logged update. A failure is logged, not returned: the op
/// is in the log, so replaying the log repeats exactly this outcome and the
/// state stays reproducible.
fn apply_logged(txn: &mut yrs::TransactionMut, server_seq: u64, update: &[u8]) {
    match Update::decode_v1(update) {
        Ok(update) => {
            if let Err(e) = txn.apply_update(update) {
                log::warn!("op {server_seq} was logged but yrs refused part of it: {e}");
            }
        }
        // Validated when accepted, so only stored bytes gone bad get here.
        Err(e) => log::error!("op {server_seq} cannot be decoded ({e}); its content is skipped"),
    }
}

pub mod size;
#[cfg(test)]
mod tests;
