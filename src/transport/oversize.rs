//! Reports of messages over `documents.max_message_bytes`. A y-websocket
//! provider whose update is over the limit reconnects and sends it again,
//! forever: every refusal is counted (metrics) and closed with a reason that
//! names the limit, but only the first one from an address in a while is
//! logged at `warn`, so the loop is visible without flooding the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after a logged report the same address is only logged at `debug`.
pub const QUIET_FOR: Duration = Duration::from_secs(600);
/// Addresses remembered at most (the oldest half is forgotten past it).
const MAX_TRACKED: usize = 10_000;

/// See the module docs. Shared by every session of an engine.
#[derive(Debug, Default)]
pub struct OversizeReports {
    /// When each address was last logged at `warn`.
    logged: Mutex<HashMap<Option<IpAddr>, Instant>>,
}

impl OversizeReports {
    /// Whether a refusal from `peer` now is worth a `warn` line: the first
    /// from that address, or the first since [`QUIET_FOR`].
    pub fn first_in_a_while(&self, peer: Option<IpAddr>) -> bool {
        self.first_at(peer, Instant::now())
    }

    /// Logs the refusal of an oversized message by `who` (a session) from
    /// `peer`: at `warn` the first time in a while, at `debug` otherwise.
    pub fn report(&self, who: &str, peer: Option<IpAddr>, limit: usize) {
        let level = if self.first_in_a_while(peer) {
            log::Level::Warn
        } else {
            log::Level::Debug
        };
        log::log!(
            level,
            "{who} from {}: a message over the limit of {limit} bytes \
             (documents.max_message_bytes) was refused, close 1009; a client that sends it \
             again after reconnecting will loop (only the first in {} min per address is \
             logged at warn)",
            peer.map_or_else(|| "?".to_owned(), |ip| ip.to_string()),
            QUIET_FOR.as_secs() / 60
        );
    }

    fn first_at(&self, peer: Option<IpAddr>, now: Instant) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = logged.get(&peer)
            && now.saturating_duration_since(*last) < QUIET_FOR
        {
            return false;
        }
        if logged.len() >= MAX_TRACKED {
            let mut times: Vec<Instant> = logged.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            logged.retain(|_, at| *at > cut);
        }
        logged.insert(peer, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_reported_once_per_quiet_period() {
        let reports = OversizeReports::default();
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        assert!(reports.first_at(a, t0));
        assert!(!reports.first_at(a, t0 + Duration::from_secs(1)));
        assert!(reports.first_at(b, t0 + Duration::from_secs(1)));
        assert!(!reports.first_at(a, t0 + QUIET_FOR - Duration::from_secs(1)));
        assert!(reports.first_at(a, t0 + QUIET_FOR + Duration::from_secs(1)));
    }
}
