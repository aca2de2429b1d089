//! Every row of the bad-input table: each answered with the documented
//! error, nothing logged or broadcast, other sessions unaffected.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Editor, Peer, WsClient, b64, spawn_app, writer_and_watcher};

crate::on_both_backends!(
    malformed_messages_after_hello_get_bad_message_and_the_connection_stays_open,
    a_malformed_first_message_closes_with_1008,
    messages_before_hello_get_hello_required,
    a_second_hello_is_refused,
    an_unsupported_protocol_is_refused,
    invalid_updates_are_refused_not_logged_not_broadcast,
    oversized_frames_get_too_large_and_close_1009,
    binary_frames_get_bad_message,
    a_failed_commit_answers_unavailable_and_the_op_can_be_resent,
);

async fn joined(app: &crate::helpers::TestApp, document_id: &str, client_id: &str) -> WsClient {
    let mut ws = WsClient::connect(app, document_id).await;
    ws.hello(client_id, None, None).await;
    assert_eq!(ws.recv_json().await["type"], "welcome");
    assert_eq!(ws.recv_json().await["type"], "snapshot");
    ws
}

fn assert_error(message: &Value, code: &str) {
    assert_eq!(
        message["type"], "error",
        "expected error {code}, got {message}"
    );
    assert_eq!(message["code"], code, "{message}");
    assert!(
        message["message"].as_str().is_some_and(|m| !m.is_empty()),
        "errors carry a human-readable message: {message}"
    );
}

/// Not JSON, unknown type, missing field, mistyped field: `bad_message`,
/// and the session goes on working.
async fn malformed_messages_after_hello_get_bad_message_and_the_connection_stays_open(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut ws = joined(&app, "doc", "c").await;
    let cases = [
        "this is not json".to_owned(),
        json!({"type": "dance"}).to_string(),
        json!({"type": "op", "update": "AAA="}).to_string(),
        json!({"type": "op", "client_op_id": "seven", "update": "AAA="}).to_string(),
        json!({"client_op_id": 1}).to_string(),
        json!([1, 2, 3]).to_string(),
    ];
    for case in &cases {
        ws.send_text(case).await;
        let answer = ws.recv_json().await;
        assert_error(&answer, "bad_message");
    }
    ws.hears_nothing_for(Duration::from_millis(100), "one answer per bad message")
        .await;
    let update = Editor::new().append("still here");
    ws.send_op(1, &update).await;
    assert_eq!(
        ws.recv_json().await,
        json!({"type":"ack","client_op_id":1,"server_seq":1})
    );
}

async fn a_malformed_first_message_closes_with_1008(backend: Backend) {
    let app = spawn_app(backend).await;
    for first in [
        "{not json",
        r#"{"type":"hello","protocol":1}"#,
        r#"{"type":"hello","protocol":1,"client_id":""}"#,
    ] {
        let mut ws = WsClient::connect(&app, "doc").await;
        ws.send_text(first).await;
        let (messages, code) = ws.recv_until_close().await;
        assert_eq!(messages.len(), 1, "{first}: {messages:?}");
        assert_error(&messages[0], "bad_message");
        assert_eq!(code, Some(1008), "{first}");
    }
}

async fn messages_before_hello_get_hello_required(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = WsClient::connect(&app, "doc").await;
    ws.send_op(1, &Editor::new().append("x")).await;
    let (messages, code) = ws.recv_until_close().await;
    assert_error(&messages[0], "hello_required");
    assert_eq!(code, Some(1008));
    assert!(app.logged_ops("doc").await.is_empty());
}

async fn a_second_hello_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = joined(&app, "doc", "c").await;
    ws.hello("c", None, None).await;
    let (messages, code) = ws.recv_until_close().await;
    assert_error(&messages[0], "bad_message");
    assert!(messages[0]["message"].as_str().unwrap().contains("hello"));
    assert_eq!(code, Some(1008));
}

async fn an_unsupported_protocol_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = WsClient::connect(&app, "doc").await;
    ws.send_json(json!({"type":"hello","protocol":2,"client_id":"c"}))
        .await;
    let (messages, code) = ws.recv_until_close().await;
    assert_error(&messages[0], "unsupported_protocol");
    assert_eq!(code, Some(1008));
}

