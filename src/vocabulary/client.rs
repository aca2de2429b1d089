//! Which client ids and client op ids exist: the rules every way of
//! writing to a document applies (a native `hello`, the document API).

/// Longest accepted `client_id`, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// Largest `client_op_id`: JSON's largest safe integer (2^53 − 1), so that
/// JavaScript clients represent every id exactly (the op log's column is
/// a signed 64-bit integer).
pub const MAX_CLIENT_OP_ID: u64 = (1 << 53) - 1;

/// Why a client id or client op id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidClient {
    #[error("client_id must be 1 to {MAX_CLIENT_ID_CHARS} characters, got {chars}")]
    IdLength { chars: usize },
    #[error("client_id must not contain control characters")]
    IdControlCharacter,
    #[error("client_op_id must be at most {MAX_CLIENT_OP_ID}")]
    OpIdTooLarge,
    #[error("client_id {0:?} is the server's own (restores write with it)")]
    Reserved(&'static str),
}

/// The client id of the ops a restore writes
/// (`POST /api/documents/{id}/restore`): no client may use it, so no
/// client's op ids can make a restore look like a duplicate.
pub const RESTORE_CLIENT_ID: &str = "restore";

/// Checks a client id: 1–64 characters, none of them a control character.
pub fn validate_client_id(client_id: &str) -> Result<(), InvalidClient> {
    let chars = client_id.chars().count();
    if chars == 0 || chars > MAX_CLIENT_ID_CHARS {
        return Err(InvalidClient::IdLength { chars });
    }
    if client_id.chars().any(char::is_control) {
        return Err(InvalidClient::IdControlCharacter);
    }
    if client_id == RESTORE_CLIENT_ID {
        return Err(InvalidClient::Reserved(RESTORE_CLIENT_ID));
    }
    Ok(())
}

/// Checks a client op id: at most [`MAX_CLIENT_OP_ID`].
pub fn validate_client_op_id(client_op_id: u64) -> Result<(), InvalidClient> {
    if client_op_id > MAX_CLIENT_OP_ID {
        return Err(InvalidClient::OpIdTooLarge);
    }
    Ok(())
}
