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
//! Layers, each using only those above it in this list (no module names a
//! module below it; `python3 ../shared/tools/module-cycles.py src` checks):
//!
//! 1. [`vocabulary`]: the shared words: document and session ids, the op
//!    as logged and committed ([`vocabulary::CommittedOp`]), join modes,
//!    typed refusals, close codes. Depends on nothing in the crate. Beside
//!    it, leaves used by every layer: [`configuration`] (`settings.toml` +
//!    `COLLAB__SECTION__KEY` overrides), [`metrics`] (the engine's
//!    counters, gauges and histograms, in its own Prometheus registry),
//!    [`crdt`] (update validation, with a pre-parser that
//!    checks every count before yrs decodes, and state encoding), [`rate`]
//!    (the token bucket of every rate limit).
//! 2. [`store`]: persistence through sea-orm (`entity` and `migration`
//!    crates): the op log, snapshots, revocations, cold-load log reads
//!    through rusqlite, WAL checkpoints, injected commit faults for drills.
//!    Beside the layers below it, [`auth`]: who may read or write which
//!    document (the `Authorizer` seam, JWT access tokens, revocations).
//! 3. [`document`]: the document core. One `DocumentActor` per loaded
//!    document owns sequencing, the commit pipeline, the CRDT state, its
//!    subscribers and presence; [`document::messages`] is the document API
//!    (submit, read, subscribe, close) any caller can use.
//! 4. [`session_manager`]: the `SessionManager` actor: the registry of
//!    sessions and loaded documents, one supervised `DocumentActor` per
//!    document on a pool of arbiter threads, and [`session_manager::Documents`], the document API for
//!    callers that are not sessions. Beside it, [`webhooks`]: after a
//!    document changes, `POST`s its latest seq to the `[webhooks]` URLs
//!    (debounced, signed, retried) from a dispatcher actor of its own; the
//!    document only notifies a [`document::ChangeListener`] and knows
//!    nothing of it.
//! 5. [`protocols`]: the wire protocols, sans-IO: [`protocols::native`]
//!    (JSON, `/ws/{id}`) and [`protocols::yjs`] (y-websocket, `/yjs/{id}`).
//! 6. [`transport`]: the WebSocket session actor (the only user of
//!    actix-web-actors) with its parts (per-session rates, fragmented
//!    sending of big messages, connection limits), and [`http`]: every
//!    route (WebSocket upgrades, health and readiness, the admin API, the
//!    HTTP API for documents with its change feed (`http::api`,
//!    docs/http-api.md), `GET /metrics`, the fault-injection drills),
//!    each counted by its pattern.
//! 7. [`engine`]: [`CollabEngine`], the embeddable part (actors + routes),
//!    and [`startup`]: the stand-alone [`Application`] (listener, signals);
//!    `main.rs` is the command line around it (`serve`, `migrate`,
//!    `check-config`).
//!
//! The data path of one op, file by file, is in `docs/architecture.md`;
//! the protocols are in `docs/protocol.md`.

pub mod auth;
pub mod configuration;
pub mod crdt;
pub mod document;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod protocols;
pub mod rate;
pub mod session_manager;
pub mod startup;
pub mod store;
pub mod transport;
pub mod vocabulary;
pub mod webhooks;

pub use configuration::Settings;
pub use engine::{CollabEngine, EngineError, EngineOptions};
pub use metrics::MetricsSnapshot;
pub use session_manager::{Documents, EngineStats};
pub use startup::{Application, ApplicationHandle, StartupError};
pub use store::Store;
