//! Reading the body of a long op log for a cold load, in chunks.
//!
//! A load rebuilds a document from its latest snapshot plus every op logged
//! after it. When that is a long stretch (a log written with snapshots off,
//! or after a crash that lost none of the log but the snapshot), the rows
//! are handed over in chunks through a bounded channel, so a load holds at
//! most a few chunks in memory, and the reading overlaps the applying.
//!
//! Two producers fill the channel:
//! - a SQLite file the engine connected itself is read by a plain read-only
//!   SQLite connection on a blocking thread ([`SqliteLogReader`]). sqlx
//!   copies every row into an owned row on its worker thread and sends it
//!   through a channel of its own: for the 100,000 rows of a long log that
//!   is 150–190 ms where SQLite itself needs about 50. WAL mode lets this
//!   connection read while the engine's pool writes other documents; the
//!   rows it reads were committed before the load began (the document's
//!   own actor, the only writer of its log, is the one loading it).
//! - anything else (PostgreSQL, an in-memory SQLite database, a connection
//!   the host application passed in) is streamed through sea-orm by a task
//!   on the loading actor's arbiter.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use futures_util::{StreamExt, pin_mut};
use rusqlite::{Connection, OpenFlags, params};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::mpsc;

use super::{Store, StoreError, to_i64, to_u64};

/// `(server_seq, update)` of consecutive logged ops, in order.
pub type LogChunk = Vec<(u64, Vec<u8>)>;

/// Chunks of the log body as they are read; `None` after the last one. An
/// error ends the stream.
pub type LogChunks = mpsc::Receiver<Result<LogChunk, StoreError>>;

/// Chunks read ahead of the consumer: the producer waits when this many
/// are queued, which bounds a load's memory.
const CHUNKS_AHEAD: usize = 2;

/// Which stretch of which log to read, and in what chunks.
#[derive(Debug, Clone)]
struct LogStretch {
    id: String,
    /// Ops `after < server_seq <= upto`.
    after: u64,
    upto: u64,
    chunk_ops: usize,
}

type ChunkSender = mpsc::Sender<Result<LogChunk, StoreError>>;

/// Cuts a run of rows into chunks of `size`.
struct Chunker {
    size: usize,
    chunk: LogChunk,
}

impl Chunker {
    fn new(size: usize) -> Chunker {
        Chunker {
            size,
            chunk: LogChunk::with_capacity(size),
        }
    }

    /// Adds a row; returns the chunk it completed, if any.
    fn push(&mut self, row: (u64, Vec<u8>)) -> Option<LogChunk> {
        self.chunk.push(row);
        (self.chunk.len() >= self.size)
            .then(|| std::mem::replace(&mut self.chunk, LogChunk::with_capacity(self.size)))
    }

    /// The last, partial chunk, if any rows are left.
    fn finish(self) -> Option<LogChunk> {
        (!self.chunk.is_empty()).then_some(self.chunk)
    }
}

/// Reads a SQLite database file's op log without sqlx (see the module
/// docs).
#[derive(Debug, Clone)]
pub(super) struct SqliteLogReader {
    /// The database file, as sqlx resolved it from the URL.
    path: PathBuf,
    /// How long to wait on a lock (only a WAL recovery can hold a reader).
    busy_timeout: Duration,
}

impl SqliteLogReader {
    /// A reader for the database at `url`, or `None` when it is not a
    /// file a second connection can open (in-memory databases). Called
    /// once the pool has opened (and created) the file: its path is made
    /// absolute then, so a later change of working directory does not
    /// send the reader elsewhere.
    pub(super) fn for_url(url: &str, busy_timeout: Duration) -> Option<SqliteLogReader> {
        if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
            return None;
        }
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename().to_path_buf();
        Some(SqliteLogReader {
            path: std::fs::canonicalize(&path).unwrap_or(path),
            busy_timeout,
        })
    }

    /// Reads `stretch` into `tx` on a blocking thread.
    fn spawn(&self, stretch: LogStretch, tx: ChunkSender) {
        let reader = self.clone();
        actix_web::rt::task::spawn_blocking(move || {
            if let Err(e) = reader.read(&stretch, &tx) {
                // The consumer may have gone; then nobody needs the error.
                let _ = tx.blocking_send(Err(e));
            }
        });
    }

    fn read(&self, stretch: &LogStretch, tx: &ChunkSender) -> Result<(), StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        let mut statement = conn.prepare(
            "SELECT server_seq, \"update\" FROM operations \
             WHERE document_id = ?1 AND server_seq > ?2 AND server_seq <= ?3 \
             ORDER BY server_seq",
        )?;
        let mut rows = statement.query(params![
            stretch.id,
            to_i64(stretch.after),
            to_i64(stretch.upto)
        ])?;
        let mut chunks = Chunker::new(stretch.chunk_ops);
        while let Some(row) = rows.next()? {
            let server_seq = to_u64(row.get(0)?, "operations.server_seq")?;
            if let Some(full) = chunks.push((server_seq, row.get(1)?))
                && tx.blocking_send(Ok(full)).is_err()
            {
                return Ok(()); // the load was abandoned
            }
        }
        if let Some(last) = chunks.finish() {
            let _ = tx.blocking_send(Ok(last));
        }
        Ok(())
    }
}

