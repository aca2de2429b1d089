//! `client_progress`: per document and client id, the highest
//! `client_op_id` logged, its `server_seq` and its subject, written in the
//! same transaction as the ops. Duplicate detection and
//! `last_client_op_id` read it instead of the op log, so they survive the
//! removal of old ops (compaction). Filled from the op log as it is.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ClientProgress {
    Table,
    DocumentId,
    ClientId,
    ClientOpId,
    ServerSeq,
    Subject,
}

/// The op log as it is: each client's highest op.
const BACKFILL: &str = "INSERT INTO client_progress \
    (document_id, client_id, client_op_id, server_seq, subject) \
    SELECT o.document_id, o.client_id, o.client_op_id, o.server_seq, o.subject \
    FROM operations o \
    WHERE o.client_op_id = (SELECT MAX(p.client_op_id) FROM operations p \
        WHERE p.document_id = o.document_id AND p.client_id = o.client_id)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClientProgress::Table)
                    .if_not_exists()
                    .col(string_len(ClientProgress::DocumentId, 512))
                    .col(string_len(ClientProgress::ClientId, 64))
                    .col(big_integer(ClientProgress::ClientOpId))
                    .col(big_integer(ClientProgress::ServerSeq))
                    .col(string_len_null(ClientProgress::Subject, 255))
                    .primary_key(
                        Index::create()
                            .col(ClientProgress::DocumentId)
                            .col(ClientProgress::ClientId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ClientProgress::Table).to_owned())
            .await
    }
}
