//! `GET /api/documents/{id}/ops`: the change feed, a page at a time
//! (`since`, `limit`), as a long poll (`wait`), or as Server-Sent Events
//! (`Accept: text/event-stream`, see [`super::events`]). Ops come in seq
//! order, none skipped, none repeated.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, http::header};
use serde::{Deserialize, Serialize};

use super::access::{Need, authorize};
use super::listener::{FeedEvent, FeedListener};
use super::{ApiError, query, rfc3339, store_failed};
use crate::crdt::to_base64;
use crate::document::{MAX_OPS_PER_READ, ReadOps};
use crate::http::RouteState;
use crate::session_manager::Loading;
use crate::transport::ConnectionPermit;
use crate::vocabulary::{CommittedOp, RefusalReason};

/// Ops per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 1000;
/// Longest long poll (`wait`), in seconds.
pub const MAX_WAIT_SECS: u64 = 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    #[serde(default)]
    pub since: u64,
    pub limit: Option<usize>,
    pub epoch: Option<String>,
    #[serde(default)]
    pub wait: u64,
}

impl FeedQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_OPS_PER_READ).contains(&limit) {
            return Err(ApiError::bad_request(
                "bad_request",
                format!("limit must be 1 to {MAX_OPS_PER_READ}"),
            ));
        }
        Ok(limit)
    }
}

/// One op of the feed, as JSON.
#[derive(Serialize)]
pub struct FeedOp<'a> {
    pub server_seq: u64,
    pub client_id: &'a str,
    pub client_op_id: u64,
    pub committed_at: String,
    pub update: String,
}

impl<'a> FeedOp<'a> {
    pub fn of(op: &'a CommittedOp) -> Self {
        FeedOp {
            server_seq: op.server_seq,
            client_id: &op.client_id,
            client_op_id: op.client_op_id,
            committed_at: rfc3339(op.committed_at),
            update: to_base64(&op.update),
        }
    }
}

#[derive(Serialize)]
struct PageAnswer<'a> {
    epoch: Option<&'a str>,
    head: u64,
    ops: Vec<FeedOp<'a>>,
    /// Pass as `since` for the next page.
    next_since: u64,
}

/// Ops after some seq, and what the document was when they were read.
#[derive(Debug, Clone)]
pub struct Page {
    /// `None`: the document was never written (or was deleted).
    pub epoch: Option<Arc<str>>,
    pub head: u64,
    pub ops: Vec<Arc<CommittedOp>>,
}

/// Ops `since + 1 ..`, at most `limit`: from the document's actor when it
/// is loaded (its memory, or the log), else from the store without
/// loading the document.
pub async fn read_page(
    state: &RouteState,
    document_id: &str,
    since: u64,
    limit: usize,
) -> Result<Page, ApiError> {
    let read = ReadOps {
        after: since,
        limit,
    };
    match state
        .documents
        .call(document_id, read, Loading::OnlyIfLoaded)
        .await
        .and_then(|answer| answer)
    {
        Ok(read) => {
            return Ok(Page {
                epoch: Some(read.epoch),
                head: read.head,
                ops: read.ops,
            });
        }
        Err(refusal) if refusal.reason == RefusalReason::NotLoaded => {}
        Err(refusal) => return Err(refusal.into()),
    }
    let store = &state.store;
    let Some(epoch) = store
        .document_epoch(document_id)
        .await
        .map_err(store_failed)?
    else {
        return Ok(Page {
            epoch: None,
            head: 0,
            ops: Vec::new(),
        });
    };
    let head = store.head(document_id).await.map_err(store_failed)?;
    let upto = head.min(since.saturating_add(limit as u64));
    let ops = if upto > since {
        store
            .ops_between(document_id, since, Some(upto))
            .await
            .map_err(store_failed)?
            .into_iter()
            .map(Arc::new)
            .collect()
    } else {
        Vec::new()
    };
    Ok(Page {
        epoch: Some(Arc::from(epoch)),
        head,
        ops,
    })
}

/// 409 when the request names an epoch the document no longer has.
pub fn check_epoch(wanted: Option<&str>, page: &Page) -> Result<(), ApiError> {
    match wanted {
        Some(wanted) if page.epoch.as_deref() != Some(wanted) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "epoch_mismatch",
            format!(
                "the document is now epoch {:?}, not {wanted:?}: it was deleted (and maybe \
                 recreated); start again from since=0",
                page.epoch.as_deref()
            ),
        )),
        _ => Ok(()),
    }
}

/// `GET /api/documents/{id}/ops`.
pub async fn ops(
    req: &HttpRequest,
    state: &RouteState,
    document_id: &str,
) -> Result<HttpResponse, ApiError> {
    authorize(req, state, Some(document_id), Need::Read).await?;
    let query: FeedQuery = query(req)?;
    let limit = query.limit()?;
    if wants_event_stream(req) {
        return super::events::stream(req, state, document_id, &query, limit).await;
    }
    if query.wait > MAX_WAIT_SECS {
        return Err(ApiError::bad_request(
            "bad_request",
            format!("wait must be at most {MAX_WAIT_SECS} seconds"),
        ));
    }
    let mut page = read_page(state, document_id, query.since, limit).await?;
    check_epoch(query.epoch.as_deref(), &page)?;
    if page.ops.is_empty() && query.wait > 0 {
        // A long poll holds a connection like a WebSocket does.
        let _connection = admit(req, state)?;
        page = wait_for_ops(state, document_id, query.since, limit, query.wait).await?;
        check_epoch(query.epoch.as_deref(), &page)?;
    }
    let next_since = page.ops.last().map_or(query.since, |op| op.server_seq);
    Ok(HttpResponse::Ok().json(PageAnswer {
        epoch: page.epoch.as_deref(),
        head: page.head,
        ops: page.ops.iter().map(|op| FeedOp::of(op)).collect(),
        next_since,
    }))
}

/// The long poll: subscribes, and answers as soon as an op after `since`
/// is committed, or with no ops after `wait_secs`.
async fn wait_for_ops(
    state: &RouteState,
    document_id: &str,
    since: u64,
    limit: usize,
    wait_secs: u64,
) -> Result<Page, ApiError> {
    let (listener, mut events) = FeedListener::start(1);
    let subscribed = state.documents.subscribe(document_id, listener).await?;
    if subscribed.server_seq <= since {
        let woke = tokio::time::timeout(Duration::from_secs(wait_secs), events.recv()).await;
        if let Ok(Some(FeedEvent::Closed { code, reason })) = woke {
            log::debug!("long poll on {document_id:?} ended by the document: {code} {reason}");
        }
    }
    // Whatever woke it (an op, a close, the timeout), the page is read again.
    let _ = state
        .documents
        .unsubscribe(document_id, subscribed.listener_id)
        .await;
    read_page(state, document_id, since, limit).await
}

/// A place among the server's and the address's connections
/// (`limits.max_connections`, `max_connections_per_ip`,
/// `upgrades_per_ip_per_sec`), held by a long poll or an event stream.
pub fn admit(req: &HttpRequest, state: &RouteState) -> Result<ConnectionPermit, ApiError> {
    let ip = req.peer_addr().map(|addr| addr.ip());
    Ok(state.connections.admit(ip)?)
}

/// Whether the request asks for Server-Sent Events.
fn wants_event_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}
