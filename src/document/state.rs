//! The in-memory state of one loaded document, free of actix and I/O.
//!
//! Invariant: `doc` holds exactly the latest snapshot plus every committed
//! op up to `head`, applied in `server_seq` order. Nothing uncommitted is ever
//! applied here, so a snapshot encoded from `doc` is always the state at
//! `head` and can be sent to a joining client as is.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use bytestring::ByteString;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, IdSet, ReadTxn, StateVector, Transact, Update};

use crate::crdt;
use crate::protocol::ServerMessage;

/// Identifies one WebSocket session within an engine.
pub type SessionId = u64;

/// Most ops kept in memory for replay to reconnecting clients; older ones
/// are read back from the op log.
pub const TAIL_MAX_OPS: usize = 10_000;
/// Most update bytes kept in memory for replay.
pub const TAIL_MAX_BYTES: usize = 8 << 20;
/// Logged ops applied per yrs transaction when a document is rebuilt. yrs
/// integrates a long run of updates in one transaction several times more
/// slowly than in transactions of about a thousand (100,000 ops of the
/// automerge-paper trace: ~320 ms in one transaction, ~85 ms in chunks of
/// 1,024), and a chunk bounds what a load holds in memory.
pub const REPLAY_CHUNK_OPS: usize = 1024;

/// An operation that is in the op log.
#[derive(Debug)]
pub struct CommittedOp {
    pub server_seq: u64,
    pub client_id: Arc<str>,
    pub client_op_id: u64,
    /// The Yjs v1 update exactly as received.
    pub update: Bytes,
    /// The session that sent it, while that is known (live ops only): it
    /// gets an `ack` where everyone else gets the `op`.
    pub origin: Option<SessionId>,
    /// The native `op` frame, formatted once by whichever session needs it
    /// first and shared by all the others.
    native_frame: OnceLock<ByteString>,
    /// The y-websocket sync `Update` frame, likewise.
    yjs_frame: OnceLock<Bytes>,
}

impl CommittedOp {
    pub fn new(
        server_seq: u64,
        client_id: Arc<str>,
        client_op_id: u64,
        update: Bytes,
        origin: Option<SessionId>,
    ) -> Self {
        CommittedOp {
            server_seq,
            client_id,
            client_op_id,
            update,
            origin,
            native_frame: OnceLock::new(),
            yjs_frame: OnceLock::new(),
        }
    }

    /// The y-websocket sync `Update` message for this op.
    pub fn yjs_frame(&self) -> Bytes {
        self.yjs_frame
            .get_or_init(|| crate::sessions::yjs::update_frame(&self.update))
            .clone()
    }

    /// `{"type":"op",...}` for this op.
    pub fn native_frame(&self) -> ByteString {
        self.native_frame
            .get_or_init(|| {
                let update = crdt::to_base64(&self.update);
                ByteString::from(
                    ServerMessage::Op {
                        server_seq: self.server_seq,
                        client_id: &self.client_id,
                        client_op_id: self.client_op_id,
                        update: &update,
                    }
                    .to_json(),
                )
            })
            .clone()
    }
}

/// What the server remembers about one client of a loaded document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMark {
    /// Highest `client_op_id` of this client in the op log.
    pub committed: Option<u64>,
    /// The `server_seq` of that op, when known.
    pub committed_seq: Option<u64>,
    /// Highest `client_op_id` accepted into the commit pipeline but not yet
    /// committed. A resent op at or below it is a duplicate too.
    pub reserved: Option<u64>,
    /// Sessions of this client currently joined; the mark is forgotten when
    /// none is left and nothing is in flight.
    pub sessions: u32,
}

impl ClientMark {
    fn highest(&self) -> Option<u64> {
        self.committed.max(self.reserved)
    }
}

/// How an incoming op relates to what this client already sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpDisposition {
    /// A new op: commit it.
    Fresh,
    /// Already in the log: answer a duplicate ack now.
    Duplicate { server_seq: Option<u64> },
    /// Same number as an op still in the commit pipeline: answer the
    /// duplicate ack once that op has committed.
    DuplicateInFlight,
}

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

/// An op as read back from the log.
#[derive(Debug, Clone)]
pub struct LoggedOp {
    pub server_seq: u64,
    pub client_id: String,
    pub client_op_id: u64,
    pub update: Vec<u8>,
}

