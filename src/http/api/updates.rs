//! `POST /api/documents/{id}/updates`: an op over HTTP, answered after its
//! commit, broadcast to every session like any op.
//!
//! The body is a Yjs v1 update (`application/octet-stream`), or JSON
//! `{"update": BASE64, "client_id": …, "client_op_id": …}`. The op is
//! written as `(client_id, client_op_id)`: the body's, else one made of the
//! `Idempotency-Key` header (`idem:<key>`, op 1), else a new client id of
//! its own (`http-<uuid>`, op 1). A repeated pair is answered with the
//! original seq and `duplicate: true`, as a resent WebSocket op is.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::access::{Need, authorize};
use crate::crdt::{self, UpdateProblem, ValidUpdate};
use crate::http::RouteState;

/// The client id prefix of ops named by an `Idempotency-Key`.
const IDEMPOTENCY_PREFIX: &str = "idem:";
/// Longest `Idempotency-Key`: the client id it makes is at most 64 characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 59;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonUpdate {
    update: String,
    client_id: Option<String>,
    client_op_id: Option<u64>,
}

#[derive(Serialize)]
struct Answer {
    /// `null` only for a duplicate the server no longer knows the seq of.
    server_seq: Option<u64>,
    duplicate: bool,
}

/// `POST /api/documents/{id}/updates`.
pub async fn post(
    req: &HttpRequest,
    payload: web::Payload,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    let access = authorize(req, state, Some(document_id), Need::Write).await?;
    let json = match media_type(req).as_deref() {
        Some("application/octet-stream") => false,
        Some("application/json") => true,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "Content-Type must be application/octet-stream (a Yjs v1 update) or \
                     application/json, not {}",
                    other.unwrap_or("none")
                ),
            ));
        }
    };
    let body = read_body(payload, state.session.max_message_bytes).await?;
    let (update, client_id, client_op_id) = if json {
        let parsed: JsonUpdate = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "bad_request",
                format!("the body is not what this route takes: {e}"),
            )
        })?;
        let update = crdt::decode_base64_update(&parsed.update).map_err(invalid_update)?;
        match (parsed.client_id, parsed.client_op_id) {
            (Some(client_id), Some(op)) => (update, client_id, op),
            (None, None) => {
                let (client_id, op) = implicit_client(req)?;
                (update, client_id, op)
            }
            _ => {
                return Err(ApiError::bad_request(
                    "bad_request",
                    "client_id and client_op_id go together: give both or neither",
                ));
            }
        }
    } else {
        let update = crdt::decode_update(body).map_err(invalid_update)?;
        let (client_id, op) = implicit_client(req)?;
        (update, client_id, op)
    };
    submit(
        state,
        document_id,
        &client_id,
        client_op_id,
        update,
        access.subject,
    )
    .await
}

async fn submit(
    state: &RouteState,
    document_id: &str,
    client_id: &str,
    client_op_id: u64,
    update: ValidUpdate,
    subject: Option<std::sync::Arc<str>>,
) -> Result<HttpResponse, ApiError> {
    let committed = state
        .documents
        .submit_as(document_id, client_id, client_op_id, update, subject)
        .await?;
    log::debug!(
        "API: op {client_op_id} of {client_id:?} on {document_id:?}: seq {:?}, duplicate {}",
        committed.server_seq,
        committed.duplicate
    );
    Ok(HttpResponse::Ok().json(Answer {
        server_seq: committed.server_seq,
        duplicate: committed.duplicate,
    }))
}

/// The op's client: from the `Idempotency-Key`, else a new one.
fn implicit_client(req: &HttpRequest) -> Result<(String, u64), ApiError> {
    let Some(key) = req.headers().get("Idempotency-Key") else {
        return Ok((format!("http-{}", uuid::Uuid::new_v4()), 1));
    };
    let key = key.to_str().unwrap_or_default();
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS || key.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_request",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, none a control character"
            ),
        ));
    }
    Ok((format!("{IDEMPOTENCY_PREFIX}{key}"), 1))
}

fn invalid_update(problem: UpdateProblem) -> ApiError {
    ApiError::bad_request("invalid_update", problem.to_string())
}

/// The media type of the body, lower-cased, without parameters.
fn media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(media)
}

/// The body, refused with 413 past `limit` bytes (read no further).
pub(super) async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("bad_request", format!("the body could not be read: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message_too_large",
                format!(
                    "the body is larger than the limit of {limit} bytes (documents.max_message_bytes)"
                ),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
