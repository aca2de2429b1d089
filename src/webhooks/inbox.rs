//! Where documents leave their change notices for the dispatcher: the
//! latest notice of each document, nothing more. A document's call takes a
//! lock for one map insert and never waits for the dispatcher, so
//! deliveries cannot slow down commits; memory is bounded by the number
//! of documents that changed since the dispatcher last looked, and the
//! latest seq of each is never lost (a newer notice replaces an older one).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::document::{ChangeListener, DocumentChanged};

/// See the module docs.
#[derive(Default)]
pub struct ChangeInbox {
    /// The latest notice of each document not yet taken.
    latest: Mutex<HashMap<std::sync::Arc<str>, DocumentChanged>>,
    /// Woken when `latest` stops being empty (a permit is kept if the
    /// dispatcher is not waiting yet, so no wake-up is lost).
    wake: Notify,
    /// Set on shutdown: notices are ignored from then on.
    closed: AtomicBool,
}

impl ChangeInbox {
    fn locked(&self) -> MutexGuard<'_, HashMap<std::sync::Arc<str>, DocumentChanged>> {
        // A panic while holding the lock left a map that is still valid.
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until there are notices, then takes them all.
    pub async fn next(&self) -> Vec<DocumentChanged> {
        loop {
            let taken: Vec<DocumentChanged> = self.locked().drain().map(|(_, c)| c).collect();
            if !taken.is_empty() {
                return taken;
            }
            self.wake.notified().await;
        }
    }

    /// Ignores every notice from now on (the dispatcher is going away).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.locked().clear();
    }
}

impl ChangeListener for ChangeInbox {
    fn document_changed(&self, change: DocumentChanged) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let was_empty = {
            let mut latest = self.locked();
            let was_empty = latest.is_empty();
            latest.insert(change.document_id.clone(), change);
            was_empty
        };
        if was_empty {
            self.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(document: &str, server_seq: u64) -> DocumentChanged {
        DocumentChanged {
            document_id: document.into(),
            epoch: "e".into(),
            server_seq,
        }
    }

    #[actix_rt::test]
    async fn keeps_the_latest_notice_of_each_document() {
        let inbox = ChangeInbox::default();
        for seq in 1..=1000 {
            inbox.document_changed(change("a", seq));
        }
        inbox.document_changed(change("b", 7));
        let mut taken = inbox.next().await;
        taken.sort_by(|x, y| x.document_id.cmp(&y.document_id));
        assert_eq!(taken, vec![change("a", 1000), change("b", 7)]);

        // A notice left while nobody waits wakes the next wait.
        inbox.document_changed(change("a", 1001));
        assert_eq!(inbox.next().await, vec![change("a", 1001)]);

        inbox.close();
        inbox.document_changed(change("a", 1002));
        assert!(inbox.locked().is_empty(), "closed: ignored");
    }
}
