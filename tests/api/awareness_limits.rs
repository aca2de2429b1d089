//! Awareness ownership and the `[limits]` of awareness, on a real server:
//! a session changes only the client ids it published, publishes at most
//! `max_awareness_clients_per_session` of them, each state at most
//! `max_awareness_state_bytes`, and its changes are relayed at most
//! `awareness_per_sec_per_session` times a second (the excess coalesced,
//! the latest state kept). Presence lives in memory only: SQLite suffices.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yrs::ClientID;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

use crate::helpers::{Backend, Peer, TestApp, WsClient, b64, spawn_app_with, unb64};

/// Client id → (clock, JSON state).
type States = BTreeMap<u64, (u32, String)>;

fn update(entries: &[(u64, u32, &str)]) -> Vec<u8> {
    let clients = entries
        .iter()
        .map(|(client, clock, json)| {
            let entry = AwarenessUpdateEntry {
                clock: *clock,
                json: (*json).into(),
            };
            (ClientID::new(*client), entry)
        })
        .collect();
    AwarenessUpdate { clients }.encode_v1()
}

/// A y-websocket awareness frame.
fn yjs_frame(entries: &[(u64, u32, &str)]) -> Vec<u8> {
    let update = AwarenessUpdate::decode_v1(&update(entries)).expect("decodes");
    Message::Awareness(update).encode_v1()
}

async fn publish(ws: &mut WsClient, entries: &[(u64, u32, &str)]) {
    ws.send_json(json!({"type": "awareness", "update": b64(&update(entries))}))
        .await;
}

fn states(message: &Value) -> States {
    assert_eq!(message["type"], "awareness", "{message}");
    let raw = unb64(message["update"].as_str().expect("update"));
    AwarenessUpdate::decode_v1(&raw)
        .expect("server sent a decodable awareness update")
        .clients
        .into_iter()
        .map(|(client, e)| (client.get(), (e.clock, e.json.to_string())))
        .collect()
}

/// The next awareness update a native session receives.
async fn next_states(ws: &mut WsClient) -> States {
    states(&ws.recv_json().await)
}

async fn join(app: &TestApp, document: &str, client: &str) -> Peer {
    Peer::join(app, document, client).await
}

