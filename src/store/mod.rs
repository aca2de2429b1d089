//! Persistence through sea-orm: documents, the append-only op log, snapshots.
//!
//! The store is the only code that talks to the database. It never decides
//! anything about ordering: the document actor assigns `server_seq` values
//! and the store writes them, one transaction per group commit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use entity::{documents, operations, snapshots};
use futures_util::{Stream, StreamExt};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::OnConflict;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::configuration::{DatabaseSettings, Durability, redact_url};
use crate::document::state::LoggedOp;

mod log_reader;

use log_reader::SqliteLogReader;
pub use log_reader::{LogChunk, LogChunks};

/// Rows per INSERT statement: far below SQLite's 32,766 bound variables.
const INSERT_CHUNK: usize = 1000;

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
}

/// An op to append to the log in the next commit.
#[derive(Debug, Clone)]
pub struct NewOp {
    pub server_seq: u64,
    pub client_id: Arc<str>,
    pub client_op_id: u64,
    pub update: Bytes,
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
                    // `crate::checkpoint`); SQLite's own, inside a COMMIT,
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
        })
    }

    /// Wraps a connection the host application already has.
    pub fn from_connection(db: DatabaseConnection) -> Store {
        Store {
            db,
            checkpoints_wal: false,
            log_reader: None,
        }
    }

    /// Whether the engine should run WAL checkpoints for this store (see
    /// [`crate::checkpoint`]).
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

    /// Returns the epoch of document `id`, creating the document (with a
    /// fresh epoch) if it does not exist yet.
    pub async fn open_document(&self, id: &str) -> Result<String, StoreError> {
        if let Some(row) = documents::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        {
            return Ok(row.epoch);
        }
        let epoch = uuid::Uuid::new_v4().simple().to_string();
        documents::Entity::insert(documents::ActiveModel {
            id: Set(id.to_owned()),
            epoch: Set(epoch),
            created_at: Set(chrono::Utc::now()),
        })
        .on_conflict(
            OnConflict::column(documents::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        documents::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(|row| row.epoch)
            .ok_or_else(|| StoreError::Corrupt(format!("document {id} vanished after insert")))
    }

    /// Stored snapshots of document `id`, newest first.
    pub async fn snapshots(&self, id: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        snapshots::Entity::find()
            .filter(snapshots::Column::DocumentId.eq(id))
            .order_by_desc(snapshots::Column::ServerSeq)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Ok((to_u64(row.server_seq, "snapshots.server_seq")?, row.state)))
            .collect()
    }

    /// Logged ops of document `id` with `after < server_seq <= upto`, in order.
    pub async fn ops_between(
        &self,
        id: &str,
        after: u64,
        upto: Option<u64>,
    ) -> Result<Vec<LoggedOp>, StoreError> {
        let mut query = operations::Entity::find()
            .filter(operations::Column::DocumentId.eq(id))
            .filter(operations::Column::ServerSeq.gt(to_i64(after)));
        if let Some(upto) = upto {
            query = query.filter(operations::Column::ServerSeq.lte(to_i64(upto)));
        }
        // Only the columns a load needs (no timestamps to parse).
        let rows: Vec<(i64, String, i64, Vec<u8>)> = query
            .select_only()
            .column(operations::Column::ServerSeq)
            .column(operations::Column::ClientId)
            .column(operations::Column::ClientOpId)
            .column(operations::Column::Update)
            .order_by_asc(operations::Column::ServerSeq)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(server_seq, client_id, client_op_id, update)| {
                Ok(LoggedOp {
                    server_seq: to_u64(server_seq, "operations.server_seq")?,
                    client_id,
                    client_op_id: to_u64(client_op_id, "operations.client_op_id")?,
                    update,
                })
            })
            .collect()
    }

    /// `(server_seq, update)` of the logged ops of document `id` with
    /// `after < server_seq <= upto`, in order, as a stream: a load reads a
    /// long log without holding all of it (nor the columns it does not need).
    pub async fn updates_between(
        &self,
        id: &str,
        after: u64,
        upto: u64,
    ) -> Result<impl Stream<Item = Result<(u64, Vec<u8>), StoreError>> + Send + '_, StoreError>
    {
        let rows = operations::Entity::find()
            .filter(operations::Column::DocumentId.eq(id))
            .filter(operations::Column::ServerSeq.gt(to_i64(after)))
            .filter(operations::Column::ServerSeq.lte(to_i64(upto)))
            .select_only()
            .column(operations::Column::ServerSeq)
            .column(operations::Column::Update)
            .order_by_asc(operations::Column::ServerSeq)
            .into_tuple::<(i64, Vec<u8>)>()
            .stream(&self.db)
            .await?;
        Ok(rows.map(|row| {
            let (server_seq, update) = row?;
            Ok((to_u64(server_seq, "operations.server_seq")?, update))
        }))
    }

    /// The highest `client_op_id` logged for `client_id` on document `id`,
    /// with its `server_seq`.
    pub async fn client_mark(
        &self,
        id: &str,
        client_id: &str,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let row: Option<(i64, i64)> = operations::Entity::find()
            .select_only()
            .column(operations::Column::ClientOpId)
            .column(operations::Column::ServerSeq)
            .filter(operations::Column::DocumentId.eq(id))
            .filter(operations::Column::ClientId.eq(client_id))
            .order_by_desc(operations::Column::ClientOpId)
            .limit(1)
            .into_tuple()
            .one(&self.db)
            .await?;
        row.map(|(op, seq)| {
            Ok((
                to_u64(op, "operations.client_op_id")?,
                to_u64(seq, "operations.server_seq")?,
            ))
        })
        .transpose()
    }

    /// Highest `server_seq` in the op log of document `id` (0: empty).
    pub async fn head(&self, id: &str) -> Result<u64, StoreError> {
        head_in(&self.db, id).await
    }

    /// Appends `ops` and writes `snapshot`, all in one transaction: either
    /// everything is durable when this returns `Ok`, or nothing is. With
    /// `expected_head`, the transaction first checks that the log ends
    /// there (used after a failed commit whose outcome is unknown).
    pub async fn commit(
        &self,
        id: &str,
        ops: &[NewOp],
        snapshot: Option<&NewSnapshot>,
        expected_head: Option<u64>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        if let Some(expected) = expected_head {
            let found = head_in(&txn, id).await?;
            if found != expected {
                return Err(StoreError::HeadMismatch { expected, found });
            }
        }
        let now = chrono::Utc::now();
        for chunk in ops.chunks(INSERT_CHUNK) {
            operations::Entity::insert_many(chunk.iter().map(|op| operations::ActiveModel {
                document_id: Set(id.to_owned()),
                server_seq: Set(to_i64(op.server_seq)),
                client_id: Set(op.client_id.to_string()),
                client_op_id: Set(to_i64(op.client_op_id)),
                update: Set(op.update.to_vec()),
                created_at: Set(now),
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        if let Some(snapshot) = snapshot {
            // A snapshot at the same seq exists when the previous one could
            // not be decoded (the document loaded from an older one): replace it.
            snapshots::Entity::insert(snapshots::ActiveModel {
                document_id: Set(id.to_owned()),
                server_seq: Set(to_i64(snapshot.server_seq)),
                state: Set(snapshot.state.clone()),
                created_at: Set(now),
            })
            .on_conflict(
                OnConflict::columns([snapshots::Column::DocumentId, snapshots::Column::ServerSeq])
                    .update_columns([snapshots::Column::State, snapshots::Column::CreatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
            snapshots::Entity::delete_many()
                .filter(snapshots::Column::DocumentId.eq(id))
                .filter(snapshots::Column::ServerSeq.lt(to_i64(snapshot.prune_below)))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
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

async fn head_in(db: &impl sea_orm::ConnectionTrait, id: &str) -> Result<u64, StoreError> {
    let head: Option<Option<i64>> = operations::Entity::find()
        .select_only()
        .column_as(operations::Column::ServerSeq.max(), "head")
        .filter(operations::Column::DocumentId.eq(id))
        .into_tuple()
        .one(db)
        .await?;
    to_u64(head.flatten().unwrap_or(0), "operations.server_seq")
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
