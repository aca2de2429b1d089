//! The HTTP API for documents, under `/api/documents` (docs/http-api.md):
//! list, describe and delete documents ([`documents`]), read their state
//! and content ([`state`]), write an op ([`updates`]), follow their
//! changes ([`feed`], [`events`]), and read their history ([`history`]). Every route is authorized like the
//! WebSocket routes ([`access`]) and answers errors as
//! `{"error": code, "message": …}` ([`ApiError`]).

pub mod access;
mod documents;
mod error;
mod events;
mod feed;
mod history;
mod listener;
mod path;
mod restore;
mod state;
mod updates;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;

pub use error::ApiError;
pub use feed::{DEFAULT_LIMIT, MAX_WAIT_SECS};
pub use path::{DocumentPath, Resource};
pub use updates::MAX_IDEMPOTENCY_KEY_CHARS;

use super::{RouteState, Routes};
use crate::store::StoreError;

/// Registers `GET /api/documents` and every route under `/api/documents/`.
pub fn configure(routes: &mut Routes) {
    routes
        .route("/api/documents", web::get().to(documents::list))
        .route("/api/documents/{rest:.+}", web::route().to(dispatch));
}

/// Routes a request under `/api/documents/` by its resource and method.
async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RouteState>,
) -> Result<HttpResponse, ApiError> {
    let path = DocumentPath::parse(req.uri().path())?;
    if let Some(refused) = super::refuse_origin(&req, &state.allowed_origins) {
        return Ok(refused);
    }
    let id = path.document_id.as_str();
    let method = req.method();
    match path.resource {
        Resource::Document if method == Method::GET => documents::info(&req, &state, id).await,
        Resource::Document if method == Method::DELETE => documents::delete(&req, &state, id).await,
        Resource::State if method == Method::GET => state::state(&req, &state, id).await,
        Resource::Content if method == Method::GET => state::content(&req, &state, id).await,
        Resource::Updates if method == Method::POST => {
            updates::post(&req, payload, &state, id).await
        }
        Resource::Ops if method == Method::GET => feed::ops(&req, &state, id).await,
        Resource::Versions if method == Method::GET => history::list(&req, &state, id).await,
        Resource::Versions if method == Method::POST => {
            let body = updates::read_body(payload, MAX_SMALL_BODY).await?;
            history::pin(&req, body, &state, id).await
        }
        Resource::Restore if method == Method::POST => {
            let body = updates::read_body(payload, MAX_SMALL_BODY).await?;
            restore::restore(&req, body, &state, id).await
        }
        resource => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not a method of {resource:?} (see docs/http-api.md)"),
        )),
    }
}

/// Largest JSON body of the small routes (versions, restore).
const MAX_SMALL_BODY: usize = 64 * 1024;

/// The query string as `T`, without the `token` parameter (read by the
/// authorizer, for clients that cannot set headers).
fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    let rest: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|pair| !pair.is_empty() && *pair != "token" && !pair.starts_with("token="))
        .collect();
    web::Query::<T>::from_query(&rest.join("&"))
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request("bad_request", format!("bad query: {e}")))
}

/// A time as the API writes it: RFC 3339, UTC, milliseconds.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// 503 for a store that failed.
fn store_failed(e: StoreError) -> ApiError {
    log::warn!("API: the store failed: {e}");
    ApiError::unavailable(format!("the database failed: {e}"))
}
