//! History over HTTP: the document as it was at a seq (`?at=` on `state`
//! and `content`), and named versions (`/versions`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::access::{Need, authorize};
use super::documents::stored;
use super::{ApiError, rfc3339, store_failed};
use crate::crdt::replay::replay;
use crate::http::RouteState;
use crate::store::{PinError, StoredDocument, Version};

/// Longest version name, in characters.
pub const MAX_VERSION_NAME_CHARS: usize = 255;

/// The whole state of `stored` as it was after op `at` (a Yjs v1 update),
/// rebuilt from the store off this thread.
pub async fn state_at(
    state: &RouteState,
    stored: &StoredDocument,
    at: u64,
) -> Result<Bytes, ApiError> {
    if at > stored.server_seq {
        return Err(ApiError::bad_request(
            "bad_request",
            format!(
                "at={at} is beyond the head of the document ({})",
                stored.server_seq
            ),
        ));
    }
    let history = match state
        .store
        .history_at(&stored.id, at)
        .await
        .map_err(store_failed)?
    {
        Ok(history) => history,
        Err(earliest) => return Err(ApiError::compacted(at, earliest)),
    };
    let rebuilt = web::block(move || {
        replay(
            history.snapshot.as_ref().map(|(_, s)| s.as_slice()),
            &history.updates,
        )
    })
    .await
    .map_err(|e| ApiError::unavailable(format!("the history could not be rebuilt: {e}")))?
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Bytes::from(rebuilt))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinRequest {
    name: String,
}

#[derive(Serialize)]
struct VersionAnswer<'a> {
    server_seq: u64,
    name: &'a str,
    created_at: String,
}

impl<'a> VersionAnswer<'a> {
    fn of(version: &'a Version) -> Self {
        VersionAnswer {
            server_seq: version.server_seq,
            name: &version.name,
            created_at: rfc3339(version.created_at),
        }
    }
}

#[derive(Serialize)]
struct VersionsAnswer<'a> {
    versions: Vec<VersionAnswer<'a>>,
}

/// `POST /api/documents/{id}/versions {"name"}`: pins the head (201).
pub async fn pin(
    req: &HttpRequest,
    body: Bytes,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    authorize(req, state, Some(document_id), Need::Write).await?;
    let request: PinRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "bad_request",
            format!("the body is not what this route takes: {e}"),
        )
    })?;
    let chars = request.name.chars().count();
    if chars == 0 || chars > MAX_VERSION_NAME_CHARS || request.name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_request",
            format!(
                "name must be 1 to {MAX_VERSION_NAME_CHARS} characters, none a control character"
            ),
        ));
    }
    let stored = stored(state, document_id).await?;
    let pinned = state
        .store
        .pin_version(document_id, &request.name, stored.server_seq)
        .await
        .map_err(|e| match e {
            PinError::NameTaken { .. } => {
                ApiError::new(StatusCode::CONFLICT, "version_exists", e.to_string())
            }
            PinError::Store(e) => store_failed(e),
        })?;
    log::info!(
        "API: version {:?} of {document_id:?} pinned at {}",
        pinned.name,
        pinned.server_seq
    );
    Ok(HttpResponse::Created().json(VersionAnswer::of(&pinned)))
}

/// `GET /api/documents/{id}/versions`.
pub async fn list(
    req: &HttpRequest,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    authorize(req, state, Some(document_id), Need::Read).await?;
    let _: StoredDocument = stored(state, document_id).await?;
    let versions = state
        .store
        .versions(document_id)
        .await
        .map_err(store_failed)?;
    Ok(HttpResponse::Ok().json(VersionsAnswer {
        versions: versions.iter().map(VersionAnswer::of).collect(),
    }))
}
