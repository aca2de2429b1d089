//! How many sessions each document has, both routes together, so that an
//! upgrade beyond `limits.max_sessions_per_document` is refused (429)
//! before it becomes a session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// See the module docs. Shared by every route of an engine.
#[derive(Debug)]
pub struct SessionSlots {
    max_per_document: usize,
    taken: Mutex<HashMap<Arc<str>, usize>>,
}

/// One session's place on its document, given back when dropped (when the
/// session actor is gone).
#[derive(Debug)]
pub struct SessionSlot {
    slots: Arc<SessionSlots>,
    document_id: Arc<str>,
}

impl SessionSlots {
    pub fn new(max_per_document: usize) -> Arc<Self> {
        Arc::new(SessionSlots {
            max_per_document,
            taken: Mutex::new(HashMap::new()),
        })
    }

    /// A place on `document_id`, or `None` when it is full.
    pub fn take(self: &Arc<Self>, document_id: &Arc<str>) -> Option<SessionSlot> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let count = taken.entry(document_id.clone()).or_default();
        if *count >= self.max_per_document {
            return None;
        }
        *count += 1;
        Some(SessionSlot {
            slots: self.clone(),
            document_id: document_id.clone(),
        })
    }

    /// Sessions of `document_id` now.
    pub fn count(&self, document_id: &str) -> usize {
        let taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.get(document_id).copied().unwrap_or(0)
    }

    pub fn max_per_document(&self) -> usize {
        self.max_per_document
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut taken = self.slots.taken.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = taken.get_mut(&self.document_id) {
            *count -= 1;
            if *count == 0 {
                taken.remove(&self.document_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_document_refuses_until_a_session_leaves() {
        let slots = SessionSlots::new(2);
        let doc: Arc<str> = Arc::from("d");
        let a = slots.take(&doc).expect("first");
        let _b = slots.take(&doc).expect("second");
        assert!(slots.take(&doc).is_none(), "full");
        assert!(slots.take(&Arc::from("other")).is_some(), "per document");
        drop(a);
        assert_eq!(slots.count("d"), 1);
        assert!(slots.take(&doc).is_some());
    }
}
