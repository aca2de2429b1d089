//! Commits of several documents at once on one SQLite file: a commit that
//! must first check the log head (the one after a failed commit) waits for
//! the write lock like any other instead of failing with "database is
//! locked".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use collab_engine::crdt::decode_update;
use futures_util::future::join_all;

use crate::helpers::{Backend, Editor, spawn_app};

/// Four documents commit without pause while a fifth has a commit failure
/// injected again and again: every resend of its refused op (whose commit
/// verifies the head, reading before writing) is committed, and none of
/// the four others' ops is ever refused.
#[actix_web::test]
async fn a_commit_after_a_failed_one_waits_for_the_lock_while_others_write() {
    let app = spawn_app(Backend::Sqlite).await;
    let documents = app.engine.documents();
    let running = Arc::new(AtomicBool::new(true));
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());
    let busy_writers = (0..4).map(|n| {
        let documents = documents.clone();
        let running = running.clone();
        let counts = counts.clone();
        async move {
            let editor = Editor::new();
            let document = format!("busy-{n}");
            let mut op = 0;
            while running.load(Ordering::Relaxed) {
                op += 1;
                let update = decode_update(Bytes::from(editor.append("x"))).expect("update");
                let answer = documents.submit(&document, "w", op, update).await;
                assert!(answer.is_ok(), "{document} op {op}: {answer:?}");
                counts[n].store(op, Ordering::Relaxed);
            }
            op
        }
    });
    let busy = actix_web::rt::spawn(join_all(busy_writers));
    let snapshot = |counts: &[AtomicU64]| -> Vec<u64> {
        counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    };
    // Every busy writer is committing before the failures start.
    let started = std::time::Instant::now();
    while snapshot(&counts).iter().any(|ops| *ops < 2) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "busy writers did not start: {:?}",
            snapshot(&counts)
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let before = snapshot(&counts);

    let editor = Editor::new();
    let first = decode_update(Bytes::from(editor.append("a"))).expect("update");
    documents
        .submit("flaky", "w", 1, first)
        .await
        .expect("op 1");
    // At least 29 failures; more while a busy writer has not committed
    // since they started (SQLite's write lock is not fair: on a loaded
    // machine one writer can wait through many rounds).
    let mut op = 1;
    let progressed = |counts: &[AtomicU64]| {
        snapshot(counts)
            .iter()
            .zip(&before)
            .all(|(now, then)| now > then)
    };
    while op < 30 || (!progressed(&counts) && op < 500) {
        op += 1;
        assert_eq!(app.inject("flaky", "fail-commits?count=1").await, 200);
        let update = editor.append("b");
        let valid = |u: &[u8]| decode_update(Bytes::copy_from_slice(u)).expect("update");
        let refused = documents.submit("flaky", "w", op, valid(&update)).await;
        assert!(refused.is_err(), "op {op} should hit the injected failure");
        let resent = documents.submit("flaky", "w", op, valid(&update)).await;
        assert!(
            resent.is_ok(),
            "op {op}: the commit after the failed one was refused: {resent:?}"
        );
    }
    let during: Vec<u64> = snapshot(&counts)
        .iter()
        .zip(&before)
        .map(|(now, then)| now - then)
        .collect();
    running.store(false, Ordering::Relaxed);
    busy.await.expect("busy writers");
    assert!(
        during.iter().all(|ops| *ops > 0),
        "the other documents kept committing while the failures were injected: {during:?}"
    );
    assert_eq!(app.logged_ops("flaky").await.len() as u64, op);
}
