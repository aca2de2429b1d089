//! `revocations`: revoked access, kept so that it survives a restart.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revocations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Every token of this subject issued (`iat`) at or before `revoked_at`.
    pub subject: Option<String>,
    /// Or the one token with this `jti`.
    pub jti: Option<String>,
    /// Unix seconds.
    pub revoked_at: i64,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
