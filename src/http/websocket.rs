//! `GET /ws/{document_id}` (native protocol) and `GET /yjs/{document_id}`
//! (y-websocket): validate the id, then upgrade to a session.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{RouteState, error_response};
use crate::protocols::SessionProtocol;
use crate::protocols::native::NativeProtocol;
use crate::protocols::yjs::YjsProtocol;
use crate::transport;
use crate::vocabulary::validate_document_id;

/// `GET /ws/{document_id}`: the native protocol.
pub type Native = NativeProtocol;
/// `GET /yjs/{document_id}`: the y-websocket protocol.
pub type Yjs = YjsProtocol;

/// The upgrade route of protocol `P` (e.g. `upgrade::<Native>`): validates
/// the document id, then upgrades to a session speaking `P`.
pub async fn upgrade<P: SessionProtocol + Default>(
    req: HttpRequest,
    stream: web::Payload,
    path: web::Path<String>,
    state: web::Data<RouteState>,
) -> Result<HttpResponse, actix_web::Error> {
    let document_id = path.into_inner();
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
    let session_id = state.next_session_id.fetch_add(1, Ordering::Relaxed);
    transport::start(
        P::default(),
        session_id,
        Arc::from(document_id.as_str()),
        &state.session,
        &req,
        stream,
    )
}
