//! `GET /api/documents` (admin), `GET /api/documents/{id}`,
//! `DELETE /api/documents/{id}` (admin). Served from the store: nothing
//! is loaded to answer them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::access::{Need, authorize};
use super::{ApiError, rfc3339, store_failed};
use crate::http::RouteState;
use crate::store::{MAX_DOCUMENTS_PER_PAGE, StoredDocument};

/// Documents per page when the request names no `limit`.
const DEFAULT_PAGE: u64 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    after: Option<String>,
    limit: Option<u64>,
}

#[derive(Serialize)]
struct Listed {
    document_id: String,
    epoch: String,
    server_seq: u64,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct ListAnswer {
    documents: Vec<Listed>,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

/// `GET /api/documents?after=ID&limit=N`: stored documents in id order.
pub async fn list(
    req: HttpRequest,
    state: web::Data<RouteState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state, None, Need::Admin).await?;
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::bad_request("bad_request", format!("bad query: {e}")))?
        .into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_DOCUMENTS_PER_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_request",
            format!("limit must be 1 to {MAX_DOCUMENTS_PER_PAGE}"),
        ));
    }
    let stored = state
        .store
        .list_documents(query.after.as_deref(), limit)
        .await
        .map_err(store_failed)?;
    let next = (stored.len() as u64 == limit)
        .then(|| stored.last().map(|d| d.id.clone()))
        .flatten();
    let documents = stored
        .into_iter()
        .map(|d| Listed {
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
            document_id: d.id,
            epoch: d.epoch,
            server_seq: d.server_seq,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListAnswer { documents, next }))
}

#[derive(Serialize)]
struct InfoAnswer {
    document_id: String,
    epoch: String,
    server_seq: u64,
    snapshot_seq: u64,
    created_at: String,
    updated_at: String,
    /// Open WebSocket sessions on this server.
    sessions: usize,
}

/// The stored document, or 404.
pub async fn stored(state: &RouteState, document_id: &str) -> Result<StoredDocument, ApiError> {
    state
        .store
        .stored_document(document_id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| ApiError::not_found(document_id))
}

/// `GET /api/documents/{id}`.
pub async fn info(
    req: &HttpRequest,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    authorize(req, state, Some(document_id), Need::Read).await?;
    let stored = stored(state, document_id).await?;
    Ok(HttpResponse::Ok().json(InfoAnswer {
        sessions: state.slots.count(document_id),
        created_at: rfc3339(stored.created_at),
        updated_at: rfc3339(stored.updated_at),
        document_id: stored.id,
        epoch: stored.epoch,
        server_seq: stored.server_seq,
        snapshot_seq: stored.snapshot_seq,
    }))
}

/// `DELETE /api/documents/{id}`: 204, or 404 if it was never written.
pub async fn delete(
    req: &HttpRequest,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    authorize(req, state, Some(document_id), Need::Admin).await?;
    if state.documents.delete(document_id).await? {
        log::info!("API: document {document_id:?} deleted");
        Ok(HttpResponse::new(StatusCode::NO_CONTENT))
    } else {
        Err(ApiError::not_found(document_id))
    }
}
