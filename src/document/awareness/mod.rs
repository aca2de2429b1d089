//! Presence (y-protocols awareness) of one document, in memory only.
//!
//! Each client publishes a JSON state under its awareness client id with an
//! increasing clock; a `null` state removes it. Nothing here is ever
//! persisted.
//!
//! A client id belongs to the session that first published it, while that
//! session is joined: only the owner may change or remove its state. The
//! id is released when its owner removes the state (a `null` state) or
//! leaves (every state it owns is removed for everyone); then any session
//! may publish it again. Entries of an update for an id owned by another
//! session are dropped (counted as ignored), the rest of the update
//! applies. A session owns at most `limits.max_awareness_clients_per_session`
//! ids: an update that would take it past that is refused as a whole. So
//! every current state has an owner, and a joiner gets at most that many
//! states per session (each at most `limits.max_awareness_state_bytes`,
//! checked by the session before the update gets here).

use std::collections::{HashMap, HashSet};
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
    /// The session that owns the id; `Some` exactly while `json` is.
    owner: Option<SessionId>,
}

/// Removed states remembered at most (their clocks), per document.
const MAX_TOMBSTONES: usize = 10_000;

/// Why an update was refused; nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an awareness update (sessions check this before sending).
    #[error(transparent)]
    Invalid(#[from] AwarenessProblem),
    /// The publisher would own more client ids than it may.
    #[error(
        "awareness update over limits.max_awareness_clients_per_session ({limit}): \
         it would make the session publish {would_own} client ids"
    )]
    TooManyClients { would_own: usize, limit: usize },
}

/// What an accepted update changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The entries that changed, to relay (`None`: nothing changed).
    pub update: Option<Bytes>,
    /// Their client ids.
    pub clients: Vec<ClientID>,
    /// Entries dropped because another session owns their client id.
    pub ignored: usize,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct AwarenessRegistry {
    states: HashMap<ClientID, Entry>,
    /// The client ids each session owns (the ids whose `owner` it is).
    owned: HashMap<SessionId, HashSet<ClientID>>,
}

impl AwarenessRegistry {
    /// Applies an update published by `session`, by the rules of
    /// y-protocols (a state is taken when its clock is newer, and a `null`
    /// state with the same clock removes it) and of ownership (see the
    /// module docs), letting `session` own at most `max_clients` ids.
    pub fn apply(
        &mut self,
        session: SessionId,
        update: &[u8],
        max_clients: usize,
    ) -> Result<Applied, Refused> {
        let update = crdt::decode_awareness(update)?;
        // Sorted out before anything changes, so a refused update changes nothing.
        let mut accepted = Vec::new();
        let (mut ignored, mut claims, mut releases) = (0, 0, 0);
        for (client, entry) in update.clients {
            let removal = &*entry.json == REMOVED;
            let current = self.states.get(&client);
            let newer = match current {
                None => !removal,
                Some(current) => {
                    entry.clock > current.clock
                        || (entry.clock == current.clock && removal && current.json.is_some())
                }
            };
            if !newer {
                // Stale, or a peer's copy of what it received: not a change.
                continue;
            }
            match current.and_then(|c| c.owner) {
                Some(owner) if owner != session => {
                    ignored += 1;
                    continue;
                }
                Some(_) => releases += usize::from(removal),
                None => claims += usize::from(!removal),
            }
            accepted.push((client, entry));
        }
        let owned = self.owned.get(&session).map_or(0, HashSet::len);
        let would_own = (owned + claims).saturating_sub(releases);
        if claims > 0 && would_own > max_clients {
            return Err(Refused::TooManyClients {
                would_own,
                limit: max_clients,
            });
        }
        for (client, entry) in &accepted {
            let removal = &*entry.json == REMOVED;
            let ids = self.owned.entry(session).or_default();
            let (json, owner) = if removal {
                ids.remove(client);
                (None, None)
            } else {
                ids.insert(*client);
                (Some(entry.json.clone()), Some(session))
            };
            self.states.insert(
                *client,
                Entry {
                    clock: entry.clock,
                    json,
                    owner,
                },
            );
        }
        if self.owned.get(&session).is_some_and(HashSet::is_empty) {
            self.owned.remove(&session);
        }
        self.forget_old_tombstones();
        let clients: Vec<ClientID> = accepted.iter().map(|(client, _)| *client).collect();
        let update = (!accepted.is_empty()).then(|| {
            let clients = accepted.into_iter().collect();
            Bytes::from(AwarenessUpdate { clients }.encode_v1())
        });
        Ok(Applied {
            update,
            clients,
            ignored,
        })
    }

    fn forget_old_tombstones(&mut self) {
        if self.states.len() - self.len() > MAX_TOMBSTONES {
            self.states.retain(|_, e| e.json.is_some());
        }
    }

    /// The current entries of `clients` that `session` changed last: its
    /// states, and removals (`null`, same clock) of those it removed
    /// since; ids another session took over since are left out. `None`
    /// when nothing is left. For relaying a session's coalesced changes.
    pub fn latest(&self, session: SessionId, clients: &[ClientID]) -> Option<Bytes> {
        let clients: HashMap<_, _> = clients
            .iter()
            .filter_map(|client| {
                let e = self.states.get(client)?;
                let json = match (&e.json, e.owner) {
                    (Some(json), Some(owner)) if owner == session => json.clone(),
                    (None, _) => Arc::from(REMOVED),
                    _ => return None,
                };
                Some((
                    *client,
                    AwarenessUpdateEntry {
                        clock: e.clock,
                        json,
                    },
                ))
            })
            .collect();
        (!clients.is_empty()).then(|| Bytes::from(AwarenessUpdate { clients }.encode_v1()))
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

    /// Removes the states `session` owns and releases their ids; returns
    /// the update that removes them for everyone else (`None` if it owned
    /// none). As in y-protocols, the removal keeps the state's clock, so
    /// the client's next real update (clock + 1) is still taken as new.
    pub fn remove_session(&mut self, session: SessionId) -> Option<Bytes> {
        let owned = self.owned.remove(&session)?;
        let mut removed = AwarenessUpdate {
            clients: HashMap::new(),
        };
        for client in owned {
            if let Some(entry) = self.states.get_mut(&client) {
                entry.json = None;
                entry.owner = None;
                removed.clients.insert(
                    client,
                    AwarenessUpdateEntry {
                        clock: entry.clock,
                        json: Arc::from(REMOVED),
                    },
                );
            }
        }
        self.forget_old_tombstones();
        (!removed.clients.is_empty()).then(|| Bytes::from(removed.encode_v1()))
    }

    /// Drops everything (the document restarted; its sessions are gone).
    pub fn clear(&mut self) {
        self.states.clear();
        self.owned.clear();
    }

    /// Current (not removed) states.
    pub fn len(&self) -> usize {
        self.owned.values().map(HashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.owned.is_empty()
    }
}

#[cfg(test)]
mod tests;
