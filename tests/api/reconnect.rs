//! Reconnection: replay of exactly the missing ops, snapshot when replay is
//! impossible or too long, duplicate detection of resent ops, restarts.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    Backend, Incoming, Peer, WsClient, spawn_app, text_of_state, writer_and_watcher,
};

crate::on_both_backends!(
    reconnect_replays_exactly_the_missing_ops,
    reconnect_after_restart_replays_from_the_log,
    far_behind_wrong_epoch_or_future_seq_gets_a_snapshot,
    resent_ops_are_acked_as_duplicates_and_logged_once,
    offline_edits_are_resent_and_merged,
    restart_keeps_state_epoch_and_seq,
);

/// Bob leaves after seq 5, Alice writes 6..10, Bob comes back with
/// `last_seen_server_seq = 5`: he gets `replay`, then exactly ops 6..10, and
/// then live traffic continues at 11.
async fn reconnect_replays_exactly_the_missing_ops(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut alice = Peer::join(&app, "doc", "alice").await;
    let mut bob = Peer::join(&app, "doc", "bob").await;
    for _ in 0..5 {
        alice.insert(u32::MAX, "a").await;
    }
    alice.sync_to(5).await;
    bob.sync_to(5).await;
    let bob_epoch = bob.epoch.clone();
    bob.ws.close().await;
    for _ in 0..5 {
        alice.insert(u32::MAX, "b").await;
    }
    alice.sync_to(10).await;

    let mut ws = WsClient::connect(&app, "doc").await;
    ws.hello("bob", Some(5), Some(&bob_epoch)).await;
    let welcome = ws.recv_json().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["recovery"], "replay");
    assert_eq!(welcome["server_seq"], 10);
    assert_eq!(welcome["epoch"], bob_epoch.as_str());
    for seq in 6..=10 {
        let op = ws.recv_json().await;
        assert_eq!(op["type"], "op", "{op}");
        assert_eq!(op["server_seq"], seq);
        bob.handle(&op);
    }
    ws.hears_nothing_for(
        Duration::from_millis(300),
        "nothing beyond the missing ops is replayed",
    )
    .await;
    alice.insert(0, "c").await;
    let live = ws.recv_json().await;
    assert_eq!(live["server_seq"], 11);
    bob.handle(&live);
    alice.sync_to(11).await;
    assert_eq!(bob.text(), alice.text());
    assert_eq!(alice.text(), "caaaaabbbbb");
}

/// After a restart the in-memory tail is empty: the replay comes from the
/// op log and is still exact.
async fn reconnect_after_restart_replays_from_the_log(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut alice = Peer::join(&app, "doc", "alice").await;
    for i in 0..8 {
        alice.insert(u32::MAX, &i.to_string()).await;
    }
    alice.sync_to(8).await;
    let epoch = alice.epoch.clone();
    alice.ws.close().await;
    let app = app.restart().await;

    let mut ws = WsClient::connect(&app, "doc").await;
    ws.hello("bob", Some(3), Some(&epoch)).await;
    let welcome = ws.recv_json().await;
    assert_eq!(welcome["recovery"], "replay", "{welcome}");
    assert_eq!(welcome["server_seq"], 8);
    let seqs: Vec<u64> = {
        let mut seqs = Vec::new();
        for _ in 4..=8 {
            let op = ws.recv_json().await;
            assert_eq!(op["type"], "op");
            assert_eq!(op["client_id"], "alice");
            seqs.push(op["server_seq"].as_u64().unwrap());
        }
        seqs
    };
    assert_eq!(seqs, vec![4, 5, 6, 7, 8]);
}

/// Replay is refused in favour of a snapshot when the client is further
/// behind than `max_replay_ops` (100 here), remembers another epoch, claims
/// a seq beyond the head, or sends no `last_seen_server_seq` at all.
async fn far_behind_wrong_epoch_or_future_seq_gets_a_snapshot(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut writer = Peer::join(&app, "big", "writer").await;
    for _ in 0..120 {
        writer.insert(u32::MAX, "z").await;
    }
    writer.sync_to(120).await;
    let epoch = writer.epoch.clone();
    let cases: [(Option<u64>, Option<&str>); 4] = [
        (Some(5), Some(&epoch)),
        (Some(118), Some("another-incarnation")),
        (Some(500), Some(&epoch)),
        (None, None),
    ];
    for (last_seen, claimed_epoch) in cases {
        let mut ws = WsClient::connect(&app, "big").await;
        ws.hello("reader", last_seen, claimed_epoch).await;
        let welcome = ws.recv_json().await;
        assert_eq!(
            welcome["recovery"], "snapshot",
            "case {last_seen:?} {claimed_epoch:?}: {welcome}"
        );
        assert_eq!(welcome["server_seq"], 120);
        let snapshot = ws.recv_json().await;
        assert_eq!(snapshot["type"], "snapshot");
        assert_eq!(snapshot["server_seq"], 120);
        assert_eq!(
            text_of_state(snapshot["state"].as_str().unwrap()),
            "z".repeat(120)
        );
        ws.close().await;
    }
    // Within the limit and the right epoch: replay.
    let mut ws = WsClient::connect(&app, "big").await;
    ws.hello("reader", Some(20), Some(&epoch)).await;
    assert_eq!(ws.recv_json().await["recovery"], "replay");
}

