//! Native protocol v1 messages: JSON text frames, one object per frame.
//!
//! This module only parses and formats messages; it knows nothing about
//! actors or sockets, so every rule here is unit-tested in isolation. The
//! protocol itself is described in `docs/protocol.md`.

use serde::{Deserialize, Serialize};

use crate::vocabulary::{Refusal, RefusalReason, validate_client_id, validate_client_op_id};

/// The only protocol version this server speaks.
pub const PROTOCOL_VERSION: u64 = 1;

pub use crate::vocabulary::{MAX_CLIENT_ID_CHARS, MAX_CLIENT_OP_ID};

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Hello(Hello),
    Op(ClientOp),
    Awareness(AwarenessMessage),
}

/// Presence: a base64 y-protocols awareness update, relayed to the other
/// sessions of the document (never stored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AwarenessMessage {
    pub update: String,
}

/// The first message of every connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Hello {
    pub protocol: u64,
    pub client_id: String,
    #[serde(default)]
    pub last_seen_server_seq: Option<u64>,
    #[serde(default)]
    pub epoch: Option<String>,
}

/// One operation: a base64 Yjs v1 update with the sender's own number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClientOp {
    pub client_op_id: u64,
    pub update: String,
}

/// The `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, unknown `type`, missing or mistyped field, binary frame.
    BadMessage,
    /// Something other than `hello` came first.
    HelloRequired,
    /// `hello.protocol` is not [`PROTOCOL_VERSION`].
    UnsupportedProtocol,
    /// The op's `update` is not base64, not a Yjs v1 update, or empty.
    InvalidUpdate,
    /// An awareness update over a `[limits]` awareness limit (a state too
    /// large, more client ids than a session may publish); nothing of it
    /// was applied.
    InvalidAwareness,
    /// A frame exceeded `documents.max_message_bytes`.
    TooLarge,
    /// Storage failed or the document is restarting: the op was not accepted.
    Unavailable,
    /// The connection's access does not allow it (a read-only session's
    /// op, a client id that belongs to another subject).
    Forbidden,
    /// The op would make its document too large (`limits.max_document_bytes`,
    /// `limits.max_pending_update_bytes`); the session is closed with 4413.
    DocumentTooLarge,
}

/// How a `welcome` is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// `op` messages for every seq after `last_seen_server_seq`, then live traffic.
    Replay,
    /// One `snapshot` message with the full state, then live traffic.
    Snapshot,
}

/// A message from the server. Borrowed fields keep formatting allocation-free
/// apart from the output string.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Welcome {
        document_id: &'a str,
        epoch: &'a str,
        server_seq: u64,
        recovery: Recovery,
        last_client_op_id: Option<u64>,
    },
    Snapshot {
        server_seq: u64,
        state: &'a str,
    },
    Op {
        server_seq: u64,
        client_id: &'a str,
        client_op_id: u64,
        update: &'a str,
    },
    Ack {
        client_op_id: u64,
        server_seq: Option<u64>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_op_id: Option<u64>,
    },
    Awareness {
        update: &'a str,
    },
}

impl ServerMessage<'_> {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: no maps with non-string
        // keys, no floats, no custom Serialize impls.
        serde_json::to_string(self).unwrap_or_else(|e| {
            log::error!("cannot serialize a server message: {e}");
            String::from(
                r#"{"type":"error","code":"bad_message","message":"internal serialization error"}"#,
            )
        })
    }
}

/// A client message that was refused, with what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    /// Set when the rejection is about a specific op.
    pub client_op_id: Option<u64>,
}

impl Rejection {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
            client_op_id: None,
        }
    }

    pub fn for_op(code: ErrorCode, message: impl Into<String>, client_op_id: u64) -> Self {
        Rejection {
            code,
            message: message.into(),
            client_op_id: Some(client_op_id),
        }
    }

    /// What the client is told about a refusal of the engine (`op`: the
    /// refused op, if it is about one).
    pub fn from_refusal(refusal: &Refusal, op: Option<u64>) -> Self {
        let code = match refusal.reason {
            RefusalReason::Unavailable | RefusalReason::ShuttingDown | RefusalReason::NotLoaded => {
                ErrorCode::Unavailable
            }
            RefusalReason::Invalid => ErrorCode::BadMessage,
            RefusalReason::Forbidden => ErrorCode::Forbidden,
            RefusalReason::DocumentTooLarge => ErrorCode::DocumentTooLarge,
        };
        Rejection {
            code,
            message: refusal.message.clone(),
            client_op_id: op,
        }
    }

    /// The `error` message for the client.
    pub fn to_json(&self) -> String {
        ServerMessage::Error {
            code: self.code,
            message: &self.message,
            client_op_id: self.client_op_id,
        }
        .to_json()
    }
}

