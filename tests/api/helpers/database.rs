//! Which database a test runs on (`Backend`, `on_both_backends!`) and its fresh `TestDatabase`.

use sea_orm::{ConnectionTrait, Database};

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
