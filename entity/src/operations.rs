//! `operations`: the append-only op log.
//!
//! Invariant: for a document, the `server_seq` values form the contiguous
//! range `1..=head`. Rows are only ever inserted, never updated.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "operations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub document_id: String,
    /// Position of the operation in the document's total order (1-based).
    #[sea_orm(primary_key, auto_increment = false)]
    pub server_seq: i64,
    /// The `client_id` the sender gave in its `hello`.
    pub client_id: String,
    /// The sender's own number for the op; unique per `(document_id, client_id)`.
    pub client_op_id: i64,
    /// The Yjs v1 update exactly as the client sent it.
    pub update: Vec<u8>,
    /// Who wrote it, when access control was on (a token's `sub`): every op
    /// of a `(document_id, client_id)` has the same subject.
    pub subject: Option<String>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