impl Store {
    /// The ops of document `id` with `after < server_seq <= upto`, in
    /// order, `chunk_ops` per chunk, read in the background (see the module
    /// docs). Dropping the receiver stops the reading.
    ///
    /// Must be called within an actix (tokio) runtime.
    pub fn log_chunks(&self, id: &str, after: u64, upto: u64, chunk_ops: usize) -> LogChunks {
        let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
        let stretch = LogStretch {
            id: id.to_owned(),
            after,
            upto,
            chunk_ops: chunk_ops.max(1),
        };
        match &self.log_reader {
            Some(reader) => reader.spawn(stretch, tx),
            None => {
                let store = self.clone();
                actix_web::rt::spawn(async move {
                    if let Err(e) = store.stream_chunks(&stretch, &tx).await {
                        let _ = tx.send(Err(e)).await;
                    }
                });
            }
        }
        rx
    }

    async fn stream_chunks(
        &self,
        stretch: &LogStretch,
        tx: &ChunkSender,
    ) -> Result<(), StoreError> {
        let rows = self
            .updates_between(&stretch.id, stretch.after, stretch.upto)
            .await?;
        pin_mut!(rows);
        let mut chunks = Chunker::new(stretch.chunk_ops);
        while let Some(row) = rows.next().await {
            if let Some(full) = chunks.push(row?)
                && tx.send(Ok(full)).await.is_err()
            {
                return Ok(()); // the load was abandoned
            }
        }
        if let Some(last) = chunks.finish() {
            let _ = tx.send(Ok(last)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cut_into_full_chunks_and_a_last_partial_one() {
        let mut chunks = Chunker::new(2);
        let sizes: Vec<usize> = (1..=5u64)
            .filter_map(|seq| chunks.push((seq, vec![0])))
            .map(|chunk| chunk.len())
            .collect();
        assert_eq!(sizes, vec![2, 2]);
        let last = chunks.finish().expect("a partial chunk");
        assert_eq!(
            last.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            vec![5]
        );
        assert!(Chunker::new(2).finish().is_none());
    }

    #[test]
    fn files_get_a_reader_and_memory_databases_do_not() {
        let timeout = Duration::from_millis(5);
        let reader = SqliteLogReader::for_url("sqlite://no-such-dir/collab.db?mode=rwc", timeout);
        assert_eq!(
            reader.map(|r| r.path),
            Some(PathBuf::from("no-such-dir/collab.db"))
        );
        assert!(SqliteLogReader::for_url("sqlite::memory:", timeout).is_none());
        assert!(SqliteLogReader::for_url("sqlite://x.db?mode=memory", timeout).is_none());
        assert!(SqliteLogReader::for_url("postgres://localhost/test", timeout).is_none());
    }

    /// A relative URL is resolved once, against the working directory of
    /// the start-up.
    #[test]
    fn an_existing_file_is_named_by_its_absolute_path() {
        let dir = tempfile::tempdir_in(".").expect("temp dir");
        let name = dir.path().file_name().expect("dir name").to_string_lossy();
        let relative = format!("{name}/log.db");
        std::fs::write(&relative, b"").expect("create file");
        let url = format!("sqlite://{relative}?mode=rwc");
        let reader = SqliteLogReader::for_url(&url, Duration::from_millis(5));
        let path = reader.map(|r| r.path).expect("a reader");
        assert!(path.is_absolute(), "{path:?}");
        assert_eq!(path, std::fs::canonicalize(&relative).expect("canonical"));
    }
}
