//! # Collab-Engine
//!
//! An authoritative real-time collaboration server for Yjs documents, and a
//! library that mounts into an existing actix-web application.
//!
//! Every accepted operation (a Yjs update) gets a per-document, strictly
//! increasing `server_seq`, is committed to an append-only op log, and only
//! then is acknowledged to its sender and broadcast to everyone else.
//! Reconnecting clients get exactly the ops they missed, or a snapshot.
//!
//! ## Layout
//!
//! - [`configuration`]: `settings.toml` + `COLLAB__SECTION__KEY` overrides.
//! - [`startup`]: the stand-alone [`Application`] (listener, signals).
//! - [`engine`]: [`CollabEngine`], the embeddable part: routes + actors.
//! - [`session_manager`]: one actor per engine; routes joins, supervises
//!   one document actor per loaded document.
//! - [`document`]: the document actor (sequencing, group commit, CRDT state)
//!   and, in [`document::state`], its actix-free state.
//! - `ws_session` (private): the WebSocket session actor (transport: frames,
//!   heartbeat, join, leave), generic over its wire protocol.
//! - [`sessions`]: the wire protocols, free of actix: [`sessions::native`]
//!   (JSON, `/ws/{id}`) and [`sessions::yjs`] (y-websocket, `/yjs/{id}`).
//! - [`protocol`]: native protocol v1 messages, parsing and error codes.
//! - [`awareness`]: presence states of a document, relayed, never stored.
//! - [`events`]: what documents tell sessions.
//! - [`metrics`]: engine-wide counters (commits, batch sizes, restarts).
//! - [`crdt`]: update validation and state encoding with yrs.
//! - [`store`]: persistence through sea-orm (`entity` and `migration` crates);
//!   cold loads of long SQLite logs read through rusqlite ([`store::LogChunks`]).
//! - [`checkpoint`]: SQLite WAL checkpoints, run off the commit path.
//!
//! The protocol is described in `docs/protocol.md`, the actors and the data
//! path in `docs/architecture.md`.

pub mod awareness;
pub mod checkpoint;
pub mod configuration;
pub mod crdt;
pub mod document;
pub mod engine;
pub mod events;
pub mod metrics;
pub mod protocol;
pub mod session_manager;
pub mod sessions;
pub mod startup;
pub mod store;
mod ws_session;

pub use configuration::Settings;
pub use engine::{CollabEngine, EngineError, EngineOptions};
pub use metrics::MetricsSnapshot;
pub use session_manager::EngineStats;
pub use startup::{Application, ApplicationHandle, StartupError};
pub use store::Store;
