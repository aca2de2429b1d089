//! Integration tests: one binary, each test with its own server (port 0)
//! and its own database. Scenarios that touch storage run on SQLite and,
//! when `COLLAB_TEST_DATABASE_URL` is set, on PostgreSQL.

mod helpers;
mod pg_cluster;

mod access_sessions;
mod access_tokens;
mod awareness_limits;
mod bad_input;
mod busy_documents;
mod client_progress;
mod configuration;
mod connection_limits;
mod contention;
mod document_api;
mod document_size;
mod embedding;
mod embedding_auth;
mod empty_documents;
mod faults;
mod hostile_input;
mod http_documents;
mod http_feed;
mod http_history;
mod lifecycle;
mod metrics;
mod outage;
mod outbound_limits;
mod oversize;
mod process;
mod reconnect;
mod room_names;
mod session_rates;
mod sync;
mod webhooks;
mod yjs;
