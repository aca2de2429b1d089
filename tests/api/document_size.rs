//! `limits.max_document_bytes` and `limits.max_pending_update_bytes`: an op
//! that would make its document too large is refused with
//! `document_too_large` and its session closed with 4413 (no later op of
//! the session can pass it); nothing refused is logged, everything acked
//! is, and the limit holds across a restart.

use serde_json::Value;

use crate::helpers::{Backend, Editor, Incoming, TestApp, WsClient, spawn_app_with};
use crate::on_both_backends;

/// A joined native client.
async fn writer(app: &TestApp, document_id: &str, client_id: &str) -> WsClient {
    let mut ws = WsClient::connect(app, document_id).await;
    ws.hello(client_id, None, None).await;
    let welcome = ws.recv_json().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    if welcome["recovery"] == "snapshot" {
        assert_eq!(ws.recv_json().await["type"], "snapshot");
    }
    ws
}

/// Sends `updates` one at a time (client op ids from `first`), each after
/// the previous one's answer; stops at the first refusal and answers how
/// many were acked and the refusal, with the close code that followed.
async fn send_until_refused(
    ws: &mut WsClient,
    first: u64,
    updates: &[Vec<u8>],
) -> (usize, Option<(Value, Option<u16>)>) {
    for (n, update) in updates.iter().enumerate() {
        ws.send_op(first + n as u64, update).await;
        let answer = ws.recv_json().await;
        match answer["type"].as_str() {
            Some("ack") => continue,
            Some("error") => {
                let code = loop {
                    if let Incoming::Closed(code) = ws.recv().await {
                        break code;
                    }
                };
                return (n, Some((answer, code)));
            }
            _ => panic!("unexpected answer {answer}"),
        }
    }
    (updates.len(), None)
}

fn assert_too_large(refusal: Option<(Value, Option<u16>)>, names: &str) {
    let (error, code) = refusal.expect("an op was refused");
    assert_eq!(error["code"], "document_too_large", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(names), "{message}");
    assert_eq!(code, Some(4413));
}

async fn ops_that_would_pass_max_document_bytes_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.max_document_bytes = 20_000).await;
    let editor = Editor::new();
    let updates: Vec<Vec<u8>> = (0..10).map(|_| editor.append(&"z".repeat(3000))).collect();
    let mut ws = writer(&app, "capped", "w").await;
    let (acked, refusal) = send_until_refused(&mut ws, 1, &updates).await;
    assert_too_large(refusal, "limits.max_document_bytes");
    assert!(
        (5..=6).contains(&acked),
        "about 20 KB of 3 KB ops: {acked} acked"
    );
    assert_eq!(
        app.logged_ops("capped").await.len(),
        acked,
        "the refused op is not logged"
    );
    assert!(app.engine.metrics().ops_refused_document_too_large >= 1);

    // A reconnect resends the refused op first: refused again, also after
    // a restart (the size comes back from snapshot and log).
    let app = app.restart().await;
    let mut ws = writer(&app, "capped", "w").await;
    let (more, refusal) = send_until_refused(&mut ws, acked as u64 + 1, &updates[acked..]).await;
    assert_eq!(more, 0);
    assert_too_large(refusal, "max_document_bytes");
    // Reading is unaffected, and other documents take ops.
    let state = app.engine.documents().state("capped").await.expect("state");
    assert_eq!(state.server_seq, acked as u64);
    let mut other = writer(&app, "small", "w").await;
    let (acked, refusal) = send_until_refused(&mut other, 1, &updates[..2]).await;
    assert_eq!((acked, refusal.is_none()), (2, true));
}

async fn updates_waiting_for_missing_dependencies_are_bounded(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.max_pending_update_bytes = 2_000).await;
    // Each update builds on the one before; the first is never sent, so
    // none of them can integrate: yrs keeps them pending.
    let editor = Editor::new();
    let _never_sent = editor.append("a");
    let updates: Vec<Vec<u8>> = (0..40).map(|_| editor.append(&"p".repeat(200))).collect();
    let mut ws = writer(&app, "pending", "w").await;
    let (acked, refusal) = send_until_refused(&mut ws, 1, &updates).await;
    assert_too_large(refusal, "limits.max_pending_update_bytes");
    assert!(
        (8..=14).contains(&acked),
        "about 2 KB of ~210-byte updates: {acked}"
    );
    assert_eq!(app.logged_ops("pending").await.len(), acked);
}

on_both_backends!(
    ops_that_would_pass_max_document_bytes_are_refused,
    updates_waiting_for_missing_dependencies_are_bounded,
);
