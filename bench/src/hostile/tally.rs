//! Counters shared by the attacking connections of a probe (one thread).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::peer::OpenError;
use super::watch::Shared;
use crate::ws::WsUrl;

/// What the attacking connections of a probe share.
pub struct Ctx {
    pub url: WsUrl,
    pub shared: Arc<Shared>,
    /// End of the attack.
    pub deadline: Instant,
    pub tally: Rc<RefCell<Tally>>,
}

impl Ctx {
    /// Whether the attack should go on.
    pub fn running(&self) -> bool {
        Instant::now() < self.deadline && !self.shared.aborted()
    }

    pub fn authority(&self) -> &str {
        &self.url.authority
    }

    /// Adds `n` to counter `name`.
    pub fn add(&self, name: &'static str, n: u64) {
        *self.tally.borrow_mut().counters.entry(name).or_default() += n;
    }

    /// Counts one refusal, error or connection end of kind `key`.
    pub fn refusal(&self, key: String) {
        *self.tally.borrow_mut().refusals.entry(key).or_default() += 1;
    }

    /// Counts a failed open, unless the attack was over anyway.
    pub fn open_failed(&self, e: &OpenError) {
        if self.running() {
            self.refusal(format!("open: {}", e.key()));
        }
    }

    /// Counts a failure of kind `key` unless the attack was over anyway
    /// (a join cut short by the deadline is no refusal).
    pub fn failure(&self, key: String) {
        if self.running() {
            self.refusal(key);
        }
    }

    /// Records a remark for the report.
    pub fn note(&self, note: String) {
        self.tally.borrow_mut().notes.push(note);
    }

    /// Waits `d`, or less if the attack ends first.
    pub async fn pause(&self, d: Duration) {
        let until = (Instant::now() + d).min(self.deadline);
        tokio::time::sleep_until(until.into()).await;
    }
}

#[derive(Debug, Default)]
pub struct Tally {
    pub counters: BTreeMap<&'static str, u64>,
    /// Refused upgrades (by HTTP status), close codes, error codes, ...
    pub refusals: BTreeMap<String, u64>,
    pub notes: Vec<String>,
}

impl Tally {
    pub fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}
