//! A real server on port 0 over a test database (`TestApp`): settings, start, restart, checks.

use std::time::Duration;

use collab_engine::configuration::{
    AuthSettings, DatabaseSettings, DebugSettings, DocumentSettings, Durability, LimitsSettings,
    LoggingSettings, MetricsSettings, PersistenceSettings, ServerSettings, Settings,
    WebhookSettings,
};
use collab_engine::{Application, ApplicationHandle, CollabEngine};

use super::database::{Backend, TestDatabase};

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
            allowed_origins: Vec::new(),
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
            arbiters: 2,
        },
        auth: AuthSettings::default(),
        // Out of the way of tests that open many sessions and documents
        // from 127.0.0.1 at once; the tests of each limit set small ones.
        limits: LimitsSettings::unlimited(),
        webhooks: WebhookSettings::default(),
        debug: DebugSettings {
            fault_injection: true,
        },
        logging: LoggingSettings {
            level: "info".into(),
        },
        metrics: MetricsSettings::default(),
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
