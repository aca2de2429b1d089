//! A document rebuilt from what the store holds: a snapshot and the
//! logged updates after it (history reads, `?at=`). Stored bytes were
//! checked when they were accepted; they are decoded again here.

use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};

use super::encode_full_state;

/// Why a stored state could not be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored history does not decode: {0}")]
pub struct ReplayProblem(String);

/// The whole state (a Yjs v1 update) of `snapshot` with `updates` applied
/// in order. CPU-heavy for long stretches: call it off actor threads.
pub fn replay(snapshot: Option<&[u8]>, updates: &[Vec<u8>]) -> Result<Vec<u8>, ReplayProblem> {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        for bytes in snapshot
            .into_iter()
            .chain(updates.iter().map(Vec::as_slice))
        {
            let update = Update::decode_v1(bytes).map_err(|e| ReplayProblem(e.to_string()))?;
            txn.apply_update(update)
                .map_err(|e| ReplayProblem(e.to_string()))?;
        }
    }
    Ok(encode_full_state(&doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text};

    #[test]
    fn a_snapshot_and_the_updates_after_it_make_the_state_at_their_seq() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("t");
        let mut updates = Vec::new();
        for word in ["a", "b", "c"] {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, word);
            updates.push(txn.encode_update_v1());
        }
        let snapshot = replay(None, &updates[..1]).expect("replays");
        let state = replay(Some(&snapshot), &updates[1..]).expect("replays");
        let rebuilt = Doc::new();
        let t = rebuilt.get_or_insert_text("t");
        rebuilt
            .transact_mut()
            .apply_update(Update::decode_v1(&state).expect("decodes"))
            .expect("applies");
        assert_eq!(t.get_string(&rebuilt.transact()), "cba");
        assert!(replay(None, &[vec![1, 2, 3]]).is_err());
    }
}