/// The loaded document. See the module docs for its invariant.
pub struct DocumentState {
    doc: Doc,
    /// The incarnation of the document (from the `documents` row).
    epoch: Arc<str>,
    /// Highest committed `server_seq`; 0 for an empty document.
    head: u64,
    /// `server_seq` of the newest snapshot in storage (0: none).
    snapshot_seq: u64,
    /// The newest committed ops, oldest first, for replay without I/O.
    tail: VecDeque<Arc<CommittedOp>>,
    tail_bytes: usize,
    tail_max_ops: usize,
    /// Duplicate detection, per client that joined during this load.
    clients: HashMap<Arc<str>, ClientMark>,
    /// Base64 of the full state at `.0`: reused by every joiner until the
    /// next commit changes `head`.
    state_cache: Option<(u64, Arc<str>)>,
    /// The delete set at `.0`, for [`DocumentState::is_redundant`].
    deleted_cache: Option<(u64, IdSet)>,
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
        mut ops: Vec<LoggedOp>,
        max_replay_ops: u64,
    ) -> Result<DocumentState, RestoreError> {
        let mut state = DocumentState::from_snapshot(epoch, snapshot, max_replay_ops)?;
        let tail = ops.split_off(ops.len().saturating_sub(state.tail_capacity()));
        for chunk in ops.chunks(REPLAY_CHUNK_OPS) {
            state.replay(chunk.iter().map(|op| (op.server_seq, op.update.as_slice())))?;
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
        let snapshot_seq = match snapshot {
            Some((server_seq, state)) => {
                let update = Update::decode_v1(state).map_err(|e| RestoreError::BadSnapshot {
                    server_seq,
                    reason: e.to_string(),
                })?;
                doc.transact_mut()
                    .apply_update(update)
                    .map_err(|e| RestoreError::BadSnapshot {
                        server_seq,
                        reason: e.to_string(),
                    })?;
                server_seq
            }
            None => 0,
        };
        Ok(DocumentState {
            doc,
            epoch: Arc::from(epoch),
            head: snapshot_seq,
            snapshot_seq,
            tail: VecDeque::new(),
            tail_bytes: 0,
            tail_max_ops: usize::try_from(max_replay_ops)
                .unwrap_or(usize::MAX)
                .min(TAIL_MAX_OPS),
            clients: HashMap::new(),
            state_cache: None,
            deleted_cache: None,
        })
    }

    /// How many of the newest logged ops a rebuild hands to
    /// [`DocumentState::replay_tail`] (the rest go through `replay`).
    pub fn tail_capacity(&self) -> usize {
        self.tail_max_ops
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
            self.head = server_seq;
        }
        Ok(())
    }

    /// Like [`DocumentState::replay`], and keeps the ops in the in-memory
    /// replay tail: the last step of a rebuild, with the newest ops.
    pub fn replay_tail(&mut self, ops: Vec<LoggedOp>) -> Result<(), RestoreError> {
        for chunk in ops.chunks(REPLAY_CHUNK_OPS) {
            self.replay(chunk.iter().map(|op| (op.server_seq, op.update.as_slice())))?;
        }
        for logged in ops {
            self.push_tail(Arc::new(CommittedOp::new(
                logged.server_seq,
                Arc::from(logged.client_id.as_str()),
                logged.client_op_id,
                Bytes::from(logged.update),
                None,
            )));
        }
        Ok(())
    }

    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
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

    /// Records that a snapshot at `server_seq` is now in storage.
    pub fn snapshot_stored(&mut self, server_seq: u64) {
        self.snapshot_seq = self.snapshot_seq.max(server_seq);
    }

    /// Applies committed ops (which must continue at `head + 1`) in one yrs
    /// transaction, appends them to the replay tail and advances `head`.
    pub fn apply_committed(&mut self, ops: Vec<Arc<CommittedOp>>) {
        if ops.is_empty() {
            return;
        }
        {
            let mut txn = self.doc.transact_mut();
            for op in &ops {
                debug_assert_eq!(op.server_seq, self.head + 1);
                self.head = op.server_seq;
                apply_logged(&mut txn, op.server_seq, &op.update);
            }
        }
        for op in ops {
            if let Some(mark) = self.clients.get_mut(&op.client_id) {
                if mark.committed.is_none_or(|c| c < op.client_op_id) {
                    mark.committed = Some(op.client_op_id);
                    mark.committed_seq = Some(op.server_seq);
                }
                if mark.reserved.is_some_and(|r| r <= op.client_op_id) {
                    mark.reserved = None;
                }
            }
            self.push_tail(op);
        }
        self.state_cache = None;
    }

    fn push_tail(&mut self, op: Arc<CommittedOp>) {
        self.tail_bytes += op.update.len();
        self.tail.push_back(op);
        while self.tail.len() > self.tail_max_ops || self.tail_bytes > TAIL_MAX_BYTES {
            match self.tail.pop_front() {
                Some(old) => self.tail_bytes -= old.update.len(),
                None => break,
            }
        }
    }

    /// Is a mark for `client_id` loaded? (Otherwise the join reads it from the log.)
    pub fn knows_client(&self, client_id: &str) -> bool {
        self.clients.contains_key(client_id)
    }

    /// Registers a joined session of `client_id`; `stored` is what the op
    /// log says about the client, used when no mark is loaded yet.
    pub fn client_joined(
        &mut self,
        client_id: &Arc<str>,
        stored: Option<(u64, u64)>,
    ) -> Option<u64> {
        let mark = self
            .clients
            .entry(client_id.clone())
            .or_insert_with(|| ClientMark {
                committed: stored.map(|(op, _)| op),
                committed_seq: stored.map(|(_, seq)| seq),
                ..ClientMark::default()
            });
        mark.sessions += 1;
        mark.committed
    }

    /// Highest `client_op_id` of `client_id` in the log, if its mark is loaded.
    pub fn last_client_op_id(&self, client_id: &str) -> Option<u64> {
        self.clients.get(client_id).and_then(|mark| mark.committed)
    }

    /// Unregisters a session of `client_id`; forgets the mark when nothing
    /// depends on it any more.
    pub fn client_left(&mut self, client_id: &str) {
        if let Some(mark) = self.clients.get_mut(client_id) {
            mark.sessions = mark.sessions.saturating_sub(1);
            if mark.sessions == 0 && mark.reserved.is_none() {
                self.clients.remove(client_id);
            }
        }
    }

    /// Decides what to do with op `client_op_id` of `client_id`.
    pub fn classify(&self, client_id: &str, client_op_id: u64) -> OpDisposition {
        let Some(mark) = self.clients.get(client_id) else {
            return OpDisposition::Fresh;
        };
        if mark.highest().is_none_or(|h| client_op_id > h) {
            return OpDisposition::Fresh;
        }
        if mark.committed.is_some_and(|c| client_op_id <= c) {
            OpDisposition::Duplicate {
                server_seq: self.committed_seq_of(client_id, client_op_id),
            }
        } else {
            OpDisposition::DuplicateInFlight
        }
    }

    /// Marks op `client_op_id` of `client_id` as in the commit pipeline.
    pub fn reserve(&mut self, client_id: &Arc<str>, client_op_id: u64) {
        let mark = self.clients.entry(client_id.clone()).or_default();
        mark.reserved = mark.reserved.max(Some(client_op_id));
    }

    /// Forgets every reservation: the pipeline was dropped (commit failed).
    pub fn clear_reservations(&mut self) {
        self.clients.retain(|_, mark| {
            mark.reserved = None;
            mark.sessions > 0
        });
    }

    /// The seq a committed op got, if it is still findable in memory.
    pub fn committed_seq_of(&self, client_id: &str, client_op_id: u64) -> Option<u64> {
        if let Some(mark) = self.clients.get(client_id)
            && mark.committed == Some(client_op_id)
            && mark.committed_seq.is_some()
        {
            return mark.committed_seq;
        }
        self.tail
            .iter()
            .rev()
            .find(|op| op.client_op_id == client_op_id && &*op.client_id == client_id)
            .map(|op| op.server_seq)
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
        if last_seen == self.head {
            return RecoveryPlan::Replay(Vec::new());
        }
        match self.tail.front() {
            Some(first) if first.server_seq <= last_seen + 1 => {
                let skip = (last_seen + 1 - first.server_seq) as usize;
                RecoveryPlan::Replay(self.tail.iter().skip(skip).cloned().collect())
            }
            _ => RecoveryPlan::ReplayFromLog {
                after: last_seen,
                upto: self.head,
            },
        }
    }

    /// Base64 of the full state at `head`, encoded once per `head`.
    pub fn full_state_base64(&mut self) -> Arc<str> {
        match &self.state_cache {
            Some((seq, state)) if *seq == self.head => state.clone(),
            _ => {
                let state: Arc<str> =
                    Arc::from(crdt::to_base64(&crdt::encode_full_state(&self.doc)));
                self.state_cache = Some((self.head, state.clone()));
                state
            }
        }
    }

    /// The state vector (v1) of the committed state.
    pub fn state_vector_v1(&self) -> Bytes {
        Bytes::from(self.doc.transact().state_vector().encode_v1())
    }

    /// What a peer with state vector `state_vector` (v1) lacks, as one v1
    /// update (pending structs and the whole delete set included).
    pub fn diff_since(&self, state_vector: &[u8]) -> Result<Bytes, String> {
        let sv = StateVector::decode_v1(state_vector)
            .map_err(|e| format!("state vector cannot be decoded: {e}"))?;
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
        let known = txn.state_vector();
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

    /// Number of clients with a loaded mark (for bounded-memory checks).
    pub fn client_marks(&self) -> usize {
        self.clients.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text};

    /// A writer that produces real, causally chained Yjs updates.
    struct Writer {
        doc: Doc,
    }

    impl Writer {
        fn new(client: u64) -> Self {
            Writer {
                doc: Doc::with_client_id(client),
            }
        }
        fn insert(&self, s: &str) -> Vec<u8> {
            let t = self.doc.get_or_insert_text("t");
            let mut txn = self.doc.transact_mut();
            let len = t.len(&txn);
            t.insert(&mut txn, len, s);
            txn.encode_update_v1()
        }
    }

    fn logged(seq: u64, op: u64, update: Vec<u8>) -> LoggedOp {
        LoggedOp {
            server_seq: seq,
            client_id: "c".into(),
            client_op_id: op,
            update,
        }
    }

    fn text(state: &DocumentState) -> String {
        state
            .doc()
            .get_or_insert_text("t")
            .get_string(&state.doc().transact())
    }

    fn commit(state: &mut DocumentState, client: &str, op: u64, raw: Vec<u8>) {
        let seq = state.head() + 1;
        state.apply_committed(vec![Arc::new(CommittedOp::new(
            seq,
            Arc::from(client),
            op,
            Bytes::from(raw),
            Some(1),
        ))]);
    }

    #[test]
    fn restores_snapshot_plus_log_in_order() {
        let w = Writer::new(1);
        let a = w.insert("a");
        let snapshot = crdt::encode_full_state(&w.doc);
        let b = w.insert("b");
        let c = w.insert("c");
        let state = DocumentState::restore(
            "e",
            Some((1, &snapshot)),
            vec![logged(2, 2, b), logged(3, 3, c)],
            100,
        )
        .expect("restores");
        drop(a);
        assert_eq!(state.head(), 3);
        assert_eq!(state.snapshot_seq(), 1);
        assert_eq!(text(&state), "abc");
    }

    #[test]
    fn refuses_a_gap_in_the_log() {
        let w = Writer::new(1);
        let a = w.insert("a");
        let b = w.insert("b");
        let err = DocumentState::restore("e", None, vec![logged(1, 1, a), logged(3, 2, b)], 100)
            .err()
            .expect("gap refused");
        assert!(matches!(
            err,
            RestoreError::Gap {
                expected: 2,
                found: 3
            }
        ));
        let w = Writer::new(1);
        let err = DocumentState::restore("e", None, vec![logged(2, 1, w.insert("x"))], 100)
            .err()
            .expect("log must start right after the snapshot");
        assert!(matches!(
            err,
            RestoreError::Gap {
                expected: 1,
                found: 2
            }
        ));
    }

    #[test]
    fn refuses_an_undecodable_snapshot() {
        let err = DocumentState::restore("e", Some((5, &[0xff, 0xff, 0xff])), vec![], 100)
            .err()
            .expect("bad snapshot refused");
        assert!(matches!(
            err,
            RestoreError::BadSnapshot { server_seq: 5, .. }
        ));
    }

    #[test]
    fn out_of_order_updates_survive_a_snapshot_round_trip() {
        let w = Writer::new(7);
        let first = w.insert("x");
        let second = w.insert("y");
        let mut state = DocumentState::restore("e", None, vec![], 100).expect("empty");
        // The second update arrives first: yrs keeps it pending.
        commit(&mut state, "c", 1, second);
        assert_eq!(text(&state), "");
        // A snapshot now must still carry the pending update.
        let snapshot = crdt::encode_full_state(state.doc());
        let mut restored =
            DocumentState::restore("e", Some((1, &snapshot)), vec![], 100).expect("restores");
        commit(&mut restored, "c", 2, first);
        assert_eq!(text(&restored), "xy");
    }

    #[test]
    fn duplicates_are_classified_against_log_and_pipeline() {
        let w = Writer::new(1);
        let mut state = DocumentState::restore("e", None, vec![], 100).expect("empty");
        let client: Arc<str> = Arc::from("c");
        assert_eq!(state.client_joined(&client, None), None);
        assert_eq!(state.classify("c", 1), OpDisposition::Fresh);
        state.reserve(&client, 1);
        assert_eq!(state.classify("c", 1), OpDisposition::DuplicateInFlight);
        assert_eq!(state.classify("c", 2), OpDisposition::Fresh);
        commit(&mut state, "c", 1, w.insert("a"));
        assert_eq!(
            state.classify("c", 1),
            OpDisposition::Duplicate {
                server_seq: Some(1)
            }
        );
        // Gaps in client_op_id are allowed; anything at or below the highest is a duplicate.
        commit(&mut state, "c", 5, w.insert("b"));
        assert_eq!(
            state.classify("c", 3),
            OpDisposition::Duplicate { server_seq: None }
        );
        assert_eq!(
            state.classify("c", 1),
            OpDisposition::Duplicate {
                server_seq: Some(1)
            }
        );
        assert_eq!(state.classify("c", 6), OpDisposition::Fresh);
        state.reserve(&client, 6);
        state.clear_reservations();
        assert_eq!(state.classify("c", 6), OpDisposition::Fresh);
    }

    #[test]
    fn marks_come_from_the_log_and_are_forgotten_when_unused() {
        let mut state = DocumentState::restore("e", None, vec![], 100).expect("empty");
        let client: Arc<str> = Arc::from("c");
        assert_eq!(state.client_joined(&client, Some((9, 4))), Some(9));
        assert_eq!(
            state.classify("c", 9),
            OpDisposition::Duplicate {
                server_seq: Some(4)
            }
        );
        state.client_left("c");
        assert!(!state.knows_client("c"));
        assert_eq!(state.client_marks(), 0);
    }

    #[test]
    fn redundancy_is_judged_against_the_committed_state() {
        let w = Writer::new(3);
        let first = w.insert("a");
        let second = w.insert("b");
        let mut state = DocumentState::restore("e", None, vec![], 100).expect("empty");
        // Building on an update that is not committed yet: not redundant.
        assert!(!state.is_redundant(&second));
        assert!(!state.is_redundant(&first));
        commit(&mut state, "c", 1, first.clone());
        assert!(state.is_redundant(&first), "already applied");
        assert!(!state.is_redundant(&second));
        commit(&mut state, "c", 2, second.clone());
        assert!(state.is_redundant(&second));
        // A deletion is new until applied.
        let delete = {
            let t = w.doc.get_or_insert_text("t");
            let mut txn = w.doc.transact_mut();
            t.remove_range(&mut txn, 0, 1);
            txn.encode_update_v1()
        };
        assert!(!state.is_redundant(&delete));
        commit(&mut state, "c", 3, delete.clone());
        assert!(state.is_redundant(&delete));
        // The whole state, as a reconnecting client sends it back: redundant.
        assert!(state.is_redundant(&crdt::encode_full_state(&w.doc)));
    }

    #[test]
    fn recovery_plans_follow_the_rules() {
        let w = Writer::new(1);
        let ops: Vec<_> = (1..=5).map(|i| logged(i, i, w.insert("z"))).collect();
        let state = DocumentState::restore("e", None, ops, 3).expect("restores");
        assert!(matches!(
            state.plan_recovery(None, None, 3),
            RecoveryPlan::Snapshot
        ));
        assert!(matches!(
            state.plan_recovery(Some(4), Some("other"), 3),
            RecoveryPlan::Snapshot
        ));
        assert!(matches!(
            state.plan_recovery(Some(6), Some("e"), 3),
            RecoveryPlan::Snapshot
        ));
        assert!(matches!(
            state.plan_recovery(Some(1), Some("e"), 3),
            RecoveryPlan::Snapshot
        ));
        match state.plan_recovery(Some(2), Some("e"), 3) {
            RecoveryPlan::Replay(ops) => {
                assert_eq!(
                    ops.iter().map(|o| o.server_seq).collect::<Vec<_>>(),
                    vec![3, 4, 5]
                )
            }
            other => panic!("expected replay, got {other:?}"),
        }
        match state.plan_recovery(Some(5), None, 3) {
            RecoveryPlan::Replay(ops) => assert!(ops.is_empty()),
            other => panic!("expected empty replay, got {other:?}"),
        }
        // A larger replay limit than the memory tail holds reads from the log.
        match state.plan_recovery(Some(1), Some("e"), 10) {
            RecoveryPlan::ReplayFromLog { after: 1, upto: 5 } => {}
            other => panic!("expected a log replay, got {other:?}"),
        }
    }
}
