//! History: the document as it was at a seq (the nearest snapshot at or
//! below it plus the ops up to it), and named versions.

use chrono::{DateTime, Utc};
use entity::{operations, snapshots, versions};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Store, StoreError, to_i64, to_u64};

/// What the store holds to rebuild a document at some seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryAt {
    /// The nearest snapshot at or below the seq: (its seq, its state).
    pub snapshot: Option<(u64, Vec<u8>)>,
    /// The logged updates after the snapshot up to the seq, in order.
    pub updates: Vec<Vec<u8>>,
}

/// A named version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub name: String,
    pub server_seq: u64,
    pub created_at: DateTime<Utc>,
}

/// Why a version was not pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("document {document_id:?} already has a version named {name:?}")]
    NameTaken { document_id: String, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// What rebuilds document `id` as it was after op `seq`; `None` when
    /// the store no longer reaches `seq` (no snapshot at or below it, and
    /// the log does not start at op 1), with the smallest seq it reaches.
    pub async fn history_at(
        &self,
        id: &str,
        seq: u64,
    ) -> Result<Result<HistoryAt, u64>, StoreError> {
        let snapshot = snapshots::Entity::find()
            .filter(snapshots::Column::DocumentId.eq(id))
            .filter(snapshots::Column::ServerSeq.lte(to_i64(seq)))
            .order_by_desc(snapshots::Column::ServerSeq)
            .one(&self.db)
            .await?
            .map(|row| {
                Ok::<_, StoreError>((to_u64(row.server_seq, "snapshots.server_seq")?, row.state))
            })
            .transpose()?;
        let from = snapshot.as_ref().map_or(0, |(at, _)| *at);
        let rows: Vec<(i64, Vec<u8>)> = operations::Entity::find()
            .select_only()
            .column(operations::Column::ServerSeq)
            .column(operations::Column::Update)
            .filter(operations::Column::DocumentId.eq(id))
            .filter(operations::Column::ServerSeq.gt(to_i64(from)))
            .filter(operations::Column::ServerSeq.lte(to_i64(seq)))
            .order_by_asc(operations::Column::ServerSeq)
            .into_tuple()
            .all(&self.db)
            .await?;
        // Every op from the snapshot (or op 1) up to `seq` must be there.
        let contiguous = rows
            .iter()
            .enumerate()
            .all(|(i, (s, _))| *s == to_i64(from + 1 + i as u64));
        if !contiguous || rows.len() as u64 != seq - from {
            return Ok(Err(self.earliest(id).await?));
        }
        Ok(Ok(HistoryAt {
            snapshot,
            updates: rows.into_iter().map(|(_, update)| update).collect(),
        }))
    }

    /// The smallest seq the store can rebuild document `id` at: 0 while
    /// its log starts at op 1, else its oldest snapshot.
    pub async fn earliest(&self, id: &str) -> Result<u64, StoreError> {
        let oldest_snapshot: Option<Option<i64>> = snapshots::Entity::find()
            .select_only()
            .column_as(snapshots::Column::ServerSeq.min(), "oldest")
            .filter(snapshots::Column::DocumentId.eq(id))
            .into_tuple()
            .one(&self.db)
            .await?;
        let oldest_op: Option<Option<i64>> = operations::Entity::find()
            .select_only()
            .column_as(operations::Column::ServerSeq.min(), "oldest")
            .filter(operations::Column::DocumentId.eq(id))
            .into_tuple()
            .one(&self.db)
            .await?;
        let earliest = match (oldest_op.flatten(), oldest_snapshot.flatten()) {
            // The whole log is there: every seq from 0.
            (Some(1), _) | (None, None) => 0,
            // From the oldest snapshot on (the log after it is complete).
            (_, Some(snapshot)) => snapshot,
            // No snapshot and a log that starts later: cannot happen (ops
            // are only removed below a snapshot); nothing below it answers.
            (Some(op), None) => op.saturating_sub(1),
        };
        to_u64(earliest, "server_seq")
    }

    /// Names `seq` of document `id` `name`; refused if the name is taken.
    pub async fn pin_version(&self, id: &str, name: &str, seq: u64) -> Result<Version, PinError> {
        let created_at = Utc::now();
        let inserted = versions::Entity::insert(versions::ActiveModel {
            document_id: Set(id.to_owned()),
            name: Set(name.to_owned()),
            server_seq: Set(to_i64(seq)),
            created_at: Set(created_at),
        })
        .on_conflict(
            OnConflict::columns([versions::Column::DocumentId, versions::Column::Name])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::from)?;
        if inserted == 0 {
            return Err(PinError::NameTaken {
                document_id: id.to_owned(),
                name: name.to_owned(),
            });
        }
        Ok(Version {
            name: name.to_owned(),
            server_seq: seq,
            created_at,
        })
    }

    /// The named versions of document `id`, oldest seq first.
    pub async fn versions(&self, id: &str) -> Result<Vec<Version>, StoreError> {
        versions::Entity::find()
            .filter(versions::Column::DocumentId.eq(id))
            .order_by_asc(versions::Column::ServerSeq)
            .order_by_asc(versions::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                Ok(Version {
                    server_seq: to_u64(row.server_seq, "versions.server_seq")?,
                    name: row.name,
                    created_at: row.created_at,
                })
            })
            .collect()
    }
}
