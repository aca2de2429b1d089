//! Presence (y-protocols awareness) of one document, in memory only.
//!
//! Each client publishes a JSON state under its awareness client id with an
//! increasing clock; a `null` state removes it. The registry remembers which
//! session published which client id, so when a session closes its states
//! can be removed for everyone else. Nothing here is ever persisted.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use yrs::ClientID;
use yrs::sync::AwarenessUpdate;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::updates::encoder::Encode;

use crate::crdt::{self, AwarenessProblem};
use crate::vocabulary::SessionId;

/// The JSON a removed state is announced with.
const REMOVED: &str = "null";

#[derive(Debug, Clone)]
struct Entry {
    clock: u32,
    /// `None` once removed: the clock is kept so that an older copy of the
    /// state arriving late is not taken for new.
    json: Option<Arc<str>>,
    owner: SessionId,
}

/// Removed states remembered at most (their clocks), per document.
const MAX_TOMBSTONES: usize = 10_000;

/// See the module docs.
#[derive(Debug, Default)]
pub struct AwarenessRegistry {
    states: HashMap<ClientID, Entry>,
}

impl AwarenessRegistry {
    /// Applies an update published by `session`, by the rules of
    /// y-protocols: a state is taken when its clock is newer, and a `null`
    /// state with the same clock removes it. Returns the entries that
    /// changed (to relay), or `None` when nothing did.
    pub fn apply(
        &mut self,
        session: SessionId,
        update: &[u8],
    ) -> Result<Option<Bytes>, AwarenessProblem> {
        let update = crdt::decode_awareness(update)?;
        let mut changed = AwarenessUpdate {
            clients: HashMap::new(),
        };
        for (client, entry) in update.clients {
            let removal = &*entry.json == REMOVED;
            let newer = match self.states.get(&client) {
                None => !removal,
                Some(current) => {
                    entry.clock > current.clock
                        || (entry.clock == current.clock && removal && current.json.is_some())
                }
            };
            if !newer {
                continue;
            }
            self.states.insert(
                client,
                Entry {
                    clock: entry.clock,
                    json: (!removal).then(|| entry.json.clone()),
                    owner: session,
                },
            );
            changed.clients.insert(client, entry);
        }
        self.forget_old_tombstones();
        Ok((!changed.clients.is_empty()).then(|| Bytes::from(changed.encode_v1())))
    }

    fn forget_old_tombstones(&mut self) {
        let tombstones = self.states.values().filter(|e| e.json.is_none()).count();
        if tombstones > MAX_TOMBSTONES {
            self.states.retain(|_, e| e.json.is_some());
        }
    }

    /// Every current state, for a joining session; `None` when there is none.
    pub fn full_update(&self) -> Option<Bytes> {
        let clients: HashMap<_, _> = self
            .states
            .iter()
            .filter_map(|(client, e)| {
                e.json.as_ref().map(|json| {
                    (
                        *client,
                        AwarenessUpdateEntry {
                            clock: e.clock,
                            json: json.clone(),
                        },
                    )
                })
            })
            .collect();
        if clients.is_empty() {
            return None;
        }
        Some(Bytes::from(AwarenessUpdate { clients }.encode_v1()))
    }

    /// Removes the states `session` published; returns the update that
    /// removes them for everyone else (`None` if it published none). As in
    /// y-protocols, the removal keeps the state's clock, so the client's next
    /// real update (clock + 1) is still taken as new.
    pub fn remove_session(&mut self, session: SessionId) -> Option<Bytes> {
        let mut removed = AwarenessUpdate {
            clients: HashMap::new(),
        };
        for (client, entry) in self.states.iter_mut() {
            if entry.owner == session && entry.json.is_some() {
                entry.json = None;
                removed.clients.insert(
                    *client,
                    AwarenessUpdateEntry {
                        clock: entry.clock,
                        json: Arc::from(REMOVED),
                    },
                );
            }
        }
        (!removed.clients.is_empty()).then(|| Bytes::from(removed.encode_v1()))
    }

    /// Drops everything (the document restarted; its sessions are gone).
    pub fn clear(&mut self) {
        self.states.clear();
    }

    /// Current (not removed) states.
    pub fn len(&self) -> usize {
        self.states.values().filter(|e| e.json.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;

    fn update(entries: &[(u64, u32, &str)]) -> Vec<u8> {
        AwarenessUpdate {
            clients: entries
                .iter()
                .map(|(client, clock, json)| {
                    (
                        ClientID::new(*client),
                        AwarenessUpdateEntry {
                            clock: *clock,
                            json: Arc::from(*json),
                        },
                    )
                })
                .collect(),
        }
        .encode_v1()
    }

    fn decoded(bytes: &[u8]) -> Vec<(u64, u32, String)> {
        let mut v: Vec<_> = AwarenessUpdate::decode_v1(bytes)
            .expect("decodes")
            .clients
            .into_iter()
            .map(|(c, e)| (c.get(), e.clock, e.json.to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn newer_states_are_kept_and_relayed_older_ones_ignored() {
        let mut registry = AwarenessRegistry::default();
        let relayed = registry
            .apply(1, &update(&[(10, 1, r#"{"user":"a"}"#)]))
            .expect("valid")
            .expect("changed");
        assert_eq!(
            decoded(&relayed),
            vec![(10, 1, r#"{"user":"a"}"#.to_owned())]
        );
        assert_eq!(
            registry.apply(1, &update(&[(10, 1, "{}")])).expect("valid"),
            None
        );
        registry.apply(2, &update(&[(20, 5, "{}")])).expect("valid");
        assert_eq!(registry.len(), 2);
        let full = registry.full_update().expect("states");
        assert_eq!(decoded(&full).len(), 2);
    }

    #[test]
    fn a_closing_session_removes_its_states_for_everyone() {
        let mut registry = AwarenessRegistry::default();
        registry.apply(1, &update(&[(10, 3, "{}")])).expect("valid");
        registry.apply(2, &update(&[(20, 1, "{}")])).expect("valid");
        let removal = registry.remove_session(1).expect("had states");
        assert_eq!(decoded(&removal), vec![(10, 3, "null".to_owned())]);
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.remove_session(1), None);
        // The removal echoed back by a peer changes nothing; a stale copy of
        // the old state is not resurrected; the client's next state is new.
        assert_eq!(
            registry
                .apply(2, &update(&[(10, 3, "null")]))
                .expect("valid"),
            None
        );
        assert_eq!(
            registry.apply(2, &update(&[(10, 3, "{}")])).expect("valid"),
            None
        );
        assert!(
            registry
                .apply(3, &update(&[(10, 4, "{}")]))
                .expect("valid")
                .is_some()
        );
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn null_states_remove_and_garbage_is_refused() {
        let mut registry = AwarenessRegistry::default();
        registry.apply(1, &update(&[(10, 1, "{}")])).expect("valid");
        assert!(
            registry
                .apply(1, &update(&[(10, 2, "null")]))
                .expect("valid")
                .is_some()
        );
        assert!(registry.is_empty());
        assert!(registry.apply(1, &[0xff, 0xff]).is_err());
    }
}
