//! `versions`: a name for a `server_seq` of a document (a named version).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub document_id: String,
    /// Unique per document.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The head of the document when the version was pinned.
    pub server_seq: i64,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
