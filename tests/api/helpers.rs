//! Test harness: a real server on port 0 over a real database (a fresh
//! SQLite file, or a fresh PostgreSQL database when
//! `COLLAB_TEST_DATABASE_URL` is set), real WebSocket clients, and peers
//! that edit real yrs documents.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::rt::time::timeout;
use awc::BoxedSocket;
use awc::ws::{Codec, Frame, Message};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use collab_engine::configuration::{
    DatabaseSettings, DebugSettings, DocumentSettings, Durability, LoggingSettings,
    PersistenceSettings, ServerSettings, Settings,
};
use collab_engine::{Application, ApplicationHandle, CollabEngine};
use entity::{documents, operations};
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Text, TextRef, Transact, Update};

/// How long any single expected message may take before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable naming an admin URL of a PostgreSQL server; each
/// test creates its own database there.
pub const PG_ENV: &str = "COLLAB_TEST_DATABASE_URL";

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

impl Backend {
    /// PostgreSQL if `COLLAB_TEST_DATABASE_URL` is set.
    pub fn postgres() -> Option<Backend> {
        std::env::var(PG_ENV)
            .ok()
            .filter(|url| !url.is_empty())
            .map(|admin_url| Backend::Postgres { admin_url })
    }
}

/// Runs each listed scenario `async fn name(backend: Backend)` as two tests:
/// `sqlite::name` and `postgres::name` (the latter skipped, saying so, when
/// no PostgreSQL is configured).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    match $crate::helpers::Backend::postgres() {
                        Some(backend) => super::$name(backend).await,
                        None => eprintln!(
                            "skipped: {} not set, PostgreSQL variant of {} not run",
                            $crate::helpers::PG_ENV,
                            stringify!($name)
                        ),
                    }
                }
            )*
        }
    };
}

/// A database of one test: a SQLite file in a temp dir, or a PostgreSQL
/// database created for the test and dropped afterwards.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create(backend: &Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/collab.db", dir.path().display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                    drop_pg: None,
                }
            }
            Backend::Postgres { admin_url } => {
                let name = format!("collab_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(admin_url.as_str())
                    .await
                    .expect("connect to COLLAB_TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                TestDatabase {
                    url: replace_database_name(admin_url, &name),
                    _dir: None,
                    drop_pg: Some((admin_url.clone(), name)),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.drop_pg.take() {
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

fn replace_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let prefix = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{prefix}/{name}?{query}"),
        None => format!("{prefix}/{name}"),
    }
}

/// Settings of a test server: port 0, fast heartbeat, small limits so
/// snapshots and replay limits are reached quickly.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        server: ServerSettings {
            host: "127.0.0.1".into(),
            port: 0,
            workers: 2,
            heartbeat_interval_secs: 1,
            client_timeout_secs: 30,
            shutdown_timeout_secs: 10,
        },
        database: DatabaseSettings {
            url: database_url.to_owned(),
            max_connections: 4,
            run_migrations: true,
            acquire_timeout_ms: 5000,
            sqlite_busy_timeout_ms: 5000,
        },
        persistence: PersistenceSettings {
            durability: Durability::Full,
        },
        documents: DocumentSettings {
            snapshot_every_ops: 50,
            max_replay_ops: 100,
            idle_unload_secs: 60,
            max_message_bytes: 64 * 1024,
            max_restarts: 5,
            restart_window_secs: 60,
            restart_backoff_initial_ms: 10,
            restart_backoff_max_ms: 500,
            max_session_backlog_ops: 50_000,
        },
        debug: DebugSettings {
            fault_injection: true,
        },
        logging: LoggingSettings {
            level: "info".into(),
        },
    }
}

/// A running server and the database under it.
pub struct TestApp {
    pub port: u16,
    pub handle: ApplicationHandle,
    pub engine: CollabEngine,
    pub settings: Settings,
    pub db: TestDatabase,
}

/// Starts a server on a fresh database with the default test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server on a fresh database, letting the test adjust settings.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let db = TestDatabase::create(&backend).await;
    let mut settings = test_settings(&db.url);
    adjust(&mut settings);
    start(settings, db).await
}

async fn start(settings: Settings, db: TestDatabase) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("server starts");
    let port = app.port();
    let handle = app.handle();
    let engine = app.engine().clone();
    actix_web::rt::spawn(app.run());
    TestApp {
        port,
        handle,
        engine,
        settings,
        db,
    }
}

