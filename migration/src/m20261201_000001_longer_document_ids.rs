//! Document ids up to 512 bytes (they were at most 128 characters):
//! widens `documents.id`, `operations.document_id` and
//! `snapshots.document_id` to `varchar(512)` on PostgreSQL. SQLite does not
//! enforce `varchar` lengths (and cannot alter a column), so it needs
//! nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The (table, column) pairs that hold a document id.
const ID_COLUMNS: [(&str, &str); 3] = [
    ("documents", "id"),
    ("operations", "document_id"),
    ("snapshots", "document_id"),
];

async fn set_length(manager: &SchemaManager<'_>, length: u32) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    for (table, column) in ID_COLUMNS {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new(table))
                    .modify_column(
                        ColumnDef::new(Alias::new(column))
                            .string_len(length)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_length(manager, 512).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_length(manager, 128).await
    }
}
