//! Typed refusals: what the engine answers when it will not do what a
//! session or another caller asked. Each wire protocol (and, later, the
//! HTTP API) maps them to its own error codes.

use super::close_code;

/// Why something was refused, for callers to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// Storage failed, the document is loading, restarting, failed or
    /// overloaded, or an earlier op of the same session was refused:
    /// nothing was accepted; retry (resend) later.
    Unavailable,
    /// The server is shutting down: retry against another instance or later.
    ShuttingDown,
    /// The document is not loaded, and the request was only for a loaded one.
    NotLoaded,
    /// The request itself is wrong (e.g. an invalid client id); sending it
    /// again will not help.
    Invalid,
    /// Not allowed for this connection's access (a read-only session
    /// writing, a client id that belongs to another subject).
    Forbidden,
    /// The op would take its document past `limits.max_document_bytes`,
    /// or the document holds more than `limits.max_pending_update_bytes`
    /// of updates waiting for missing dependencies. Resending will not
    /// help until an operator acts (the session is closed with 4413).
    DocumentTooLarge,
}

/// A refusal with a message for people. Nothing refused was accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub reason: RefusalReason,
    pub message: String,
}

impl Refusal {
    pub fn unavailable(message: impl Into<String>) -> Self {
        Refusal {
            reason: RefusalReason::Unavailable,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Refusal {
            reason: RefusalReason::Invalid,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Refusal {
            reason: RefusalReason::Forbidden,
            message: message.into(),
        }
    }

    pub fn document_too_large(message: impl Into<String>) -> Self {
        Refusal {
            reason: RefusalReason::DocumentTooLarge,
            message: message.into(),
        }
    }

    pub fn not_loaded(document_id: &str) -> Self {
        Refusal {
            reason: RefusalReason::NotLoaded,
            message: format!("document {document_id} is not loaded"),
        }
    }

    pub fn shutting_down() -> Self {
        Refusal {
            reason: RefusalReason::ShuttingDown,
            message: "the server is shutting down".to_owned(),
        }
    }
}

/// Why a join failed: what to tell the client and how to close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{refusal} (close {close_code})")]
pub struct JoinError {
    pub refusal: Refusal,
    pub close_code: u16,
}

impl JoinError {
    /// Try again later (close 1013).
    pub fn unavailable(message: impl Into<String>) -> Self {
        JoinError {
            refusal: Refusal::unavailable(message),
            close_code: close_code::TRY_AGAIN_LATER,
        }
    }

    /// The server is shutting down (close 1001).
    pub fn going_away() -> Self {
        JoinError {
            refusal: Refusal::shutting_down(),
            close_code: close_code::GOING_AWAY,
        }
    }

    /// The engine could not process the join (close 1011).
    pub fn internal(message: impl Into<String>) -> Self {
        JoinError {
            refusal: Refusal::unavailable(message),
            close_code: close_code::INTERNAL_ERROR,
        }
    }
}

impl From<Refusal> for JoinError {
    /// A refusal of the engine as a join error: 1001 when shutting down,
    /// 1013 otherwise.
    fn from(refusal: Refusal) -> Self {
        let close_code = match refusal.reason {
            RefusalReason::ShuttingDown => close_code::GOING_AWAY,
            RefusalReason::Unavailable | RefusalReason::NotLoaded => close_code::TRY_AGAIN_LATER,
            RefusalReason::Invalid | RefusalReason::Forbidden => close_code::POLICY_VIOLATION,
            RefusalReason::DocumentTooLarge => close_code::DOCUMENT_TOO_LARGE,
        };
        JoinError {
            refusal,
            close_code,
        }
    }
}
