//! The HTTP API for documents over a real server: writing an op with
//! POST, reading state, content and metadata, listing, deleting, and who
//! may call what.

use serde_json::json;

use crate::helpers::{
    ADMIN_KEY, ApiAnswer, ApiCall, Backend, Editor, Peer, TestApp, b64, spawn_app, spawn_token_app,
    token,
};

crate::on_both_backends!(
    an_update_posted_over_http_is_committed_broadcast_and_in_the_state,
    a_repeated_post_is_a_duplicate_with_the_original_seq,
    documents_are_described_listed_and_paged_from_the_store,
    delete_closes_sessions_with_4404_and_the_next_connection_gets_a_new_epoch,
);

/// POST answers after the commit with the next seq; a connected native
/// client gets it as an `op` with that seq; `state` holds it (ETag and
/// 304 included), and a state vector gets only what it lacks.
async fn an_update_posted_over_http_is_committed_broadcast_and_in_the_state(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut peer = Peer::join(&app, "posted", "alice").await;
    peer.insert(0, "hello").await;
    peer.sync_to(1).await;
    let http = Editor::new();
    http.apply(&peer.editor.full_state());
    let answer = app.post_update("posted", http.append(" world")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.json(), json!({"server_seq": 2, "duplicate": false}));
    peer.sync_to(2).await;
    assert_eq!(peer.text(), "hello world");
    assert_eq!(peer.stream, vec![1, 2]);

    let state = app.api_get("/api/documents/posted/state").await;
    assert_eq!(state.status, 200);
    assert_eq!(state.header("X-Server-Seq").as_deref(), Some("2"));
    assert_eq!(
        state.header("Content-Type").as_deref(),
        Some("application/octet-stream")
    );
    let reader = Editor::new();
    reader.apply(&state.body);
    assert_eq!(reader.text(), "hello world");
    let etag = state.header("ETag").expect("an ETag");
    assert_eq!(etag, format!("\"{}:2\"", peer.epoch));
    let cached = app
        .api(ApiCall::new("GET", "/api/documents/posted/state").header("If-None-Match", &etag))
        .await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());

    // What a client holding only "hello" lacks.
    let behind = Editor::new();
    behind.apply(&first_op_state(&app, "posted").await);
    let sv = b64(&behind.state_vector())
        .replace('+', "%2B")
        .replace('/', "%2F");
    let diff = app
        .api_get(&format!("/api/documents/posted/state?state_vector={sv}"))
        .await;
    assert_eq!(diff.status, 200);
    assert!(diff.body.len() < state.body.len(), "only the missing part");
    behind.apply(&diff.body);
    assert_eq!(behind.text(), "hello world");
    let bad = app
        .api_get("/api/documents/posted/state?state_vector=AAAA%2F%2F%2F%2F")
        .await;
    assert_eq!(
        (bad.status, bad.error().as_str()),
        (400, "invalid_state_vector")
    );

    // Bad bodies are refused, naming the problem; the document is unharmed.
    let garbage = app.post_update("posted", vec![1, 2, 3]).await;
    assert_eq!(
        (garbage.status, garbage.error().as_str()),
        (400, "invalid_update")
    );
    let text = app
        .api(
            ApiCall::new("POST", "/api/documents/posted/updates").body("text/plain", b"x".to_vec()),
        )
        .await;
    assert_eq!(
        (text.status, text.error().as_str()),
        (415, "unsupported_media_type")
    );
    let huge = vec![0u8; app.settings.documents.max_message_bytes + 1];
    let too_large = app.post_update("posted", huge).await;
    assert_eq!(
        (too_large.status, too_large.error().as_str()),
        (413, "message_too_large")
    );
    let wrong = app
        .api(ApiCall::new("PUT", "/api/documents/posted/updates").update(vec![0]))
        .await;
    assert_eq!(wrong.status, 405);
    peer.insert(11, "!").await;
    peer.sync_to(3).await;
    assert_eq!(peer.stream, vec![1, 2, 3]);
}

