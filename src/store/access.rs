//! Revocations, kept in the database so that they survive a restart.

use entity::revocations;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::{Store, StoreError};

/// A stored revocation: every token of `subject` issued at or before
/// `revoked_at` (Unix seconds), or the token `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRevocation {
    pub subject: Option<String>,
    pub jti: Option<String>,
    pub revoked_at: i64,
}

impl Store {
    /// Records a revocation.
    pub async fn add_revocation(&self, revocation: &StoredRevocation) -> Result<(), StoreError> {
        revocations::Entity::insert(revocations::ActiveModel {
            subject: Set(revocation.subject.clone()),
            jti: Set(revocation.jti.clone()),
            revoked_at: Set(revocation.revoked_at),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Every revocation ever recorded.
    pub async fn revocations(&self) -> Result<Vec<StoredRevocation>, StoreError> {
        Ok(revocations::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| StoredRevocation {
                subject: row.subject,
                jti: row.jti,
                revoked_at: row.revoked_at,
            })
            .collect())
    }
}
