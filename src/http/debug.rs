//! The fault-injection drills, mounted only with `debug.fault_injection`:
//! `POST /debug/documents/{id}/panic` (the document's actor panics; the
//! one message [`InjectPanic`]) and
//! `POST /debug/documents/{id}/fail-commits?count=N[&when=after]` (its next
//! N commits fail, through the store's [`CommitFaults`]). Both answer 404
//! for a document that is not loaded.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{RouteState, Routes, error_response};
use crate::document::{InjectPanic, ReadInfo};
use crate::session_manager::Loading;
use crate::store::faults::{CommitFaults, FailureTiming};
use crate::vocabulary::{Refusal, RefusalReason};

/// Registers the `/debug/` routes.
pub fn configure(routes: &mut Routes) {
    routes
        .route(
            "/debug/documents/{document_id:.*}/panic",
            web::post().to(panic),
        )
        .route(
            "/debug/documents/{document_id:.*}/fail-commits",
            web::post().to(fail_commits),
        );
}

fn injected(document_id: &str, what: &str) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "document_id": document_id,
        "injected": what,
    }))
}

fn refused(refusal: &Refusal) -> HttpResponse {
    match refusal.reason {
        RefusalReason::NotLoaded => {
            error_response(StatusCode::NOT_FOUND, "not_loaded", &refusal.message)
        }
        RefusalReason::Invalid => {
            error_response(StatusCode::BAD_REQUEST, "bad_request", &refusal.message)
        }
        _ => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &refusal.message,
        ),
    }
}

/// `POST /debug/documents/{id}/panic`: the document's actor panics inside a handler.
async fn panic(path: web::Path<String>, state: web::Data<RouteState>) -> HttpResponse {
    let document_id = path.into_inner();
    match state
        .documents
        .call(&document_id, InjectPanic, Loading::OnlyIfLoaded)
        .await
    {
        Ok(()) => injected(&document_id, "Panic"),
        Err(refusal) => refused(&refusal),
    }
}

#[derive(Deserialize)]
struct FailCommitsQuery {
    count: u32,
    /// `after`: the commits reach storage and only report failure.
    #[serde(default)]
    when: Option<String>,
}

/// `POST /debug/documents/{id}/fail-commits?count=N[&when=after]`: its next
/// N commits fail (`when=after`: they reach storage, only the answer fails).
async fn fail_commits(
    path: web::Path<String>,
    query: web::Query<FailCommitsQuery>,
    state: web::Data<RouteState>,
) -> HttpResponse {
    let Some(faults) = state.faults.as_deref() else {
        return error_response(StatusCode::NOT_FOUND, "not_found", "fault injection is off");
    };
    let timing = match query.when.as_deref() {
        None | Some("before") => FailureTiming::BeforeCommit,
        Some("after") => FailureTiming::AfterCommit,
        Some(other) => {
            let message = format!("when must be `before` or `after`, not `{other}`");
            return error_response(StatusCode::BAD_REQUEST, "bad_request", &message);
        }
    };
    let document_id = path.into_inner();
    match state
        .documents
        .call(&document_id, ReadInfo, Loading::OnlyIfLoaded)
        .await
    {
        Ok(_) => {
            plan(faults, &document_id, query.count, timing);
            injected(
                &document_id,
                &format!(
                    "FailCommits {{ count: {}, timing: {timing:?} }}",
                    query.count
                ),
            )
        }
        Err(refusal) => refused(&refusal),
    }
}

fn plan(faults: &CommitFaults, document_id: &str, count: u32, timing: FailureTiming) {
    log::warn!(
        "document {document_id}: the next {count} commits will fail{} (fault injection)",
        match timing {
            FailureTiming::AfterCommit => " after reaching storage",
            FailureTiming::BeforeCommit => "",
        }
    );
    faults.fail_next(document_id, count, timing);
}