/// The state after op 1 only (read from the op log through the feed).
async fn first_op_state(app: &crate::helpers::TestApp, document_id: &str) -> Vec<u8> {
    let page = app
        .api_get(&format!("/api/documents/{document_id}/ops?since=0&limit=1"))
        .await
        .json();
    crate::helpers::unb64(page["ops"][0]["update"].as_str().expect("op 1"))
}

/// `Idempotency-Key` and `(client_id, client_op_id)` both make a resend a
/// duplicate answered with the original seq, logged once.
async fn a_repeated_post_is_a_duplicate_with_the_original_seq(backend: Backend) {
    let app = spawn_app(backend).await;
    let editor = Editor::new();
    let first = editor.append("a");
    let keyed = |update: Vec<u8>| {
        ApiCall::new("POST", "/api/documents/idem/updates")
            .header("Idempotency-Key", "order-42")
            .update(update)
    };
    let original = app.api(keyed(first.clone())).await;
    assert_eq!(
        original.json(),
        json!({"server_seq": 1, "duplicate": false})
    );
    let again = app.api(keyed(first)).await;
    assert_eq!(again.json(), json!({"server_seq": 1, "duplicate": true}));

    let second = b64(&editor.append("b"));
    let body = json!({"update": second, "client_id": "importer", "client_op_id": 7});
    let path = "/api/documents/idem/updates";
    let posted = app.api(ApiCall::new("POST", path).json(&body)).await;
    assert_eq!(posted.json(), json!({"server_seq": 2, "duplicate": false}));
    let resent = app.api(ApiCall::new("POST", path).json(&body)).await;
    assert_eq!(resent.json(), json!({"server_seq": 2, "duplicate": true}));
    // Without a key each POST is an op of its own.
    let plain = app.post_update("idem", editor.append("c")).await;
    assert_eq!(plain.json()["server_seq"], 3);
    assert_eq!(app.logged_ops("idem").await.len(), 3);

    let half = json!({"update": b64(&editor.append("d")), "client_id": "x"});
    let refused = app.api(ApiCall::new("POST", path).json(&half)).await;
    assert_eq!(
        (refused.status, refused.error().as_str()),
        (400, "bad_request")
    );
    let long_key = app
        .api(keyed(editor.append("e")).header("Idempotency-Key", "k".repeat(60)))
        .await;
    assert_eq!(long_key.status, 400);
}

