//! What a session may do once connected: read-only sessions, token expiry
//! (4401), revocation (4403, refused tokens, kept across a restart), and
//! client ids that belong to the subject that first wrote with them.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    ADMIN_KEY, Backend, Editor, Incoming, Peer, SECRET, WsClient, now, sign, spawn_token_app, token,
};

crate::on_both_backends!(
    a_read_only_session_receives_everything_and_changes_nothing,
    a_session_ends_with_4401_when_its_token_expires,
    a_revoked_subject_is_closed_and_its_old_tokens_refused_even_after_a_restart,
    a_client_id_cannot_be_taken_over_by_another_subject,
);

/// A reader gets every op, may publish presence, and each op it sends is
/// answered `forbidden` with its id: nothing is logged or broadcast and the
/// connection stays open.
async fn a_read_only_session_receives_everything_and_changes_nothing(backend: Backend) {
    let app = spawn_token_app(backend, |_| {}).await;
    let writer_url = app.ws_url_with_token("ws", "page", &token("w", &[("page", "write")]));
    let reader_url = app.ws_url_with_token("ws", "page", &token("r", &[("page", "read")]));
    let mut writer = Peer::join_url(&writer_url, "writer").await;
    let mut reader = Peer::join_url(&reader_url, "reader").await;
    writer.insert(0, "hello").await;
    writer.sync_to(1).await;
    reader.sync_to(1).await;

    let update = Editor::new().append("intrusion");
    reader.ws.send_op(1, &update).await;
    let refused = reader.ws.recv_json().await;
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["code"].as_str(),
            refused["client_op_id"].as_u64()
        ),
        (Some("error"), Some("forbidden"), Some(1)),
        "{refused}"
    );
    writer
        .ws
        .hears_nothing_for(
            Duration::from_millis(300),
            "the refused op is not broadcast",
        )
        .await;
    // Still connected: the next op of the writer arrives.
    writer.insert(5, " world").await;
    writer.sync_to(2).await;
    reader.sync_to(2).await;
    assert_eq!(reader.text(), "hello world");
    let log = app.logged_ops("page").await;
    assert!(
        log.iter().all(|(_, client, _)| client == "writer"),
        "{log:?}"
    );
}

