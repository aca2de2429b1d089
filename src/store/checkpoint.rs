//! SQLite WAL checkpoints, off the commit path.
//!
//! SQLite normally checkpoints inside the COMMIT that takes the WAL past
//! `wal_autocheckpoint` pages: that commit copies the WAL into the database
//! file and fsyncs it, and every op of its group waits several milliseconds
//! longer. That stall, a few times a second at a few thousand ops/s, was
//! most of the p99 latency of a hot document (more so with
//! `durability = "normal"`, whose commits are otherwise cheap).
//!
//! So the engine raises `wal_autocheckpoint` to a safety net (see
//! [`Store::connect`]) and this task runs a passive checkpoint
//! on another pool connection every [`CHECKPOINT_EVERY`] while commits
//! happen. A passive checkpoint neither waits for nor blocks writers: on
//! SQLite's worker thread for that connection it copies what it can and
//! fsyncs the database file, while documents keep committing.

use std::sync::Weak;
use std::time::Duration;

use super::Store;
use crate::metrics::Metrics;

/// How often the WAL is checkpointed while commits happen.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Runs checkpoints for `store` until `metrics` is dropped (the engine is
/// gone). Does nothing for stores that do not need it (PostgreSQL, or a
/// connection the host application configured itself).
pub fn spawn(store: Store, metrics: Weak<Metrics>) {
    if !store.checkpoints_wal() {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut last_commits = 0;
        let mut failing = false;
        loop {
            actix_web::rt::time::sleep(CHECKPOINT_EVERY).await;
            let Some(metrics) = metrics.upgrade() else {
                return;
            };
            let commits = metrics.snapshot().commits;
            drop(metrics);
            if commits == last_commits {
                continue;
            }
            last_commits = commits;
            match store.checkpoint_wal().await {
                Ok((wal_frames, copied)) => {
                    if failing {
                        log::info!("WAL checkpoints work again");
                        failing = false;
                    }
                    log::trace!("WAL checkpoint: {copied} of {wal_frames} frames copied");
                }
                // The database may be down; commits report that themselves.
                Err(e) if !failing => {
                    log::warn!("WAL checkpoint failed (retrying while commits happen): {e}");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    });
}
