//! The transport: the WebSocket session actor that carries a wire
//! protocol's actions out over one connection ([`ws_session`], the only
//! user of `actix-web-actors`), with its plain helpers ([`fragments`],
//! [`oversize`]) and the TCP setting of accepted connections
//! ([`tcp_nodelay`]).

pub mod connections;
pub mod fragments;
pub mod inbound_gate;
pub mod inbound_rate;
pub mod outgoing;
pub mod oversize;
mod session_config;
pub mod slots;
mod tcp;
mod ws_session;

pub use connections::{ConnectionLimits, ConnectionPermit};
pub use inbound_rate::SessionRates;
pub use session_config::{NewSession, SessionConfig};
pub use slots::{SessionSlot, SessionSlots};
pub use tcp::{raise_file_limit, tcp_nodelay};
pub use ws_session::{WsSession, start};
