//! Injected commit failures, for operator drills and tests: the next
//! commits of a document fail, before they reach storage or (`after`)
//! once they did and only the answer is a failure (a commit whose outcome
//! the server got wrong, as when the connection drops during `COMMIT`).
//!
//! Only a store made with [`Store::with_commit_faults`](super::Store::with_commit_faults)
//! consults this (the engine does so when `debug.fault_injection` is on);
//! no other code knows about it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::StoreError;

/// When an injected failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureTiming {
    /// Nothing is written.
    BeforeCommit,
    /// Everything is written; the commit is reported as failed.
    AfterCommit,
}

#[derive(Debug, Clone, Copy)]
struct Planned {
    count: u32,
    timing: FailureTiming,
}

/// The failures planned per document.
#[derive(Debug, Default)]
pub struct CommitFaults {
    planned: Mutex<HashMap<String, Planned>>,
}

impl CommitFaults {
    /// The next `count` commits of `document_id` fail at `timing`
    /// (replacing what was planned for it before).
    pub fn fail_next(&self, document_id: &str, count: u32, timing: FailureTiming) {
        let mut planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
        if count == 0 {
            planned.remove(document_id);
        } else {
            planned.insert(document_id.to_owned(), Planned { count, timing });
        }
    }

    /// Called as a commit of `document_id` starts: fails it now if one
    /// failure before the commit is planned; `Ok(true)` if this commit must
    /// be reported failed once it reached storage.
    pub(super) fn commit_starts(&self, document_id: &str) -> Result<bool, StoreError> {
        let mut planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
        let Some(plan) = planned.get_mut(document_id) else {
            return Ok(false);
        };
        let timing = plan.timing;
        plan.count -= 1;
        if plan.count == 0 {
            planned.remove(document_id);
        }
        match timing {
            FailureTiming::BeforeCommit => Err(StoreError::Injected(
                "commit failure requested through /debug",
            )),
            FailureTiming::AfterCommit => Ok(true),
        }
    }

    /// The error of a commit that reached storage and is reported failed.
    pub(super) fn landed_but_failed() -> StoreError {
        StoreError::Injected("commit reported as failed after it reached storage (/debug)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_failures_are_used_up_one_commit_at_a_time() {
        let faults = CommitFaults::default();
        faults.fail_next("d", 2, FailureTiming::BeforeCommit);
        assert!(faults.commit_starts("other").is_ok_and(|after| !after));
        assert!(faults.commit_starts("d").is_err());
        assert!(faults.commit_starts("d").is_err());
        assert!(faults.commit_starts("d").is_ok_and(|after| !after));
        faults.fail_next("d", 1, FailureTiming::AfterCommit);
        assert!(faults.commit_starts("d").is_ok_and(|after| after));
        assert!(faults.commit_starts("d").is_ok_and(|after| !after));
    }
}
