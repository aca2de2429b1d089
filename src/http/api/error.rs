//! The error answer of every API route: a status, a code, a message, and
//! for 503 a `Retry-After`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::auth::Denied;
use crate::http::ErrorBody;
use crate::transport::connections::Refused;
use crate::vocabulary::{Refusal, RefusalReason};

/// Seconds a client is told to wait after a 503.
const RETRY_AFTER_SECS: u64 = 1;

/// An API call that failed: answered `{"error": code, "message": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 410 `compacted`: the smallest seq still answered.
    pub earliest: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            earliest: None,
        }
    }

    /// 410: the store no longer reaches `seq`; `earliest` is the smallest
    /// seq it still answers.
    pub fn compacted(seq: u64, earliest: u64) -> Self {
        ApiError {
            earliest: Some(earliest),
            ..ApiError::new(
                StatusCode::GONE,
                "compacted",
                format!(
                    "the history no longer reaches {seq}: the earliest seq answered is {earliest}"
                ),
            )
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(document_id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("document {document_id:?} was never written (or was deleted)"),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let (status, code) = match refusal.reason {
            RefusalReason::Unavailable | RefusalReason::NotLoaded => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            RefusalReason::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            RefusalReason::Invalid => (StatusCode::BAD_REQUEST, "bad_request"),
            RefusalReason::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            RefusalReason::DocumentTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "document_too_large")
            }
        };
        ApiError::new(status, code, refusal.message)
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        ApiError::new(refused.status(), refused.code(), refused.to_string())
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Unauthorized(message) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
            }
            Denied::Forbidden(message) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()));
        }
        match self.earliest {
            Some(earliest) => response.json(serde_json::json!({
                "error": self.code,
                "message": self.message,
                "earliest": earliest,
            })),
            None => response.json(ErrorBody {
                error: self.code,
                message: &self.message,
            }),
        }
    }
}
