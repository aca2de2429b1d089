//! `GET /ws/{document_id}` (native protocol) and `GET /yjs/{document_id}`
//! (y-websocket). Before any upgrade, in this order: the document id
//! (400), shutdown (503), the server's and the address's connection limits
//! and upgrade rate (503/429), the `Origin` (403), the authorizer
//! (401/403), the document's session limit (429), and for a document that
//! does not exist yet the address's document creation rate (429).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use super::admin::MAX_SUBJECT_BYTES;
use super::{RouteState, error_response, refuse_origin};
use crate::auth::Denied;
use crate::metrics::RefusalKind;
use crate::protocols::SessionProtocol;
use crate::protocols::native::NativeProtocol;
use crate::protocols::yjs::YjsProtocol;
use crate::transport::connections::Refused;
use crate::transport::{self, NewSession};
use crate::vocabulary::validate_document_id;

/// `GET /ws/{document_id}`: the native protocol.
pub type Native = NativeProtocol;
/// `GET /yjs/{document_id}`: the y-websocket protocol.
pub type Yjs = YjsProtocol;

/// The upgrade route of protocol `P` (e.g. `upgrade::<Native>`). A
/// refusal is counted in `collab_refusals_total` by its status.
pub async fn upgrade<P: SessionProtocol>(
    req: HttpRequest,
    stream: web::Payload,
    path: web::Path<String>,
    state: web::Data<RouteState>,
) -> Result<HttpResponse, actix_web::Error> {
    let answer = admit::<P>(req, stream, path.into_inner(), &state).await;
    if let Ok(response) = &answer
        && let Some(kind) = RefusalKind::of_status(response.status().as_u16())
    {
        state.metrics.refused(kind);
    }
    answer
}

/// The checks of the module docs, then the upgrade.
async fn admit<P: SessionProtocol>(
    req: HttpRequest,
    stream: web::Payload,
    document_id: String,
    state: &RouteState,
) -> Result<HttpResponse, actix_web::Error> {
    if let Err(problem) = validate_document_id(&document_id) {
        return Ok(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_document_id",
            &problem.to_string(),
        ));
    }
    if state.shutting_down.load(Ordering::SeqCst) {
        return Ok(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    let ip = req.peer_addr().map(|addr| addr.ip());
    // Only WebSocket handshakes are counted (a plain GET is answered 400
    // by the handshake below, after the same checks).
    let connection = if is_websocket_upgrade(&req) {
        match state.connections.admit(ip) {
            Ok(permit) => Some(permit),
            Err(refused) => return Ok(refusal_response(&refused)),
        }
    } else {
        None
    };
    if let Some(refused) = refuse_origin(&req, &state.allowed_origins) {
        return Ok(refused);
    }
    let access = match state.authorizer.authorize(&req, &document_id).await {
        Ok(access) => access,
        Err(Denied::Unauthorized(message)) => {
            return Ok(error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &message,
            ));
        }
        Err(Denied::Forbidden(message)) => {
            return Ok(error_response(StatusCode::FORBIDDEN, "forbidden", &message));
        }
    };
    if access
        .subject
        .as_deref()
        .is_some_and(|s| s.is_empty() || s.len() > MAX_SUBJECT_BYTES)
    {
        let message = format!("the subject (sub) must be 1 to {MAX_SUBJECT_BYTES} bytes");
        return Ok(error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &message,
        ));
    }
    let document_id: Arc<str> = Arc::from(document_id.as_str());
    let Some(slot) = state.slots.take(&document_id) else {
        let message = format!(
            "document {document_id:?} already has {} sessions (limits.max_sessions_per_document)",
            state.slots.max_per_document()
        );
        return Ok(error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "document_full",
            &message,
        ));
    };
    if state.slots.count(&document_id) == 1
        && let Err(refused) = count_creation(state, &document_id, ip).await
    {
        return Ok(refusal_response(&refused));
    }
    let session = NewSession {
        protocol: P::for_access(&access, state.session.protocol_limits),
        id: state.next_session_id.fetch_add(1, Ordering::Relaxed),
        document_id,
        access,
        slot,
        connection,
    };
    transport::start(session, &state.session, &req, stream)
}

/// Counts the opening of `document_id` against the creation rate of `ip`
/// when the document does not exist yet (nobody ever wrote to it). When
/// the database cannot say, the upgrade goes ahead: the join will tell.
async fn count_creation(
    state: &RouteState,
    document_id: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<(), Refused> {
    match state.store.document_epoch(document_id).await {
        Ok(Some(_)) | Err(_) => Ok(()),
        Ok(None) => state.connections.create_document(ip),
    }
}

/// Whether `req` asks for a WebSocket (`Upgrade: websocket`).
fn is_websocket_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The answer to an upgrade refused by a connection limit.
fn refusal_response(refused: &Refused) -> HttpResponse {
    log::debug!("upgrade refused: {refused}");
    error_response(refused.status(), refused.code(), &refused.to_string())
}
