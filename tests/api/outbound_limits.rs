//! What the server holds for its readers stays bounded:
//! `limits.max_session_backlog_bytes` drops a reader that does not read
//! big ops long before `documents.max_session_backlog_ops` would.

use crate::helpers::{Backend, Peer, StalledClient, spawn_app_with};

/// A client that never reads, behind on ~60 ops of 64 KB: over a backlog
/// of 1 MB it is dropped though it is far below the op limit, and the
/// writer is never held back.
#[actix_web::test]
async fn a_reader_behind_on_big_ops_is_dropped_by_bytes() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.documents.max_session_backlog_ops = 50_000;
        s.limits.max_session_backlog_bytes = 1 << 20;
        s.documents.max_message_bytes = 1 << 20;
    })
    .await;
    let stalled = StalledClient::join(app.port, "big-ops", "stalled").await;
    let mut writer = Peer::join(&app, "big-ops", "writer").await;
    let chunk = "x".repeat(64 * 1024);
    for wave in 0..6 {
        for _ in 0..10 {
            writer.insert(0, &chunk).await;
        }
        writer.sync_to((wave + 1) * 10).await;
    }
    assert_eq!(writer.acks.len(), 60, "the writer is not held back");
    assert_eq!(
        app.engine.metrics().slow_sessions_dropped,
        1,
        "60 ops of 64 KB are far below 50,000 ops but over 1 MB"
    );
    drop(stalled);
    let reader = Peer::join(&app, "big-ops", "reader").await;
    assert_eq!(reader.text(), writer.text());
}
