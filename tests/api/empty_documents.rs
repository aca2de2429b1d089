//! A document nobody wrote to leaves nothing behind: opening ids on both
//! routes, reading them and leaving writes no `documents` row; the first
//! op writes the row (with the epoch clients were welcomed with), in the
//! same transaction as the op.

use std::time::Duration;

use entity::{documents, operations, snapshots};
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::helpers::{Backend, Peer, TestApp, WsClient, spawn_app};
use crate::on_both_backends;

async fn rows(app: &TestApp) -> (u64, u64, u64) {
    let db = app.engine.store().connection();
    let count = |n: Result<u64, sea_orm::DbErr>| n.expect("count");
    (
        count(documents::Entity::find().count(db).await),
        count(operations::Entity::find().count(db).await),
        count(snapshots::Entity::find().count(db).await),
    )
}

async fn opening_documents_writes_nothing_until_the_first_op(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut providers = Vec::new();
    for n in 0..20 {
        providers.push(WsClient::connect_yjs(&app, &format!("empty-yjs-{n}")).await);
    }
    // Each y-websocket session joins its document at once (no hello).
    let started = std::time::Instant::now();
    while app.engine.stats().await.documents_loaded < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sessions did not join"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    for mut provider in providers {
        provider.close().await;
    }
    for n in 0..20 {
        let mut native = Peer::join(&app, &format!("empty-{n}"), "reader").await;
        assert_eq!(native.welcome["server_seq"], 0, "{}", native.welcome);
        native.ws.close().await;
    }
    let documents = app.engine.documents();
    documents
        .state("read-only-doc")
        .await
        .expect("an empty state");
    assert_eq!(
        rows(&app).await,
        (0, 0, 0),
        "nothing written for 41 opened ids"
    );

    // Unloading them (the final snapshot of an idle document) writes nothing either.
    let app = app.restart().await;
    assert_eq!(rows(&app).await, (0, 0, 0));

    let mut writer = Peer::join(&app, "written", "w").await;
    let epoch = writer.epoch.clone();
    writer.insert(0, "hi").await;
    writer.sync_to(1).await;
    assert_eq!(
        rows(&app).await.0,
        1,
        "the first op wrote the document's row"
    );
    let stored = documents::Entity::find_by_id("written".to_owned())
        .one(app.engine.store().connection())
        .await
        .expect("read")
        .expect("the row");
    assert_eq!(
        stored.epoch, epoch,
        "the row keeps the epoch clients were welcomed with"
    );

    // A reconnect after a restart is a replay, not a snapshot: same epoch.
    let app = app.restart().await;
    let writer = writer.rejoin(&app, "written").await;
    assert_eq!(writer.welcome["epoch"], epoch.as_str());
    assert_eq!(writer.text(), "hi");
}

on_both_backends!(opening_documents_writes_nothing_until_the_first_op);
