//! Which document ids exist: the rule every route applies to the id in its
//! URL (the percent-decoded path after the route prefix, slashes included)
//! before anything else happens. Ids are stored and compared exactly.

/// Longest accepted document id, in bytes of UTF-8.
pub const MAX_DOCUMENT_ID_BYTES: usize = 512;

/// Why a document id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDocumentId {
    #[error("document id must be 1 to {MAX_DOCUMENT_ID_BYTES} bytes of UTF-8, got {bytes}")]
    Length { bytes: usize },
    #[error("document id must not contain control characters; found {found:?}")]
    ControlCharacter { found: char },
    #[error("document id is not valid UTF-8 once percent-decoded")]
    NotUtf8,
}

/// Checks a (percent-decoded) document id: 1–512 bytes of UTF-8 without
/// control characters. Anything else is allowed: `team/doc:1`,
/// `notes/2026-12-01`, `Café menu`.
pub fn validate_document_id(id: &str) -> Result<(), InvalidDocumentId> {
    if id.is_empty() || id.len() > MAX_DOCUMENT_ID_BYTES {
        return Err(InvalidDocumentId::Length { bytes: id.len() });
    }
    if let Some(found) = id.chars().find(|c| c.is_control()) {
        return Err(InvalidDocumentId::ControlCharacter { found });
    }
    // The router decodes percent-escapes lossily: bytes that were not
    // UTF-8 arrive as U+FFFD.
    if id.contains(char::REPLACEMENT_CHARACTER) {
        return Err(InvalidDocumentId::NotUtf8);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_ids() {
        for good in [
            "notes-2026_v1.draft",
            "team/doc:1",
            "Café menu",
            "a b",
            "100%",
        ] {
            assert!(validate_document_id(good).is_ok(), "{good}");
        }
        assert!(validate_document_id(&"a".repeat(512)).is_ok());
        assert!(
            validate_document_id(&"é".repeat(256)).is_ok(),
            "256 × 2 bytes"
        );
        let long = validate_document_id(&"é".repeat(257)).expect_err("514 bytes");
        assert!(long.to_string().contains("514"), "{long}");
        assert!(validate_document_id(&"a".repeat(513)).is_err());
        assert!(validate_document_id("").is_err());
        let newline = validate_document_id("a\nb").expect_err("control character");
        assert!(newline.to_string().contains("'\\n'"), "{newline}");
        assert!(validate_document_id("a\u{7f}").is_err(), "DEL");
        assert_eq!(
            validate_document_id("bad \u{fffd}"),
            Err(InvalidDocumentId::NotUtf8)
        );
    }
}
