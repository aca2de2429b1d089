//! Access control: `operations.subject` (who wrote each op: a client id
//! belongs to the subject that first wrote with it on a document) and the
//! `revocations` table.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Operations {
    Table,
    Subject,
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Id,
    Subject,
    Jti,
    RevokedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Operations::Table)
                    .add_column(string_len_null(Operations::Subject, 255))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .if_not_exists()
                    .col(pk_auto(Revocations::Id))
                    .col(string_len_null(Revocations::Subject, 255))
                    .col(string_len_null(Revocations::Jti, 255))
                    .col(big_integer(Revocations::RevokedAt))
                    .col(timestamp_with_time_zone(Revocations::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Revocations::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Operations::Table)
                    .drop_column(Operations::Subject)
                    .to_owned(),
            )
            .await
    }
}
