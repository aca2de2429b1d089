//! `documents`: one row per document incarnation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "documents")]
pub struct Model {
    /// The document id from the URL, percent-decoded: 1–512 bytes of UTF-8
    /// without control characters.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Opaque string, new for every incarnation of the document. A client
    /// whose remembered epoch differs gets a snapshot instead of a replay.
    pub epoch: String,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
