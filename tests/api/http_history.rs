//! History over HTTP: the document at a seq (`?at=`), named versions, and
//! 410 once the store no longer reaches a seq.

use serde_json::json;

use crate::helpers::{ApiCall, Backend, Editor, Peer, spawn_app, spawn_token_app, token};

crate::on_both_backends!(
    the_state_and_content_at_a_seq_equal_a_local_replay_of_the_ops,
    versions_pin_the_head_and_stay_readable,
    a_seq_the_store_no_longer_reaches_is_410_with_the_earliest,
    a_restore_is_a_new_op_every_client_follows,
);

/// `?at=` for seqs around and between snapshots equals what a client gets
/// by applying the same ops itself.
async fn the_state_and_content_at_a_seq_equal_a_local_replay_of_the_ops(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut peer = Peer::join(&app, "history", "writer").await;
    let mut updates = Vec::new();
    for i in 0..120u32 {
        let update = peer.editor.insert(i % 7, &format!("{}", i % 10));
        let op = peer.next_op_id;
        peer.next_op_id += 1;
        peer.ws.send_op(op, &update).await;
        peer.unacked.insert(op, update.clone());
        updates.push(update);
    }
    peer.sync_to(120).await;
    // Snapshots are written with a later commit than the op that made them
    // due: wait for one (every 50 ops in tests).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.snapshot_seqs("history").await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "a snapshot was taken");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for at in [0usize, 1, 17, 49, 50, 51, 99, 100, 101, 120] {
        let local = Editor::new();
        for update in &updates[..at] {
            local.apply(update);
        }
        let state = app
            .api_get(&format!("/api/documents/history/state?at={at}"))
            .await;
        assert_eq!(state.status, 200, "at={at}");
        assert_eq!(state.header("X-Server-Seq"), Some(at.to_string()));
        assert_eq!(
            state.header("ETag"),
            Some(format!("\"{}:{at}\"", peer.epoch))
        );
        let rebuilt = Editor::new();
        rebuilt.apply(&state.body);
        assert_eq!(rebuilt.text(), local.text(), "state at {at}");
        let content = app
            .api_get(&format!(
                "/api/documents/history/content?at={at}&types=content:text"
            ))
            .await
            .json();
        assert_eq!(
            content,
            json!({"server_seq": at, "content": {"content": local.text()}})
        );
    }
    let beyond = app.api_get("/api/documents/history/state?at=121").await;
    assert_eq!(
        (beyond.status, beyond.error().as_str()),
        (400, "bad_request")
    );
    let both = app
        .api_get("/api/documents/history/state?at=1&state_vector=AA%3D%3D")
        .await;
    assert_eq!(both.status, 400);
}