/// An entry for a client id owned by another session is dropped from the
/// update, which otherwise applies: on the native and the y-websocket
/// route, neither a newer state nor a removal of the victim's client id
/// reaches anyone, the victim's state stays, and each is counted.
#[actix_web::test]
async fn a_session_cannot_overwrite_or_remove_another_sessions_awareness() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let mut watcher = join(&app, "owned", "watcher").await;
    let mut victim = join(&app, "owned", "victim").await;
    publish(&mut victim.ws, &[(7, 1, r#"{"user":"victim"}"#)]).await;
    assert_eq!(
        next_states(&mut watcher.ws).await[&7].1,
        r#"{"user":"victim"}"#
    );

    let mut native = join(&app, "owned", "attacker").await;
    assert_eq!(
        next_states(&mut native.ws).await.len(),
        1,
        "the current states"
    );
    let mut yjs = WsClient::connect_yjs(&app, "owned").await;
    let forgeries: [&[(u64, u32, &str)]; 2] = [
        &[(7, 9, r#"{"user":"forged"}"#), (8, 1, r#"{"user":"mine"}"#)],
        &[(7, 1, "null"), (8, 2, r#"{"user":"mine"}"#)],
    ];
    for (round, forged) in forgeries.iter().enumerate() {
        publish(&mut native.ws, forged).await;
        let relayed = next_states(&mut watcher.ws).await;
        assert_eq!(relayed.keys().collect::<Vec<_>>(), [&8], "{relayed:?}");
        let yjs_forged: Vec<_> = forged
            .iter()
            .map(|(c, clock, json)| (c + 100 * u64::from(*c != 7), *clock, *json))
            .collect();
        yjs.send_binary(yjs_frame(&yjs_forged)).await;
        let relayed = next_states(&mut watcher.ws).await;
        assert_eq!(
            relayed.keys().collect::<Vec<_>>(),
            [&108],
            "round {round}: {relayed:?}"
        );
    }
    assert_eq!(app.engine.metrics().awareness_ignored, 4);
    // A joiner gets the victim's own state; the victim heard only the
    // attackers' own entries.
    let late = next_states(&mut join(&app, "owned", "late").await.ws).await;
    assert_eq!(late[&7], (1, r#"{"user":"victim"}"#.to_owned()));
    assert_eq!(late.len(), 3);
    for _ in 0..4 {
        assert!(!next_states(&mut victim.ws).await.contains_key(&7));
    }
    // The owner still changes and removes its own state.
    publish(&mut victim.ws, &[(7, 2, "null")]).await;
    assert_eq!(
        next_states(&mut watcher.ws).await[&7],
        (2, "null".to_owned())
    );
}

/// An update that would make a session publish more client ids than
/// `max_awareness_clients_per_session` is refused whole: native
/// `invalid_awareness` naming the limit (the session goes on), y-websocket
/// close 1007 naming it. Nobody hears of it.
#[actix_web::test]
async fn more_awareness_client_ids_than_the_limit_are_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.max_awareness_clients_per_session = 2;
    })
    .await;
    let mut watcher = join(&app, "crowd", "watcher").await;
    let mut native = join(&app, "crowd", "native").await;
    publish(&mut native.ws, &[(1, 1, "{}"), (2, 1, "{}"), (3, 1, "{}")]).await;
    let refused = native.ws.recv_json().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "invalid_awareness", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("limits.max_awareness_clients_per_session (2)"),
        "{message}"
    );
    publish(&mut native.ws, &[(1, 1, "{}"), (2, 1, "{}")]).await;
    assert_eq!(
        next_states(&mut watcher.ws).await.len(),
        2,
        "within the limit"
    );
    publish(&mut native.ws, &[(3, 1, "{}")]).await;
    assert_eq!(native.ws.recv_json().await["code"], "invalid_awareness");
    // Releasing one makes room for another.
    publish(&mut native.ws, &[(2, 2, "null"), (3, 1, "{}")]).await;
    let relayed = next_states(&mut watcher.ws).await;
    assert_eq!(relayed.keys().collect::<Vec<_>>(), [&2, &3]);

    let mut yjs = WsClient::connect_yjs(&app, "crowd").await;
    yjs.send_binary(yjs_frame(&[(10, 1, "{}"), (11, 1, "{}"), (12, 1, "{}")]))
        .await;
    let (_, code) = yjs.recv_until_close().await;
    assert_eq!(code, Some(1007));
    let reason = yjs.close_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("limits.max_awareness_clients_per_session (2)"),
        "{reason}"
    );
    watcher
        .ws
        .hears_nothing_for(
            Duration::from_millis(300),
            "a refused update is not relayed",
        )
        .await;
}

/// A state longer than `max_awareness_state_bytes` is refused by the
/// session, naming the limit and the size: native `invalid_awareness`,
/// y-websocket close 1007.
#[actix_web::test]
async fn an_awareness_state_over_the_size_limit_is_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.max_awareness_state_bytes = 100;
    })
    .await;
    let mut watcher = join(&app, "big", "watcher").await;
    let mut native = join(&app, "big", "native").await;
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(150));
    publish(&mut native.ws, &[(1, 1, &big)]).await;
    let refused = native.ws.recv_json().await;
    assert_eq!(refused["code"], "invalid_awareness", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("limits.max_awareness_state_bytes (100)")
            && message.contains(&format!("{} bytes", big.len())),
        "{message}"
    );
    let fits = format!(r#"{{"name":"{}"}}"#, "x".repeat(80));
    publish(&mut native.ws, &[(1, 1, &fits)]).await;
    assert_eq!(next_states(&mut watcher.ws).await[&1].1, fits);

    let mut yjs = WsClient::connect_yjs(&app, "big").await;
    yjs.send_binary(yjs_frame(&[(2, 1, &big)])).await;
    let (_, code) = yjs.recv_until_close().await;
    assert_eq!(code, Some(1007));
    let reason = yjs.close_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("limits.max_awareness_state_bytes (100)"),
        "{reason}"
    );
    watcher
        .ws
        .hears_nothing_for(Duration::from_millis(300), "a refused state is not relayed")
        .await;
}

