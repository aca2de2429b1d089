//! Duplicate detection: what the server remembers about the clients of a
//! loaded document, so a resent op is recognised by its
//! `(client_id, client_op_id)` and never logged twice.
//!
//! A mark is loaded from the op log when the client first needs one (a
//! session joins, or an op arrives without a session) and forgotten when
//! nothing depends on it any more: no joined session of the client, none of
//! its ops in the commit pipeline, and no read of its mark in flight (a read
//! that started before a commit of the client's op must never replace the
//! mark that commit advanced).

use std::collections::HashMap;
use std::sync::Arc;

use crate::store::ClientHistory;

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
    /// Sessions of this client currently joined and counted here.
    pub sessions: u32,
    /// The subject the client id belongs to: the one that first wrote with
    /// it on this document (`None`: nobody with access control on yet).
    pub owner: Option<Arc<str>>,
    /// `owner` was claimed by an op still in the pipeline: dropped again if
    /// that op is not committed.
    pub owner_pending: bool,
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

/// The marks of one document. See the module docs.
#[derive(Debug, Default)]
pub struct ClientMarks {
    marks: HashMap<Arc<str>, ClientMark>,
    /// Reads of a client's mark from the op log now in flight, by client.
    /// While one is, the client's mark is kept (see the module docs).
    reading: HashMap<Arc<str>, u32>,
}

impl ClientMarks {
    /// Is a mark for `client_id` loaded?
    pub fn knows(&self, client_id: &str) -> bool {
        self.marks.contains_key(client_id)
    }

    /// Loads the mark of `client_id` from what the op log says about it,
    /// unless one is loaded already (which then wins: it is at least as new).
    pub fn insert_if_absent(&mut self, client_id: &Arc<str>, stored: Option<&ClientHistory>) {
        self.marks
            .entry(client_id.clone())
            .or_insert_with(|| ClientMark {
                committed: stored.map(|h| h.client_op_id),
                committed_seq: stored.map(|h| h.server_seq),
                owner: stored.and_then(|h| h.subject.clone()),
                ..ClientMark::default()
            });
    }

    /// Counts a joined session of `client_id` (whose mark must be loaded,
    /// or `stored` is used to load it); returns its highest logged op.
    pub fn session_joined(
        &mut self,
        client_id: &Arc<str>,
        stored: Option<&ClientHistory>,
    ) -> Option<u64> {
        self.insert_if_absent(client_id, stored);
        let mark = self.marks.get_mut(client_id)?;
        mark.sessions += 1;
        mark.committed
    }

    /// A counted session of `client_id` left.
    pub fn session_left(&mut self, client_id: &str) {
        if let Some(mark) = self.marks.get_mut(client_id) {
            mark.sessions = mark.sessions.saturating_sub(1);
        }
        self.forget_if_unused(client_id);
    }

    /// A read of `client_id`'s mark from the log starts.
    pub fn read_started(&mut self, client_id: &Arc<str>) {
        *self.reading.entry(client_id.clone()).or_default() += 1;
    }

    /// A read of `client_id`'s mark finished (its result, if any, was
    /// given to [`ClientMarks::insert_if_absent`] first).
    pub fn read_finished(&mut self, client_id: &str) {
        if let Some(count) = self.reading.get_mut(client_id) {
            *count -= 1;
            if *count == 0 {
                self.reading.remove(client_id);
            }
        }
        self.forget_if_unused(client_id);
    }

    /// Forgets the mark of `client_id` if nothing depends on it.
    pub fn forget_if_unused(&mut self, client_id: &str) {
        let unused = self
            .marks
            .get(client_id)
            .is_some_and(|m| m.sessions == 0 && m.reserved.is_none());
        if unused && !self.reading.contains_key(client_id) {
            self.marks.remove(client_id);
        }
    }

    /// Highest `client_op_id` of `client_id` in the log, if its mark is loaded.
    pub fn last_client_op_id(&self, client_id: &str) -> Option<u64> {
        self.marks.get(client_id).and_then(|mark| mark.committed)
    }

    /// The seq of op `client_op_id` of `client_id` if it is the client's
    /// highest committed one (the only one the mark remembers).
    pub fn committed_seq(&self, client_id: &str, client_op_id: u64) -> Option<u64> {
        self.marks
            .get(client_id)
            .filter(|mark| mark.committed == Some(client_op_id))
            .and_then(|mark| mark.committed_seq)
    }

    /// Decides what to do with op `client_op_id` of `client_id`;
    /// `seq_of` finds the seq of an older committed op, if it can.
    pub fn classify(
        &self,
        client_id: &str,
        client_op_id: u64,
        seq_of: impl FnOnce() -> Option<u64>,
    ) -> OpDisposition {
        let Some(mark) = self.marks.get(client_id) else {
            return OpDisposition::Fresh;
        };
        if mark.highest().is_none_or(|h| client_op_id > h) {
            return OpDisposition::Fresh;
        }
        if mark.committed.is_some_and(|c| client_op_id <= c) {
            OpDisposition::Duplicate {
                server_seq: self.committed_seq(client_id, client_op_id).or_else(seq_of),
            }
        } else {
            OpDisposition::DuplicateInFlight
        }
    }

