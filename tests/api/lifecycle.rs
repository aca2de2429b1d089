//! Document and server life cycle: idle unload, graceful shutdown, refusal
//! of a corrupt log, HTTP-level validation, storage faults.

use std::time::Duration;

use entity::operations;
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait};

use crate::helpers::{
    Backend, Incoming, Peer, TestApp, WsClient, spawn_app, spawn_app_with, write_log,
};

crate::on_both_backends!(
    an_idle_document_is_snapshotted_and_unloaded,
    graceful_shutdown_snapshots_and_closes_sockets_with_1001,
    a_gap_in_the_op_log_refuses_the_document,
    a_long_log_loads_in_chunks_and_keeps_its_tail_for_replay,
    a_gap_deep_in_a_long_log_refuses_the_document,
);

/// Makes every insert into the op log fail, through a database trigger,
/// until removed. A real database error, not a mock.
pub struct OpLogFault;

impl OpLogFault {
    pub async fn install(app: &TestApp) -> OpLogFault {
        let db = app.engine.store().connection();
        match db.get_database_backend() {
            DatabaseBackend::Sqlite => {
                db.execute_unprepared(
                    "CREATE TRIGGER collab_test_fault BEFORE INSERT ON operations \
                     BEGIN SELECT RAISE(ABORT, 'injected fault: op log refuses writes'); END;",
                )
                .await
                .expect("install sqlite trigger");
            }
            _ => {
                db.execute_unprepared(
                    "CREATE FUNCTION collab_test_fault() RETURNS trigger AS $$ \
                     BEGIN RAISE EXCEPTION 'injected fault: op log refuses writes'; END; \
                     $$ LANGUAGE plpgsql",
                )
                .await
                .expect("install pg function");
                db.execute_unprepared(
                    "CREATE TRIGGER collab_test_fault BEFORE INSERT ON operations \
                     FOR EACH ROW EXECUTE FUNCTION collab_test_fault()",
                )
                .await
                .expect("install pg trigger");
            }
        }
        OpLogFault
    }

    pub async fn remove(self, app: &TestApp) {
        let db = app.engine.store().connection();
        match db.get_database_backend() {
            DatabaseBackend::Sqlite => {
                db.execute_unprepared("DROP TRIGGER collab_test_fault")
                    .await
                    .expect("drop trigger");
            }
            _ => {
                db.execute_unprepared("DROP TRIGGER collab_test_fault ON operations")
                    .await
                    .expect("drop trigger");
                db.execute_unprepared("DROP FUNCTION collab_test_fault()")
                    .await
                    .expect("drop function");
            }
        }
    }
}

/// With `idle_unload_secs = 1`, a document without sessions writes a final
/// snapshot, leaves memory, and loads again on the next join.
async fn an_idle_document_is_snapshotted_and_unloaded(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.documents.idle_unload_secs = 1).await;
    let mut peer = Peer::join(&app, "idle", "p").await;
    for s in ["a", "b", "c"] {
        peer.insert(u32::MAX, s).await;
    }
    peer.sync_to(3).await;
    assert_eq!(app.engine.stats().await.documents_loaded, 1);
    peer.ws.close().await;
    assert!(
        app.wait_for_loaded_documents(0, Duration::from_secs(10))
            .await,
        "the idle document unloads"
    );
    assert_eq!(app.snapshot_seqs("idle").await, vec![3]);
    let again = Peer::join(&app, "idle", "q").await;
    assert_eq!(again.text(), "abc");
    assert_eq!(again.welcome["server_seq"], 3);
    assert_eq!(app.engine.stats().await.documents_loaded, 1);
}

/// Shutdown commits, snapshots every loaded document, and closes every
/// socket (joined or still waiting for hello) with 1001.
async fn graceful_shutdown_snapshots_and_closes_sockets_with_1001(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut peer = Peer::join(&app, "bye", "p").await;
    for s in ["1", "2"] {
        peer.insert(u32::MAX, s).await;
    }
    peer.sync_to(2).await;
    let mut silent = WsClient::connect(&app, "bye").await;
    app.shutdown().await;
    for ws in [&mut peer.ws, &mut silent] {
        let (messages, code) = ws.recv_until_close().await;
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(code, Some(1001));
    }
    assert_eq!(app.snapshot_seqs("bye").await, vec![2]);
}

/// 2,600 logged ops and no snapshot, with `max_replay_ops = 100`: the
/// load streams the first 2,500 in chunks (more than two of them) and
/// keeps the newest 100 in memory. The state is the whole log; a client
/// 60 ops behind is replayed exactly those ops; the writer's mark comes
/// from the log.
async fn a_long_log_loads_in_chunks_and_keeps_its_tail_for_replay(backend: Backend) {
    let app = spawn_app(backend).await;
    let text = write_log(app.engine.store().connection(), "long", 1..=2600).await;

    let reader = Peer::join(&app, "long", "reader").await;
    assert_eq!(reader.welcome["server_seq"], 2600);
    assert_eq!(reader.text(), text);

    let mut behind = Peer::join(&app, "long", "behind").await;
    behind.last_seen = 2540;
    let mut behind = behind.rejoin(&app, "long").await;
    assert_eq!(behind.welcome["recovery"], "replay");
    behind.sync_to(2600).await;
    assert_eq!(
        behind.stream,
        (2541..=2600).collect::<Vec<u64>>(),
        "exactly the missing ops, in order"
    );

    let writer = Peer::join(&app, "long", "w").await;
    assert_eq!(writer.welcome["last_client_op_id"], 2600);
    let mut writer = writer;
    writer.next_op_id = 2601;
    let len = writer.editor.len();
    writer.insert(len, "!").await;
    writer.sync_to(2601).await;
    assert_eq!(writer.text(), format!("{text}!"));
}

