//! What a connection may do with a document: the answer of an authorizer,
//! carried by the session for its whole life.

use std::sync::Arc;

/// What a grant allows. `Write` implies `Read`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Receive everything (catch-up, ops, presence) and publish presence.
    Read,
    /// Also change the document.
    Write,
}

impl Permission {
    pub fn can_write(self) -> bool {
        self == Permission::Write
    }
}

/// The access of one connection to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Who connects (a token's `sub`); `None` when access control is off.
    /// A client id a subject wrote with on a document is that subject's.
    pub subject: Option<Arc<str>>,
    /// A token's `jti`, for revoking that one token.
    pub token_id: Option<Arc<str>>,
    pub permission: Permission,
    /// When the access ends (Unix seconds; a token's `exp`): the session is
    /// closed then with 4401.
    pub expires_at: Option<i64>,
}

impl Access {
    /// Anyone may read and write, for ever (access control off).
    pub fn anonymous() -> Self {
        Access {
            subject: None,
            token_id: None,
            permission: Permission::Write,
            expires_at: None,
        }
    }
}