/// When the token's `exp` passes, the session is closed with 4401 `token
/// expired` (within a second); what was acked before stays.
async fn a_session_ends_with_4401_when_its_token_expires(backend: Backend) {
    let app = spawn_token_app(backend, |_| {}).await;
    let short = sign(
        json!({"sub": "u", "iat": now(), "exp": now() + 2, "docs": {"d": "write"}}),
        SECRET,
    );
    let mut peer = Peer::join_url(&app.ws_url_with_token("ws", "d", &short), "p").await;
    peer.insert(0, "kept").await;
    peer.sync_to(1).await;
    let started = std::time::Instant::now();
    let (code, refused) = peer.drain_until_close().await;
    assert_eq!(
        (code, refused),
        (Some(1006).filter(|_| false).or(Some(4401)), vec![])
    );
    assert_eq!(peer.ws.close_reason.as_deref(), Some("token expired"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.logged_ops("d").await.len(), 1);
}

/// Revoking `user-42`: without the admin key nothing happens (401); with it
/// the live session is closed with 4403 `access revoked`, the old token is
/// refused (401) at the next upgrade, a token issued afterwards works, and
/// all of that still holds after a restart.
async fn a_revoked_subject_is_closed_and_its_old_tokens_refused_even_after_a_restart(
    backend: Backend,
) {
    let app = spawn_token_app(backend, |_| {}).await;
    let old = token("user-42", &[("notes-*", "write")]);
    let mut live = Peer::join_url(&app.ws_url_with_token("ws", "notes-1", &old), "c").await;
    let someone = token("someone-else", &[("notes-*", "write")]);
    let mut bystander =
        Peer::join_url(&app.ws_url_with_token("ws", "notes-1", &someone), "b").await;

    let revoke = json!({"sub": "user-42"});
    let (status, _) = app
        .admin_post("/api/revocations", None, revoke.clone())
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .admin_post(
            "/api/revocations",
            Some("wrong-key-0123456789"),
            revoke.clone(),
        )
        .await;
    assert_eq!(status, 401);
    live.ws
        .hears_nothing_for(Duration::from_millis(200), "nothing was revoked")
        .await;
    let (status, _) = app
        .admin_post("/api/revocations", Some(ADMIN_KEY), revoke)
        .await;
    assert_eq!(status, 204);
    let started = std::time::Instant::now();
    assert!(matches!(live.ws.recv().await, Incoming::Closed(Some(4403))));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(live.ws.close_reason.as_deref(), Some("access revoked"));
    bystander
        .ws
        .hears_nothing_for(Duration::from_millis(200), "other subjects stay")
        .await;
    let path = format!("/ws/notes-1?token={old}");
    assert_eq!(app.upgrade(&path, &[]).await.map_err(|e| e.0), Err(401));

    // A token issued after the revocation (in a later second) works.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let fresh = token("user-42", &[("notes-*", "write")]);
    assert_eq!(
        app.upgrade(&format!("/ws/notes-1?token={fresh}"), &[])
            .await,
        Ok(())
    );

    let app = app.restart().await;
    assert_eq!(
        app.upgrade(&path, &[]).await.map_err(|e| e.0),
        Err(401),
        "kept"
    );
    assert_eq!(
        app.upgrade(&format!("/ws/notes-1?token={fresh}"), &[])
            .await,
        Ok(())
    );
}

/// Mallory, whose token may write the document, tries Alice's client id:
/// her hello is refused (`forbidden`, no welcome, so she never learns
/// Alice's `last_client_op_id`), also after a restart; an op id above
/// 2^53 − 1 is `bad_message`; Alice loses nothing and goes on writing.
async fn a_client_id_cannot_be_taken_over_by_another_subject(backend: Backend) {
    let app = spawn_token_app(backend, |_| {}).await;
    let alice = token("alice", &[("shared", "write")]);
    let mallory = token("mallory", &[("shared", "write")]);
    let mut victim =
        Peer::join_url(&app.ws_url_with_token("ws", "shared", &alice), "phone-1").await;
    for s in ["a", "b", "c"] {
        victim.insert(u32::MAX, s).await;
    }
    victim.sync_to(3).await;

    let mallory_url = app.ws_url_with_token("ws", "shared", &mallory);
    let mut attacker = WsClient::connect_url(&mallory_url).await;
    attacker.hello("phone-1", None, None).await;
    let (messages, code) = attacker.recv_until_close().await;
    assert_eq!(code, Some(1008), "{messages:?}");
    assert_eq!(messages.len(), 1, "no welcome: {messages:?}");
    assert_eq!(messages[0]["code"], "forbidden", "{messages:?}");

    let mut other = WsClient::connect_url(&mallory_url).await;
    other.hello("mallory-1", None, None).await;
    other.recv_json().await;
    other.recv_json().await; // the snapshot
    other
        .send_text(&json!({"type": "op", "client_op_id": 1u64 << 53, "update": "AAA="}).to_string())
        .await;
    let refused = other.recv_json().await;
    assert_eq!(refused["code"], "bad_message", "{refused}");

    victim.insert(u32::MAX, "d").await;
    victim.sync_to(4).await;
    assert_eq!(
        victim.acks.get(&4),
        Some(&4),
        "alice's next op is new, not a duplicate"
    );

    drop(victim);
    let app = app.restart().await;
    let mut attacker =
        WsClient::connect_url(&app.ws_url_with_token("ws", "shared", &mallory)).await;
    attacker.hello("phone-1", None, None).await;
    let (messages, code) = attacker.recv_until_close().await;
    assert_eq!(
        (code, messages[0]["code"].as_str()),
        (Some(1008), Some("forbidden"))
    );
    let victim = Peer::join_url(&app.ws_url_with_token("ws", "shared", &alice), "phone-1").await;
    assert_eq!(victim.welcome["last_client_op_id"], 4);
    assert_eq!(victim.text(), "abcd");
}
