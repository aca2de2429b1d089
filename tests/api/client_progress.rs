//! Exactly-once without the op log: duplicate detection and
//! `last_client_op_id` come from `client_progress`, written with the ops,
//! so they survive the removal of old ops (as compaction will remove
//! them).

use std::time::{Duration, Instant};

use bytes::Bytes;
use collab_engine::crdt::decode_update;

use crate::helpers::{Backend, Editor, TestDatabase, WsClient, spawn_app};

crate::on_both_backends!(
    a_resend_of_a_removed_op_is_still_a_duplicate,
    the_migration_fills_the_progress_of_an_existing_log,
);

/// Ops 1..=50 are removed (a snapshot at 50 holds them); after a restart
/// a resend of op 1 is a duplicate with its seq, nothing is logged again,
/// and a reconnecting client's `last_client_op_id` is right.
async fn a_resend_of_a_removed_op_is_still_a_duplicate(backend: Backend) {
    use entity::operations;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app(backend).await;
    let documents = app.engine.documents();
    let editor = Editor::new();
    let valid = |update: Vec<u8>| decode_update(Bytes::from(update)).expect("update");
    let early = editor.append("early ");
    let first = documents
        .submit("kept", "early", 5, valid(early.clone()))
        .await
        .expect("committed");
    assert_eq!(first.server_seq, Some(1));
    for op in 1..=59 {
        documents
            .submit("kept", "importer", op, valid(editor.append("x")))
            .await
            .expect("committed");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.snapshot_seqs("kept").await.contains(&50) {
        assert!(Instant::now() < deadline, "the snapshot at 50 was written");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    operations::Entity::delete_many()
        .filter(operations::Column::DocumentId.eq("kept"))
        .filter(operations::Column::ServerSeq.lte(50))
        .exec(app.engine.store().connection())
        .await
        .expect("remove the old ops");

    let app = app.restart().await;
    let documents = app.engine.documents();
    let resent = documents
        .submit("kept", "early", 5, valid(early))
        .await
        .expect("answered");
    assert!(resent.duplicate, "{resent:?}");
    assert_eq!(resent.server_seq, Some(1), "the seq is still known");
    let older = documents
        .submit("kept", "importer", 30, valid(editor.append("again")))
        .await
        .expect("answered");
    assert!(
        older.duplicate,
        "a removed op below the highest is a duplicate"
    );
    assert_eq!(
        app.logged_ops("kept").await.len(),
        10,
        "nothing logged again"
    );

    let mut client = WsClient::connect(&app, "kept").await;
    client.hello("importer", Some(60), None).await;
    let welcome = client.recv_json().await;
    assert_eq!(welcome["last_client_op_id"], 59, "{welcome}");
    let next = documents
        .submit("kept", "importer", 60, valid(editor.append("new")))
        .await
        .expect("committed");
    assert_eq!((next.server_seq, next.duplicate), (Some(61), false));
}

/// A database written before `client_progress` existed gets each
/// client's highest op from its log when the migration runs.
async fn the_migration_fills_the_progress_of_an_existing_log(backend: Backend) {
    use entity::{client_progress, documents, operations};
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder};
    let db = TestDatabase::create(&backend).await;
    let url = collab_engine::store::normalize_sqlite_url(&db.url);
    let conn = sea_orm::Database::connect(url.as_str())
        .await
        .expect("connect");
    // Every migration before client_progress.
    Migrator::up(&conn, Some(4)).await.expect("older schema");
    let now = chrono::Utc::now();
    documents::Entity::insert(documents::ActiveModel {
        id: Set("old".into()),
        epoch: Set("e".into()),
        created_at: Set(now),
    })
    .exec_without_returning(&conn)
    .await
    .expect("document");
    for (seq, client, op, subject) in [
        (1, "a", 1, Some("ann")),
        (2, "b", 7, None),
        (3, "a", 2, Some("ann")),
        (4, "a", 5, Some("ann")),
        (5, "b", 8, None),
    ] {
        operations::Entity::insert(operations::ActiveModel {
            document_id: Set("old".into()),
            server_seq: Set(seq),
            client_id: Set(client.into()),
            client_op_id: Set(op),
            update: Set(vec![0, 0]),
            subject: Set(subject.map(str::to_owned)),
            created_at: Set(now),
        })
        .exec_without_returning(&conn)
        .await
        .expect("op");
    }
    Migrator::up(&conn, None).await.expect("migrations");
    let progress: Vec<(String, i64, i64, Option<String>)> = client_progress::Entity::find()
        .order_by_asc(client_progress::Column::ClientId)
        .all(&conn)
        .await
        .expect("progress")
        .into_iter()
        .map(|p| (p.client_id, p.client_op_id, p.server_seq, p.subject))
        .collect();
    assert_eq!(
        progress,
        vec![
            ("a".into(), 5, 4, Some("ann".into())),
            ("b".into(), 8, 5, None),
        ]
    );
}