/// A version pins the head under a name (unique per document), is listed,
/// and its seq reads back with `?at=`; read-only access may list, not pin.
async fn versions_pin_the_head_and_stay_readable(backend: Backend) {
    let app = spawn_token_app(backend, |_| {}).await;
    let writer = token("wes", &[("doc", "write")]);
    let reader = token("rita", &[("doc", "read")]);
    let editor = Editor::new();
    let post = |update: Vec<u8>| ApiCall::new("POST", "/api/documents/doc/updates").update(update);
    app.api(post(editor.append("first")).token(&writer)).await;
    let pin = |name: &str| json!({ "name": name });
    let path = "/api/documents/doc/versions";
    let pinned = app
        .api(
            ApiCall::new("POST", path)
                .json(&pin("before launch"))
                .token(&writer),
        )
        .await;
    assert_eq!(pinned.status, 201, "{:?}", pinned.body);
    assert_eq!(pinned.json()["server_seq"], 1);
    assert_eq!(pinned.json()["name"], "before launch");
    app.api(post(editor.append(" second")).token(&writer)).await;
    let taken = app
        .api(
            ApiCall::new("POST", path)
                .json(&pin("before launch"))
                .token(&writer),
        )
        .await;
    assert_eq!(
        (taken.status, taken.error().as_str()),
        (409, "version_exists")
    );
    let refused = app
        .api(ApiCall::new("POST", path).json(&pin("mine")).token(&reader))
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        app.api(ApiCall::new("POST", path).json(&pin("")))
            .await
            .status,
        401
    );
    let empty = app
        .api(ApiCall::new("POST", path).json(&pin("")).token(&writer))
        .await;
    assert_eq!(empty.status, 400);
    app.api(
        ApiCall::new("POST", path)
            .json(&pin("after"))
            .token(&writer),
    )
    .await;

    let listed = app
        .api(ApiCall::new("GET", path).token(&reader))
        .await
        .json();
    let versions: Vec<(u64, &str)> = listed["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["server_seq"].as_u64().unwrap_or(0),
                v["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(versions, vec![(1, "before launch"), (2, "after")]);
    let at = app
        .api(
            ApiCall::new("GET", "/api/documents/doc/content?at=1&types=content:text")
                .token(&reader),
        )
        .await
        .json();
    assert_eq!(at["content"]["content"], "first");
    let missing = app
        .api(ApiCall::new("GET", "/api/documents/other/versions").token(crate::helpers::ADMIN_KEY))
        .await;
    assert_eq!(missing.status, 404);
}

/// With the start of the log gone (as compaction will remove it), a seq
/// below the oldest snapshot is 410 `compacted` naming the earliest seq
/// still answered, and that seq answers.
async fn a_seq_the_store_no_longer_reaches_is_410_with_the_earliest(backend: Backend) {
    use entity::{operations, snapshots};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app(backend).await;
    let editor = Editor::new();
    for i in 0..60 {
        let answer = app
            .post_update("old", editor.append(&format!("{i},")))
            .await;
        assert_eq!(answer.status, 200);
    }
    // The snapshot due at op 50 is written with a later commit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let oldest = loop {
        if let Some(first) = app.snapshot_seqs("old").await.first() {
            break *first;
        }
        assert!(std::time::Instant::now() < deadline, "a snapshot was taken");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let db = app.engine.store().connection();
    operations::Entity::delete_many()
        .filter(operations::Column::DocumentId.eq("old"))
        .filter(operations::Column::ServerSeq.lte(oldest as i64))
        .exec(db)
        .await
        .expect("delete the start of the log");
    snapshots::Entity::delete_many()
        .filter(snapshots::Column::DocumentId.eq("old"))
        .filter(snapshots::Column::ServerSeq.gt(oldest as i64))
        .exec(db)
        .await
        .expect("keep one snapshot");
    let gone = app
        .api_get(&format!("/api/documents/old/state?at={}", oldest - 1))
        .await;
    assert_eq!(gone.status, 410, "{:?}", gone.body);
    assert_eq!(gone.json()["error"], "compacted");
    assert_eq!(gone.json()["earliest"], oldest);
    let content = app.api_get("/api/documents/old/content?at=3").await;
    assert_eq!(content.status, 410);
    let earliest = app
        .api_get(&format!("/api/documents/old/state?at={oldest}"))
        .await;
    assert_eq!(earliest.status, 200);
    let head = app.api_get("/api/documents/old/state?at=60").await;
    assert_eq!(head.status, 200);
    let rebuilt = Editor::new();
    rebuilt.apply(&head.body);
    assert_eq!(rebuilt.text(), editor.text());
}

/// A restore commits one new op (client id `restore`) that connected
/// clients apply like any other; the text equals the old one; the log
/// keeps every op; nobody else may write as `restore`.
async fn a_restore_is_a_new_op_every_client_follows(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut peer = Peer::join(&app, "restored", "writer").await;
    peer.insert(0, "version one").await;
    peer.sync_to(1).await;
    peer.insert(0, "draft: ").await;
    peer.insert(100, " and more").await;
    peer.sync_to(3).await;
    let path = "/api/documents/restored/restore";
    let answer = app
        .api(ApiCall::new("POST", path).json(&json!({"server_seq": 1})))
        .await;
    assert_eq!(answer.json(), json!({"server_seq": 4}), "{:?}", answer.body);
    peer.sync_to(4).await;
    assert_eq!(peer.text(), "version one");
    assert_eq!(peer.stream, vec![1, 2, 3, 4]);
    let logged = app.logged_ops("restored").await;
    assert_eq!(logged.len(), 4);
    assert_eq!(logged[3].1, "restore");
    // Restoring what is already there changes the document again (one op),
    // and the history still reads the old seqs.
    let again = app
        .api(ApiCall::new("POST", path).json(&json!({"server_seq": 4})))
        .await;
    assert_eq!(again.json()["server_seq"], 5);
    peer.sync_to(5).await;
    assert_eq!(peer.text(), "version one");
    let at3 = app
        .api_get("/api/documents/restored/content?at=3&types=content:text")
        .await
        .json();
    assert_eq!(at3["content"]["content"], "draft: version one and more");

    let beyond = app
        .api(ApiCall::new("POST", path).json(&json!({"server_seq": 99})))
        .await;
    assert_eq!(beyond.status, 400);
    let bad = app
        .api(ApiCall::new("POST", path).json(&json!({"seq": 1})))
        .await;
    assert_eq!(bad.status, 400);
    let missing = app
        .api(ApiCall::new("POST", "/api/documents/nothing/restore").json(&json!({"server_seq": 0})))
        .await;
    assert_eq!(missing.status, 404);
    // The client id is the server's.
    let mut impostor = crate::helpers::WsClient::connect(&app, "restored").await;
    impostor.hello("restore", None, None).await;
    let refused = impostor.recv_json().await;
    assert_eq!(refused["type"], "error", "{refused}");
}

/// Restoring needs write access.
#[actix_web::test]
async fn a_read_only_token_cannot_restore() {
    let app = spawn_token_app(Backend::Sqlite, |_| {}).await;
    let writer = token("wes", &[("doc", "write")]);
    let reader = token("rita", &[("doc", "read")]);
    let editor = Editor::new();
    let post = ApiCall::new("POST", "/api/documents/doc/updates").update(editor.append("x"));
    app.api(post.token(&writer)).await;
    let path = "/api/documents/doc/restore";
    let body = json!({"server_seq": 0});
    let refused = app
        .api(ApiCall::new("POST", path).json(&body).token(&reader))
        .await;
    assert_eq!(refused.status, 403);
    let done = app
        .api(ApiCall::new("POST", path).json(&body).token(&writer))
        .await;
    assert_eq!(done.json(), json!({"server_seq": 2}));
}