/// A resent op (same client_id, client_op_id at or below the highest
/// accepted) is acked as a duplicate with its original seq and never
/// applied or logged twice, on the same connection or a new one.
async fn resent_ops_are_acked_as_duplicates_and_logged_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut alice = Peer::join(&app, "dup", "alice").await;
    let mut bob = Peer::join(&app, "dup", "bob").await;
    let update = alice.editor.append("once");
    alice.ws.send_op(1, &update).await;
    assert_eq!(
        alice.ws.recv_json().await,
        json!({"type":"ack","client_op_id":1,"server_seq":1})
    );
    alice.ws.send_op(1, &update).await;
    assert_eq!(
        alice.ws.recv_json().await,
        json!({"type":"ack","client_op_id":1,"server_seq":1,"duplicate":true})
    );
    // Gaps are allowed; a lower id after a higher one is a duplicate whose
    // original seq is unknown (there was no op 3).
    let update5 = alice.editor.append("!");
    alice.ws.send_op(5, &update5).await;
    assert_eq!(alice.ws.recv_json().await["server_seq"], 2);
    alice.ws.send_op(3, &update5).await;
    assert_eq!(
        alice.ws.recv_json().await,
        json!({"type":"ack","client_op_id":3,"server_seq":null,"duplicate":true})
    );

    // A new connection of the same client learns the highest accepted id
    // and gets the same duplicate answers.
    alice.ws.close().await;
    let mut again = WsClient::connect(&app, "dup").await;
    again.hello("alice", None, None).await;
    let welcome = again.recv_json().await;
    assert_eq!(welcome["last_client_op_id"], 5);
    again.recv_json().await; // snapshot
    again.send_op(1, &update).await;
    assert_eq!(
        again.recv_json().await,
        json!({"type":"ack","client_op_id":1,"server_seq":1,"duplicate":true})
    );

    // Bob saw each op exactly once; the log holds each once.
    bob.sync_to(2).await;
    bob.ws
        .hears_nothing_for(Duration::from_millis(300), "bob got each op once")
        .await;
    assert_eq!(bob.text(), "once!");
    let log = app.logged_ops("dup").await;
    assert_eq!(
        log,
        vec![(1, "alice".to_owned(), 1), (2, "alice".to_owned(), 5)]
    );

    // After a restart the duplicate knowledge comes from the log.
    drop(again);
    let app = app.restart().await;
    let mut after = WsClient::connect(&app, "dup").await;
    after.hello("alice", None, None).await;
    assert_eq!(after.recv_json().await["last_client_op_id"], 5);
    after.recv_json().await;
    after.send_op(5, &update5).await;
    assert_eq!(
        after.recv_json().await,
        json!({"type":"ack","client_op_id":5,"server_seq":2,"duplicate":true})
    );
    assert_eq!(app.logged_ops("dup").await.len(), 2);
}

/// A client edits while disconnected, reconnects with its last seen seq,
/// learns which ops the server has (`last_client_op_id`), resends the rest,
/// and both sides converge with the concurrent edits of another client.
async fn offline_edits_are_resent_and_merged(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut alice, mut bob) = writer_and_watcher(&app, "offline", ["alice", "bob"], "base").await;
    bob.ws.close().await;

    // Bob edits offline (three ops he cannot send yet) while Alice goes on.
    for s in ["1", "2", "3"] {
        let update = bob.editor.append(s);
        let id = bob.next_op_id;
        bob.next_op_id += 1;
        bob.unacked.insert(id, update);
    }
    alice.insert(0, ">").await;
    alice.sync_to(2).await;

    let mut bob = {
        bob.ws = WsClient::connect(&app, "offline").await;
        let epoch = bob.epoch.clone();
        bob.ws.hello("bob", Some(bob.last_seen), Some(&epoch)).await;
        let welcome = bob.ws.recv_json().await;
        assert_eq!(welcome["recovery"], "replay");
        assert_eq!(welcome["last_client_op_id"], serde_json::Value::Null);
        bob
    };
    bob.resend_unacked().await;
    bob.sync_to(5).await;
    alice.sync_to(5).await;
    assert_eq!(alice.text(), ">base123");
    assert_eq!(bob.text(), alice.text());
}

/// A restart (graceful, then a new server on the same database) keeps the
/// state, the epoch and the seq numbering.
async fn restart_keeps_state_epoch_and_seq(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut alice = Peer::join(&app, "keep", "alice").await;
    for s in ["x", "y", "z"] {
        alice.insert(u32::MAX, s).await;
    }
    alice.sync_to(3).await;
    let epoch = alice.epoch.clone();
    let app = app.restart().await;
    // The old connection was closed by the shutdown with 1001.
    let mut closed = false;
    while let Some(incoming) = alice.ws.recv_within(Duration::from_secs(2)).await {
        if let Incoming::Closed(code) = incoming {
            assert_eq!(code, Some(1001));
            closed = true;
            break;
        }
    }
    assert!(closed, "shutdown closes sockets with 1001");

    let mut reader = Peer::join(&app, "keep", "reader").await;
    assert_eq!(reader.epoch, epoch);
    assert_eq!(reader.welcome["server_seq"], 3);
    assert_eq!(reader.text(), "xyz");
    reader.insert(0, "w").await;
    reader.sync_to(4).await;
    assert_eq!(reader.acks.get(&1), Some(&4));
}
