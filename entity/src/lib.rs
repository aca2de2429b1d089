//! sea-orm entities of Collab-Engine.
//!
//! These tables hold everything the server knows about a document:
//!
//! - [`documents`]: one row per document incarnation, with its opaque `epoch`;
//! - [`operations`]: the append-only op log, one row per accepted operation,
//!   keyed by `(document_id, server_seq)`;
//! - [`client_progress`]: each client's highest logged op, kept when old
//!   ops are removed (duplicate detection reads it);
//! - [`revocations`]: revoked access (by subject or token id);
//! - [`snapshots`]: full Yjs v1 states taken at a given `server_seq`, so a
//!   document loads from its latest snapshot plus the log after it;
//! - [`versions`]: named versions, each pinning a `server_seq` of a document.
//!
//! The schema itself is created by the `migration` crate.

pub mod client_progress;
pub mod documents;
pub mod operations;
pub mod prelude;
pub mod revocations;
pub mod snapshots;
pub mod versions;
