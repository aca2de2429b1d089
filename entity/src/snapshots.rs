//! `snapshots`: full document states at a given `server_seq`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "snapshots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub document_id: String,
    /// The state holds exactly the operations `1..=server_seq`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub server_seq: i64,
    /// `encode_state_as_update_v1` of the document at `server_seq`.
    pub state: Vec<u8>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
