//! The admin API, behind `Authorization: Bearer <auth.admin_key>`:
//! `POST /api/tokens` mints an access token, `POST /api/revocations`
//! revokes a subject's tokens (or one token) and closes their sessions.

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{RouteState, Routes, error_response};
use crate::auth::{
    Grants, Revocation, Revocations, TokenKeys, bearer_token, same_secret, unix_now,
};
use crate::session_manager::{CloseSessionsOf, SessionManager, SessionsOf};
use crate::store::{Store, StoreError};
use crate::vocabulary::close_code;

/// Longest lifetime of a minted token: 31 days.
pub const MAX_TOKEN_TTL_SECS: u64 = 31 * 24 * 3600;
/// Lifetime of a minted token when the request names none: 1 hour.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;
/// Longest subject, in bytes (it is stored with every op).
pub const MAX_SUBJECT_BYTES: usize = 255;

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    pub key: Option<String>,
    pub token_keys: Option<TokenKeys>,
    pub revocations: std::sync::Arc<Revocations>,
    pub manager: Addr<SessionManager>,
}

/// Registers `/api/tokens` and `/api/revocations`.
pub fn configure(routes: &mut Routes) {
    routes
        .route("/api/tokens", web::post().to(mint))
        .route("/api/revocations", web::post().to(revoke_route));
}

/// 401 unless the request carries the admin key.
fn refuse_non_admin(req: &HttpRequest, admin: &AdminState) -> Option<HttpResponse> {
    let Some(expected) = admin.key.as_deref() else {
        let message = "the admin API is off: no auth.admin_key is configured";
        return Some(error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message,
        ));
    };
    match bearer_token(req) {
        Some(given) if same_secret(&given, expected) => None,
        _ => Some(error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin API needs Authorization: Bearer <auth.admin_key>",
        )),
    }
}

/// The 400 for a body that is not what the route takes.
fn bad_body(e: serde_json::Error) -> HttpResponse {
    error_response(
        StatusCode::BAD_REQUEST,
        "bad_request",
        &format!("the body is not what this route takes: {e}"),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    sub: String,
    #[serde(default)]
    docs: Grants,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// `POST /api/tokens {"sub", "docs", "ttl_secs"}` → `{"token", "expires_at"}`.
async fn mint(req: HttpRequest, body: web::Bytes, state: web::Data<RouteState>) -> HttpResponse {
    if let Some(refused) = refuse_non_admin(&req, &state.admin) {
        return refused;
    }
    let Some(keys) = state.admin.token_keys.as_ref() else {
        let message = "token minting is off: auth.mode is not \"token\"";
        return error_response(StatusCode::NOT_FOUND, "not_found", message);
    };
    let request: MintRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_body(e),
    };
    if request.sub.is_empty() || request.sub.len() > MAX_SUBJECT_BYTES {
        let message = format!("sub must be 1 to {MAX_SUBJECT_BYTES} bytes");
        return error_response(StatusCode::BAD_REQUEST, "bad_request", &message);
    }
    let ttl = request.ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL_SECS);
    if !(1..=MAX_TOKEN_TTL_SECS).contains(&ttl) {
        let message = format!("ttl_secs must be 1 to {MAX_TOKEN_TTL_SECS}");
        return error_response(StatusCode::BAD_REQUEST, "bad_request", &message);
    }
    let minted = keys.mint(&request.sub, request.docs, ttl, unix_now());
    log::info!(
        "admin API: token minted for subject {:?}, {ttl} s",
        request.sub
    );
    HttpResponse::Ok().json(minted)
}

/// `POST /api/revocations {"sub": …}` or `{"jti": …}` → 204.
async fn revoke_route(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<RouteState>,
) -> HttpResponse {
    if let Some(refused) = refuse_non_admin(&req, &state.admin) {
        return refused;
    }
    let revocation: Revocation = match serde_json::from_slice(&body) {
        Ok(revocation) => revocation,
        Err(e) => return bad_body(e),
    };
    match revoke(&state.admin, &state.store, revocation).await {
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(e) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &format!("the revocation could not be stored: {e}"),
        ),
    }
}

/// Stores `revocation`, refuses its tokens from now on, and closes the
/// live sessions it covers with 4403; answers how many.
pub async fn revoke(
    admin: &AdminState,
    store: &Store,
    revocation: Revocation,
) -> Result<usize, StoreError> {
    let at = unix_now();
    store.add_revocation(&revocation.stored(at)).await?;
    admin.revocations.add(&revocation, at);
    let who = match revocation {
        Revocation::Subject { sub } => SessionsOf::Subject(sub),
        Revocation::Token { jti } => SessionsOf::Token(jti),
    };
    log::warn!("access revoked: {who:?}");
    let closed = admin
        .manager
        .send(CloseSessionsOf {
            who,
            code: close_code::ACCESS_REVOKED,
            reason: "access revoked".to_owned(),
        })
        .await
        .unwrap_or(0);
    Ok(closed)
}
