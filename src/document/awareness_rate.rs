//! `limits.awareness_per_sec_per_session`: how often the changes of one
//! session's awareness are relayed. Pure bookkeeping (no actor, no clock
//! of its own), driven by the document's presence handlers.
//!
//! Each session has a token bucket of `per_sec` relays (a burst of as
//! many, refilled at `per_sec` a second; kept as a theoretical arrival
//! time, GCRA, so the arithmetic is exact). A change with a token left is
//! relayed at once. Without one, the change is not dropped: the registry
//! already holds it (joiners and queries see it), and its client ids wait
//! here until the next token, when only the latest state of each is relayed,
//! once. While some wait, later changes wait with them, so relays keep the
//! order in which the session made its changes.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use yrs::ClientID;

use crate::vocabulary::SessionId;

/// What to do with a change of a session's awareness.
#[derive(Debug, PartialEq, Eq)]
pub enum Relay {
    /// Relay it now.
    Now,
    /// Deferred; with `Some`, schedule [`AwarenessRate::due`] for `flush`
    /// after `after` (`None`: a flush is scheduled already).
    Later(Option<(Duration, u64)>),
}

/// What a scheduled flush does.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing (the session left, the document restarted, or this flush
    /// was superseded).
    Nothing,
    /// Too early for a token: call again after this.
    Wait(Duration),
    /// Relay the latest entries of these client ids, to the publisher too
    /// with `echo`.
    Relay { clients: Vec<ClientID>, echo: bool },
}

#[derive(Debug)]
struct Bucket {
    /// When the bucket is full again; a token is left while this is at
    /// most `tolerance` ahead of now.
    full_at: Instant,
    /// Client ids whose latest change waits for the next token.
    waiting: BTreeSet<ClientID>,
    echo: bool,
    /// The scheduled flush, while `waiting` is not empty.
    flush: Option<u64>,
}

/// See the module docs.
#[derive(Debug)]
pub struct AwarenessRate {
    /// One token's worth of time: a second / `per_sec`.
    interval: Duration,
    /// How far ahead `full_at` may be with a token left: `per_sec - 1`
    /// intervals (the burst).
    tolerance: Duration,
    buckets: HashMap<SessionId, Bucket>,
    /// Numbers flushes, so a stale one (its session gone, or forgotten and
    /// back) does nothing.
    next_flush: u64,
}

impl AwarenessRate {
    /// `per_sec`: `limits.awareness_per_sec_per_session` (at least 1).
    pub fn new(per_sec: u32) -> Self {
        let per_sec = per_sec.max(1);
        let interval = Duration::from_secs(1) / per_sec;
        AwarenessRate {
            interval,
            tolerance: interval * (per_sec - 1),
            buckets: HashMap::new(),
            next_flush: 1,
        }
    }

    /// `session` changed the states of `clients` (relaying them back to it
    /// too with `echo`), at `now`.
    pub fn changed(
        &mut self,
        session: SessionId,
        clients: &[ClientID],
        echo: bool,
        now: Instant,
    ) -> Relay {
        let (interval, tolerance) = (self.interval, self.tolerance);
        let bucket = self.buckets.entry(session).or_insert_with(|| Bucket {
            full_at: now,
            waiting: BTreeSet::new(),
            echo,
            flush: None,
        });
        bucket.echo = echo;
        if bucket.flush.is_some() {
            bucket.waiting.extend(clients.iter().copied());
            return Relay::Later(None);
        }
        let Err(after) = take_token(bucket, now, interval, tolerance) else {
            return Relay::Now;
        };
        bucket.waiting.extend(clients.iter().copied());
        let flush = self.next_flush;
        self.next_flush += 1;
        bucket.flush = Some(flush);
        Relay::Later(Some((after, flush)))
    }

    /// The flush `flush` of `session` is due at `now`.
    pub fn due(&mut self, session: SessionId, flush: u64, now: Instant) -> Due {
        let (interval, tolerance) = (self.interval, self.tolerance);
        let Some(bucket) = self.buckets.get_mut(&session) else {
            return Due::Nothing;
        };
        if bucket.flush != Some(flush) {
            return Due::Nothing;
        }
        if let Err(after) = take_token(bucket, now, interval, tolerance) {
            return Due::Wait(after);
        }
        bucket.flush = None;
        Due::Relay {
            clients: std::mem::take(&mut bucket.waiting).into_iter().collect(),
            echo: bucket.echo,
        }
    }

    /// The session left: what waited for it is dropped (its removal is
    /// relayed at once instead).
    pub fn forget(&mut self, session: SessionId) {
        self.buckets.remove(&session);
    }

    /// Every session is gone (the document restarted or closed them all).
    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

/// Takes a token at `now`, or says how long until there is one.
fn take_token(
    bucket: &mut Bucket,
    now: Instant,
    interval: Duration,
    tolerance: Duration,
) -> Result<(), Duration> {
    let full_at = bucket.full_at.max(now);
    let ahead = full_at - now;
    if ahead > tolerance {
        return Err(ahead - tolerance);
    }
    bucket.full_at = full_at + interval;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(clients: &[u64]) -> Vec<ClientID> {
        clients.iter().map(|c| ClientID::new(*c)).collect()
    }

    #[test]
    fn a_burst_passes_then_changes_wait_and_coalesce_until_the_next_token() {
        let t0 = Instant::now();
        let mut rate = AwarenessRate::new(10);
        for _ in 0..10 {
            assert_eq!(rate.changed(1, &ids(&[7]), false, t0), Relay::Now);
        }
        let Relay::Later(Some((after, flush))) = rate.changed(1, &ids(&[7]), false, t0) else {
            panic!("the 11th change waits");
        };
        assert_eq!(after, Duration::from_millis(100));
        assert_eq!(
            rate.changed(1, &ids(&[8, 7]), false, t0),
            Relay::Later(None)
        );
        // Another session has its own bucket.
        assert_eq!(rate.changed(2, &ids(&[9]), true, t0), Relay::Now);
        // Early: wait more; on time: every waiting id, once.
        let early = t0 + Duration::from_millis(50);
        assert!(matches!(rate.due(1, flush, early), Due::Wait(_)));
        assert_eq!(
            rate.due(1, flush, t0 + after),
            Due::Relay {
                clients: ids(&[7, 8]),
                echo: false
            }
        );
        assert_eq!(rate.due(1, flush, t0 + after), Due::Nothing, "once");
        // The bucket is empty again: the next change waits for a new flush.
        let Relay::Later(Some((_, next))) = rate.changed(1, &ids(&[7]), false, t0 + after) else {
            panic!("no token left");
        };
        assert_ne!(next, flush);
    }

    #[test]
    fn a_flush_after_the_session_left_or_a_restart_does_nothing() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        let mut rate = AwarenessRate::new(1);
        assert_eq!(rate.changed(1, &ids(&[7]), true, t0), Relay::Now);
        let Relay::Later(Some((_, flush))) = rate.changed(1, &ids(&[7]), true, t0) else {
            panic!("waits");
        };
        rate.forget(1);
        assert_eq!(rate.due(1, flush, later), Due::Nothing);
        // The same id back (a fresh bucket): the old flush is stale.
        assert_eq!(rate.changed(1, &ids(&[7]), true, later), Relay::Now);
        assert!(matches!(
            rate.changed(1, &ids(&[7]), true, later),
            Relay::Later(Some(_))
        ));
        assert_eq!(rate.due(1, flush, later), Due::Nothing);
        rate.clear();
        assert_eq!(rate.due(1, flush + 1, later), Due::Nothing);
    }
}
