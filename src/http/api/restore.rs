//! `POST /api/documents/{id}/restore {"server_seq": N}`: makes the
//! document's content what it was at N, as a new op (client id
//! `restore`) computed by the server, committed with the next seq and
//! broadcast like any op. History stays; the epoch does not change.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::access::{Need, authorize};
use super::documents::stored;
use super::history::state_at;
use crate::crdt::content::{RootKind, parse_root_kinds};
use crate::crdt::{decode_update, restore::restore_update};
use crate::document::{SubmitOp, Submitter};
use crate::http::RouteState;
use crate::session_manager::Loading;
use crate::vocabulary::RESTORE_CLIENT_ID;

/// Attempts when another restore took the op id meanwhile.
const ATTEMPTS: usize = 3;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreRequest {
    server_seq: u64,
    /// `name:kind,…` for roots the states cannot tell (as `content`'s `types`).
    types: Option<String>,
}

#[derive(Serialize)]
struct RestoreAnswer {
    /// The restore's op; `null` when nothing had to change.
    server_seq: Option<u64>,
}

/// See the module docs.
pub async fn restore(
    req: &HttpRequest,
    body: Bytes,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    let access = authorize(req, state, Some(document_id), Need::Write).await?;
    let request: RestoreRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "bad_request",
            format!("the body is not what this route takes: {e}"),
        )
    })?;
    let kinds = parse_root_kinds(request.types.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("bad_request", format!("types: {e}")))?;
    let stored = stored(state, document_id).await?;
    let old = state_at(state, &stored, request.server_seq).await?;
    for _ in 0..ATTEMPTS {
        let current = state.documents.state(document_id).await?;
        let Some(update) = compute(current.update.clone(), old.clone(), kinds.clone()).await?
        else {
            return Ok(HttpResponse::Ok().json(RestoreAnswer { server_seq: None }));
        };
        // Above every earlier restore's: heads only grow.
        let client_op_id = current.server_seq + 1;
        let submit = SubmitOp {
            submitter: Submitter::Client {
                client_id: Arc::from(RESTORE_CLIENT_ID),
                subject: None,
            },
            client_op_id,
            update,
            skip_if_redundant: false,
        };
        let committed = state
            .documents
            .call(document_id, submit, Loading::LoadIfNeeded)
            .await??;
        if !committed.duplicate {
            log::info!(
                "API: document {document_id:?} restored to {} as op {:?} by {}",
                request.server_seq,
                committed.server_seq,
                access.subject.as_deref().unwrap_or("anonymous")
            );
            return Ok(HttpResponse::Ok().json(RestoreAnswer {
                server_seq: committed.server_seq,
            }));
        }
        // Another restore committed with this op id first: compute again
        // on top of it.
    }
    Err(ApiError::unavailable(
        "other restores of this document kept committing first; retry",
    ))
}

/// The restoring update, computed off this thread, checked as any
/// client's update is.
async fn compute(
    current: Bytes,
    old: Bytes,
    kinds: BTreeMap<String, RootKind>,
) -> Result<Option<crate::crdt::ValidUpdate>, ApiError> {
    let computed = web::block(move || restore_update(&current, &old, &kinds))
        .await
        .map_err(|e| ApiError::unavailable(format!("the restore could not be computed: {e}")))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    computed
        .map(|update| {
            decode_update(Bytes::from(update))
                .map_err(|e| ApiError::unavailable(format!("the restore made a bad update: {e}")))
        })
        .transpose()
}
