//! Unit tests of the awareness registry: clocks, ownership, the limit of
//! client ids per session, the latest states of a session.

use super::*;
use yrs::updates::decoder::Decode;

const MAX: usize = 4;

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

/// Applies `entries` as `session`; the relayed entries.
fn apply(
    registry: &mut AwarenessRegistry,
    session: SessionId,
    entries: &[(u64, u32, &str)],
) -> Vec<(u64, u32, String)> {
    let applied = registry
        .apply(session, &update(entries), MAX)
        .expect("accepted");
    applied.update.map(|u| decoded(&u)).unwrap_or_default()
}

fn state_of(registry: &AwarenessRegistry, client: u64) -> Option<String> {
    let full = registry.full_update()?;
    decoded(&full)
        .into_iter()
        .find(|(c, _, _)| *c == client)
        .map(|(_, _, json)| json)
}

#[test]
fn newer_states_are_kept_and_relayed_older_ones_ignored() {
    let mut registry = AwarenessRegistry::default();
    assert_eq!(
        apply(&mut registry, 1, &[(10, 1, r#"{"user":"a"}"#)]),
        vec![(10, 1, r#"{"user":"a"}"#.to_owned())]
    );
    assert_eq!(apply(&mut registry, 1, &[(10, 1, "{}")]), vec![]);
    apply(&mut registry, 2, &[(20, 5, "{}")]);
    assert_eq!(registry.len(), 2);
    let full = registry.full_update().expect("states");
    assert_eq!(decoded(&full).len(), 2);
}

#[test]
fn a_closing_session_removes_its_states_for_everyone() {
    let mut registry = AwarenessRegistry::default();
    apply(&mut registry, 1, &[(10, 3, "{}")]);
    apply(&mut registry, 2, &[(20, 1, "{}")]);
    let removal = registry.remove_session(1).expect("had states");
    assert_eq!(decoded(&removal), vec![(10, 3, "null".to_owned())]);
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.remove_session(1), None);
    // The removal echoed back by a peer changes nothing; a stale copy of
    // the old state is not resurrected; the client's next state is new,
    // whichever session publishes it (the id was released).
    assert_eq!(apply(&mut registry, 2, &[(10, 3, "null")]), vec![]);
    assert_eq!(apply(&mut registry, 2, &[(10, 3, "{}")]), vec![]);
    assert_eq!(apply(&mut registry, 3, &[(10, 4, "{}")]).len(), 1);
    assert_eq!(registry.len(), 2);
}

#[test]
fn null_states_remove_and_garbage_is_refused() {
    let mut registry = AwarenessRegistry::default();
    apply(&mut registry, 1, &[(10, 1, "{}")]);
    assert_eq!(apply(&mut registry, 1, &[(10, 2, "null")]).len(), 1);
    assert!(registry.is_empty());
    assert!(matches!(
        registry.apply(1, &[0xff, 0xff], MAX),
        Err(Refused::Invalid(_))
    ));
}

#[test]
fn only_the_owner_changes_or_removes_a_state() {
    let mut registry = AwarenessRegistry::default();
    apply(&mut registry, 1, &[(10, 1, r#""mine""#)]);
    // Session 2 forges a newer state and a removal of client 10, next
    // to its own client 20: only its own entry applies.
    let applied = registry
        .apply(2, &update(&[(10, 9, r#""forged""#), (20, 1, "{}")]), MAX)
        .expect("accepted");
    assert_eq!(applied.ignored, 1);
    assert_eq!(applied.clients, vec![ClientID::new(20)]);
    let applied = registry
        .apply(2, &update(&[(10, 1, "null")]), MAX)
        .expect("accepted");
    assert_eq!((applied.ignored, applied.update), (1, None));
    assert_eq!(state_of(&registry, 10).as_deref(), Some(r#""mine""#));
    // The owner releases it with a null state; then anyone may take it.
    apply(&mut registry, 1, &[(10, 2, "null")]);
    assert_eq!(apply(&mut registry, 2, &[(10, 3, r#""now 2""#)]).len(), 1);
    assert_eq!(apply(&mut registry, 1, &[(10, 4, r#""back""#)]), vec![]);
    assert_eq!(registry.remove_session(1), None, "1 owns nothing now");
    assert_eq!(state_of(&registry, 10).as_deref(), Some(r#""now 2""#));
}

#[test]
fn a_session_publishes_at_most_the_limit_of_client_ids() {
    let mut registry = AwarenessRegistry::default();
    apply(
        &mut registry,
        1,
        &[(1, 1, "{}"), (2, 1, "{}"), (3, 1, "{}")],
    );
    let refused = registry.apply(1, &update(&[(4, 1, "{}"), (5, 1, "{}")]), MAX);
    assert_eq!(
        refused,
        Err(Refused::TooManyClients {
            would_own: 5,
            limit: MAX
        })
    );
    assert!(refused.is_err_and(|e| {
        e.to_string()
            .contains("limits.max_awareness_clients_per_session (4)")
    }));
    assert_eq!(registry.len(), 3, "nothing of a refused update applies");
    // Updating owned ids is always fine; releasing one makes room.
    apply(
        &mut registry,
        1,
        &[(1, 2, "{}"), (2, 2, "{}"), (3, 2, "{}")],
    );
    let applied = apply(
        &mut registry,
        1,
        &[(3, 3, "null"), (4, 1, "{}"), (5, 1, "{}")],
    );
    assert_eq!(applied.len(), 3);
    assert_eq!(registry.len(), 4);
    // A joiner sees only owned states: 100k published ids are not kept.
    let many: Vec<(u64, u32, &str)> = (100..100_100).map(|c| (c, 1, "{}")).collect();
    assert!(registry.apply(2, &update(&many), MAX).is_err());
    assert_eq!(registry.len(), 4);
}

#[test]
fn latest_gives_a_sessions_current_states_and_removals() {
    let mut registry = AwarenessRegistry::default();
    apply(
        &mut registry,
        1,
        &[(1, 1, "{}"), (2, 1, "{}"), (3, 1, "{}")],
    );
    apply(&mut registry, 1, &[(1, 5, r#""last""#), (2, 2, "null")]);
    apply(&mut registry, 1, &[(3, 2, "null")]);
    apply(&mut registry, 2, &[(3, 3, r#""taken""#)]);
    let ids = [1, 2, 3].map(ClientID::new);
    let latest = registry.latest(1, &ids).expect("changes");
    assert_eq!(
        decoded(&latest),
        vec![(1, 5, r#""last""#.to_owned()), (2, 2, "null".to_owned())]
    );
    assert_eq!(registry.latest(3, &[ClientID::new(3)]), None);
}
