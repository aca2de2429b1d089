//! Writing: creating a document, and the group commit of its ops and
//! snapshot in one transaction.

use std::collections::HashMap;
use std::sync::Arc;

use entity::{client_progress, documents, operations, snapshots};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use super::faults::CommitFaults;
use super::reads::head_in;
use super::{NewSnapshot, Store, StoreError, to_i64};
use crate::vocabulary::CommittedOp;

/// The document id of readiness probes (never committed; control
/// characters make it an id no client can use).
const PROBE_DOCUMENT: &str = "\u{1}collab-engine readiness probe";

/// Rows per INSERT statement: far below SQLite's 32,766 bound variables.
const INSERT_CHUNK: usize = 1000;

impl Store {
    /// Commits `ops` (and `snapshot`, pruning the snapshots below its
    /// `prune_below`) of document `id` in one transaction. With `create`,
    /// the document has no row yet: the row is written in the same
    /// transaction with that epoch (a document nobody wrote to leaves no
    /// row). With `expected_head`, the log head is checked first and a
    /// mismatch refused with [`StoreError::HeadMismatch`]: the ops are not
    /// written there (used after a failed commit whose outcome is unknown).
    pub async fn commit(
        &self,
        id: &str,
        ops: &[Arc<CommittedOp>],
        snapshot: Option<NewSnapshot>,
        expected_head: Option<u64>,
        create: Option<&str>,
    ) -> Result<(), StoreError> {
        let fail_after = match &self.faults {
            Some(faults) => faults.commit_starts(id)?,
            None => false,
        };
        let txn = self.begin_write().await?;
        write_batch(&txn, id, ops, snapshot, expected_head, create).await?;
        txn.commit().await?;
        if fail_after {
            return Err(CommitFaults::landed_but_failed());
        }
        Ok(())
    }

    /// Whether a commit would go through now: writes a document row and an
    /// op the way a commit does (in a transaction that takes the write lock
    /// on SQLite), then rolls everything back. Catches what a ping does
    /// not: a write lock held elsewhere, a read-only database, a refusing
    /// trigger or constraint.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let txn = self.begin_write().await?;
        let now = chrono::Utc::now();
        documents::Entity::insert(documents::ActiveModel {
            id: Set(PROBE_DOCUMENT.to_owned()),
            epoch: Set("probe".to_owned()),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        operations::Entity::insert(operations::ActiveModel {
            document_id: Set(PROBE_DOCUMENT.to_owned()),
            server_seq: Set(1),
            client_id: Set("probe".to_owned()),
            client_op_id: Set(1),
            update: Set(vec![0, 0]),
            subject: Set(Some("probe".to_owned())),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.rollback().await?;
        Ok(())
    }

    /// A transaction that writes. SQLite: it takes the write lock up front.
    /// A deferred transaction that reads first and then writes cannot wait
    /// for a lock another connection holds: SQLite refuses that
    /// read-to-write upgrade at once ("database is locked") instead of
    /// waiting `sqlite_busy_timeout_ms`. PostgreSQL ignores the mode.
    pub(super) async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        Ok(self.db.begin_with_options(options).await?)
    }
}

/// Writes one group commit of document `id` inside `txn` (see [`Store::commit`]).
async fn write_batch(
    txn: &DatabaseTransaction,
    id: &str,
    ops: &[Arc<CommittedOp>],
    snapshot: Option<NewSnapshot>,
    expected_head: Option<u64>,
    create: Option<&str>,
) -> Result<(), StoreError> {
    if let Some(expected) = expected_head {
        let found = head_in(txn, id).await?;
        if found != expected {
            return Err(StoreError::HeadMismatch { expected, found });
        }
    }
    let now = chrono::Utc::now();
    if let Some(epoch) = create {
        create_row(txn, id, epoch, now).await?;
    }
    for chunk in ops.chunks(INSERT_CHUNK) {
        operations::Entity::insert_many(chunk.iter().map(|op| operations::ActiveModel {
            document_id: Set(id.to_owned()),
            server_seq: Set(to_i64(op.server_seq)),
            client_id: Set(op.client_id.to_string()),
            client_op_id: Set(to_i64(op.client_op_id)),
            update: Set(op.update.to_vec()),
            subject: Set(op.subject.as_deref().map(str::to_owned)),
            created_at: Set(op.committed_at),
        }))
        .exec_without_returning(txn)
        .await?;
    }
    write_progress(txn, id, ops).await?;
    if let Some(snapshot) = snapshot {
        let NewSnapshot {
            server_seq,
            state,
            prune_below,
        } = snapshot;
        // A snapshot at the same seq exists when the previous one could
        // not be decoded (the document loaded from an older one): replace it.
        snapshots::Entity::insert(snapshots::ActiveModel {
            document_id: Set(id.to_owned()),
            server_seq: Set(to_i64(server_seq)),
            // Moved, not copied: a snapshot can be as big as the document.
            state: Set(state),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([snapshots::Column::DocumentId, snapshots::Column::ServerSeq])
                .update_columns([snapshots::Column::State, snapshots::Column::CreatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        snapshots::Entity::delete_many()
            .filter(snapshots::Column::DocumentId.eq(id))
            .filter(snapshots::Column::ServerSeq.lt(to_i64(prune_below)))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Records, for each client of `ops`, its highest op (see
/// `entity::client_progress`), in the transaction that logs them.
async fn write_progress(
    txn: &DatabaseTransaction,
    id: &str,
    ops: &[Arc<CommittedOp>],
) -> Result<(), StoreError> {
    // A client's ops are in seq order and its op ids grow: the last wins.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut latest: Vec<&CommittedOp> = Vec::new();
    for op in ops {
        match index.get(op.client_id.as_ref()) {
            Some(&at) => latest[at] = op,
            None => {
                index.insert(op.client_id.as_ref(), latest.len());
                latest.push(op);
            }
        }
    }
    for chunk in latest.chunks(INSERT_CHUNK) {
        client_progress::Entity::insert_many(chunk.iter().map(|op| client_progress::ActiveModel {
            document_id: Set(id.to_owned()),
            client_id: Set(op.client_id.to_string()),
            client_op_id: Set(to_i64(op.client_op_id)),
            server_seq: Set(to_i64(op.server_seq)),
            subject: Set(op.subject.as_deref().map(str::to_owned)),
        }))
        .on_conflict(
            OnConflict::columns([
                client_progress::Column::DocumentId,
                client_progress::Column::ClientId,
            ])
            .update_columns([
                client_progress::Column::ClientOpId,
                client_progress::Column::ServerSeq,
                client_progress::Column::Subject,
            ])
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

/// Writes the row of document `id` with `epoch` inside `txn`; a row that
/// exists with another epoch means two writers: refused.
async fn create_row(
    txn: &DatabaseTransaction,
    id: &str,
    epoch: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    documents::Entity::insert(documents::ActiveModel {
        id: Set(id.to_owned()),
        epoch: Set(epoch.to_owned()),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(documents::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    let stored = documents::Entity::find_by_id(id.to_owned())
        .one(txn)
        .await?
        .map(|row| row.epoch);
    if stored.as_deref() != Some(epoch) {
        return Err(StoreError::Corrupt(format!(
            "document {id}: its row was written by another writer (epoch {stored:?}, expected {epoch})"
        )));
    }
    Ok(())
}
