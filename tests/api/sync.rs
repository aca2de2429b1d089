//! Live editing: ordering, acknowledgement, convergence, snapshots.

use futures_util::future::join_all;

use crate::helpers::{Backend, Peer, WsClient, spawn_app, text_of_state};

crate::on_both_backends!(
    concurrent_editors_converge_with_contiguous_seq_streams,
    ops_are_acked_to_the_sender_and_broadcast_to_the_others,
    snapshots_are_written_every_n_ops,
    ops_arriving_during_a_commit_share_the_next_transaction,
    joins_during_heavy_writing_get_a_contiguous_stream,
);

/// Four editors type concurrently at pseudo-random positions of the same
/// text. Every one of them must see a contiguous, strictly increasing seq
/// stream (checked message by message in `Peer::handle`), every op must be
/// acked to its sender, and all of them, plus a late joiner reading the
/// server's snapshot, must end with the same text.
async fn concurrent_editors_converge_with_contiguous_seq_streams(backend: Backend) {
    let app = spawn_app(backend).await;
    const EDITORS: usize = 4;
    const OPS_EACH: usize = 40;
    let mut peers = Vec::new();
    for i in 0..EDITORS {
        peers.push(Peer::join(&app, "shared", &format!("editor-{i}")).await);
    }
    let total = (EDITORS * OPS_EACH) as u64;
    let results = join_all(
        peers
            .into_iter()
            .enumerate()
            .map(|(i, mut peer)| async move {
                let mut seed = 17 + i as u32 * 7919;
                for n in 0..OPS_EACH {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let at = (seed >> 8) % (peer.editor.len() + 1);
                    peer.insert(at, &format!("{}", (b'a' + (n % 26) as u8) as char))
                        .await;
                    // Read whatever is already there, so edits interleave with
                    // remote ops like a real editor's would.
                    while let Some(incoming) = peer
                        .ws
                        .recv_within(std::time::Duration::from_millis(1))
                        .await
                    {
                        match incoming {
                            crate::helpers::Incoming::Json(message) => peer.handle(&message),
                            crate::helpers::Incoming::Closed(code) => panic!("closed: {code:?}"),
                        }
                    }
                }
                peer.sync_to(total).await;
                peer
            }),
    )
    .await;

    let expected = results[0].text();
    assert_eq!(expected.chars().count(), EDITORS * OPS_EACH);
    for peer in &results {
        assert_eq!(peer.text(), expected, "client {} diverged", peer.client_id);
        assert_eq!(
            peer.stream,
            (1..=total).collect::<Vec<_>>(),
            "client {}",
            peer.client_id
        );
        assert_eq!(peer.acks.len(), OPS_EACH, "client {} acks", peer.client_id);
    }
    let late = Peer::join(&app, "shared", "late").await;
    assert_eq!(late.welcome["server_seq"].as_u64(), Some(total));
    assert_eq!(late.text(), expected);
    assert_eq!(app.logged_ops("shared").await.len() as u64, total);
}

/// The sender gets `ack` with the seq; the others get `op` with the same
/// seq, the sender's client_id and client_op_id, and the update unchanged.
async fn ops_are_acked_to_the_sender_and_broadcast_to_the_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut alice = Peer::join(&app, "doc", "alice").await;
    let mut bob = Peer::join(&app, "doc", "bob").await;
    assert_eq!(alice.welcome["server_seq"], 0);
    assert_eq!(alice.welcome["recovery"], "snapshot");
    assert_eq!(alice.welcome["last_client_op_id"], serde_json::Value::Null);

    let update = alice.editor.append("hello");
    alice.ws.send_op(7, &update).await;
    let ack = alice.ws.recv_json().await;
    assert_eq!(
        ack,
        serde_json::json!({"type": "ack", "client_op_id": 7, "server_seq": 1})
    );
    let op = bob.ws.recv_json().await;
    assert_eq!(op["type"], "op");
    assert_eq!(op["server_seq"], 1);
    assert_eq!(op["client_id"], "alice");
    assert_eq!(op["client_op_id"], 7);
    assert_eq!(
        crate::helpers::unb64(op["update"].as_str().unwrap()),
        update
    );
    bob.handle(&op);
    assert_eq!(bob.text(), "hello");

    // A third connection sees the state through its snapshot.
    let mut carol = WsClient::connect(&app, "doc").await;
    carol.hello("carol", None, None).await;
    let welcome = carol.recv_json().await;
    assert_eq!(welcome["server_seq"], 1);
    let snapshot = carol.recv_json().await;
    assert_eq!(text_of_state(snapshot["state"].as_str().unwrap()), "hello");
}

