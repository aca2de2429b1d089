//! The engine mounted into a host actix-web application, next to the
//! host's own routes, sharing its runtime.

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use collab_engine::configuration::{DatabaseSettings, Durability};
use collab_engine::store::normalize_sqlite_url;
use collab_engine::{CollabEngine, EngineOptions, Store};

use crate::helpers::{Backend, Editor, Peer, TestDatabase, WsClient, write_log};

/// A host application with `routes`, one worker, on port 0 of the
/// loopback; returns its port and its handle.
pub fn serve_host(
    routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> (u16, ServerHandle) {
    let server = HttpServer::new(move || App::new().configure(routes.clone()))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (port, handle)
}

/// A migrated store on `db` (a SQLite file or a PostgreSQL database),
/// connected as a host would.
pub async fn host_store(db: &TestDatabase) -> Store {
    let store = Store::connect(
        &DatabaseSettings {
            url: db.url.clone(),
            max_connections: 2,
            run_migrations: true,
            acquire_timeout_ms: 5000,
            sqlite_busy_timeout_ms: 5000,
        },
        Durability::Full,
    )
    .await
    .expect("store");
    store.migrate().await.expect("migrate");
    store
}

#[actix_web::test]
async fn the_engine_mounts_under_a_scope_of_a_host_app() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let store = host_store(&db).await;
    let engine = CollabEngine::start(store, EngineOptions::default());
    let mount = engine.configure();
    let (port, handle) = serve_host(move |cfg| {
        cfg.route("/hello", web::get().to(|| async { "host says hi" }))
            .service(web::scope("/collab").configure(mount.clone()));
    });

    let mut response = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/hello"))
        .send()
        .await
        .expect("host route");
    assert_eq!(response.body().await.expect("body"), "host says hi");

    let url = format!("ws://127.0.0.1:{port}/collab/ws/embedded");
    let mut a = WsClient::connect_url(&url).await;
    let mut b = WsClient::connect_url(&url).await;
    a.hello("a", None, None).await;
    b.hello("b", None, None).await;
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.recv_json().await["type"], "welcome");
        assert_eq!(ws.recv_json().await["type"], "snapshot");
    }
    a.send_op(1, &Editor::new().append("embedded")).await;
    assert_eq!(a.recv_json().await["type"], "ack");
    let op = b.recv_json().await;
    assert_eq!(op["server_seq"], 1);
    assert_eq!(op["client_id"], "a");

    engine.shutdown().await;
    let (_, code) = a.recv_until_close().await;
    assert_eq!(code, Some(1001));
    handle.stop(true).await;
    assert_eq!(
        engine
            .store()
            .snapshots("embedded")
            .await
            .expect("read")
            .len(),
        1
    );
}

/// A host hands the engine its own sea-orm connection: a log longer than
/// the in-memory tail is then streamed through sea-orm (the engine's own
/// SQLite reader is only for databases it connected itself), and the
/// document loads whole, with its tail kept for replay.
#[actix_web::test]
async fn a_long_log_loads_through_a_connection_the_host_passed_in() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let connection = sea_orm::Database::connect(normalize_sqlite_url(&db.url).as_str())
        .await
        .expect("host connection");
    let store = Store::from_connection(connection);
    store.migrate().await.expect("migrate");
    let text = write_log(store.connection(), "hosted", 1..=2600).await;
    let mut options = EngineOptions::default();
    options.documents.max_replay_ops = 100;
    let engine = CollabEngine::start(store, options);
    let (port, handle) = serve_host(engine.configure());

    let url = format!("ws://127.0.0.1:{port}/ws/hosted");
    let reader = Peer::join_url(&url, "reader").await;
    assert_eq!(reader.welcome["server_seq"], 2600);
    assert_eq!(reader.text(), text);
    let mut behind = Peer::join_url(&url, "behind").await;
    behind.last_seen = 2550;
    let mut behind = behind.rejoin_url(&url).await;
    assert_eq!(behind.welcome["recovery"], "replay");
    behind.sync_to(2600).await;
    assert_eq!(behind.stream, (2551..=2600).collect::<Vec<u64>>());

    engine.shutdown().await;
    handle.stop(true).await;
}
