//! Faults injected into a running server: panics inside the document
//! actor, failing commits, repeated failures, corrupt snapshots. Each test
//! fails if the promise it names is broken: nothing acked is lost, seq
//! streams stay contiguous, clients converge.

use std::time::Duration;

use entity::snapshots;
use futures_util::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::helpers::{
    Backend, Peer, WsClient, spawn_app, spawn_app_with, token_counts, writer_and_watcher,
};

crate::on_both_backends!(
    a_panic_during_concurrent_editing_restarts_the_document_and_loses_nothing,
    injected_commit_failures_are_answered_unavailable_and_resends_succeed_once,
    a_commit_that_landed_but_reported_failure_is_found_by_the_reload,
    ops_sent_after_a_refused_op_are_refused_too_so_none_is_lost,
    a_document_that_keeps_failing_is_marked_failed_then_tried_again,
    a_corrupt_snapshot_is_skipped_for_an_older_one_or_the_full_log,
);

/// Three writers edit; after 30 acked ops each sends 5 more and the
/// document actor panics (fault injection) while those are in flight. The
/// actor restarts (once) from storage, every session is closed with 1012,
/// ops that were not committed are answered `unavailable` or not at all,
/// and after reconnecting with `last_seen_server_seq` and resending what
/// was not acked, every op is in the document exactly once and all
/// writers converge.
async fn a_panic_during_concurrent_editing_restarts_the_document_and_loses_nothing(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    const WRITERS: usize = 3;
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        writers.push(Peer::join(&app, "chaos", &format!("w{i}")).await);
    }
    let writers = join_all(writers.into_iter().map(|mut w| async move {
        for n in 0..10 {
            let token = format!("<{}-{n}>", w.client_id);
            w.insert(0, &token).await;
        }
        w.sync_to(30).await;
        for n in 10..15 {
            let token = format!("<{}-{n}>", w.client_id);
            w.insert(0, &token).await;
        }
        w
    }))
    .await;
    assert_eq!(app.inject("chaos", "panic").await, 200);
    let writers = join_all(writers.into_iter().map(|mut w| async move {
        let (code, _) = w.drain_until_close().await;
        assert_eq!(
            code,
            Some(1012),
            "client {} closed with {code:?}",
            w.client_id
        );
        w
    }))
    .await;
    assert_eq!(app.engine.metrics().document_restarts, 1);

    let app_ref = &app;
    let total = (WRITERS * 20) as u64;
    let writers = join_all(writers.into_iter().map(|w| async move {
        let mut w = w.rejoin(app_ref, "chaos").await;
        w.resend_unacked().await;
        for n in 15..20 {
            let token = format!("<{}-{n}>", w.client_id);
            w.insert(0, &token).await;
        }
        w.sync_to(total).await;
        w
    }))
    .await;
    let text = writers[0].text();
    for w in &writers {
        assert_eq!(w.text(), text, "client {} diverged", w.client_id);
    }
    let counts = token_counts(&text);
    assert_eq!(counts.len(), WRITERS * 20, "every op is in the document");
    assert!(counts.values().all(|n| *n == 1), "no op twice: {counts:?}");
    let log = app.logged_ops("chaos").await;
    assert_eq!(
        log.iter()
            .map(|(seq, _, _)| *seq as u64)
            .collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
}

