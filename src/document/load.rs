//! Rebuilding a document from storage: latest snapshot plus the op log.
//!
//! The log after the snapshot is read in chunks of [`REPLAY_CHUNK_OPS`]
//! (see [`Store::log_chunks`]) and applied as the chunks arrive, on a
//! blocking thread, so a load never holds the whole log in memory nor
//! keeps the actor thread busy; only the newest ops (the in-memory replay
//! tail) are read with their client ids, and applied on the actor.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::state::{DocumentState, REPLAY_CHUNK_OPS, RestoreError};
use crate::store::{LogChunks, Store, StoreError};

/// Why a document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    /// The stored data is wrong (a gap in the log): serving it would serve
    /// a wrong state, so the document is refused until an operator acts.
    #[error(transparent)]
    Corrupt(RestoreError),
    #[error("yrs panicked while rebuilding the document")]
    Panicked,
    #[error("no usable snapshot, and the op log does not start at server_seq 1")]
    NoUsableStart,
    /// Storage could not be read; retrying may help.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}

impl LoadError {
    /// Whether the stored data itself is at fault (retrying cannot help).
    pub(super) fn is_refusal(&self) -> bool {
        !matches!(self, LoadError::Unavailable(_))
    }
}

/// Where the time of a load went, for its log line.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LoadTimings {
    /// Waiting for the database (queries and rows).
    pub read: Duration,
    /// Decoding and applying snapshot and ops in yrs.
    pub apply: Duration,
    /// Ops applied after the snapshot.
    pub replayed: u64,
}

/// Reads snapshot and log and rebuilds the state. An undecodable snapshot
/// is skipped for the previous one (or the whole log); a gap is refused.
pub(super) async fn load_state(
    store: &Store,
    id: &str,
    max_replay_ops: u64,
) -> Result<(DocumentState, LoadTimings), LoadError> {
    let mut timings = LoadTimings::default();
    let started = Instant::now();
    let stored_epoch = store.document_epoch(id).await?;
    let row_stored = stored_epoch.is_some();
    let epoch = stored_epoch.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let snapshots = store.snapshots(id).await?;
    let head = store.head(id).await?;
    timings.read += started.elapsed();
    let mut candidates: Vec<Option<(u64, Vec<u8>)>> = snapshots.into_iter().map(Some).collect();
    candidates.push(None);
    for candidate in candidates {
        let snapshot = candidate
            .as_ref()
            .map(|(seq, state)| (*seq, state.as_slice()));
        match rebuild(
            store,
            id,
            &epoch,
            snapshot,
            head,
            max_replay_ops,
            &mut timings,
        )
        .await
        {
            Ok(mut state) => {
                state.set_row_stored(row_stored);
                return Ok((state, timings));
            }
            Err(Failure::Restore(e @ RestoreError::BadSnapshot { .. })) => {
                log::error!(
                    "document {id}: {e}; falling back to an older snapshot or the full log"
                );
            }
            Err(Failure::Restore(e)) => return Err(LoadError::Corrupt(e)),
            Err(Failure::Panicked) => return Err(LoadError::Panicked),
            Err(Failure::Store(e)) => return Err(e.into()),
        }
    }
    Err(LoadError::NoUsableStart)
}

/// Why one rebuild attempt failed.
enum Failure {
    Restore(RestoreError),
    Panicked,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// One rebuild attempt from `snapshot` (or from an empty document).
async fn rebuild(
    store: &Store,
    id: &str,
    epoch: &str,
    snapshot: Option<(u64, &[u8])>,
    head: u64,
    max_replay_ops: u64,
    timings: &mut LoadTimings,
) -> Result<DocumentState, Failure> {
    let mut state = guarded(timings, || {
        DocumentState::from_snapshot(epoch, snapshot, max_replay_ops)
    })?;
    // The body of the log goes through yrs in chunks; the newest ops are
    // read with their client ids and kept for replay to reconnecting clients.
    let after = state.head();
    let tail_from = head.saturating_sub(state.tail_capacity() as u64).max(after);
    if tail_from > after {
        let chunks = store.log_chunks(id, after, tail_from, REPLAY_CHUNK_OPS);
        // Applying a long log takes a while: a blocking thread does it, so
        // the actors sharing this one's thread keep serving meanwhile.
        let (rebuilt, body) =
            actix_web::rt::task::spawn_blocking(move || replay_body(state, chunks))
                .await
                .map_err(|_| Failure::Panicked)??;
        state = rebuilt;
        timings.read += body.read;
        timings.apply += body.apply;
    }
    // Anything committed after `head` was read (none while this actor is
    // the only writer) is picked up here too: no upper bound.
    let started = Instant::now();
    let tail = store.ops_between(id, tail_from, None).await?;
    timings.read += started.elapsed();
    guarded(timings, || state.replay_tail(tail))?;
    timings.replayed = state.head().saturating_sub(after);
    Ok(state)
}

/// Applies the chunks of a log body as they arrive; `read` is the time
/// spent waiting for them. Runs on a blocking thread.
fn replay_body(
    mut state: DocumentState,
    mut chunks: LogChunks,
) -> Result<(DocumentState, LoadTimings), Failure> {
    let mut timings = LoadTimings::default();
    loop {
        let waiting = Instant::now();
        let chunk = chunks.blocking_recv();
        timings.read += waiting.elapsed();
        let Some(chunk) = chunk else {
            return Ok((state, timings));
        };
        let chunk = chunk?;
        guarded(&mut timings, || {
            state.replay(chunk.iter().map(|(seq, update)| (*seq, update.as_slice())))
        })?;
    }
}

/// Runs one step of a rebuild, timing it as `apply`; a yrs panic is
/// caught (the document is then refused, the actor lives on).
fn guarded<T>(
    timings: &mut LoadTimings,
    step: impl FnOnce() -> Result<T, RestoreError>,
) -> Result<T, Failure> {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(step));
    timings.apply += started.elapsed();
    match result {
        Ok(result) => result.map_err(Failure::Restore),
        Err(_) => Err(Failure::Panicked),
    }
}
