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
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

use crate::document::state::SessionId;

/// The JSON a removed state is announced with.
const REMOVED: &str = "null";

#[derive(Debug, Clone)]
struct Entry {
    clock: u32,
    json: Arc<str>,
    owner: SessionId,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct AwarenessRegistry {
    states: HashMap<ClientID, Entry>,
}

impl AwarenessRegistry {
    /// Applies an update published by `session`. Returns the update to relay
    /// to the other sessions, or `None` when it changed nothing (older clocks).
    pub fn apply(&mut self, session: SessionId, update: &[u8]) -> Result<Option<Bytes>, String> {
        let update = AwarenessUpdate::decode_v1(update)
            .map_err(|e| format!("awareness update cannot be decoded: {e}"))?;
        let mut changed = AwarenessUpdate {
            clients: HashMap::new(),
        };
        for (client, entry) in update.clients {
            let current = self.states.get(&client).map(|e| e.clock);
            let newer = match current {
                None => true,
                Some(clock) => entry.clock > clock,
            };
            if !newer {
                continue;
            }
            if &*entry.json == REMOVED {
                self.states.remove(&client);
            } else {
                self.states.insert(
                    client,
                    Entry {
                        clock: entry.clock,
                        json: entry.json.clone(),
                        owner: session,
                    },
                );
            }
            changed.clients.insert(client, entry);
        }
        Ok((!changed.clients.is_empty()).then(|| Bytes::from(changed.encode_v1())))
    }

    /// Every current state, for a joining session; `None` when there is none.
    pub fn full_update(&self) -> Option<Bytes> {
        if self.states.is_empty() {
            return None;
        }
        let update = AwarenessUpdate {
            clients: self
                .states
                .iter()
                .map(|(client, e)| {
                    (
                        *client,
                        AwarenessUpdateEntry {
                            clock: e.clock,
                            json: e.json.clone(),
                        },
                    )
                })
                .collect(),
        };
        Some(Bytes::from(update.encode_v1()))
    }

    /// Forgets the states `session` published; returns the update that
    /// removes them for everyone else (`None` if it published none).
    pub fn remove_session(&mut self, session: SessionId) -> Option<Bytes> {
        let mut removed = AwarenessUpdate {
            clients: HashMap::new(),
        };
        self.states.retain(|client, entry| {
            if entry.owner != session {
                return true;
            }
            removed.clients.insert(
                *client,
                AwarenessUpdateEntry {
                    clock: entry.clock + 1,
                    json: Arc::from(REMOVED),
                },
            );
            false
        });
        (!removed.clients.is_empty()).then(|| Bytes::from(removed.encode_v1()))
    }

    /// Drops everything (the document restarted; its sessions are gone).
    pub fn clear(&mut self) {
        self.states.clear();
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(decoded(&removal), vec![(10, 4, "null".to_owned())]);
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.remove_session(1), None);
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
