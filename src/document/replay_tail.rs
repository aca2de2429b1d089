//! The newest committed ops of a loaded document, kept in memory so that a
//! reconnecting client is usually caught up without reading the op log.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::vocabulary::CommittedOp;

/// Most ops kept in memory for replay to reconnecting clients; older ones
/// are read back from the op log.
pub const TAIL_MAX_OPS: usize = 10_000;
/// Most update bytes kept in memory for replay.
pub const TAIL_MAX_BYTES: usize = 8 << 20;

/// See the module docs. Invariant: the ops are consecutive in `server_seq`,
/// oldest first, and the newest is the document's head.
#[derive(Debug)]
pub struct ReplayTail {
    ops: VecDeque<Arc<CommittedOp>>,
    /// Sum of the update sizes of `ops` (at most [`TAIL_MAX_BYTES`]).
    bytes: usize,
    /// Most ops kept (at most [`TAIL_MAX_OPS`]).
    max_ops: usize,
}

impl ReplayTail {
    /// An empty tail holding at most `max_ops` (capped at [`TAIL_MAX_OPS`]).
    pub fn new(max_ops: u64) -> Self {
        ReplayTail {
            ops: VecDeque::new(),
            bytes: 0,
            max_ops: usize::try_from(max_ops)
                .unwrap_or(usize::MAX)
                .min(TAIL_MAX_OPS),
        }
    }

    /// How many ops the tail can hold.
    pub fn capacity(&self) -> usize {
        self.max_ops
    }

    /// Appends the next committed op, dropping the oldest ones over the limits.
    pub fn push(&mut self, op: Arc<CommittedOp>) {
        self.bytes += op.update.len();
        self.ops.push_back(op);
        while self.ops.len() > self.max_ops || self.bytes > TAIL_MAX_BYTES {
            match self.ops.pop_front() {
                Some(old) => self.bytes -= old.update.len(),
                None => break,
            }
        }
    }

    /// Every op after `after`, if the tail reaches back that far (`None`
    /// otherwise: they must be read from the log). Empty when `after` is
    /// the head.
    pub fn after(&self, after: u64, head: u64) -> Option<Vec<Arc<CommittedOp>>> {
        if after >= head {
            return Some(Vec::new());
        }
        match self.ops.front() {
            Some(first) if first.server_seq <= after + 1 => {
                let skip = usize::try_from(after + 1 - first.server_seq).ok()?;
                Some(self.ops.iter().skip(skip).cloned().collect())
            }
            _ => None,
        }
    }

    /// The seq of op `client_op_id` of `client_id`, if it is in the tail.
    pub fn seq_of(&self, client_id: &str, client_op_id: u64) -> Option<u64> {
        self.ops
            .iter()
            .rev()
            .find(|op| op.client_op_id == client_op_id && &*op.client_id == client_id)
            .map(|op| op.server_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn op(seq: u64, bytes: usize) -> Arc<CommittedOp> {
        Arc::new(CommittedOp::new(
            seq,
            Arc::from("c"),
            seq,
            Bytes::from(vec![0; bytes]),
            None,
        ))
    }

    fn seqs(ops: &[Arc<CommittedOp>]) -> Vec<u64> {
        ops.iter().map(|o| o.server_seq).collect()
    }

    #[test]
    fn keeps_the_newest_ops_within_its_limits() {
        let mut tail = ReplayTail::new(3);
        for seq in 1..=5 {
            tail.push(op(seq, 1));
        }
        assert_eq!(tail.after(2, 5).as_deref().map(seqs), Some(vec![3, 4, 5]));
        assert_eq!(tail.after(1, 5).map(|o| o.len()), None, "op 2 was dropped");
        assert_eq!(tail.after(5, 5).map(|o| o.len()), Some(0));
        assert_eq!(tail.seq_of("c", 4), Some(4));
        assert_eq!(tail.seq_of("c", 1), None);

        let mut big = ReplayTail::new(100);
        big.push(op(1, TAIL_MAX_BYTES));
        big.push(op(2, 1));
        assert_eq!(big.after(0, 2).map(|o| o.len()), None, "bytes bound it");
        assert_eq!(ReplayTail::new(u64::MAX).capacity(), TAIL_MAX_OPS);
    }
}
