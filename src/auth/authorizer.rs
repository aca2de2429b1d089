//! The authorizer seam: given a request (a WebSocket upgrade or an HTTP
//! call) and a document id, who connects and what may they do.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;

use super::grants::permission_for;
use super::revocations::Revocations;
use super::token::{TokenError, TokenKeys};
use crate::vocabulary::Access;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No credentials, or ones that are not valid (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that grant nothing here (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
}

/// Decides the access of a request to a document. A host application that
/// mounts the engine passes its own (its cookies, its sessions, its
/// database of permissions) in `EngineOptions`.
pub trait Authorizer: Send + Sync + 'static {
    fn authorize<'a>(
        &'a self,
        request: &'a HttpRequest,
        document_id: &'a str,
    ) -> LocalBoxFuture<'a, Result<Access, Denied>>;

    /// Whether `request` may use the admin-only document routes (list,
    /// delete) when no `auth.admin_key` is configured (with one, only the
    /// key does). Nobody, unless an authorizer says otherwise.
    fn grants_admin(&self, _request: &HttpRequest) -> bool {
        false
    }
}

/// `auth.mode = "none"`: everyone reads and writes everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize<'a>(
        &'a self,
        _request: &'a HttpRequest,
        _document_id: &'a str,
    ) -> LocalBoxFuture<'a, Result<Access, Denied>> {
        Box::pin(async { Ok(Access::anonymous()) })
    }

    /// Access control is off: the admin-only document routes are open too
    /// (unless an `auth.admin_key` is configured).
    fn grants_admin(&self, _request: &HttpRequest) -> bool {
        true
    }
}

/// `auth.mode = "token"`: a JWT from `Authorization: Bearer …` or a
/// `?token=…` query parameter (browsers cannot set headers on WebSockets).
pub struct TokenAuthorizer {
    keys: TokenKeys,
    revocations: Arc<Revocations>,
}

impl TokenAuthorizer {
    pub fn new(keys: TokenKeys, revocations: Arc<Revocations>) -> Self {
        TokenAuthorizer { keys, revocations }
    }

    fn check(&self, request: &HttpRequest, document_id: &str) -> Result<Access, Denied> {
        let token = bearer_token(request).ok_or_else(|| {
            Denied::Unauthorized(
                "a token is required: Authorization: Bearer <token>, or ?token=<token>".to_owned(),
            )
        })?;
        let claims = self.keys.verify(&token).map_err(|e| match e {
            TokenError::Malformed(_) => Denied::Unauthorized(e.to_string()),
            other => Denied::Unauthorized(other.to_string()),
        })?;
        if self.revocations.revokes(&claims) {
            return Err(Denied::Unauthorized(
                "the token has been revoked".to_owned(),
            ));
        }
        let permission = permission_for(&claims.docs, document_id).ok_or_else(|| {
            Denied::Forbidden(format!(
                "the token grants nothing on document {document_id:?}"
            ))
        })?;
        Ok(Access {
            subject: Some(Arc::from(claims.sub.as_str())),
            token_id: claims.jti.as_deref().map(Arc::from),
            permission,
            expires_at: Some(claims.exp),
        })
    }
}

impl Authorizer for TokenAuthorizer {
    fn authorize<'a>(
        &'a self,
        request: &'a HttpRequest,
        document_id: &'a str,
    ) -> LocalBoxFuture<'a, Result<Access, Denied>> {
        let answer = self.check(request, document_id);
        Box::pin(async move { answer })
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The token of a request: `Authorization: Bearer …`, else `?token=…`.
pub fn bearer_token(request: &HttpRequest) -> Option<String> {
    if request.headers().contains_key(header::AUTHORIZATION) {
        return bearer_header(request).map(str::to_owned);
    }
    actix_web::web::Query::<TokenQuery>::from_query(request.query_string())
        .ok()
        .and_then(|query| query.into_inner().token)
        .filter(|t| !t.is_empty())
}

/// The token of `Authorization: Bearer …` alone (no query parameter).
pub fn bearer_header(request: &HttpRequest) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?;
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
