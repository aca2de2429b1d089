//! Which document and which of its resources a request names.
//!
//! Document ids may hold slashes, so `/api/documents/{id}/state` is split
//! on the raw path: the last segment names the resource when it is one of
//! [`Resource`]'s, and the rest, percent-decoded, is the id. An id whose
//! own last segment is a resource name (`notes/state`) must encode its
//! slashes (`notes%2Fstate`), as `encodeURIComponent` does.

use percent_encoding::percent_decode_str;

use super::ApiError;
use crate::vocabulary::validate_document_id;

/// The prefix of every document route.
pub const PREFIX: &str = "/api/documents/";

/// What of a document a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `/api/documents/{id}`
    Document,
    /// `/state`
    State,
    /// `/content`
    Content,
    /// `/updates`
    Updates,
    /// `/ops`
    Ops,
    /// `/versions`
    Versions,
    /// `/restore`
    Restore,
}

impl Resource {
    fn from_segment(segment: &str) -> Option<Resource> {
        match segment {
            "state" => Some(Resource::State),
            "content" => Some(Resource::Content),
            "updates" => Some(Resource::Updates),
            "ops" => Some(Resource::Ops),
            "versions" => Some(Resource::Versions),
            "restore" => Some(Resource::Restore),
            _ => None,
        }
    }
}

/// A parsed document route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPath {
    /// Percent-decoded and valid (see `validate_document_id`).
    pub document_id: String,
    pub resource: Resource,
}

impl DocumentPath {
    /// Parses the raw (not yet decoded) path of a request.
    pub fn parse(raw_path: &str) -> Result<DocumentPath, ApiError> {
        let rest = raw_path.strip_prefix(PREFIX).unwrap_or_default();
        let (raw_id, resource) = match rest.rsplit_once('/') {
            Some((id, last)) if !id.is_empty() => match Resource::from_segment(last) {
                Some(resource) => (id, resource),
                None => (rest, Resource::Document),
            },
            _ => (rest, Resource::Document),
        };
        let document_id = percent_decode_str(raw_id)
            .decode_utf8()
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_document_id",
                    "the document id is not UTF-8 once percent-decoded",
                )
            })?
            .into_owned();
        validate_document_id(&document_id)
            .map_err(|e| ApiError::bad_request("invalid_document_id", e.to_string()))?;
        Ok(DocumentPath {
            document_id,
            resource,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> (String, Resource) {
        let parsed = DocumentPath::parse(path).expect("valid path");
        (parsed.document_id, parsed.resource)
    }

    #[test]
    fn ids_and_resources_are_split_on_the_raw_path() {
        assert_eq!(parse("/api/documents/a"), ("a".into(), Resource::Document));
        assert_eq!(
            parse("/api/documents/a/state"),
            ("a".into(), Resource::State)
        );
        assert_eq!(
            parse("/api/documents/notes/x/ops"),
            ("notes/x".into(), Resource::Ops)
        );
        assert_eq!(
            parse("/api/documents/notes%2Fstate"),
            ("notes/state".into(), Resource::Document)
        );
        assert_eq!(
            parse("/api/documents/Caf%C3%A9%20menu/content"),
            ("Café menu".into(), Resource::Content)
        );
        // A bare resource name is an id.
        assert_eq!(
            parse("/api/documents/state"),
            ("state".into(), Resource::Document)
        );
        assert_eq!(
            parse("/api/documents/a/other"),
            ("a/other".into(), Resource::Document)
        );
    }

    #[test]
    fn bad_ids_are_refused() {
        for path in [
            "/api/documents/%FF",
            "/api/documents/a%00b",
            "/api/documents/a%00/ops",
        ] {
            let error = DocumentPath::parse(path).expect_err(path);
            assert_eq!(error.code, "invalid_document_id", "{path}");
        }
    }
}
