//! Who may call which API route: the admin key may do everything; a
//! document's routes are authorized like its WebSocket routes (the
//! engine's `Authorizer`: `read` may GET, `write` may also POST); listing
//! and deleting documents need the admin key, or, with no admin key
//! configured, an authorizer that grants admin (`auth.mode = "none"`).

use actix_web::HttpRequest;
use actix_web::http::StatusCode;

use super::ApiError;
use crate::auth::{bearer_token, same_secret};
use crate::http::RouteState;
use crate::vocabulary::{Access, Permission};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    Admin,
}

/// The caller's access to `document_id` for a route that needs `need`, or
/// the refusal (401 without valid credentials, 403 with too few rights).
pub async fn authorize(
    req: &HttpRequest,
    state: &RouteState,
    document_id: Option<&str>,
    need: Need,
) -> Result<Access, ApiError> {
    if is_admin(req, state) {
        return Ok(Access::anonymous());
    }
    let document_id = match (need, document_id) {
        (Need::Admin, _) | (_, None) => return Err(admin_needed(req, state)),
        (_, Some(id)) => id,
    };
    let access = state.authorizer.authorize(req, document_id).await?;
    if need == Need::Write && access.permission != Permission::Write {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the access to document {document_id:?} is read-only"),
        ));
    }
    Ok(access)
}

/// Whether the request carries the admin key (or, with no key configured,
/// the authorizer grants admin to everyone).
fn is_admin(req: &HttpRequest, state: &RouteState) -> bool {
    match state.admin.key.as_deref() {
        Some(key) => bearer_token(req).is_some_and(|given| same_secret(&given, key)),
        None => state.authorizer.grants_admin(req),
    }
}

fn admin_needed(req: &HttpRequest, state: &RouteState) -> ApiError {
    let message = match state.admin.key {
        Some(_) => "this route needs Authorization: Bearer <auth.admin_key>",
        None => "this route needs the admin key, and no auth.admin_key is configured",
    };
    if bearer_token(req).is_some() {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}
