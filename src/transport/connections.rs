//! Admission of WebSocket connections before the upgrade: the server's
//! `limits.max_connections`, per IP address `max_connections_per_ip`,
//! `upgrades_per_ip_per_sec` and `documents_created_per_ip_per_min`.
//! Plain HTTP requests are not counted. Memory stays bounded: buckets of
//! addresses that are idle (full again) are forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::http::StatusCode;

use crate::configuration::LimitsSettings;
use crate::rate::TokenBucket;

/// Why a connection was not admitted: each maps to an HTTP status and an
/// error code (docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the server has {0} WebSocket connections (limits.max_connections); retry later")]
    ServerFull(usize),
    #[error(
        "address {ip} has {count} WebSocket connections (limits.max_connections_per_ip); close some first"
    )]
    TooManyConnections { ip: IpAddr, count: usize },
    #[error(
        "address {ip} opens more than {per_sec} WebSocket connections a second (limits.upgrades_per_ip_per_sec); slow down"
    )]
    TooManyUpgrades { ip: IpAddr, per_sec: u32 },
    #[error(
        "address {ip} opened more than {per_min} new documents in the last minute (limits.documents_created_per_ip_per_min); retry later"
    )]
    TooManyDocuments { ip: IpAddr, per_min: u32 },
}

impl Refused {
    /// The machine-readable code of the refusal's JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Refused::ServerFull(_) => "server_full",
            Refused::TooManyConnections { .. } => "too_many_connections",
            Refused::TooManyUpgrades { .. } => "too_many_upgrades",
            Refused::TooManyDocuments { .. } => "too_many_documents",
        }
    }

    /// 503 when the whole server is full, 429 for one address.
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::ServerFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// How many addresses' buckets are kept before idle ones are pruned.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    upgrades: HashMap<IpAddr, TokenBucket>,
    creations: HashMap<IpAddr, TokenBucket>,
}

/// See the module docs. One per engine, shared by its routes.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_connections: usize,
    max_per_ip: usize,
    upgrades_per_sec: u32,
    creations_per_min: u32,
    counts: Mutex<Counts>,
}

/// One admitted connection, counted until dropped (with its session).
#[derive(Debug)]
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: Option<IpAddr>,
}

impl ConnectionLimits {
    pub fn new(limits: &LimitsSettings) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_connections: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            upgrades_per_sec: limits.upgrades_per_ip_per_sec,
            creations_per_min: limits.documents_created_per_ip_per_min,
            counts: Mutex::default(),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits one more connection from `ip` (`None`: the peer address is
    /// unknown, only the server's total applies), or says why not.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<ConnectionPermit, Refused> {
        let now = Instant::now();
        let mut counts = self.counts();
        if counts.total >= self.max_connections {
            return Err(Refused::ServerFull(counts.total));
        }
        if let Some(ip) = ip {
            let count = counts.per_ip.get(&ip).copied().unwrap_or(0);
            if count >= self.max_per_ip {
                return Err(Refused::TooManyConnections { ip, count });
            }
            let per_sec = self.upgrades_per_sec;
            prune(&mut counts.upgrades, now);
            let bucket = counts
                .upgrades
                .entry(ip)
                .or_insert_with(|| TokenBucket::new(per_sec.into(), per_sec.into(), now));
            if !bucket.try_take(1.0, now) {
                return Err(Refused::TooManyUpgrades { ip, per_sec });
            }
            *counts.per_ip.entry(ip).or_default() += 1;
        }
        counts.total += 1;
        Ok(ConnectionPermit {
            limits: self.clone(),
            ip,
        })
    }

    /// Counts the opening of a document that does not exist yet by `ip`
    /// against `documents_created_per_ip_per_min`.
    pub fn create_document(&self, ip: Option<IpAddr>) -> Result<(), Refused> {
        let Some(ip) = ip else { return Ok(()) };
        let now = Instant::now();
        let per_min = self.creations_per_min;
        let mut counts = self.counts();
        prune(&mut counts.creations, now);
        let bucket = counts
            .creations
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(f64::from(per_min) / 60.0, per_min.into(), now));
        if bucket.try_take(1.0, now) {
            Ok(())
        } else {
            Err(Refused::TooManyDocuments { ip, per_min })
        }
    }

    /// WebSocket connections now.
    pub fn total(&self) -> usize {
        self.counts().total
    }
}

/// Forgets the buckets that are full again once there are many.
fn prune(buckets: &mut HashMap<IpAddr, TokenBucket>, now: Instant) {
    if buckets.len() > PRUNE_ABOVE {
        buckets.retain(|_, bucket| !bucket.is_full(now));
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(count) = counts.per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize, upgrades: u32, creations: u32) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(&LimitsSettings {
            max_connections: total,
            max_connections_per_ip: per_ip,
            upgrades_per_ip_per_sec: upgrades,
            documents_created_per_ip_per_min: creations,
            ..LimitsSettings::default()
        })
    }

    #[test]
    fn per_address_and_total_counts_are_given_back() {
        let limits = limits(3, 2, 100, 100);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = limits.admit(Some(a)).expect("1");
        let _second = limits.admit(Some(a)).expect("2");
        let refused = limits.admit(Some(a)).unwrap_err();
        assert_eq!(refused.code(), "too_many_connections", "{refused}");
        let _third = limits.admit(Some(b)).expect("another address");
        let refused = limits.admit(Some(b)).unwrap_err();
        assert_eq!(
            (refused.code(), refused.status()),
            ("server_full", StatusCode::SERVICE_UNAVAILABLE)
        );
        drop(first);
        assert_eq!(limits.total(), 2);
        limits.admit(Some(a)).expect("a place again");
    }

    #[test]
    fn upgrades_and_creations_are_rate_limited_per_address() {
        let limits = limits(100, 100, 3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let permits: Vec<_> = (0..3)
            .map(|_| limits.admit(Some(a)).expect("burst"))
            .collect();
        let refused = limits.admit(Some(a)).unwrap_err();
        assert_eq!(refused.code(), "too_many_upgrades");
        assert!(refused.to_string().contains("upgrades_per_ip_per_sec"));
        assert_eq!(limits.total(), 3, "a refused upgrade holds nothing");
        drop(permits);
        assert!(limits.create_document(Some(a)).is_ok());
        assert!(limits.create_document(Some(a)).is_ok());
        let refused = limits.create_document(Some(a)).unwrap_err();
        assert_eq!(refused.code(), "too_many_documents");
        assert!(limits.create_document(Some([10, 0, 0, 9].into())).is_ok());
    }
}
