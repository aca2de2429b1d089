//! The threads document actors run on: a fixed pool of arbiters, each
//! document pinned to one by a hash of its id, so a document that keeps
//! its thread busy (a huge update, a big snapshot) delays only the
//! documents that share that thread, never all of them.

use std::hash::{DefaultHasher, Hash, Hasher};

use actix::prelude::*;

/// Which of `count` arbiters (at least 1) document `id` runs on: always
/// the same for an id (`DefaultHasher::new` is a fixed-key SipHash).
/// Public so that tests and operators can tell which documents share a
/// thread.
pub fn arbiter_index(id: &str, count: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    (hasher.finish() % count.max(1) as u64) as usize
}

/// The pool. Dropping it (with the session manager, when the engine's
/// system ends) stops its threads once their actors are done.
pub(super) struct DocumentArbiters {
    /// Never empty.
    arbiters: Vec<Arbiter>,
}

impl DocumentArbiters {
    /// `count` (at least 1) new arbiter threads. Must be called inside a
    /// running actix system.
    pub(super) fn new(count: usize) -> Self {
        let arbiters = (0..count.max(1)).map(|_| Arbiter::new()).collect();
        DocumentArbiters { arbiters }
    }

    /// The arbiter document `id` runs on: always the same one for an id
    /// (`DefaultHasher::new` is a fixed-key SipHash).
    pub(super) fn for_document(&self, id: &str) -> ArbiterHandle {
        self.arbiters[arbiter_index(id, self.arbiters.len())].handle()
    }

    pub(super) fn len(&self) -> usize {
        self.arbiters.len()
    }
}

impl Drop for DocumentArbiters {
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn a_document_always_runs_on_the_same_arbiter_and_documents_spread() {
        let pool = DocumentArbiters::new(4);
        assert_eq!(pool.len(), 4);
        let mut used = std::collections::HashSet::new();
        for n in 0..64 {
            let id = format!("doc-{n}");
            let first = pool.for_document(&id);
            let again = pool.for_document(&id);
            // Two handles of one arbiter run a closure on the same thread.
            let (a, b) = tokio::sync::oneshot::channel();
            let (c, d) = tokio::sync::oneshot::channel();
            first.spawn_fn(move || {
                let _ = a.send(std::thread::current().id());
            });
            again.spawn_fn(move || {
                let _ = c.send(std::thread::current().id());
            });
            let (first_thread, again_thread) = (b.await.expect("ran"), d.await.expect("ran"));
            assert_eq!(first_thread, again_thread, "{id}");
            used.insert(first_thread);
        }
        assert_eq!(used.len(), 4, "64 ids spread over every arbiter");
        assert!(DocumentArbiters::new(0).len() == 1);
    }
}
