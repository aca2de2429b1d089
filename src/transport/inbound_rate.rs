//! The per-session rates of what a client sends: `limits.ops_per_sec_per_session`
//! and `limits.bytes_per_sec_per_session`, each with bursts of twice the
//! rate. A client over either is slowed down, never refused: the session
//! stops reading its socket for as long as it is ahead of its rate (TCP
//! then pushes back on the client). Refusing an op while a later one is
//! accepted would lose it on resend (docs/protocol.md), so nothing is
//! refused for speed.

use std::time::{Duration, Instant};

use crate::rate::TokenBucket;

/// The two rates of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionRates {
    pub ops_per_sec: u32,
    pub bytes_per_sec: u64,
}

/// A session's buckets. Taking goes into debt; [`InboundRate::pause`] says
/// how long the debt takes to pay back.
#[derive(Debug)]
pub struct InboundRate {
    ops: TokenBucket,
    bytes: TokenBucket,
    /// The longest wait owed since the last [`InboundRate::pause`].
    owed: Duration,
}

impl InboundRate {
    pub fn new(rates: SessionRates) -> Self {
        let now = Instant::now();
        let ops = f64::from(rates.ops_per_sec);
        let bytes = rates.bytes_per_sec as f64;
        InboundRate {
            ops: TokenBucket::new(ops, 2.0 * ops, now),
            bytes: TokenBucket::new(bytes, 2.0 * bytes, now),
            owed: Duration::ZERO,
        }
    }

    /// One message of `len` bytes arrived.
    pub fn message(&mut self, len: usize) {
        let wait = self.bytes.take_or_wait(len as f64, Instant::now());
        self.owed = self.owed.max(wait);
    }

    /// One op was submitted.
    pub fn op(&mut self) {
        let wait = self.ops.take_or_wait(1.0, Instant::now());
        self.owed = self.owed.max(wait);
    }

    /// How long to stop reading the client now, if at all.
    pub fn pause(&mut self) -> Option<Duration> {
        let owed = std::mem::take(&mut self.owed);
        (!owed.is_zero()).then_some(owed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_twice_the_rate_passes_then_the_client_waits() {
        let mut rate = InboundRate::new(SessionRates {
            ops_per_sec: 100,
            bytes_per_sec: 1 << 30,
        });
        for _ in 0..200 {
            rate.op();
        }
        assert_eq!(rate.pause(), None, "a burst of 200 at 100/s");
        for _ in 0..50 {
            rate.op();
        }
        let wait = rate.pause().expect("ahead of the rate");
        assert!(wait > Duration::from_millis(400), "{wait:?}");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(rate.pause(), None, "owed once");
    }

    #[test]
    fn a_message_bigger_than_the_burst_waits_for_its_size() {
        let mut rate = InboundRate::new(SessionRates {
            ops_per_sec: 1000,
            bytes_per_sec: 1000,
        });
        rate.message(4000);
        let wait = rate
            .pause()
            .expect("4000 bytes at 1000/s with 2000 of burst");
        assert!(
            wait > Duration::from_millis(1900) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
    }
}
