//! `GET /api/documents/{id}/state` (the state as a Yjs v1 update) and
//! `GET /api/documents/{id}/content` (the root types as JSON). Both come
//! from the document's actor, at its head (loading the document if needed).

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::access::{Need, authorize};
use super::documents::stored;
use super::history::state_at;
use super::{ApiError, query};
use crate::crdt::content::{RootKind, content_json, parse_root_kinds};
use crate::http::RouteState;
use crate::store::StoredDocument;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateQuery {
    state_vector: Option<String>,
    /// The document as it was after this op (from the store).
    at: Option<u64>,
}

/// `ETag` value of a document at `server_seq`.
fn etag(epoch: &str, server_seq: u64) -> String {
    format!("\"{epoch}:{server_seq}\"")
}

/// Whether `If-None-Match` names `tag` (or is `*`).
fn not_modified(req: &HttpRequest, tag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t == tag || t.strip_prefix("W/") == Some(tag))
        })
}

/// `GET /api/documents/{id}/state[?state_vector=BASE64]`.
pub async fn state(
    req: &HttpRequest,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    authorize(req, state, Some(document_id), Need::Read).await?;
    let query: StateQuery = query(req)?;
    let stored = stored(state, document_id).await?;
    if let Some(at) = query.at {
        if query.state_vector.is_some() {
            return Err(ApiError::bad_request(
                "bad_request",
                "at and state_vector do not go together",
            ));
        }
        let tag = etag(&stored.epoch, at);
        if not_modified(req, &tag) && at <= stored.server_seq {
            return Ok(HttpResponse::NotModified()
                .insert_header((header::ETAG, tag))
                .finish());
        }
        let update = state_at(state, &stored, at).await?;
        return Ok(HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header(("X-Server-Seq", at.to_string()))
            .insert_header((header::ETAG, tag))
            .body(update));
    }
    // The stored head is the actor's (acks follow commits): a match needs
    // no state at all.
    let tag = etag(&stored.epoch, stored.server_seq);
    if query.state_vector.is_none() && not_modified(req, &tag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish());
    }
    let read = match query.state_vector {
        None => state.documents.state(document_id).await?,
        Some(sv) => {
            // In a query string a `+` arrives as a space unless encoded;
            // the URL-safe alphabet is accepted too.
            let sv: String = sv
                .chars()
                .map(|c| match c {
                    ' ' | '-' => '+',
                    '_' => '/',
                    c => c,
                })
                .collect();
            let padded = format!("{sv}{}", "=".repeat((4 - sv.len() % 4) % 4));
            let sv = crate::crdt::decode_base64(&padded).map_err(|e| {
                ApiError::bad_request("invalid_state_vector", format!("state_vector: {e}"))
            })?;
            state
                .documents
                .state_since(document_id, sv.into())
                .await
                .map_err(|refusal| match refusal.reason {
                    crate::vocabulary::RefusalReason::Invalid => {
                        ApiError::bad_request("invalid_state_vector", refusal.message)
                    }
                    _ => ApiError::from(refusal),
                })?
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("X-Server-Seq", read.server_seq.to_string()))
        .insert_header((header::ETAG, etag(&read.epoch, read.server_seq)))
        .body(read.update))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentQuery {
    types: Option<String>,
    /// The document as it was after this op (from the store).
    at: Option<u64>,
}

#[derive(Serialize)]
struct ContentAnswer {
    server_seq: u64,
    content: Map<String, Value>,
}

/// `GET /api/documents/{id}/content[?types=name:kind,…]`.
pub async fn content(
    req: &HttpRequest,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    authorize(req, state, Some(document_id), Need::Read).await?;
    let query: ContentQuery = query(req)?;
    let kinds: BTreeMap<String, RootKind> = parse_root_kinds(query.types.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("bad_request", format!("types: {e}")))?;
    let stored: StoredDocument = stored(state, document_id).await?;
    let (server_seq, update) = match query.at {
        Some(at) => (at, state_at(state, &stored, at).await?),
        None => {
            let read = state.documents.state(document_id).await?;
            (read.server_seq, read.update)
        }
    };
    // Decoding a big document takes a while: not on this worker's thread.
    let content = web::block(move || content_json(&update, &kinds))
        .await
        .map_err(|e| ApiError::unavailable(format!("the content could not be built: {e}")))?
        .map_err(|e| ApiError::unavailable(format!("the content could not be built: {e}")))?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Server-Seq", server_seq.to_string()))
        .json(ContentAnswer {
            server_seq,
            content,
        }))
}
