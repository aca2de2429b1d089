//! A token bucket: the rate limits of `[limits]` (upgrades per IP,
//! documents created per IP, ops and bytes per session, awareness relays
//! per session). Free of actix and of clocks of its own: callers pass
//! `now`, so it is unit-testable.

use std::time::{Duration, Instant};

/// Holds up to `capacity` tokens, refilled at `per_sec` tokens a second.
/// A taker either gets its tokens now or learns how long to wait.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens available at `updated` (never above `capacity`).
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket: `per_sec` sustained, bursts of `capacity`.
    pub fn new(per_sec: f64, capacity: f64, now: Instant) -> Self {
        TokenBucket {
            tokens: capacity,
            capacity,
            per_sec,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.updated = now;
    }

    /// Takes `n` tokens if there are that many.
    pub fn try_take(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens, going into debt if there are fewer; answers how
    /// long until the debt is paid back (zero when there was no debt).
    /// `n` larger than the capacity is allowed (a message bigger than a
    /// second's worth of bytes): the taker just waits longer.
    pub fn take_or_wait(&mut self, n: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_sec)
        }
    }

    /// Whether the bucket is full at `now` (an idle bucket can be forgotten).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 20.0, start);
        for n in 0..20 {
            assert!(bucket.try_take(1.0, start), "burst token {n}");
        }
        assert!(!bucket.try_take(1.0, start), "burst spent");
        let later = start + Duration::from_millis(100);
        assert!(
            bucket.try_take(1.0, later),
            "one token after 100 ms at 10/s"
        );
        assert!(!bucket.try_take(1.0, later));
        assert!(!bucket.is_full(later));
        assert!(bucket.is_full(start + Duration::from_secs(3)));
    }

    #[test]
    fn debt_says_how_long_to_wait() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 200.0, start);
        assert_eq!(bucket.take_or_wait(200.0, start), Duration::ZERO);
        let wait = bucket.take_or_wait(50.0, start);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // A take bigger than the capacity waits for its whole size.
        let wait = bucket.take_or_wait(1000.0, start + wait);
        assert!((wait.as_secs_f64() - 10.0).abs() < 1e-6, "{wait:?}");
    }
}