/// `fail-commits?count=2`: the next two ops are answered `unavailable`
/// with their ids, never acked, never broadcast, and their session is
/// closed (1013); resending them after reconnecting succeeds exactly once
/// each.
async fn injected_commit_failures_are_answered_unavailable_and_resends_succeed_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (mut writer, mut watcher) =
        writer_and_watcher(&app, "flaky", ["writer", "watcher"], "a").await;

    assert_eq!(app.inject("flaky", "fail-commits?count=2").await, 200);
    for (index, s) in [(1, "b"), (2, "c")] {
        let op_id = writer.insert(index, s).await;
        writer.expect_refused(&[op_id]).await;
        writer = writer.rejoin(&app, "flaky").await;
        assert_eq!(writer.welcome["last_client_op_id"], 1);
    }
    watcher
        .ws
        .hears_nothing_for(Duration::from_millis(300), "failed ops are not broadcast")
        .await;
    assert_eq!(app.logged_ops("flaky").await.len(), 1);

    writer.resend_unacked().await;
    writer.sync_to(3).await;
    assert_eq!(
        writer.acks.values().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    watcher.sync_to(3).await;
    assert_eq!(watcher.text(), "abc");
    assert_eq!(app.logged_ops("flaky").await.len(), 3);
    let metrics = app.engine.metrics();
    assert_eq!(metrics.commit_failures, 2);
    assert_eq!(metrics.document_restarts, 0);

    // Not loaded documents cannot be injected into.
    assert_eq!(app.inject("nowhere", "panic").await, 404);
}

/// With `max_restarts = 2`, the third restart within the window marks the
/// document failed: its session gets `unavailable` and close 1011, new
/// connections are refused (1013) for `restart_backoff_max_ms`, and after
/// that the document loads again with its state intact.
async fn a_document_that_keeps_failing_is_marked_failed_then_tried_again(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.documents.max_restarts = 2;
        s.documents.restart_backoff_max_ms = 1000;
    })
    .await;
    let mut peer = Peer::join(&app, "fragile", "p").await;
    peer.insert(0, "kept").await;
    peer.sync_to(1).await;
    for expected_close in [1012, 1012] {
        assert_eq!(app.inject("fragile", "panic").await, 200);
        let (code, _) = peer.drain_until_close().await;
        assert_eq!(code, Some(expected_close));
        peer = peer.rejoin(&app, "fragile").await;
    }
    assert_eq!(app.inject("fragile", "panic").await, 200);
    let (messages, code) = peer.ws.recv_until_close().await;
    assert_eq!(code, Some(1011));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["code"], "unavailable");
    assert_eq!(app.engine.metrics().document_restarts, 3);

    let mut refused = WsClient::connect(&app, "fragile").await;
    refused.hello("q", None, None).await;
    let (messages, code) = refused.recv_until_close().await;
    assert_eq!(code, Some(1013));
    assert_eq!(messages[0]["code"], "unavailable");

    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let again = Peer::join(&app, "fragile", "q").await;
    assert_eq!(again.text(), "kept");
    assert_eq!(again.welcome["server_seq"], 1);
}

/// Snapshots are kept at 100 and 120 (every 50 ops, plus the one written at
/// shutdown). With the newest one corrupted the document loads from the
/// older one plus the log; with all of them corrupted, from the whole log.
/// The state is right either way, and the next snapshot at the same seq
/// replaces the corrupt one.
async fn a_corrupt_snapshot_is_skipped_for_an_older_one_or_the_full_log(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut writer = Peer::join(&app, "fragile", "w").await;
    // One op at a time, so snapshots fall at 50 and 100.
    for i in 0..120 {
        writer.insert(u32::MAX, &(i % 10).to_string()).await;
        writer.sync_to(i + 1).await;
    }
    let expected = writer.text();
    let mut app = app.restart().await;
    assert_eq!(app.snapshot_seqs("fragile").await, vec![100, 120]);

    for newest_only in [true, false] {
        let mut corrupt = snapshots::Entity::update_many()
            .col_expr(
                snapshots::Column::State,
                Expr::value(vec![0xffu8, 0xff, 0xff, 0x07]),
            )
            .filter(snapshots::Column::DocumentId.eq("fragile"));
        if newest_only {
            corrupt = corrupt.filter(snapshots::Column::ServerSeq.eq(120));
        }
        corrupt
            .exec(app.engine.store().connection())
            .await
            .expect("corrupt snapshots");
        let reader = Peer::join(&app, "fragile", "r").await;
        assert_eq!(reader.welcome["server_seq"], 120);
        assert_eq!(
            reader.text(),
            expected,
            "newest snapshot only: {newest_only}"
        );
        drop(reader);
        // The shutdown snapshot replaces the corrupt one at the same seq.
        app = app.restart().await;
        let stored = app.engine.store().snapshots("fragile").await.expect("read");
        let (seq, state) = stored.first().expect("a snapshot");
        assert_eq!(*seq, 120);
        assert_eq!(
            crate::helpers::text_of_state(&crate::helpers::b64(state)),
            expected
        );
        let reader = Peer::join(&app, "fragile", "r2").await;
        assert_eq!(reader.text(), expected);
        drop(reader);
        // Unloaded again, so the next round's corruption is read at load.
        app = app.restart().await;
    }
    assert_eq!(app.engine.metrics().commit_failures, 0);
}

