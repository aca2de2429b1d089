//! The catalog of stored documents: listing them, what one is, deleting one.

use chrono::{DateTime, Utc};
use entity::{client_progress, documents, operations, snapshots, versions};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::reads::head_in;
use super::{Store, StoreError, to_i64, to_u64};

/// What the store holds about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: String,
    pub epoch: String,
    /// The head of its op log (0: nothing logged).
    pub server_seq: u64,
    /// Its newest snapshot (0: none).
    pub snapshot_seq: u64,
    /// When its row was written (with its first op).
    pub created_at: DateTime<Utc>,
    /// When its newest op was committed (`created_at` if none is logged).
    pub updated_at: DateTime<Utc>,
}

/// Most documents one [`Store::list_documents`] answers.
pub const MAX_DOCUMENTS_PER_PAGE: u64 = 1000;

impl Store {
    /// Stored documents with an id after `after` (all with `None`), in id
    /// order (bytewise), at most `limit` (and [`MAX_DOCUMENTS_PER_PAGE`]).
    pub async fn list_documents(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let mut query = documents::Entity::find();
        if let Some(after) = after {
            query = query.filter(documents::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(documents::Column::Id)
            .limit(limit.clamp(1, MAX_DOCUMENTS_PER_PAGE))
            .all(&self.db)
            .await?;
        self.describe(rows).await
    }

    /// What the store holds about document `id`; `None` when it was never
    /// written (or was deleted).
    pub async fn stored_document(&self, id: &str) -> Result<Option<StoredDocument>, StoreError> {
        let Some(row) = documents::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(self.describe(vec![row]).await?.pop())
    }

    /// Heads, times and snapshots of `rows`: per document, three lookups
    /// of one row each in the primary keys' indexes (a grouped query
    /// would read every op of every document on the page).
    async fn describe(
        &self,
        rows: Vec<documents::Model>,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let mut described = Vec::with_capacity(rows.len());
        for row in rows {
            let head = head_in(&self.db, &row.id).await?;
            let updated_at = if head > 0 {
                operations::Entity::find_by_id((row.id.clone(), to_i64(head)))
                    .select_only()
                    .column(operations::Column::CreatedAt)
                    .into_tuple::<DateTime<Utc>>()
                    .one(&self.db)
                    .await?
            } else {
                None
            };
            let snapshot_seq: Option<Option<i64>> = snapshots::Entity::find()
                .select_only()
                .column_as(snapshots::Column::ServerSeq.max(), "snapshot_seq")
                .filter(snapshots::Column::DocumentId.eq(row.id.as_str()))
                .into_tuple()
                .one(&self.db)
                .await?;
            let snapshot_seq = to_u64(snapshot_seq.flatten().unwrap_or(0), "snapshots.server_seq")?;
            described.push(StoredDocument {
                server_seq: head.max(snapshot_seq),
                snapshot_seq,
                created_at: row.created_at,
                updated_at: updated_at.unwrap_or(row.created_at),
                epoch: row.epoch,
                id: row.id,
            });
        }
        Ok(described)
    }

    /// Removes document `id` for good: its ops, snapshots, versions and row, in one
    /// transaction. Answers whether it existed. The caller makes sure no
    /// actor serves the document meanwhile.
    pub async fn delete_document(&self, id: &str) -> Result<bool, StoreError> {
        let txn = self.begin_write().await?;
        operations::Entity::delete_many()
            .filter(operations::Column::DocumentId.eq(id))
            .exec(&txn)
            .await?;
        snapshots::Entity::delete_many()
            .filter(snapshots::Column::DocumentId.eq(id))
            .exec(&txn)
            .await?;
        versions::Entity::delete_many()
            .filter(versions::Column::DocumentId.eq(id))
            .exec(&txn)
            .await?;
        client_progress::Entity::delete_many()
            .filter(client_progress::Column::DocumentId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = documents::Entity::delete_by_id(id.to_owned())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted.rows_affected > 0)
    }
}
