//! `client_progress`: what the op log has had of each client of a
//! document, kept when old ops are removed.
//!
//! Invariant: written in the transaction that logs the client's ops;
//! `client_op_id` only grows.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_progress")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub document_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// The client's highest logged `client_op_id`.
    pub client_op_id: i64,
    /// That op's `server_seq`.
    pub server_seq: i64,
    /// Who writes with this client id (the first subject that did).
    pub subject: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
