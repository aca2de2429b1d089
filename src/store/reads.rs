//! Reading what is stored: snapshots, logged ops, a client's highest op,
//! the head of the log.

use std::sync::Arc;

use bytes::Bytes;
use entity::{client_progress, operations, snapshots};
use futures_util::{Stream, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Store, StoreError, to_i64, to_u64};
use crate::vocabulary::CommittedOp;

/// What the op log says about one client of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHistory {
    /// Its highest `client_op_id`.
    pub client_op_id: u64,
    /// That op's seq.
    pub server_seq: u64,
    /// Who wrote it (every op of a client id has the same subject).
    pub subject: Option<Arc<str>>,
}

impl Store {
    /// The epoch of document `id`, or `None` when nobody ever wrote to it
    /// (a document's row is written with its first op).
    pub async fn document_epoch(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(entity::documents::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(|row| row.epoch))
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
    ) -> Result<Vec<CommittedOp>, StoreError> {
        let mut query = operations::Entity::find()
            .filter(operations::Column::DocumentId.eq(id))
            .filter(operations::Column::ServerSeq.gt(to_i64(after)));
        if let Some(upto) = upto {
            query = query.filter(operations::Column::ServerSeq.lte(to_i64(upto)));
        }
        let rows = query
            .order_by_asc(operations::Column::ServerSeq)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(CommittedOp::new(
                    to_u64(row.server_seq, "operations.server_seq")?,
                    Arc::from(row.client_id),
                    to_u64(row.client_op_id, "operations.client_op_id")?,
                    Bytes::from(row.update),
                    None,
                )
                .with_subject(row.subject.map(Arc::from))
                .with_committed_at(row.created_at))
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

    /// What the log has had of `client_id` on document `id`: its highest
    /// `client_op_id`, that op's seq, and who wrote it. Read from
    /// `client_progress` (written with the ops), so it stays known when
    /// old ops are removed.
    pub async fn client_mark(
        &self,
        id: &str,
        client_id: &str,
    ) -> Result<Option<ClientHistory>, StoreError> {
        let row = client_progress::Entity::find_by_id((id.to_owned(), client_id.to_owned()))
            .one(&self.db)
            .await?;
        row.map(|row| {
            Ok(ClientHistory {
                client_op_id: to_u64(row.client_op_id, "client_progress.client_op_id")?,
                server_seq: to_u64(row.server_seq, "client_progress.server_seq")?,
                subject: row.subject.map(Arc::from),
            })
        })
        .transpose()
    }

    /// Highest `server_seq` in the op log of document `id` (0: empty).
    pub async fn head(&self, id: &str) -> Result<u64, StoreError> {
        head_in(&self.db, id).await
    }
}

pub(super) async fn head_in(
    db: &impl sea_orm::ConnectionTrait,
    id: &str,
) -> Result<u64, StoreError> {
    let head: Option<Option<i64>> = operations::Entity::find()
        .select_only()
        .column_as(operations::Column::ServerSeq.max(), "head")
        .filter(operations::Column::DocumentId.eq(id))
        .into_tuple()
        .one(db)
        .await?;
    to_u64(head.flatten().unwrap_or(0), "operations.server_seq")
}