impl TestApp {
    pub fn ws_url(&self, document_id: &str) -> String {
        format!("ws://127.0.0.1:{}/ws/{document_id}", self.port)
    }

    /// `POST /debug/documents/{id}/{fault}` (fault injection); returns the status.
    pub async fn inject(&self, document_id: &str, fault: &str) -> u16 {
        awc::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/debug/documents/{document_id}/{fault}",
                self.port
            ))
            .send()
            .await
            .expect("debug request")
            .status()
            .as_u16()
    }

    /// `GET path` on the server; returns the status.
    pub async fn get_status(&self, path: &str) -> u16 {
        awc::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .send()
            .await
            .expect("http request")
            .status()
            .as_u16()
    }

    /// Graceful shutdown, then a new server on the same database.
    pub async fn restart(self) -> TestApp {
        self.handle.shutdown().await;
        start(self.settings, self.db).await
    }

    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }

    /// Rows in the op log of `document_id`.
    pub async fn logged_ops(&self, document_id: &str) -> Vec<(i64, String, i64)> {
        use entity::operations;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        operations::Entity::find()
            .filter(operations::Column::DocumentId.eq(document_id))
            .order_by_asc(operations::Column::ServerSeq)
            .all(self.engine.store().connection())
            .await
            .expect("read op log")
            .into_iter()
            .map(|row| (row.server_seq, row.client_id, row.client_op_id))
            .collect()
    }

    /// `server_seq` of every stored snapshot of `document_id`, ascending.
    pub async fn snapshot_seqs(&self, document_id: &str) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .engine
            .store()
            .snapshots(document_id)
            .await
            .expect("read snapshots")
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// Waits until the engine reports `documents_loaded == n`.
    pub async fn wait_for_loaded_documents(&self, n: usize, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if self.engine.stats().await.documents_loaded == n {
                return true;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// What a raw client read.
#[derive(Debug)]
pub enum Incoming {
    Json(Value),
    Closed(Option<u16>),
}

/// A raw WebSocket client speaking JSON text frames.
pub struct WsClient {
    framed: actix_codec::Framed<BoxedSocket, Codec>,
}

impl WsClient {
    pub async fn connect(app: &TestApp, document_id: &str) -> WsClient {
        Self::connect_url(&app.ws_url(document_id)).await
    }

    pub async fn connect_url(url: &str) -> WsClient {
        let (_response, framed) = awc::Client::new()
            .ws(url)
            .max_frame_size(64 << 20)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("websocket connect to {url}: {e}"));
        WsClient { framed }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.framed
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send text frame");
    }

    /// Sends an op; `false` if the connection is gone.
    pub async fn try_send_op(&mut self, client_op_id: u64, update: &[u8]) -> bool {
        let text = json!({
            "type": "op",
            "client_op_id": client_op_id,
            "update": BASE64.encode(update),
        })
        .to_string();
        self.framed.send(Message::Text(text.into())).await.is_ok()
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.framed
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send binary frame");
    }

    pub async fn hello(&mut self, client_id: &str, last_seen: Option<u64>, epoch: Option<&str>) {
        let mut hello = json!({"type": "hello", "protocol": 1, "client_id": client_id});
        if let Some(seq) = last_seen {
            hello["last_seen_server_seq"] = json!(seq);
        }
        if let Some(epoch) = epoch {
            hello["epoch"] = json!(epoch);
        }
        self.send_json(hello).await;
    }

    pub async fn send_op(&mut self, client_op_id: u64, update: &[u8]) {
        self.send_json(json!({
            "type": "op",
            "client_op_id": client_op_id,
            "update": BASE64.encode(update),
        }))
        .await;
    }

    /// Next JSON message or the close; answers pings; fails after [`RECV_TIMEOUT`].
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(RECV_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("no message within {RECV_TIMEOUT:?}"))
    }

    /// Like [`WsClient::recv`], but `None` when nothing arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Incoming> {
        // One deadline for the whole call: the server's pings must not
        // restart the clock.
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let frame = match timeout(left, self.framed.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Incoming::Closed(None)),
                // The connection broke (e.g. the server was killed).
                Ok(Some(Err(_))) => return Some(Incoming::Closed(None)),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Frame::Text(bytes) => {
                    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                        panic!(
                            "server sent invalid JSON ({e}): {}",
                            String::from_utf8_lossy(&bytes)
                        )
                    });
                    return Some(Incoming::Json(value));
                }
                Frame::Close(reason) => {
                    return Some(Incoming::Closed(reason.map(|r| u16::from(r.code))));
                }
                Frame::Ping(payload) => {
                    let _ = self.framed.send(Message::Pong(payload)).await;
                }
                Frame::Pong(_) => {}
                Frame::Binary(_) | Frame::Continuation(_) => panic!("unexpected binary frame"),
            }
        }
    }

    /// Next message, which must be JSON.
    pub async fn recv_json(&mut self) -> Value {
        match self.recv().await {
            Incoming::Json(value) => value,
            Incoming::Closed(code) => {
                panic!("connection closed ({code:?}) while a message was expected")
            }
        }
    }

    /// Reads until the close frame and returns its code; messages before it
    /// are returned too.
    pub async fn recv_until_close(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut before = Vec::new();
        loop {
            match self.recv().await {
                Incoming::Json(value) => before.push(value),
                Incoming::Closed(code) => return (before, code),
            }
        }
    }

    pub async fn close(&mut self) {
        let _ = self.framed.send(Message::Close(None)).await;
        // Drain until the server's close (or the end of the stream).
        let _ = timeout(Duration::from_secs(2), async {
            while let Some(Ok(frame)) = self.framed.next().await {
                if matches!(frame, Frame::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// A yrs document that produces real, causally chained updates.
pub struct Editor {
    pub doc: Doc,
    text: TextRef,
}

impl Editor {
    pub fn new() -> Editor {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("content");
        Editor { doc, text }
    }

    /// Inserts `s` at `index` (clamped) and returns the update.
    pub fn insert(&self, index: u32, s: &str) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        let len = self.text.len(&txn);
        self.text.insert(&mut txn, index.min(len), s);
        txn.encode_update_v1()
    }

    pub fn append(&self, s: &str) -> Vec<u8> {
        self.insert(u32::MAX, s)
    }

    pub fn apply(&self, update: &[u8]) {
        let update = Update::decode_v1(update).expect("server sent a decodable update");
        self.doc
            .transact_mut()
            .apply_update(update)
            .expect("update applies");
    }

    pub fn text(&self) -> String {
        self.text.get_string(&self.doc.transact())
    }

    pub fn len(&self) -> u32 {
        self.text.len(&self.doc.transact())
    }
}

/// Text of a base64 full state.
pub fn text_of_state(base64_state: &str) -> String {
    let editor = Editor::new();
    editor.apply(&BASE64.decode(base64_state).expect("state is base64"));
    editor.text()
}

pub fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    BASE64.decode(text).expect("valid base64")
}

/// A client that edits a yrs document through the native protocol and
/// checks, message by message, the ordering promise: after the welcome,
/// the seqs it sees through `op` and `ack` are strictly increasing and
/// contiguous.
pub struct Peer {
    pub ws: WsClient,
    pub editor: Editor,
    pub client_id: String,
    pub epoch: String,
    /// Highest seq seen (the `last_seen_server_seq` for a reconnect).
    pub last_seen: u64,
    /// Every seq received after the welcome, in arrival order.
    pub stream: Vec<u64>,
    /// Ops sent and not yet acked, by client_op_id.
    pub unacked: BTreeMap<u64, Vec<u8>>,
    /// client_op_id -> server_seq of acks received.
    pub acks: BTreeMap<u64, u64>,
    pub next_op_id: u64,
    /// The welcome of the current connection.
    pub welcome: Value,
}

impl Peer {
    /// Connects fresh (no `last_seen_server_seq`): gets a snapshot.
    pub async fn join(app: &TestApp, document_id: &str, client_id: &str) -> Peer {
        Self::join_url(&app.ws_url(document_id), client_id).await
    }

    /// Like [`Peer::join`], at a full WebSocket URL.
    pub async fn join_url(url: &str, client_id: &str) -> Peer {
        let mut ws = WsClient::connect_url(url).await;
        ws.hello(client_id, None, None).await;
        let mut peer = Peer {
            ws,
            editor: Editor::new(),
            client_id: client_id.to_owned(),
            epoch: String::new(),
            last_seen: 0,
            stream: Vec::new(),
            unacked: BTreeMap::new(),
            acks: BTreeMap::new(),
            next_op_id: 1,
            welcome: Value::Null,
        };
        peer.read_welcome().await;
        peer
    }

    /// Reconnects with `last_seen_server_seq` and epoch, keeping the editor.
    pub async fn rejoin(self, app: &TestApp, document_id: &str) -> Peer {
        self.rejoin_url(&app.ws_url(document_id)).await
    }

    /// Like [`Peer::rejoin`], at a full WebSocket URL.
    pub async fn rejoin_url(mut self, url: &str) -> Peer {
        self.ws.close().await;
        self.ws = WsClient::connect_url(url).await;
        let (client_id, last_seen, epoch) =
            (self.client_id.clone(), self.last_seen, self.epoch.clone());
        self.ws
            .hello(&client_id, Some(last_seen), Some(&epoch))
            .await;
        self.stream.clear();
        self.read_welcome().await;
        // As docs/protocol.md says: ops up to `last_client_op_id` were
        // accepted; only the others are still pending.
        if let Some(accepted) = self.welcome["last_client_op_id"].as_u64() {
            self.unacked.retain(|op_id, _| *op_id > accepted);
        }
        self
    }

    async fn read_welcome(&mut self) {
        let welcome = self.ws.recv_json().await;
        assert_eq!(
            welcome["type"], "welcome",
            "expected welcome, got {welcome}"
        );
        self.epoch = welcome["epoch"].as_str().expect("epoch").to_owned();
        let head = welcome["server_seq"].as_u64().expect("server_seq");
        if welcome["recovery"] == "snapshot" {
            let snapshot = self.ws.recv_json().await;
            assert_eq!(
                snapshot["type"], "snapshot",
                "expected snapshot, got {snapshot}"
            );
            assert_eq!(snapshot["server_seq"].as_u64(), Some(head));
            self.editor
                .apply(&unb64(snapshot["state"].as_str().expect("state")));
            self.last_seen = head;
        } else {
            assert_eq!(welcome["recovery"], "replay", "{welcome}");
            // The replayed ops arrive as ordinary `op` messages.
        }
        self.welcome = welcome;
    }

    /// Edits locally and sends the update as the next op.
    pub async fn insert(&mut self, index: u32, s: &str) -> u64 {
        let update = self.editor.insert(index, s);
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        self.ws.send_op(op_id, &update).await;
        self.unacked.insert(op_id, update);
        op_id
    }

    /// Like [`Peer::insert`], but tolerates a dead connection (the op then
    /// stays pending, to be resent). Returns whether it was sent.
    pub async fn try_insert(&mut self, index: u32, s: &str) -> bool {
        let update = self.editor.insert(index, s);
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        self.unacked.insert(op_id, update.clone());
        self.ws.try_send_op(op_id, &update).await
    }

    /// Resends every unacked op (after a reconnect).
    pub async fn resend_unacked(&mut self) {
        for (op_id, update) in self.unacked.clone() {
            self.ws.send_op(op_id, &update).await;
        }
    }

    fn see_seq(&mut self, seq: u64, what: &Value) {
        assert_eq!(
            seq,
            self.last_seen + 1,
            "client {}: seq stream not contiguous: after {} got {what}",
            self.client_id,
            self.last_seen
        );
        self.last_seen = seq;
        self.stream.push(seq);
    }

    /// Processes one incoming message; returns it.
    pub async fn step(&mut self) -> Value {
        let message = self.ws.recv_json().await;
        self.handle(&message);
        message
    }

    pub fn handle(&mut self, message: &Value) {
        match message["type"].as_str() {
            Some("op") => {
                let seq = message["server_seq"].as_u64().expect("op server_seq");
                self.see_seq(seq, message);
                self.editor
                    .apply(&unb64(message["update"].as_str().expect("update")));
            }
            Some("ack") => {
                let op_id = message["client_op_id"].as_u64().expect("ack client_op_id");
                if message["duplicate"] == true {
                    if let Some(seq) = message["server_seq"].as_u64() {
                        assert!(
                            seq <= self.last_seen,
                            "duplicate ack for a seq not yet seen: {message}"
                        );
                    }
                } else {
                    let seq = message["server_seq"].as_u64().expect("ack server_seq");
                    self.see_seq(seq, message);
                    self.acks.insert(op_id, seq);
                }
                self.unacked.remove(&op_id);
            }
            _ => panic!("client {}: unexpected message {message}", self.client_id),
        }
    }

    /// Handles messages until the connection closes; `unavailable` errors
    /// leave their op pending (to be resent). Returns the close code and
    /// the ids of the ops answered `unavailable`.
    pub async fn drain_until_close(&mut self) -> (Option<u16>, Vec<u64>) {
        let mut unavailable = Vec::new();
        loop {
            match self.ws.recv().await {
                Incoming::Closed(code) => return (code, unavailable),
                Incoming::Json(message) if message["type"] == "error" => {
                    assert_eq!(message["code"], "unavailable", "{message}");
                    if let Some(op_id) = message["client_op_id"].as_u64() {
                        unavailable.push(op_id);
                    }
                }
                Incoming::Json(message) => self.handle(&message),
            }
        }
    }

    /// Reads until the stream reached `seq` and nothing is unacked.
    pub async fn sync_to(&mut self, seq: u64) {
        while self.last_seen < seq || !self.unacked.is_empty() {
            self.step().await;
        }
    }

    pub fn text(&self) -> String {
        self.editor.text()
    }
}

/// The server binary as a child process (for signals and `kill -9`).
pub struct ServerProcess {
    child: std::process::Child,
    pub port: u16,
    /// Everything the server logged so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `collab-engine --config settings.toml` with `env` overrides
    /// on port 0 and waits until it listens.
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> ServerProcess {
        use std::io::BufRead;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_collab-engine"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--config", "settings.toml"])
            .env_remove("RUST_LOG")
            .env("COLLAB__SERVER__PORT", "0")
            .env("COLLAB__SERVER__WORKERS", "2")
            .env("COLLAB__DATABASE__URL", database_url)
            .env("COLLAB__LOGGING__LEVEL", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start collab-engine");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("collab-engine listening on 127.0.0.1:").nth(1) {
                    let _ = port_tx.send(rest.trim().parse::<u16>().ok());
                }
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("server did not start: {:?}", log.lock().map(|l| l.clone())));
        ServerProcess { child, port, log }
    }

    pub fn ws_url(&self, document_id: &str) -> String {
        format!("ws://127.0.0.1:{}/ws/{document_id}", self.port)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit; returns its code and how long it took.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let started = std::time::Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let code = self.child.wait().expect("wait").code();
        (code, started.elapsed())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every distinct token `<...>` in `text`, with how often it occurs.
pub fn token_counts(text: &str) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for token in text.split('<').skip(1) {
        if let Some(end) = token.find('>') {
            *counts.entry(format!("<{}>", &token[..end])).or_insert(0) += 1;
        }
    }
    counts
}

/// A native client on a raw socket with a tiny receive buffer that sends
/// its `hello` and then never reads: the server's socket to it fills up.
pub struct StalledClient {
    _socket: tokio::net::TcpStream,
}

impl StalledClient {
    pub async fn join(port: u16, document_id: &str, client_id: &str) -> StalledClient {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        socket.connect(&address.into()).expect("connect");
        socket.set_nonblocking(true).expect("non-blocking");
        let mut stream = tokio::net::TcpStream::from_std(socket.into()).expect("tokio stream");
        let request = format!(
            "GET /ws/{document_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("handshake");
        let mut response = Vec::new();
        while !response.ends_with(b"\r\n\r\n") {
            response.push(stream.read_u8().await.expect("handshake response"));
        }
        assert!(
            response.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&response)
        );
        let hello = json!({"type": "hello", "protocol": 1, "client_id": client_id}).to_string();
        // A masked text frame (clients must mask; the mask is all zeros).
        let mut frame = vec![0x81u8, 0x80 | hello.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(hello.as_bytes());
        stream.write_all(&frame).await.expect("hello");
        StalledClient { _socket: stream }
    }
}

/// Writes a document row and logged ops `seqs` (one appended character
/// each, written by client `w` with `client_op_id = seq`) straight into the
/// database, as a server would have; returns the document's text.
pub async fn write_log(
    db: &DatabaseConnection,
    document_id: &str,
    seqs: impl Iterator<Item = i64>,
) -> String {
    documents::Entity::insert(documents::ActiveModel {
        id: Set(document_id.into()),
        epoch: Set("e1".into()),
        created_at: Set(chrono::Utc::now()),
    })
    .exec_without_returning(db)
    .await
    .expect("insert document");
    let editor = Editor::new();
    let mut rows = Vec::new();
    let mut text = String::new();
    for seq in seqs {
        let c = char::from(b'a' + (seq % 26) as u8).to_string();
        rows.push(operations::ActiveModel {
            document_id: Set(document_id.into()),
            server_seq: Set(seq),
            client_id: Set("w".into()),
            client_op_id: Set(seq),
            update: Set(editor.append(&c)),
            created_at: Set(chrono::Utc::now()),
        });
        text.push_str(&c);
    }
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(500));
        operations::Entity::insert_many(std::mem::replace(&mut rows, rest))
            .exec_without_returning(db)
            .await
            .expect("insert ops");
    }
    text
}