/// Parses one text frame and checks the field rules serde cannot express.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, Rejection> {
    let message: ClientMessage = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            ErrorCode::BadMessage,
            format!("message is not a valid protocol message: {e}"),
        )
    })?;
    match &message {
        ClientMessage::Hello(hello) => validate_client_id(&hello.client_id),
        ClientMessage::Op(op) => validate_client_op_id(op.client_op_id),
        ClientMessage::Awareness(_) => Ok(()),
    }
    .map_err(|problem| Rejection::new(ErrorCode::BadMessage, problem.to_string()))?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(text: &str) -> Rejection {
        match parse_client_message(text) {
            Ok(m) => panic!("{text} parsed as {m:?}"),
            Err(r) => r,
        }
    }

    #[test]
    fn parses_hello_with_and_without_resume_fields() {
        let hello = parse_client_message(r#"{"type":"hello","protocol":1,"client_id":"a"}"#);
        assert_eq!(
            hello,
            Ok(ClientMessage::Hello(Hello {
                protocol: 1,
                client_id: "a".into(),
                last_seen_server_seq: None,
                epoch: None,
            }))
        );
        let resume = parse_client_message(
            r#"{"type":"hello","protocol":1,"client_id":"a","last_seen_server_seq":7,"epoch":"e"}"#,
        );
        assert!(matches!(
            resume,
            Ok(ClientMessage::Hello(Hello { last_seen_server_seq: Some(7), epoch: Some(ref e), .. })) if e == "e"
        ));
    }

    #[test]
    fn parses_op() {
        assert_eq!(
            parse_client_message(r#"{"type":"op","client_op_id":3,"update":"AAA="}"#),
            Ok(ClientMessage::Op(ClientOp {
                client_op_id: 3,
                update: "AAA=".into()
            }))
        );
    }

    #[test]
    fn bad_messages_name_the_problem() {
        let not_json = rejected("hello there");
        assert_eq!(not_json.code, ErrorCode::BadMessage);
        let unknown = rejected(r#"{"type":"dance"}"#);
        assert!(unknown.message.contains("dance"), "{}", unknown.message);
        let missing = rejected(r#"{"type":"op","update":"AAA="}"#);
        assert!(
            missing.message.contains("client_op_id"),
            "{}",
            missing.message
        );
        let mistyped = rejected(r#"{"type":"op","client_op_id":"x","update":"AAA="}"#);
        assert_eq!(mistyped.code, ErrorCode::BadMessage);
        let negative = rejected(r#"{"type":"op","client_op_id":-1,"update":"AAA="}"#);
        assert_eq!(negative.code, ErrorCode::BadMessage);
        let huge = rejected(r#"{"type":"op","client_op_id":18446744073709551615,"update":""}"#);
        assert!(huge.message.contains("at most"), "{}", huge.message);
    }

    #[test]
    fn client_id_length_is_checked() {
        let empty = rejected(r#"{"type":"hello","protocol":1,"client_id":""}"#);
        assert!(empty.message.contains("client_id"));
        let long = format!(
            r#"{{"type":"hello","protocol":1,"client_id":"{}"}}"#,
            "x".repeat(65)
        );
        assert!(rejected(&long).message.contains("65"));
        let max = format!(
            r#"{{"type":"hello","protocol":1,"client_id":"{}"}}"#,
            "é".repeat(64)
        );
        assert!(parse_client_message(&max).is_ok());
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let ack = ServerMessage::Ack {
            client_op_id: 4,
            server_seq: Some(9),
            duplicate: false,
        };
        assert_eq!(
            ack.to_json(),
            r#"{"type":"ack","client_op_id":4,"server_seq":9}"#
        );
        let dup = ServerMessage::Ack {
            client_op_id: 4,
            server_seq: None,
            duplicate: true,
        };
        assert_eq!(
            dup.to_json(),
            r#"{"type":"ack","client_op_id":4,"server_seq":null,"duplicate":true}"#
        );
        let err = Rejection::for_op(ErrorCode::InvalidUpdate, "empty", 2).to_json();
        assert_eq!(
            err,
            r#"{"type":"error","code":"invalid_update","message":"empty","client_op_id":2}"#
        );
        let welcome = ServerMessage::Welcome {
            document_id: "d",
            epoch: "e",
            server_seq: 0,
            recovery: Recovery::Snapshot,
            last_client_op_id: None,
        };
        assert_eq!(
            welcome.to_json(),
            r#"{"type":"welcome","document_id":"d","epoch":"e","server_seq":0,"recovery":"snapshot","last_client_op_id":null}"#
        );
    }
}
