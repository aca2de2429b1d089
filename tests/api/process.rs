//! The server binary as a process: `kill -9` under load and SIGTERM.

use std::cell::Cell;
use std::time::Duration;

use collab_engine::Store;
use futures_util::future::join_all;
use sea_orm::Database;

use crate::helpers::{Backend, Incoming, Peer, ServerProcess, TestDatabase, token_counts};

crate::on_both_backends!(kill_9_under_load_loses_no_acknowledged_op);

/// Three writers send ops as fast as they can; once 60 acks have arrived
/// the server is killed with SIGKILL. Restarted on the same database, it
/// holds every op any writer saw acked; seqs continue with no gap and no
/// reuse; the writers reconnect with `last_seen_server_seq`, resend what
/// was never acked, and all converge with every op exactly once.
async fn kill_9_under_load_loses_no_acknowledged_op(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let mut server = ServerProcess::start(&db.url, &[]);
    let url = server.ws_url("crash");
    const WRITERS: usize = 3;
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        writers.push(Peer::join_url(&url, &format!("w{i}")).await);
    }
    let acked = Cell::new(0usize);
    let acked_ref = &acked;
    let writing = join_all(writers.into_iter().map(|mut w| async move {
        let mut n = 0;
        'writing: loop {
            let token = format!("<{}-{n}>", w.client_id);
            n += 1;
            if !w.try_insert(0, &token).await {
                break;
            }
            while let Some(incoming) = w.ws.recv_within(Duration::from_millis(2)).await {
                match incoming {
                    Incoming::Json(message) => {
                        let before = w.acks.len();
                        w.handle(&message);
                        acked_ref.set(acked_ref.get() + w.acks.len() - before);
                    }
                    Incoming::Closed(_) => break 'writing,
                }
            }
        }
        w
    }));
    let killing = async {
        while acked.get() < 60 {
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill();
    };
    let (writers, ()) = futures_util::future::join(writing, killing).await;
    let acked_tokens: Vec<String> = writers
        .iter()
        .flat_map(|w| {
            w.acks
                .keys()
                .map(|op| format!("<{}-{}>", w.client_id, op - 1))
        })
        .collect();
    let max_acked_seq = writers
        .iter()
        .flat_map(|w| w.acks.values().copied())
        .max()
        .expect("some acks");
    assert!(acked_tokens.len() >= 60);

    let server = ServerProcess::start(&db.url, &[]);
    let url = server.ws_url("crash");
    let reader = Peer::join_url(&url, "reader").await;
    let head = reader.welcome["server_seq"].as_u64().expect("head");
    assert!(
        head >= max_acked_seq,
        "head {head} < acked seq {max_acked_seq}"
    );
    let recovered = token_counts(&reader.text());
    for token in &acked_tokens {
        assert_eq!(
            recovered.get(token),
            Some(&1),
            "acked op {token} lost after kill -9"
        );
    }

    let total: u64 = writers.iter().map(|w| w.next_op_id - 1).sum();
    let url_ref = &url;
    let writers = join_all(writers.into_iter().map(|w| async move {
        let mut w = w.rejoin_url(url_ref).await;
        w.resend_unacked().await;
        w.sync_to(total).await;
        w
    }))
    .await;
    let text = writers[0].text();
    let counts = token_counts(&text);
    assert_eq!(
        counts.len() as u64,
        total,
        "every op, acked or resent, is there"
    );
    assert!(counts.values().all(|n| *n == 1), "no op twice");
    for w in &writers {
        assert_eq!(w.text(), text);
    }
    // The log: seqs 1..=total, each once.
    let store = Store::from_connection(
        Database::connect(collab_engine::store::normalize_sqlite_url(&db.url).as_str())
            .await
            .expect("connect"),
    );
    let seqs: Vec<u64> = store
        .ops_between("crash", 0, None)
        .await
        .expect("read log")
        .iter()
        .map(|op| op.server_seq)
        .collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
}

/// SIGTERM: the server commits, snapshots, closes sockets with 1001 and
/// exits 0 within `server.shutdown_timeout_secs`.
#[actix_web::test]
async fn sigterm_snapshots_closes_with_1001_and_exits_0() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let mut server =
        ServerProcess::start(&db.url, &[("COLLAB__SERVER__SHUTDOWN_TIMEOUT_SECS", "5")]);
    let mut peer = Peer::join_url(&server.ws_url("term"), "p").await;
    for s in ["x", "y", "z"] {
        peer.insert(u32::MAX, s).await;
    }
    peer.sync_to(3).await;
    let (code, took) = server.terminate();
    assert_eq!(
        code,
        Some(0),
        "exit code; log: {:?}",
        server.log.lock().map(|l| l.clone())
    );
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let (messages, close) = peer.ws.recv_until_close().await;
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(close, Some(1001));
    let store = Store::from_connection(
        Database::connect(collab_engine::store::normalize_sqlite_url(&db.url).as_str())
            .await
            .expect("connect"),
    );
    let snapshots = store.snapshots("term").await.expect("read snapshots");
    assert_eq!(snapshots.first().map(|(seq, _)| *seq), Some(3));
}