/// `fail-commits?when=after`: the op reaches the log but the server is told
/// the commit failed, so the sender gets `unavailable` (and close 1013).
/// Reconnecting, it learns from `last_client_op_id` that the op was in
/// fact accepted. Its next op goes to a commit that first checks the log
/// head, finds the landed op, and reloads the document (sessions closed
/// with 1012); after that the landed op is replayed and no seq is used
/// twice.
async fn a_commit_that_landed_but_reported_failure_is_found_by_the_reload(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut writer = Peer::join(&app, "ambiguous", "writer").await;
    writer.insert(0, "a").await;
    writer.sync_to(1).await;
    assert_eq!(
        app.inject("ambiguous", "fail-commits?count=1&when=after")
            .await,
        200
    );
    let landed = writer.insert(1, "b").await;
    writer.expect_refused(&[landed]).await;
    assert_eq!(
        app.logged_ops("ambiguous").await.len(),
        2,
        "the op did land"
    );

    let mut writer = writer.rejoin(&app, "ambiguous").await;
    assert_eq!(writer.welcome["last_client_op_id"], landed);
    assert!(
        writer.unacked.is_empty(),
        "the landed op is known to be accepted"
    );
    let next = writer.insert(2, "c").await;
    let (code, _) = writer.drain_until_close().await;
    assert_eq!(code, Some(1012), "head mismatch: the document reloads");
    assert_eq!(app.engine.metrics().document_restarts, 1);

    let mut writer = writer.rejoin(&app, "ambiguous").await;
    writer.resend_unacked().await;
    writer.sync_to(3).await;
    assert_eq!(writer.acks.get(&next), Some(&3));
    assert_eq!(writer.text(), "abc");
    let log = app.logged_ops("ambiguous").await;
    assert_eq!(
        log.iter()
            .map(|(seq, _, op)| (*seq, *op))
            .collect::<Vec<_>>(),
        vec![(1, 1), (2, 2), (3, 3)]
    );
}

/// An op is refused (its commit fails) while the client has already sent
/// the next ones. Those must not be accepted either: if they were, the
/// refused op, resent later, would be taken for a duplicate (its id is
/// below the highest accepted) and lost. All of them are refused, the
/// session is closed, and after reconnecting every op is accepted.
async fn ops_sent_after_a_refused_op_are_refused_too_so_none_is_lost(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut watcher = Peer::join(&app, "gapless", "watcher").await;
    let mut writer = Peer::join(&app, "gapless", "writer").await;
    assert_eq!(app.inject("gapless", "fail-commits?count=1").await, 200);
    for s in ["a", "b", "c", "d"] {
        writer.insert(u32::MAX, s).await;
    }
    let refused = writer.refused_until_close().await;
    assert!(!refused.is_empty());
    // Whatever was accepted before the failure is a prefix of the ops.
    let accepted: Vec<u64> = writer.acks.keys().copied().collect();
    assert_eq!(accepted, (1..=accepted.len() as u64).collect::<Vec<_>>());

    let mut writer = writer.rejoin(&app, "gapless").await;
    writer.resend_unacked().await;
    writer.sync_to(4).await;
    watcher.sync_to(4).await;
    assert_eq!(watcher.text(), "abcd");
    assert_eq!(writer.text(), "abcd");
    assert_eq!(app.logged_ops("gapless").await.len(), 4);
}
