//! `GET /metrics`: every series of the engine in the Prometheus text
//! format (docs/operations.md lists them), behind
//! `Authorization: Bearer <metrics.bearer_key>` when a key is set.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::routes::Routes;
use super::{RouteState, error_response};
use crate::auth::{bearer_header, same_secret};
use crate::metrics::CONTENT_TYPE;

/// Registers `GET /metrics`.
pub fn configure(routes: &mut Routes) {
    routes.route("/metrics", web::get().to(scrape));
}

/// `GET /metrics`: 200 with the text, or 401 without the bearer key.
async fn scrape(req: HttpRequest, state: web::Data<RouteState>) -> HttpResponse {
    if let Some(expected) = state.metrics_key.as_deref() {
        let allowed = bearer_header(&req).is_some_and(|given| same_secret(given, expected));
        if !allowed {
            return error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "GET /metrics needs Authorization: Bearer <metrics.bearer_key>",
            );
        }
    }
    match state.metrics.render() {
        Ok(text) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(text),
        Err(e) => {
            log::error!("the metrics cannot be encoded: {e}");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the metrics cannot be encoded",
            )
        }
    }
}
