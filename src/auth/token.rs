//! Access tokens: JWTs signed with HS256 under `auth.secret`.
//!
//! ```json
//! {"sub": "user-42", "exp": 1767225600, "iat": 1767222000, "docs": {"notes-*": "write", "handbook": "read"}}
//! ```
//!
//! `sub` and `exp` are required; `nbf`, `jti` and `aud` are honoured when
//! present (an `aud` must include `auth.audience`).

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::grants::Grants;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(default)]
    pub docs: Grants,
}

/// Why a token was refused (each is a 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token is not meant for this server (aud)")]
    WrongAudience,
    #[error("the token is malformed: {0}")]
    Malformed(String),
}

/// The secret cannot key HS256.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token secret must not be empty")]
pub struct EmptySecret;

/// A token minted by [`TokenKeys::mint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MintedToken {
    pub token: String,
    /// Its `exp`, Unix seconds.
    pub expires_at: i64,
}

/// The HS256 key, and how tokens are checked.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys { .. }")
    }
}

impl TokenKeys {
    /// Keys from the UTF-8 bytes of `secret`; tokens may be off by
    /// `leeway_secs` of clock skew; with a non-empty `audience`, a token's
    /// `aud` must include it (and without one, tokens with an `aud` are refused).
    pub fn new(secret: &str, audience: &str, leeway_secs: u64) -> Result<Self, EmptySecret> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if !audience.is_empty() {
            validation.set_audience(&[audience]);
        }
        let encoding = EncodingKey::from_secret(secret.as_bytes()).map_err(|_| EmptySecret)?;
        let decoding = DecodingKey::from_secret(secret.as_bytes()).map_err(|_| EmptySecret)?;
        Ok(TokenKeys {
            encoding: Arc::new(encoding),
            decoding: Arc::new(decoding),
            validation: Arc::new(validation),
        })
    }

    /// Checks `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                _ => TokenError::Malformed(e.to_string()),
            })
    }

    /// A token for `sub` granting `docs`, valid `ttl_secs` from `now` (Unix
    /// seconds).
    pub fn mint(&self, sub: &str, docs: Grants, ttl_secs: u64, now: i64) -> MintedToken {
        let expires_at = now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX));
        let claims = Claims {
            sub: sub.to_owned(),
            exp: expires_at,
            iat: Some(now),
            nbf: None,
            jti: Some(uuid::Uuid::new_v4().simple().to_string()),
            aud: None,
            docs,
        };
        // Signing HS256 with a valid key cannot fail.
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default();
        MintedToken { token, expires_at }
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Permission;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()).expect("key"),
        )
        .expect("signs")
    }

    #[test]
    fn minted_tokens_verify_and_carry_their_grants() {
        let keys = TokenKeys::new(SECRET, "", 5).expect("keys");
        let docs: Grants = [("notes-*".to_owned(), Permission::Write)].into();
        let minted = keys.mint("user-42", docs.clone(), 3600, unix_now());
        let claims = keys.verify(&minted.token).expect("valid");
        assert_eq!(
            (claims.sub.as_str(), claims.exp, claims.docs),
            ("user-42", minted.expires_at, docs)
        );
        assert!(claims.jti.is_some() && claims.iat.is_some());
    }

    #[test]
    fn bad_tokens_say_why() {
        let keys = TokenKeys::new(SECRET, "", 5).expect("keys");
        let now = unix_now();
        let expired = sign(serde_json::json!({"sub": "a", "exp": now - 60}), SECRET);
        assert_eq!(keys.verify(&expired), Err(TokenError::Expired));
        let skewed = sign(serde_json::json!({"sub": "a", "exp": now - 2}), SECRET);
        assert!(keys.verify(&skewed).is_ok(), "a few seconds of clock skew");
        let early = sign(
            serde_json::json!({"sub": "a", "exp": now + 60, "nbf": now + 60}),
            SECRET,
        );
        assert_eq!(keys.verify(&early), Err(TokenError::NotYetValid));
        let forged = sign(
            serde_json::json!({"sub": "a", "exp": now + 60}),
            "another secret of 32 bytes......",
        );
        assert_eq!(keys.verify(&forged), Err(TokenError::BadSignature));
        let no_sub = sign(serde_json::json!({"exp": now + 60}), SECRET);
        assert!(matches!(
            keys.verify(&no_sub),
            Err(TokenError::Malformed(_))
        ));
        let no_exp = sign(serde_json::json!({"sub": "a"}), SECRET);
        assert!(matches!(
            keys.verify(&no_exp),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            keys.verify("not a token"),
            Err(TokenError::Malformed(_))
        ));
        let bad_grant = sign(
            serde_json::json!({"sub": "a", "exp": now + 60, "docs": {"x": "admin"}}),
            SECRET,
        );
        assert!(matches!(
            keys.verify(&bad_grant),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn an_empty_secret_is_no_key() {
        assert_eq!(TokenKeys::new("", "", 5).err(), Some(EmptySecret));
    }

    #[test]
    fn audiences_must_match() {
        let now = unix_now();
        let for_us = sign(
            serde_json::json!({"sub": "a", "exp": now + 60, "aud": "collab"}),
            SECRET,
        );
        let for_others = sign(
            serde_json::json!({"sub": "a", "exp": now + 60, "aud": "billing"}),
            SECRET,
        );
        let none = sign(serde_json::json!({"sub": "a", "exp": now + 60}), SECRET);
        let strict = TokenKeys::new(SECRET, "collab", 5).expect("keys");
        assert!(strict.verify(&for_us).is_ok());
        assert_eq!(strict.verify(&for_others), Err(TokenError::WrongAudience));
        assert!(strict.verify(&none).is_ok(), "aud is honoured when present");
        let open = TokenKeys::new(SECRET, "", 5).expect("keys");
        assert_eq!(
            open.verify(&for_us),
            Err(TokenError::WrongAudience),
            "an aud we do not claim"
        );
    }
}
