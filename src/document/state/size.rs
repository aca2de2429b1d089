//! How big a document is, for `limits.max_document_bytes` and
//! `limits.max_pending_update_bytes`, without encoding it on every op.
//!
//! The encoded state is estimated as the size of the last snapshot plus
//! the bytes of every update applied since: an upper bound in practice
//! (merging updates rarely makes them bigger), exact again after each
//! snapshot. Updates waiting for missing dependencies (yrs' pending
//! update) are measured exactly after each commit, which costs an
//! encoding only while there are any.

use yrs::ReadTxn;
use yrs::updates::encoder::Encode;

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct DocumentSize {
    /// Encoded size of the last snapshot (or the one loaded).
    snapshot_bytes: u64,
    /// Bytes of the updates applied after it.
    applied_since: u64,
    /// Encoded bytes of yrs' pending update and pending delete set.
    pending: u64,
}

impl DocumentSize {
    /// The estimated encoded state, in bytes.
    pub fn estimate(&self) -> u64 {
        self.snapshot_bytes + self.applied_since
    }

    /// Bytes of updates waiting for missing dependencies.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// The state was rebuilt from (or written as) a snapshot of `bytes`.
    pub fn snapshot(&mut self, bytes: usize) {
        self.snapshot_bytes = bytes as u64;
        self.applied_since = 0;
    }

    /// An update of `bytes` was applied.
    pub fn applied(&mut self, bytes: usize) {
        self.applied_since += bytes as u64;
    }

    /// Measures what `txn`'s document holds pending.
    pub fn measure_pending<T: ReadTxn>(&mut self, txn: &T) {
        let store = txn.store();
        let update = store
            .pending_update()
            .map_or(0, |p| p.update.encode_v1().len());
        let deletes = store.pending_ds().map_or(0, |ds| ds.encode_v1().len());
        self.pending = (update + deletes) as u64;
    }
}

/// Why an op would make its document too big.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooBig {
    #[error(
        "the document would grow to about {would} bytes, over limits.max_document_bytes ({max})"
    )]
    Document { would: u64, max: u64 },
    #[error(
        "the document holds {pending} bytes of updates waiting for missing dependencies, \
         over limits.max_pending_update_bytes ({max}); no op is accepted until they integrate"
    )]
    Pending { pending: u64, max: u64 },
}

impl DocumentSize {
    /// Whether an update of `bytes` may be accepted, with `uncommitted`
    /// bytes of accepted ops not committed yet.
    pub fn admits(
        &self,
        bytes: usize,
        uncommitted: u64,
        max_document: u64,
        max_pending: u64,
    ) -> Result<(), TooBig> {
        if self.pending > max_pending {
            return Err(TooBig::Pending {
                pending: self.pending,
                max: max_pending,
            });
        }
        let would = self.estimate() + uncommitted + bytes as u64;
        if would > max_document {
            return Err(TooBig::Document {
                would,
                max: max_document,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, Text, Transact, Update};

    #[test]
    fn estimate_follows_snapshots_and_updates() {
        let mut size = DocumentSize::default();
        size.snapshot(1000);
        size.applied(200);
        assert_eq!(size.estimate(), 1200);
        assert_eq!(size.admits(100, 50, 1400, 10), Ok(()));
        let refused = size.admits(100, 150, 1400, 10).unwrap_err();
        assert!(
            refused.to_string().contains("limits.max_document_bytes"),
            "{refused}"
        );
        size.snapshot(900);
        assert_eq!(size.estimate(), 900);
    }

    #[test]
    fn pending_updates_are_measured_and_refuse_beyond_the_limit() {
        // An update of a second client that builds on one the document
        // never got: it stays pending.
        let source = Doc::with_client_id(7);
        let text = source.get_or_insert_text("t");
        text.insert(&mut source.transact_mut(), 0, "first");
        let before = source.transact().state_vector();
        text.insert(&mut source.transact_mut(), 5, " second, never integrable");
        let later = source.transact().encode_state_as_update_v1(&before);

        let doc = Doc::new();
        let mut size = DocumentSize::default();
        let mut txn = doc.transact_mut();
        txn.apply_update(Update::decode_v1(&later).expect("decodes"))
            .expect("applies");
        size.measure_pending(&txn);
        assert!(size.pending() > 0, "the update waits for its dependency");
        let refused = size.admits(1, 0, u64::MAX, 0).unwrap_err();
        assert!(
            refused.to_string().contains("max_pending_update_bytes"),
            "{refused}"
        );
        assert_eq!(size.admits(1, 0, u64::MAX, size.pending()), Ok(()));
    }
}
