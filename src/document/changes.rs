//! What a document tells the engine after each committed batch of ops, so
//! that something outside the core (the webhooks) can react to changes
//! without the document knowing it: a [`DocumentChanged`] notice given to
//! the [`ChangeListener`] of its [`super::DocumentContext`], if any.

use std::sync::Arc;

/// A document's head moved: ops up to `server_seq` are committed (in the
/// op log, acknowledged and broadcast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChanged {
    pub document_id: Arc<str>,
    pub epoch: Arc<str>,
    pub server_seq: u64,
}

/// Told about every committed batch of every document of an engine, on
/// the documents' threads, in each document's commit order.
///
/// It must return at once, never wait for I/O or for another actor: the
/// document calls it between a commit and the next one. An implementation
/// that keeps notices for later should keep only the latest per document
/// (each notice supersedes the ones before), so its memory is bounded by
/// the number of documents, not of ops.
pub trait ChangeListener: Send + Sync {
    fn document_changed(&self, change: DocumentChanged);
}