/// Not base64, not a Yjs update, empty update: `invalid_update` carrying
/// the op's id; nothing logged, nothing broadcast; the next valid op of the
/// same client gets seq 1.
async fn invalid_updates_are_refused_not_logged_not_broadcast(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut sender = joined(&app, "doc", "sender").await;
    let mut watcher = Peer::join(&app, "doc", "watcher").await;
    let cases: [(u64, String); 4] = [
        (1, "%%% not base64 %%%".to_owned()),
        (2, b64(&[0xde, 0xad, 0xbe, 0xef, 0xff])),
        (3, b64(&[0, 0])),
        (4, String::new()),
    ];
    for (op_id, update) in &cases {
        sender
            .send_json(json!({"type":"op","client_op_id":op_id,"update":update}))
            .await;
        let answer = sender.recv_json().await;
        assert_error(&answer, "invalid_update");
        assert_eq!(answer["client_op_id"], *op_id, "{answer}");
    }
    watcher
        .ws
        .hears_nothing_for(
            Duration::from_millis(300),
            "invalid updates are not broadcast",
        )
        .await;
    assert!(app.logged_ops("doc").await.is_empty());
    sender.send_op(5, &Editor::new().append("ok")).await;
    assert_eq!(sender.recv_json().await["server_seq"], 1);
    watcher.sync_to(1).await;
    assert_eq!(watcher.text(), "ok");
}

/// A frame above `max_message_bytes` (64 KiB in tests): `too_large`, close
/// 1009; the other session of the document is unaffected.
async fn oversized_frames_get_too_large_and_close_1009(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut other = Peer::join(&app, "doc", "other").await;
    let mut ws = joined(&app, "doc", "big").await;
    let huge = Editor::new().append(&"x".repeat(100 * 1024));
    ws.send_op(1, &huge).await;
    let (messages, code) = ws.recv_until_close().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_error(&messages[0], "too_large");
    assert_eq!(code, Some(1009));
    assert!(app.logged_ops("doc").await.is_empty());
    other.insert(0, "fine").await;
    other.sync_to(1).await;
}

async fn binary_frames_get_bad_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = joined(&app, "doc", "c").await;
    ws.send_binary(vec![0, 1, 2]).await;
    assert_error(&ws.recv_json().await, "bad_message");
    ws.send_op(1, &Editor::new().append("y")).await;
    assert_eq!(ws.recv_json().await["type"], "ack");

    let mut first = WsClient::connect(&app, "doc").await;
    first.send_binary(vec![0, 1, 2]).await;
    let (messages, code) = first.recv_until_close().await;
    assert_error(&messages[0], "bad_message");
    assert_eq!(code, Some(1008));
}

/// The database refuses the commit (a trigger makes every insert into the
/// op log fail): the op gets `unavailable` with its id and the session is
/// closed with 1013; the op is never acked or broadcast; once the database
/// accepts writes again the client reconnects, resends it, and it is
/// accepted exactly once. Other sessions stay open.
async fn a_failed_commit_answers_unavailable_and_the_op_can_be_resent(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut writer, mut watcher) =
        writer_and_watcher(&app, "doc", ["writer", "watcher"], "a").await;

    let faults = crate::lifecycle::OpLogFault::install(&app).await;
    let op_id = writer.insert(1, "b").await;
    writer.expect_refused(&[op_id]).await;
    assert_eq!(writer.acks.len(), 1, "nothing acked after the failure");
    watcher
        .ws
        .hears_nothing_for(
            Duration::from_millis(300),
            "the failed op was not broadcast, and the watcher stays connected",
        )
        .await;
    assert_eq!(
        app.get_status("/ready").await,
        503,
        "a node whose commits fail is not ready, though the database answers"
    );
    faults.remove(&app).await;
    assert_eq!(
        app.get_status("/ready").await,
        200,
        "ready again once a write goes through, before any client writes"
    );
    let metrics = app.engine.metrics();
    assert_eq!(metrics.commit_failures, 1);
    assert_eq!(
        metrics.document_restarts, 0,
        "storage errors do not restart the document"
    );

    let mut writer = writer.rejoin(&app, "doc").await;
    assert_eq!(writer.welcome["last_client_op_id"], 1);
    writer.resend_unacked().await;
    writer.sync_to(2).await;
    assert_eq!(writer.acks.get(&op_id), Some(&2));
    watcher.sync_to(2).await;
    assert_eq!(watcher.text(), "ab");
    assert_eq!(app.logged_ops("doc").await.len(), 2);
}