/// 500 awareness updates sent for a second or two (hundreds a second), at 10
/// relays a second: a watcher gets about 10 a second (a burst of 10
/// allowed; asserted loosely), the last one it gets is the last state sent,
/// and the removal when the publisher leaves comes at once, with no
/// coalesced relay after it.
#[actix_web::test]
async fn a_fast_awareness_publisher_is_coalesced_to_the_rate_keeping_the_latest_state() {
    const RATE: u32 = 10;
    const UPDATES: u32 = 500;
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.awareness_per_sec_per_session = RATE;
    })
    .await;
    let mut watcher = join(&app, "fast", "watcher").await;
    let mut publisher = join(&app, "fast", "publisher").await;
    let started = Instant::now();
    for clock in 1..=UPDATES {
        publish(
            &mut publisher.ws,
            &[(5, clock, &format!(r#"{{"n":{clock}}}"#))],
        )
        .await;
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
    }
    let mut received = 0;
    let last = loop {
        let relayed = next_states(&mut watcher.ws).await;
        received += 1;
        let (clock, json) = relayed[&5].clone();
        if clock == UPDATES {
            break json;
        }
    };
    let elapsed = started.elapsed().as_secs_f64().max(1.0);
    assert_eq!(
        last,
        format!(r#"{{"n":{UPDATES}}}"#),
        "the latest state is kept"
    );
    let allowed = 3.0 * f64::from(RATE) * elapsed;
    assert!(
        f64::from(received) <= allowed,
        "{received} relays in {elapsed:.2} s at {RATE}/s"
    );
    // The publisher sends more (they wait for a slot), then leaves: the
    // removal comes at once, and no coalesced state follows it.
    for clock in UPDATES + 1..=UPDATES + 20 {
        publish(&mut publisher.ws, &[(5, clock, "{}")]).await;
    }
    publisher.ws.close().await;
    let removal = loop {
        let relayed = next_states(&mut watcher.ws).await;
        if relayed[&5].1 == "null" {
            break relayed[&5].clone();
        }
    };
    assert!(removal.0 > UPDATES, "the removal carries the latest clock");
    watcher
        .ws
        .hears_nothing_for(
            Duration::from_millis(500),
            "nothing of a session that left is relayed later",
        )
        .await;
}

/// A coalesced relay still waiting when the document restarts does
/// nothing afterwards: the new sessions hear nothing of the old ones.
#[actix_web::test]
async fn a_coalesced_awareness_relay_pending_over_a_restart_does_nothing() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.awareness_per_sec_per_session = 1;
    })
    .await;
    let mut watcher = join(&app, "restart", "watcher").await;
    let mut publisher = join(&app, "restart", "publisher").await;
    publish(&mut publisher.ws, &[(5, 1, r#""first""#)]).await;
    assert_eq!(next_states(&mut watcher.ws).await[&5].1, r#""first""#);
    // No slot for a second: this one waits about a second.
    publish(&mut publisher.ws, &[(5, 2, r#""waiting""#)]).await;
    // Let it reach the document before the panic does.
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.inject("restart", "panic").await, 200);
    for ws in [&mut watcher.ws, &mut publisher.ws] {
        let (_, code) = ws.recv_until_close().await;
        assert_eq!(code, Some(1012));
    }
    let mut again = join(&app, "restart", "watcher-again").await;
    again
        .ws
        .hears_nothing_for(
            Duration::from_millis(1500),
            "a relay pending before the restart is dropped",
        )
        .await;
}

/// One session publishing 100k states gets them refused; a joiner gets
/// only what sessions own within the limits: here 2 sessions × 4 ids.
#[actix_web::test]
async fn a_joiner_gets_only_owned_bounded_awareness_states() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.max_awareness_clients_per_session = 4;
        s.documents.max_message_bytes = 8 << 20;
    })
    .await;
    let mut flood = join(&app, "flood", "flood").await;
    let many: Vec<(u64, u32, &str)> = (1_000..101_000).map(|c| (c, 1, "{}")).collect();
    publish(&mut flood.ws, &many).await;
    assert_eq!(flood.ws.recv_json().await["code"], "invalid_awareness");
    publish(
        &mut flood.ws,
        &[(1, 1, "{}"), (2, 1, "{}"), (3, 1, "{}"), (4, 1, "{}")],
    )
    .await;
    let mut other = join(&app, "flood", "other").await;
    assert_eq!(next_states(&mut other.ws).await.len(), 4);
    // Ids of the flood session are not the other's to take.
    let own_and_taken = [
        (5, 1, "{}"),
        (6, 1, "{}"),
        (7, 1, "{}"),
        (8, 1, "{}"),
        (1, 9, "{}"),
    ];
    publish(&mut other.ws, &own_and_taken).await;
    assert_eq!(
        next_states(&mut flood.ws).await.len(),
        4,
        "the other's own four"
    );
    let joined = next_states(&mut join(&app, "flood", "joiner").await.ws).await;
    assert_eq!(
        joined.keys().copied().collect::<Vec<_>>(),
        (1..=8).collect::<Vec<u64>>()
    );
    assert_eq!(joined[&1].0, 1, "the flood session's own state of client 1");
}
