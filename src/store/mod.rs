//! Persistence through sea-orm: documents, the append-only op log, snapshots.
//!
//! The store is the only code that talks to the database. It never decides
//! anything about ordering: the document actor assigns `server_seq` values
//! and the store writes them, one transaction per group commit.
//!
//! - this file: the [`Store`] handle, connecting, errors;
//! - [`reads`](Store::ops_between): snapshots, ops, client marks, the head;
//! - [`writes`](Store::commit): creating a document, the group commit;
//! - [`history`](Store::history_at): the document at a seq, named versions;
//! - [`catalog`](Store::list_documents): listing, describing and deleting documents;
//! - [`log_reader`](Store::log_chunks): long stretches of the log for cold loads;
//! - [`faults`]: injected commit failures, for drills and tests;
//! - [`checkpoint`]: SQLite WAL checkpoints, off the commit path.

use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

use crate::configuration::{DatabaseSettings, Durability, redact_url};

mod access;
mod catalog;
pub mod checkpoint;
pub mod faults;
mod history;
mod log_reader;
mod reads;
mod writes;

pub use access::StoredRevocation;
pub use catalog::{MAX_DOCUMENTS_PER_PAGE, StoredDocument};
use faults::CommitFaults;
pub use history::{HistoryAt, PinError, Version};
use log_reader::SqliteLogReader;
pub use log_reader::{LogChunk, LogChunks};
pub use reads::ClientHistory;

/// What went wrong with storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("reading the op log: {0}")]
    SqliteRead(#[from] rusqlite::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(
        "the op log head is {found}, expected {expected}: a commit reported as failed did land"
    )]
    HeadMismatch { expected: u64, found: u64 },
    #[error("injected fault: {0}")]
    Injected(&'static str),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
}

/// A snapshot to write in the next commit.
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    pub server_seq: u64,
    pub state: Vec<u8>,
    /// Older snapshots below this seq are deleted in the same transaction
    /// (the previous snapshot is kept as a fallback).
    pub prune_below: u64,
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// A SQLite database this store connected itself (and configured for
    /// background WAL checkpoints). False for PostgreSQL and for a
    /// connection the host application passed in.
    checkpoints_wal: bool,
    /// Reads long stretches of the log for cold loads without sqlx: set
    /// for a SQLite file this store connected itself (see
    /// [`Store::log_chunks`]).
    log_reader: Option<SqliteLogReader>,
    /// Injected commit failures (drills and tests only; see [`faults`]).
    faults: Option<Arc<CommitFaults>>,
}

impl Store {
    /// Connects as `settings` say. SQLite files are created if missing and
    /// run in WAL mode; `durability` chooses `synchronous = FULL` or
    /// `NORMAL` (SQLite) and `synchronous_commit = on` or `off` (PostgreSQL).
    pub async fn connect(
        settings: &DatabaseSettings,
        durability: Durability,
    ) -> Result<Store, DbErr> {
        let url = normalize_sqlite_url(&settings.url);
        let mut options = ConnectOptions::new(url.clone());
        let timeout = Duration::from_millis(settings.acquire_timeout_ms);
        let busy_timeout = Duration::from_millis(settings.sqlite_busy_timeout_ms);
        options
            .max_connections(settings.max_connections)
            .min_connections(1)
            .connect_timeout(timeout)
            .acquire_timeout(timeout)
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            let synchronous = match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            };
            options.map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(synchronous)
                    .busy_timeout(busy_timeout)
                    .foreign_keys(true)
                    // 1 MiB of page cache per connection instead of 2: the
                    // op log is read sequentially, once per load.
                    .pragma("cache_size", "-1024")
                    // Rows come from SQLite's worker thread through a
                    // channel; a deeper one means fewer thread switches
                    // while a load reads its replay tail of up to 10,000
                    // rows (50 by default). Longer stretches of the log
                    // bypass sqlx (see `log_reader`).
                    .row_buffer_size(1024)
                    // WAL checkpoints run off the commit path (see
                    // `checkpoint`); SQLite's own, inside a COMMIT,
                    // only as a safety net when the WAL passes 10,000 pages.
                    .pragma("wal_autocheckpoint", "10000")
            });
        } else {
            let synchronous_commit = match durability {
                Durability::Full => "on",
                Durability::Normal => "off",
            };
            options.map_sqlx_postgres_opts(move |o| {
                o.options([("synchronous_commit", synchronous_commit)])
            });
        }
        log::info!(
            "connecting to {} (durability {durability:?})",
            redact_url(&url)
        );
        let checkpoints_wal = url.starts_with("sqlite:");
        let db = Database::connect(options).await?;
        Ok(Store {
            db,
            checkpoints_wal,
            log_reader: SqliteLogReader::for_url(&url, busy_timeout),
            faults: None,
        })
    }

    /// Wraps a connection the host application already has.
    pub fn from_connection(db: DatabaseConnection) -> Store {
        Store {
            db,
            checkpoints_wal: false,
            log_reader: None,
            faults: None,
        }
    }

    /// Whether the engine should run WAL checkpoints for this store (see
    /// [`checkpoint`]).
    pub fn checkpoints_wal(&self) -> bool {
        self.checkpoints_wal
    }

    /// A passive SQLite WAL checkpoint: copies what it can of the WAL into
    /// the database file without waiting for, or blocking, any writer or
    /// reader. Returns (frames in the WAL, frames checkpointed).
    pub async fn checkpoint_wal(&self) -> Result<(i64, i64), StoreError> {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "PRAGMA wal_checkpoint(PASSIVE)",
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt("wal_checkpoint returned no row".to_owned()))?;
        Ok((row.try_get_by_index(1)?, row.try_get_by_index(2)?))
    }

    /// The underlying connection.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending schema migration.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.db, None).await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    /// Whether the database answers within `within`.
    pub async fn check_ready(&self, within: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(within, self.ping()).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(within)),
        }
    }

    /// This store with commit fault injection (see [`faults`]): the
    /// returned handle makes the next commits of a document fail.
    pub fn with_commit_faults(mut self) -> (Store, Arc<CommitFaults>) {
        let faults = self.faults.get_or_insert_with(Default::default).clone();
        (self, faults)
    }

    /// The backend in use, for log lines.
    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            sea_orm::DatabaseBackend::Postgres => "postgres",
            _ => "other",
        }
    }
}

/// SQLite URLs without a `mode=` parameter get `mode=rwc`, so the database
/// file is created when missing.
pub fn normalize_sqlite_url(url: &str) -> String {
    if !url.starts_with("sqlite:") || url.contains("mode=") || url.contains(":memory:") {
        return url.to_owned();
    }
    if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

fn to_i64(value: u64) -> i64 {
    // Seqs and client op ids are checked to fit at the protocol boundary.
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is negative: {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(
            normalize_sqlite_url("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            normalize_sqlite_url("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            normalize_sqlite_url("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(normalize_sqlite_url("postgres://h/db"), "postgres://h/db");
    }
}
