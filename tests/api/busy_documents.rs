//! A document kept busy by its clients does not stall the others, not even
//! those on its own arbiter thread (yrs applies committed ops on a
//! blocking thread): a watcher editing a document keeps its ops
//! acknowledged promptly while 20 y-websocket connections flood another
//! document with conflicting inserts from fresh Yjs client ids (each
//! insert makes yrs scan every earlier one: the CPU-heaviest kind of
//! edit), at the production per-session rates.

use std::time::{Duration, Instant};

use actix_codec::Framed;
use awc::BoxedSocket;
use awc::ws::Codec;
use collab_engine::configuration::LimitsSettings;
use collab_engine::session_manager::arbiter_index;
use futures_util::SinkExt;
use futures_util::future::join_all;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{Doc, Text, Transact};

use crate::helpers::{Backend, TestApp, Watcher, spawn_app_with};

/// An insert at the start of the text by a new client: it conflicts with
/// every insert before it. As one y-protocols sync update message.
fn conflicting_insert(n: u64) -> Vec<u8> {
    let doc = Doc::with_client_id(1_000_000 + n);
    let text = doc.get_or_insert_text("content");
    let mut txn = doc.transact_mut();
    text.insert(&mut txn, 0, "c");
    Message::Sync(SyncMessage::Update(txn.encode_update_v1())).encode_v1()
}

async fn flooder(app: &TestApp, document_id: &str, first: u64, until: Instant) -> u64 {
    let url = format!("ws://127.0.0.1:{}/yjs/{document_id}", app.port);
    let (_, framed): (_, Framed<BoxedSocket, Codec>) = awc::Client::new()
        .ws(url.as_str())
        .connect()
        .await
        .expect("connect");
    let mut framed = framed;
    let mut sent = 0;
    while Instant::now() < until {
        // The server does not read a client over its rate: sends block.
        let message = awc::ws::Message::Binary(conflicting_insert(first + sent).into());
        match actix_web::rt::time::timeout(Duration::from_secs(2), framed.send(message)).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) => break,
            Err(_) => {}
        }
    }
    sent
}

#[actix_web::test]
async fn a_flooded_document_does_not_stall_others() {
    for same_arbiter in [true, false] {
        flood_next_to_a_watcher(same_arbiter).await;
    }
}

async fn flood_next_to_a_watcher(same_arbiter: bool) {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        // The production per-session rates, connection limits out of the way.
        s.limits = LimitsSettings {
            max_connections_per_ip: 1000,
            upgrades_per_ip_per_sec: 1000,
            documents_created_per_ip_per_min: 1000,
            ..LimitsSettings::default()
        };
        s.documents.arbiters = 2;
    })
    .await;
    let flooded = "flooded";
    let watched = (0..100)
        .map(|n| format!("watched-{n}"))
        .find(|id| (arbiter_index(id, 2) == arbiter_index(flooded, 2)) == same_arbiter)
        .expect("a document on the arbiter asked for");
    let watcher = Watcher::start(&app, &watched).await;
    let until = Instant::now() + Duration::from_secs(5);
    let sent: Vec<u64> =
        join_all((0..20).map(|n| flooder(&app, flooded, n * 1_000_000, until))).await;
    let report = watcher.finish().await;
    // What the server took in those 5 s (written to the log by now or
    // soon after; what is still in socket buffers is not counted).
    let logged = app.logged_ops(flooded).await.len() as u64;
    let during = if same_arbiter {
        "a flood of conflicting inserts on a document of the same arbiter"
    } else {
        "a flood of conflicting inserts on a document of another arbiter"
    };
    report.assert_no_stall(20, during);
    let offered: u64 = sent.iter().sum();
    // 20 sessions at 500 ops/s with bursts of 1,000, for about 5 s.
    assert!(
        logged <= 20 * (1000 + 6 * 500),
        "{logged} ops accepted in 5 s (offered {offered})"
    );
    assert!(logged > 1000, "the flood did happen: {logged} ops");
}
