//! What a session is started with: the engine's [`SessionConfig`] and
//! the upgrade route's [`NewSession`].

use std::sync::Arc;
use std::time::Duration;

use super::connections::ConnectionPermit;
use super::inbound_rate::SessionRates;
use super::oversize::OversizeReports;
use super::slots::SessionSlot;
use crate::metrics::Metrics;
use crate::protocols::ProtocolLimits;
use crate::session_manager::SessionManager;
use crate::vocabulary::{Access, SessionId};
use actix::Addr;

/// What a session needs from the engine.
#[derive(Clone)]
pub struct SessionConfig {
    pub manager: Addr<SessionManager>,
    pub max_message_bytes: usize,
    /// What the session's protocol checks itself (`[limits]`).
    pub protocol_limits: ProtocolLimits,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub metrics: Arc<Metrics>,
    /// Which addresses recently had an oversized message logged.
    pub oversize: Arc<OversizeReports>,
    /// How fast one session may send ops and bytes.
    pub rates: SessionRates,
}

/// A session about to start: everything the upgrade route decided.
pub struct NewSession<P> {
    pub protocol: P,
    pub id: SessionId,
    /// Already validated.
    pub document_id: Arc<str>,
    /// What the authorizer granted.
    pub access: Access,
    /// Its place on the document.
    pub slot: SessionSlot,
    /// Its place among the server's and its address's connections (`None`
    /// for a request that is no WebSocket handshake: it is refused).
    pub connection: Option<ConnectionPermit>,
}
