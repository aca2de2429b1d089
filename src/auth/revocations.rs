//! Revoked access: every token of a subject issued up to a moment, or one
//! token by its `jti`. Kept in memory for the checks, in the database so
//! that revocations survive a restart.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use serde::Deserialize;

use super::token::Claims;
use crate::store::{Store, StoreError, StoredRevocation};

/// One revocation, as `POST /api/revocations` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Revocation {
    /// Every token of `sub` issued (`iat`) at or before the revocation.
    Subject { sub: String },
    /// The token with this `jti`.
    Token { jti: String },
}

#[derive(Debug, Default)]
struct Revoked {
    /// Subject to the second (Unix) of its latest revocation.
    subjects: HashMap<String, i64>,
    tokens: HashSet<String>,
}

/// See the module docs. Shared by the token authorizer and the engine.
#[derive(Debug, Default)]
pub struct Revocations {
    revoked: RwLock<Revoked>,
}

impl Revocation {
    /// As it is stored, made at `at` (Unix seconds).
    pub fn stored(&self, at: i64) -> StoredRevocation {
        let (subject, jti) = match self {
            Revocation::Subject { sub } => (Some(sub.clone()), None),
            Revocation::Token { jti } => (None, Some(jti.clone())),
        };
        StoredRevocation {
            subject,
            jti,
            revoked_at: at,
        }
    }
}

impl Revocations {
    /// Every revocation `store` holds.
    pub async fn load(store: &Store) -> Result<Revocations, StoreError> {
        let revocations = Revocations::default();
        for stored in store.revocations().await? {
            let revocation = match (stored.subject, stored.jti) {
                (Some(sub), _) => Revocation::Subject { sub },
                (None, Some(jti)) => Revocation::Token { jti },
                (None, None) => continue,
            };
            revocations.add(&revocation, stored.revoked_at);
        }
        Ok(revocations)
    }

    /// Records `revocation`, made at `at` (Unix seconds).
    pub fn add(&self, revocation: &Revocation, at: i64) {
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        match revocation {
            Revocation::Subject { sub } => {
                let latest = revoked.subjects.entry(sub.clone()).or_insert(at);
                *latest = (*latest).max(at);
            }
            Revocation::Token { jti } => {
                revoked.tokens.insert(jti.clone());
            }
        }
    }

    /// Whether a token with these claims is revoked. A token of a revoked
    /// subject is revoked when it was issued in or before the second of the
    /// revocation, or does not say when it was issued.
    pub fn revokes(&self, claims: &Claims) -> bool {
        let revoked = self.revoked.read().unwrap_or_else(|e| e.into_inner());
        if claims
            .jti
            .as_ref()
            .is_some_and(|jti| revoked.tokens.contains(jti))
        {
            return true;
        }
        revoked
            .subjects
            .get(&claims.sub)
            .is_some_and(|at| claims.iat.is_none_or(|iat| iat <= *at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, iat: Option<i64>, jti: Option<&str>) -> Claims {
        Claims {
            sub: sub.to_owned(),
            exp: i64::MAX,
            iat,
            nbf: None,
            jti: jti.map(str::to_owned),
            aud: None,
            docs: Default::default(),
        }
    }

    #[test]
    fn tokens_issued_before_a_revocation_are_revoked_later_ones_are_not() {
        let revocations = Revocations::default();
        revocations.add(&Revocation::Subject { sub: "u".into() }, 100);
        assert!(revocations.revokes(&claims("u", Some(99), None)));
        assert!(
            revocations.revokes(&claims("u", Some(100), None)),
            "the same second"
        );
        assert!(revocations.revokes(&claims("u", None, None)), "no iat");
        assert!(!revocations.revokes(&claims("u", Some(101), None)));
        assert!(!revocations.revokes(&claims("other", Some(1), None)));
        revocations.add(&Revocation::Token { jti: "t1".into() }, 200);
        assert!(revocations.revokes(&claims("v", Some(300), Some("t1"))));
        assert!(!revocations.revokes(&claims("v", Some(300), Some("t2"))));
        let parsed: Revocation = serde_json::from_str(r#"{"sub": "user-42"}"#).expect("json");
        assert_eq!(
            parsed,
            Revocation::Subject {
                sub: "user-42".into()
            }
        );
    }
}
