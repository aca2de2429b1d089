//! Named versions: `versions` pins a document's `server_seq` under a name
//! (`POST /api/documents/{id}/versions`), so that seq stays readable.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Versions {
    Table,
    DocumentId,
    Name,
    ServerSeq,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Versions::Table)
                    .if_not_exists()
                    .col(string_len(Versions::DocumentId, 512))
                    .col(string_len(Versions::Name, 255))
                    .col(big_integer(Versions::ServerSeq))
                    .col(timestamp_with_time_zone(Versions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Versions::DocumentId)
                            .col(Versions::Name),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Versions::Table).to_owned())
            .await
    }
}