/// Op 700 of 2,600 is missing: the gap lies in the streamed part of the
/// log, not in the in-memory tail, and is refused all the same.
async fn a_gap_deep_in_a_long_log_refuses_the_document(backend: Backend) {
    let app = spawn_app(backend).await;
    write_log(
        app.engine.store().connection(),
        "deep-gap",
        (1..=2600).filter(|seq| *seq != 700),
    )
    .await;
    let mut ws = WsClient::connect(&app, "deep-gap").await;
    ws.hello("reader", None, None).await;
    let (messages, code) = ws.recv_until_close().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["code"], "unavailable");
    let message = messages[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("expected server_seq 700, found 701"),
        "{message}"
    );
    assert_eq!(code, Some(1013));
}

/// Ops 1 and 3 but no 2: the document is refused (`unavailable`, close
/// 1013) instead of being served with a wrong state; other documents keep
/// working.
async fn a_gap_in_the_op_log_refuses_the_document(backend: Backend) {
    let app = spawn_app(backend).await;
    write_log(app.engine.store().connection(), "gappy", [1, 3].into_iter()).await;
    let mut ws = WsClient::connect(&app, "gappy").await;
    ws.hello("reader", None, None).await;
    let (messages, code) = ws.recv_until_close().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["code"], "unavailable");
    assert!(
        messages[0]["message"].as_str().unwrap().contains("gap"),
        "{}",
        messages[0]
    );
    assert_eq!(code, Some(1013));

    let mut fine = Peer::join(&app, "fine", "p").await;
    fine.insert(0, "ok").await;
    fine.sync_to(1).await;
}

/// Document ids that are empty, longer than 512 bytes, hold a control
/// character or are not UTF-8 once percent-decoded are refused with HTTP
/// 400 before the upgrade, with a JSON body naming the problem.
#[actix_web::test]
async fn invalid_document_ids_get_http_400() {
    let app = spawn_app(Backend::Sqlite).await;
    let long = "a".repeat(513);
    let long_encoded = "%C3%A9".repeat(257);
    for (bad, names) in [
        ("", "1 to 512 bytes"),
        ("a%0Ab", "control characters"),
        ("tab%09", "control characters"),
        ("nul%00", "control characters"),
        ("%FF%FE", "UTF-8"),
        ("half%C3", "UTF-8"),
        (long.as_str(), "got 513"),
        (long_encoded.as_str(), "got 514"),
    ] {
        let url = format!("ws://127.0.0.1:{}/ws/{bad}", app.port);
        match awc::Client::new().ws(url.as_str()).connect().await {
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                assert_eq!(status.as_u16(), 400, "{bad}")
            }
            Err(e) => panic!("{bad}: unexpected error {e}"),
            Ok(_) => panic!("{bad}: upgrade accepted"),
        }
        let mut response = awc::Client::new()
            .get(format!("http://127.0.0.1:{}/yjs/{bad}", app.port))
            .send()
            .await
            .expect("http request");
        assert_eq!(response.status().as_u16(), 400, "{bad}");
        let body: serde_json::Value = response.json().await.expect("json body");
        assert_eq!(body["error"], "invalid_document_id");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{bad}: {message}");
    }
    // The longest valid id works.
    let mut ws = WsClient::connect(&app, &"a".repeat(512)).await;
    ws.hello("c", None, None).await;
    assert!(matches!(ws.recv().await, Incoming::Json(v) if v["type"] == "welcome"));
}

#[actix_web::test]
async fn health_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = awc::Client::new()
        .get(format!("http://127.0.0.1:{}/health", app.port))
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success());
}

/// SQLite's own checkpoints would wait until the WAL holds 10,000 pages;
/// the engine's background checkpointer copies committed ops into the
/// database file within about a second. Read through `immutable=true`,
/// which ignores the WAL, the file itself must hold them.
#[actix_web::test]
async fn committed_ops_reach_the_sqlite_file_through_background_checkpoints() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut peer = Peer::join(&app, "ckpt", "p").await;
    for s in ["a", "b", "c"] {
        peer.insert(u32::MAX, s).await;
    }
    peer.sync_to(3).await;
    let path = app
        .db
        .url
        .strip_prefix("sqlite://")
        .expect("a SQLite URL")
        .to_owned();
    let file_only = format!("sqlite://{path}?mode=ro&immutable=true");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let db = sea_orm::Database::connect(file_only.as_str())
            .await
            .expect("open the file read-only");
        // Until the first checkpoint even the schema is only in the WAL.
        let in_file = operations::Entity::find()
            .all(&db)
            .await
            .map_or(0, |rows| rows.len());
        db.close().await.expect("close");
        if in_file == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file holds {in_file} of 3 committed ops after 10 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}
