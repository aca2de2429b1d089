//! Test harness: a real server on port 0 over a real database (a fresh
//! SQLite file, or a fresh PostgreSQL database when
//! `COLLAB_TEST_DATABASE_URL` is set), real WebSocket clients, and peers
//! that edit real yrs documents. Each file holds one kind of help; all of
//! it is re-exported here, so tests name everything `crate::helpers::X`.

mod app;
mod auth;
mod database;
mod http_api;
mod oplog;
mod peer;
mod process;
mod prometheus;
mod receiver;
mod slow_client;
mod watcher;
mod ws;

pub use app::*;
pub use auth::*;
pub use database::*;
pub use http_api::*;
pub use oplog::*;
pub use peer::*;
pub use process::*;
pub use prometheus::*;
pub use receiver::*;
pub use slow_client::*;
pub use watcher::*;
pub use ws::*;
