//! Which document ids exist: the rule every route applies to the id in
//! its URL before anything else happens.

/// Longest accepted document id, in characters.
pub const MAX_DOCUMENT_ID_CHARS: usize = 128;

/// Why a document id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDocumentId {
    #[error("document id must be 1 to {MAX_DOCUMENT_ID_CHARS} characters long, got {chars}")]
    Length { chars: usize },
    #[error("document id may only contain A-Z, a-z, 0-9, '.', '_' and '-'; found {found:?}")]
    Character { found: char },
}

/// Checks a document id from the URL: 1–128 characters of `[A-Za-z0-9._-]`.
pub fn validate_document_id(id: &str) -> Result<(), InvalidDocumentId> {
    if id.is_empty() || id.len() > MAX_DOCUMENT_ID_CHARS {
        return Err(InvalidDocumentId::Length {
            chars: id.chars().count(),
        });
    }
    if let Some(found) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(InvalidDocumentId::Character { found });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_ids() {
        assert!(validate_document_id("notes-2026_v1.draft").is_ok());
        assert!(validate_document_id(&"a".repeat(128)).is_ok());
        assert!(validate_document_id(&"a".repeat(129)).is_err());
        assert!(validate_document_id("").is_err());
        let space = validate_document_id("a b").expect_err("space refused");
        assert!(space.to_string().contains("' '"), "{space}");
        assert!(validate_document_id("é").is_err());
    }
}