/// Metadata and the list come from the store: a never-written document is
/// 404 (and not created by asking), pages follow `next`.
async fn documents_are_described_listed_and_paged_from_the_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = app.api_get("/api/documents/never").await;
    assert_eq!(
        (missing.status, missing.error().as_str()),
        (404, "not_found")
    );
    assert_eq!(app.api_get("/api/documents/never/state").await.status, 404);
    let editor = Editor::new();
    for id in ["b", "a", "c/with%2Fslash", "d"] {
        let answer = app.post_update(id, editor.append(id)).await;
        assert_eq!(answer.status, 200, "{id}");
    }
    let mut peer = Peer::join(&app, "a", "viewer").await;
    let info = app.api_get("/api/documents/a").await.json();
    assert_eq!(info["document_id"], "a");
    assert_eq!(info["server_seq"], 1);
    assert_eq!(info["epoch"].as_str(), Some(peer.epoch.as_str()));
    assert_eq!(info["sessions"], 1);
    for key in ["snapshot_seq", "created_at", "updated_at"] {
        assert!(!info[key].is_null(), "{key} in {info}");
    }
    peer.ws.close().await;

    let first = app.api_get("/api/documents?limit=2").await.json();
    let ids: Vec<&str> = first["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .filter_map(|d| d["document_id"].as_str())
        .collect();
    assert_eq!(ids, vec!["a", "b"]);
    assert_eq!(first["next"], "b");
    let rest = app.api_get("/api/documents?after=b&limit=10").await.json();
    let ids: Vec<&str> = rest["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .filter_map(|d| d["document_id"].as_str())
        .collect();
    assert_eq!(ids, vec!["c/with/slash", "d"]);
    assert_eq!(rest["next"], serde_json::Value::Null);
    assert_eq!(app.api_get("/api/documents?limit=0").await.status, 400);
    assert_eq!(app.api_get("/api/documents/never").await.status, 404);
}

/// DELETE closes every session with 4404, removes the ops durably; the
/// next connection creates a new document (new epoch, seq 0), and a
/// client holding the old epoch gets a snapshot.
async fn delete_closes_sessions_with_4404_and_the_next_connection_gets_a_new_epoch(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut peer = Peer::join(&app, "doomed", "alice").await;
    peer.insert(0, "bye").await;
    peer.sync_to(1).await;
    let old_epoch = peer.epoch.clone();
    let deleted = app
        .api(ApiCall::new("DELETE", "/api/documents/doomed"))
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let (code, _) = peer.drain_until_close().await;
    assert_eq!(code, Some(4404));
    assert_eq!(peer.ws.close_reason.as_deref(), Some("document deleted"));
    assert!(app.logged_ops("doomed").await.is_empty());
    assert_eq!(app.api_get("/api/documents/doomed").await.status, 404);
    let again = app
        .api(ApiCall::new("DELETE", "/api/documents/doomed"))
        .await;
    assert_eq!(again.status, 404);

    let peer = peer.rejoin(&app, "doomed").await;
    assert_ne!(peer.epoch, old_epoch);
    assert_eq!(peer.welcome["recovery"], "snapshot");
    assert_eq!(peer.welcome["server_seq"], 0);
}

/// Every route refuses a caller without the permission it needs, and the
/// admin key may do everything.
#[actix_web::test]
async fn every_route_refuses_a_token_without_the_needed_permission() {
    let app = spawn_token_app(Backend::Sqlite, |_| {}).await;
    let reader = token("rita", &[("doc", "read")]);
    let writer = token("wes", &[("doc", "write")]);
    let other = token("olga", &[("elsewhere", "write")]);
    let (reader, writer, other) = (reader.as_str(), writer.as_str(), other.as_str());
    let editor = Editor::new();
    let update = editor.append("x");

    assert_eq!(post_as(&app, update.clone(), None).await.status, 401);
    assert_eq!(
        post_as(&app, update.clone(), Some(reader)).await.status,
        403
    );
    assert_eq!(post_as(&app, update.clone(), Some(other)).await.status, 403);
    assert_eq!(
        post_as(&app, update.clone(), Some("not-a-jwt"))
            .await
            .status,
        401
    );
    let written = post_as(&app, update.clone(), Some(writer)).await;
    assert_eq!(written.json(), json!({"server_seq": 1, "duplicate": false}));

    for path in [
        "/api/documents/doc",
        "/api/documents/doc/state",
        "/api/documents/doc/content",
        "/api/documents/doc/ops",
    ] {
        assert_eq!(app.api_get(path).await.status, 401, "{path}");
        let as_other = app.api(ApiCall::new("GET", path).token(other)).await;
        assert_eq!(as_other.status, 403, "{path}");
        let as_reader = app.api(ApiCall::new("GET", path).token(reader)).await;
        assert_eq!(as_reader.status, 200, "{path}");
        let with_query = app.api_get(&format!("{path}?token={reader}")).await;
        assert_eq!(with_query.status, 200, "{path} with ?token=");
    }
    for (method, path) in [("GET", "/api/documents"), ("DELETE", "/api/documents/doc")] {
        for t in [reader, writer] {
            let refused = app.api(ApiCall::new(method, path).token(t)).await;
            assert_eq!(refused.status, 403, "{method} {path}");
        }
        assert_eq!(app.api(ApiCall::new(method, path)).await.status, 401);
    }
    // A client id belongs to the subject that first wrote with it.
    let other_writer = token("wanda", &[("doc", "write")]);
    let as_client = |update: Vec<u8>, op: u64| json!({"update": b64(&update), "client_id": "shared", "client_op_id": op});
    let path = "/api/documents/doc/updates";
    let first = as_client(editor.append("y"), 1);
    let claimed = app
        .api(ApiCall::new("POST", path).json(&first).token(writer))
        .await;
    assert_eq!(claimed.json()["server_seq"], 2);
    let second = as_client(editor.append("z"), 2);
    let taken = app
        .api(
            ApiCall::new("POST", path)
                .json(&second)
                .token(&other_writer),
        )
        .await;
    assert_eq!((taken.status, taken.error().as_str()), (403, "forbidden"));

    let listed = app
        .api(ApiCall::new("GET", "/api/documents").token(ADMIN_KEY))
        .await;
    assert_eq!(listed.json()["documents"][0]["document_id"], "doc");
    let admin_post = post_as(&app, update.clone(), Some(ADMIN_KEY)).await;
    assert_eq!(admin_post.json()["server_seq"], 3);
    let deleted = app
        .api(ApiCall::new("DELETE", "/api/documents/doc").token(ADMIN_KEY))
        .await;
    assert_eq!(deleted.status, 204);
}

async fn post_as(app: &TestApp, update: Vec<u8>, token: Option<&str>) -> ApiAnswer {
    let call = ApiCall::new("POST", "/api/documents/doc/updates").update(update);
    app.api(match token {
        Some(token) => call.token(token),
        None => call,
    })
    .await
}

/// The curl example of docs/http-api.md writes what the doc says it does.
#[actix_web::test]
async fn the_curl_example_of_the_docs_writes_its_text() {
    let docs = include_str!("../../docs/http-api.md");
    let update = docs
        .split("\"update\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the example update in docs/http-api.md");
    let app = spawn_app(Backend::Sqlite).await;
    let path = "/api/documents/notes/updates";
    let posted = app
        .api(ApiCall::new("POST", path).json(&json!({ "update": update })))
        .await;
    assert_eq!(posted.json(), json!({"server_seq": 1, "duplicate": false}));
    let content = app
        .api_get("/api/documents/notes/content?types=content:text")
        .await
        .json();
    assert_eq!(
        content,
        json!({"server_seq": 1, "content": {"content": "Hello from curl! "}})
    );
}

/// A POST whose commit fails is answered 503 with `Retry-After`; sent
/// again with the same key it is applied exactly once, whether the failed
/// commit did not reach storage or did and only its answer failed.
#[actix_web::test]
async fn a_post_answered_503_is_applied_once_when_sent_again_with_its_key() {
    let app = spawn_app(Backend::Sqlite).await;
    let editor = Editor::new();
    let keyed = |key: &'static str, update: Vec<u8>| {
        ApiCall::new("POST", "/api/documents/flaky-http/updates")
            .header("Idempotency-Key", key)
            .update(update)
    };
    let first = app.api(keyed("k0", editor.append("a"))).await;
    assert_eq!(first.json()["server_seq"], 1);
    for (when, key, seq) in [("before", "k1", 2), ("after", "k2", 3)] {
        let fault = format!("fail-commits?count=1&when={when}");
        assert_eq!(app.inject("flaky-http", &fault).await, 200);
        let update = editor.append(key);
        let failed = app.api(keyed(key, update.clone())).await;
        assert_eq!(
            (failed.status, failed.error().as_str()),
            (503, "unavailable"),
            "{when}"
        );
        assert_eq!(failed.header("Retry-After").as_deref(), Some("1"));
        // The document may be reloading: retry as a client would.
        let mut answer = app.api(keyed(key, update.clone())).await;
        for _ in 0..50 {
            if answer.status != 503 {
                break;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
            answer = app.api(keyed(key, update.clone())).await;
        }
        assert_eq!(answer.status, 200, "{when}: {:?}", answer.body);
        assert_eq!(answer.json()["server_seq"], seq, "{when}");
        // Landed before: a duplicate; did not land: a new op. Once, either way.
        assert_eq!(answer.json()["duplicate"], when == "after", "{when}");
    }
    let logged = app.logged_ops("flaky-http").await;
    assert_eq!(logged.len(), 3, "every op logged once: {logged:?}");
}