/// With `snapshot_every_ops = 50`, 120 ops leave snapshots in storage (the
/// latest two are kept), and the document still loads the right state.
async fn snapshots_are_written_every_n_ops(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut writer = Peer::join(&app, "snap", "w").await;
    for _ in 0..120 {
        writer.insert(u32::MAX, "x").await;
        writer.sync_to(writer.last_seen).await;
    }
    writer.sync_to(120).await;
    let seqs = app.snapshot_seqs("snap").await;
    assert!(!seqs.is_empty() && seqs.len() <= 2, "snapshots: {seqs:?}");
    assert!(seqs.iter().all(|s| *s >= 50), "snapshots: {seqs:?}");
    let app = app.restart().await;
    let reader = Peer::join(&app, "snap", "r").await;
    assert_eq!(reader.text(), "x".repeat(120));
    assert_eq!(reader.welcome["server_seq"], 120);
}

/// Group commit: eight writers send 50 ops each without waiting for acks.
/// Ops that arrive while a transaction is in flight share the next one, so
/// there are fewer transactions than ops, and still every op is acked
/// after its commit with a contiguous seq stream for everyone.
async fn ops_arriving_during_a_commit_share_the_next_transaction(backend: Backend) {
    let app = spawn_app(backend).await;
    const WRITERS: usize = 8;
    const OPS_EACH: usize = 50;
    let total = (WRITERS * OPS_EACH) as u64;
    let mut peers = Vec::new();
    for i in 0..WRITERS {
        peers.push(Peer::join(&app, "burst", &format!("w{i}")).await);
    }
    let before = app.engine.metrics();
    let peers = join_all(peers.into_iter().map(|mut peer| async move {
        for _ in 0..OPS_EACH {
            peer.insert(0, "x").await;
        }
        peer.sync_to(total).await;
        peer
    }))
    .await;
    let after = app.engine.metrics();
    let ops = after.ops_committed - before.ops_committed;
    let commits = after.commits - before.commits;
    assert_eq!(ops, total);
    assert!(
        commits < ops,
        "{ops} ops took {commits} transactions: no group commit happened"
    );
    for peer in &peers {
        assert_eq!(peer.stream, (1..=total).collect::<Vec<_>>());
        assert_eq!(peer.text(), "x".repeat(total as usize));
    }
}

/// New clients join while another one writes as fast as it can. Each join
/// reads the client's history from storage while commits keep completing;
/// live ops committed meanwhile must reach the joiner after its welcome and
/// snapshot, never before, and its stream must stay contiguous.
async fn joins_during_heavy_writing_get_a_contiguous_stream(backend: Backend) {
    let app = spawn_app(backend).await;
    const OPS: u64 = 300;
    const JOINERS: usize = 6;
    let mut writer = Peer::join(&app, "busy", "writer").await;
    let writing = async move {
        for _ in 0..OPS {
            writer.insert(0, "w").await;
        }
        writer.sync_to(OPS).await;
        writer
    };
    let app_ref = &app;
    let joining = join_all((0..JOINERS).map(|i| async move {
        // Spread the joins over the burst.
        actix_web::rt::time::sleep(std::time::Duration::from_millis(3 * i as u64)).await;
        let mut peer = Peer::join(app_ref, "busy", &format!("joiner-{i}")).await;
        peer.sync_to(OPS).await;
        peer
    }));
    let (writer, joiners) = futures_util::future::join(writing, joining).await;
    for peer in &joiners {
        assert_eq!(peer.text(), writer.text(), "client {}", peer.client_id);
        let first = peer.welcome["server_seq"].as_u64().unwrap() + 1;
        assert_eq!(
            peer.stream,
            (first..=OPS).collect::<Vec<_>>(),
            "client {}",
            peer.client_id
        );
    }
}

/// A client that stops reading while another writes a lot: once it is more
/// than `max_session_backlog_ops` behind, the server stops sending to it
/// and closes it with 1013 after what was already queued, so a slow client
/// cannot make the server's memory grow without bound. The writer is not
/// slowed down, and the slow client catches up after reconnecting.
#[actix_web::test]
async fn a_client_that_does_not_read_is_dropped_and_catches_up_later() {
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, |s| {
        s.documents.max_session_backlog_ops = 200;
    })
    .await;
    // A raw client with a small receive buffer that joins, then never reads.
    let stalled = crate::helpers::StalledClient::join(app.port, "firehose", "stalled").await;
    let mut writer = Peer::join(&app, "firehose", "writer").await;
    // 8 MB in all: more than the socket buffers can hold.
    const OPS: u64 = 500;
    let chunk = "x".repeat(16 * 1024);
    for wave in 0..OPS / 50 {
        for _ in 0..50 {
            writer.insert(0, &chunk).await;
        }
        writer.sync_to((wave + 1) * 50).await;
    }
    assert_eq!(writer.acks.len() as u64, OPS, "the writer is not held back");
    assert_eq!(app.engine.metrics().slow_sessions_dropped, 1);
    assert_eq!(
        app.engine.stats().await.sessions,
        2,
        "dropped from the document, not yet closed"
    );
    drop(stalled);

    // A client that reads but falls behind gets the close after its backlog
    // and catches up by reconnecting.
    let reader = Peer::join(&app, "firehose", "reader").await;
    assert_eq!(reader.text(), writer.text());
}
