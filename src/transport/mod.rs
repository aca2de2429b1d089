//! The transport: the WebSocket session actor that carries a wire
//! protocol's actions out over one connection ([`ws_session`], the only
//! user of `actix-web-actors`), with its plain helpers ([`fragments`],
//! [`oversize`]) and the TCP setting of accepted connections
//! ([`tcp_nodelay`]).

pub mod connections;
pub mod fragments;
pub mod oversize;
pub mod slots;
mod tcp;
mod ws_session;

pub use connections::{ConnectionLimits, ConnectionPermit};
pub use slots::{SessionSlot, SessionSlots};
pub use tcp::{raise_file_limit, tcp_nodelay};
pub use ws_session::{NewSession, SessionConfig, WsSession, start};
