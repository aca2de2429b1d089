//! What the server holds for its readers stays bounded:
//! `limits.max_session_backlog_bytes` drops a reader that does not read
//! big ops long before `documents.max_session_backlog_ops` would, and the
//! joiners of a big document share its encoded snapshot, sent in
//! fragments, instead of holding a copy each.

use std::time::Duration;

use crate::helpers::{
    Backend, Peer, ServerProcess, StalledClient, TestDatabase, WsClient, spawn_app_with,
};

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

/// A 16 MB document (a 21 MB base64 snapshot) and 20 joiners that never
/// read: the server's memory grows by the shared encodings, not by 20
/// copies of the snapshot (each stalled joiner holds one fragment). A
/// joiner that reads gets the whole snapshot (reassembled from fragments).
#[actix_web::test]
async fn joiners_of_a_big_document_share_its_snapshot() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let server = ServerProcess::start(
        &db.url,
        &[
            ("COLLAB__DOCUMENTS__MAX_MESSAGE_BYTES", "4194304"),
            ("COLLAB__LIMITS__BYTES_PER_SEC_PER_SESSION", "1073741824"),
        ],
    );
    let url = server.ws_url("big");
    let mut writer = Peer::join_url(&url, "writer").await;
    let chunk = "b".repeat(1 << 20);
    for n in 0..16 {
        writer.insert(0, &chunk).await;
        writer.sync_to(n + 1).await;
    }
    // The first joiner makes the shared encodings; the baseline is after it.
    let reader = Peer::join_url(&url, "reader").await;
    assert_eq!(reader.text().len(), 16 << 20, "the snapshot arrived whole");
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_bytes();
    let mut stalled = Vec::new();
    for n in 0..20 {
        stalled.push(StalledClient::join(server.port, "big", &format!("stalled-{n}")).await);
    }
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let growth = server.rss_bytes().saturating_sub(before);
    assert!(
        growth < 120 << 20,
        "20 stalled joiners of a 21 MB snapshot grew the server by {} MiB",
        growth >> 20
    );
    // Everyone else is still served.
    let mut late = WsClient::connect_url(&url).await;
    late.hello("late", None, None).await;
    assert_eq!(late.recv_json().await["type"], "welcome");
    assert_eq!(late.recv_json().await["type"], "snapshot");
    drop(stalled);
}

/// Ops committed while a joiner's big snapshot is still being written (in
/// fragments) reach it right after the snapshot, in order, none missing.
#[actix_web::test]
async fn ops_committed_during_a_fragmented_snapshot_follow_it() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.documents.max_message_bytes = 4 << 20;
    })
    .await;
    let mut writer = Peer::join(&app, "busy-big", "writer").await;
    writer.insert(0, &"s".repeat(2 << 20)).await;
    writer.sync_to(1).await;
    for round in 0..3 {
        // Ops keep committing while the joiner's 2.7 MB snapshot goes out.
        let name = format!("joiner-{round}");
        let joining = Peer::join(&app, "busy-big", &name);
        let writing = async {
            for _ in 0..20 {
                writer.insert(0, "w").await;
            }
            let head = writer.last_seen + 20;
            writer.sync_to(head).await;
            head
        };
        let (mut joiner, head) = tokio::join!(joining, writing);
        joiner.sync_to(head).await;
        assert_eq!(joiner.text(), writer.text(), "round {round}");
    }
}
