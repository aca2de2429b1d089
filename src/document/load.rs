//! Rebuilding a document from storage: latest snapshot plus the op log.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::state::{DocumentState, LoggedOp, RestoreError};
use crate::store::Store;

/// Why a document could not be loaded.
#[derive(Debug)]
pub(super) enum LoadError {
    /// The stored data is wrong (a gap in the log): serving it would serve
    /// a wrong state, so the document is refused until an operator acts.
    Refused(String),
    /// Storage could not be read; retrying may help.
    Unavailable(String),
}

/// Reads snapshot and log and rebuilds the state. An undecodable snapshot
/// is skipped for the previous one (or the whole log); a gap is refused.
pub(super) async fn load_state(
    store: &Store,
    id: &str,
    max_replay_ops: u64,
) -> Result<DocumentState, LoadError> {
    let unavailable = |e: crate::store::StoreError| LoadError::Unavailable(e.to_string());
    let epoch = store.open_document(id).await.map_err(unavailable)?;
    let snapshots = store.snapshots(id).await.map_err(unavailable)?;
    let mut candidates: Vec<Option<(u64, Vec<u8>)>> = snapshots.into_iter().map(Some).collect();
    candidates.push(None);
    for candidate in candidates {
        let after = candidate.as_ref().map_or(0, |(seq, _)| *seq);
        let ops: Vec<LoggedOp> = store
            .ops_between(id, after, None)
            .await
            .map_err(unavailable)?;
        let snapshot = candidate
            .as_ref()
            .map(|(seq, state)| (*seq, state.as_slice()));
        let restored = catch_unwind(AssertUnwindSafe(|| {
            DocumentState::restore(&epoch, snapshot, ops, max_replay_ops)
        }))
        .map_err(|_| LoadError::Refused("yrs panicked while rebuilding the document".to_owned()))?;
        match restored {
            Ok(state) => return Ok(state),
            Err(e @ RestoreError::BadSnapshot { .. }) => {
                log::error!(
                    "document {id}: {e}; falling back to an older snapshot or the full log"
                );
            }
            Err(e @ RestoreError::Gap { .. }) => return Err(LoadError::Refused(e.to_string())),
        }
    }
    Err(LoadError::Refused(
        "no usable snapshot, and the op log does not start at server_seq 1".to_owned(),
    ))
}
