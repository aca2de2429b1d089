//! Creates `documents`, `operations` and `snapshots`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Documents {
    Table,
    Id,
    Epoch,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Operations {
    Table,
    DocumentId,
    ServerSeq,
    ClientId,
    ClientOpId,
    Update,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Snapshots {
    Table,
    DocumentId,
    ServerSeq,
    State,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Documents::Table)
                    .if_not_exists()
                    .col(string_len(Documents::Id, 128).primary_key())
                    .col(string_len(Documents::Epoch, 64))
                    .col(timestamp_with_time_zone(Documents::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Operations::Table)
                    .if_not_exists()
                    .col(string_len(Operations::DocumentId, 128))
                    .col(big_integer(Operations::ServerSeq))
                    .col(string_len(Operations::ClientId, 64))
                    .col(big_integer(Operations::ClientOpId))
                    .col(blob(Operations::Update))
                    .col(timestamp_with_time_zone(Operations::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Operations::DocumentId)
                            .col(Operations::ServerSeq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Operations::Table, Operations::DocumentId)
                            .to(Documents::Table, Documents::Id),
                    )
                    .to_owned(),
            )
            .await?;

        // One client's op numbers are unique within a document: the database
        // itself refuses to log a resent op twice.
        manager
            .create_index(
                Index::create()
                    .name("operations_client_op_unique")
                    .table(Operations::Table)
                    .col(Operations::DocumentId)
                    .col(Operations::ClientId)
                    .col(Operations::ClientOpId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Snapshots::Table)
                    .if_not_exists()
                    .col(string_len(Snapshots::DocumentId, 128))
                    .col(big_integer(Snapshots::ServerSeq))
                    .col(blob(Snapshots::State))
                    .col(timestamp_with_time_zone(Snapshots::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Snapshots::DocumentId)
                            .col(Snapshots::ServerSeq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Snapshots::Table, Snapshots::DocumentId)
                            .to(Documents::Table, Documents::Id),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Snapshots::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Operations::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Documents::Table).to_owned())
            .await
    }
}