    /// Whether `client_id` belongs to a subject other than `subject` (a
    /// writer without a subject, access control off, is never refused).
    pub fn owned_by_other(&self, client_id: &str, subject: Option<&str>) -> bool {
        let Some(subject) = subject else {
            return false;
        };
        self.marks
            .get(client_id)
            .and_then(|mark| mark.owner.as_deref())
            .is_some_and(|owner| owner != subject)
    }

    /// `subject` writes as `client_id`, which belongs to nobody yet: it is
    /// the subject's from now on (pending until that op commits).
    pub fn claim(&mut self, client_id: &Arc<str>, subject: Option<&Arc<str>>) {
        let Some(subject) = subject else {
            return;
        };
        let mark = self.marks.entry(client_id.clone()).or_default();
        if mark.owner.is_none() {
            mark.owner = Some(subject.clone());
            mark.owner_pending = true;
        }
    }

    /// Marks op `client_op_id` of `client_id` as in the commit pipeline.
    pub fn reserve(&mut self, client_id: &Arc<str>, client_op_id: u64) {
        let mark = self.marks.entry(client_id.clone()).or_default();
        mark.reserved = mark.reserved.max(Some(client_op_id));
    }

    /// Op `client_op_id` of `client_id` committed at `server_seq`.
    pub fn committed(&mut self, client_id: &str, client_op_id: u64, server_seq: u64) {
        if let Some(mark) = self.marks.get_mut(client_id) {
            if mark.committed.is_none_or(|c| c < client_op_id) {
                mark.committed = Some(client_op_id);
                mark.committed_seq = Some(server_seq);
            }
            if mark.reserved.is_some_and(|r| r <= client_op_id) {
                mark.reserved = None;
            }
            mark.owner_pending = false;
        }
    }

    /// Forgets every reservation: the pipeline was dropped (commit failed).
    pub fn clear_reservations(&mut self) {
        for mark in self.marks.values_mut() {
            mark.reserved = None;
            if mark.owner_pending {
                mark.owner = None;
                mark.owner_pending = false;
            }
        }
        let reading = &self.reading;
        self.marks
            .retain(|client, mark| mark.sessions > 0 || reading.contains_key(client));
    }

    /// Number of loaded marks (for bounded-memory checks).
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Arc<str> {
        Arc::from("c")
    }

    fn history(client_op_id: u64, server_seq: u64) -> ClientHistory {
        ClientHistory {
            client_op_id,
            server_seq,
            subject: None,
        }
    }

    #[test]
    fn a_client_id_belongs_to_the_subject_that_first_wrote_with_it() {
        let mut marks = ClientMarks::default();
        let c = client();
        let (alice, mallory): (Arc<str>, Arc<str>) = (Arc::from("alice"), Arc::from("mallory"));
        assert!(!marks.owned_by_other("c", Some("mallory")), "nobody's yet");
        marks.session_joined(&c, None);
        marks.claim(&c, Some(&alice));
        marks.reserve(&c, 1);
        assert!(marks.owned_by_other("c", Some("mallory")));
        assert!(!marks.owned_by_other("c", Some("alice")));
        assert!(
            !marks.owned_by_other("c", None),
            "no subject: access control is off"
        );
        // Alice's first op fails to commit: the claim goes with it.
        marks.clear_reservations();
        marks.claim(&c, Some(&mallory));
        marks.reserve(&c, 1);
        marks.committed("c", 1, 1);
        marks.clear_reservations();
        assert!(
            marks.owned_by_other("c", Some("alice")),
            "committed claims stay"
        );
        let mut loaded = ClientMarks::default();
        let stored = ClientHistory {
            subject: Some(alice.clone()),
            ..history(3, 7)
        };
        loaded.insert_if_absent(&c, Some(&stored));
        assert!(
            loaded.owned_by_other("c", Some("mallory")),
            "the owner comes from the log"
        );
    }

    #[test]
    fn a_mark_is_kept_while_its_client_has_ops_in_flight_or_reads_pending() {
        let mut marks = ClientMarks::default();
        let c = client();
        marks.insert_if_absent(&c, Some(&history(4, 4)));
        marks.reserve(&c, 5);
        marks.forget_if_unused("c");
        assert!(marks.knows("c"), "op 5 is in the pipeline");
        marks.read_started(&c);
        marks.committed("c", 5, 5);
        marks.forget_if_unused("c");
        assert!(marks.knows("c"), "a read of the mark is in flight");
        // The read began before op 5 committed: its answer must not win.
        marks.insert_if_absent(&c, Some(&history(4, 4)));
        marks.read_finished("c");
        assert!(!marks.knows("c"), "forgotten once nothing needs it");
        marks.insert_if_absent(&c, Some(&history(5, 5)));
        assert_eq!(marks.last_client_op_id("c"), Some(5));
    }
}
