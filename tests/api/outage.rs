//! Database outages: while storage refuses writes or is unreachable, ops
//! are answered `unavailable` (never acked; the writer's session is closed
//! with 1013 so it resends in order after reconnecting), the server stays
//! up and keeps serving the documents it has loaded; when storage is back,
//! writes resume with no restart.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};

use crate::helpers::{Backend, Peer, TestApp, spawn_app_with, writer_and_watcher};
use crate::pg_cluster::PgCluster;

/// Writes `a`, then checks the outage behaviour while `outage` is in
/// effect, then again after `recovery`.
async fn ops_during_an_outage_are_refused_then_resume(
    app: &TestApp,
    document_id: &str,
    expect_ready_during_outage: u16,
    outage: impl std::future::Future<Output = ()>,
    recovery: impl std::future::Future<Output = ()>,
) {
    let (mut writer, mut watcher) =
        writer_and_watcher(app, document_id, ["writer", "watcher"], "a").await;

    outage.await;
    let op_id = writer.insert(1, "b").await;
    writer.expect_refused(&[op_id]).await;
    watcher
        .ws
        .hears_nothing_for(
            Duration::from_millis(300),
            "nothing is broadcast during the outage",
        )
        .await;
    assert_eq!(app.get_status("/health").await, 200);
    assert_eq!(app.get_status("/ready").await, expect_ready_during_outage);
    // Reads go on: a new client gets the current state from memory.
    let reader = Peer::join(app, document_id, "reader").await;
    assert_eq!(reader.text(), "a");
    assert_eq!(reader.welcome["server_seq"], 1);

    recovery.await;
    assert_eq!(app.get_status("/ready").await, 200);
    let mut writer = writer.rejoin(app, document_id).await;
    writer.resend_unacked().await;
    writer.sync_to(2).await;
    watcher.sync_to(2).await;
    assert_eq!(watcher.text(), "ab");
    let mut reader = reader;
    reader.sync_to(2).await;
    let metrics = app.engine.metrics();
    assert!(metrics.commit_failures >= 1);
    assert_eq!(metrics.document_restarts, 0, "the document never restarted");
}

/// SQLite: another process holds the write lock (`BEGIN EXCLUSIVE`); our
/// writes fail after `sqlite_busy_timeout_ms`, reads still work. The
/// database still answers a ping, but `/ready` is 503: commits fail.
#[actix_web::test]
async fn sqlite_locked_by_another_process() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database.sqlite_busy_timeout_ms = 200;
    })
    .await;
    let url = collab_engine::store::normalize_sqlite_url(&app.db.url);
    let intruder = Database::connect(url.as_str())
        .await
        .expect("second connection");
    ops_during_an_outage_are_refused_then_resume(
        &app,
        "locked",
        503,
        async {
            intruder
                .execute_unprepared("BEGIN EXCLUSIVE")
                .await
                .expect("take the write lock");
        },
        async {
            intruder
                .execute_unprepared("ROLLBACK")
                .await
                .expect("release the write lock");
        },
    )
    .await;
}

/// PostgreSQL: the server itself is stopped (every connection dropped)
/// and started again. `/ready` answers 503 meanwhile.
#[actix_web::test]
async fn postgres_server_stopped_and_started_again() {
    let Some(cluster) = PgCluster::start() else {
        eprintln!("skipped: PostgreSQL server binaries (initdb, pg_ctl) not installed");
        return;
    };
    let app = spawn_app_with(
        Backend::Postgres {
            admin_url: cluster.url(),
        },
        |s| s.database.acquire_timeout_ms = 500,
    )
    .await;
    ops_during_an_outage_are_refused_then_resume(
        &app,
        "outage",
        503,
        async { cluster.stop() },
        async { cluster.start_again() },
    )
    .await;
    drop(app);
    assert!(cluster.dir().exists());
}
