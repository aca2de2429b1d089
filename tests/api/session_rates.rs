//! `limits.ops_per_sec_per_session` and `bytes_per_sec_per_session`: a
//! client sending faster is slowed down (its socket is not read), never
//! refused, so every op is acked and logged exactly once; its effective
//! rate stays at its limit, and a watcher on another document is not
//! stalled meanwhile.

use std::time::{Duration, Instant};

use crate::helpers::{Backend, Editor, Watcher, WsClient, masked_text_frame, spawn_app_with};

/// Sends `ops` (client op ids from 1) without waiting, then reads until
/// every one is acked; answers the time from the first send to the last
/// ack. Each op must be acked once, never refused.
async fn flood(ws: &mut WsClient, ops: &[Vec<u8>]) -> Duration {
    let started = Instant::now();
    for (n, update) in ops.iter().enumerate() {
        ws.send_op(n as u64 + 1, update).await;
    }
    let mut acked = vec![false; ops.len()];
    while acked.iter().any(|a| !a) {
        let message = ws.recv_json().await;
        assert_eq!(
            message["type"], "ack",
            "nothing is refused for speed: {message}"
        );
        let op = message["client_op_id"].as_u64().expect("client_op_id") as usize;
        assert!(!acked[op - 1], "op {op} acked twice");
        acked[op - 1] = true;
    }
    started.elapsed()
}

#[actix_web::test]
async fn a_client_over_its_op_rate_is_slowed_down_and_nothing_is_lost() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.ops_per_sec_per_session = 200).await;
    let watcher = Watcher::start(&app, "watched").await;
    let mut ws = WsClient::connect(&app, "flooded").await;
    ws.hello("flooder", None, None).await;
    assert_eq!(ws.recv_json().await["type"], "welcome");
    assert_eq!(ws.recv_json().await["type"], "snapshot");
    let editor = Editor::new();
    let ops: Vec<Vec<u8>> = (0..1000).map(|_| editor.append("x")).collect();
    let took = flood(&mut ws, &ops).await;
    // A burst of 400 (twice the rate), then 200 a second: 600 more take 3 s.
    assert!(
        took >= Duration::from_millis(2700),
        "1000 ops at 200/s (burst 400) went through in {took:?}"
    );
    let rate = 1000.0 / took.as_secs_f64();
    watcher.finish().await.assert_no_stall(10, "an op flood");
    assert_eq!(app.logged_ops("flooded").await.len(), 1000);
    assert!(app.engine.metrics().sessions_throttled > 0);
    log::info!("flooder's effective rate {rate:.0} ops/s");
}

#[actix_web::test]
async fn a_client_over_its_byte_rate_is_slowed_down_and_nothing_is_lost() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.bytes_per_sec_per_session = 100_000;
    })
    .await;
    let mut ws = WsClient::connect(&app, "big").await;
    ws.hello("paster", None, None).await;
    assert_eq!(ws.recv_json().await["type"], "welcome");
    assert_eq!(ws.recv_json().await["type"], "snapshot");
    let editor = Editor::new();
    // 12 ops of ~20 KB of text (base64 makes each message ~27 KB): about
    // 330 KB, 130 KB over the burst of 200 KB, at 100 KB/s.
    let ops: Vec<Vec<u8>> = (0..12)
        .map(|_| editor.append(&"y".repeat(20_000)))
        .collect();
    let took = flood(&mut ws, &ops).await;
    assert!(
        took >= Duration::from_millis(1000),
        "330 KB at 100 KB/s took {took:?}"
    );
    assert_eq!(app.logged_ops("big").await.len(), 12);
}

/// A client that writes small ops as fast as it can and never reads: the
/// server reads only as fast as the session handles them (a few frames
/// ahead), so TCP pushes back on the client. What it manages to write in
/// 3 s is bounded by the socket buffers, and so is the server's memory
/// (before, the frame decoder buffered everything: about 200 MB/s).
#[actix_web::test]
async fn a_flooding_client_is_held_back_by_tcp_not_buffered() {
    use tokio::io::AsyncWriteExt;
    let db = crate::helpers::TestDatabase::create(&Backend::Sqlite).await;
    let server = crate::helpers::ServerProcess::start(
        &db.url,
        &[("COLLAB__LIMITS__OPS_PER_SEC_PER_SESSION", "100")],
    );
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("connect");
    crate::helpers::upgrade_raw(&mut stream, "/ws/flood").await;
    let hello = serde_json::json!({"type": "hello", "protocol": 1, "client_id": "flooder"});
    stream
        .write_all(&masked_text_frame(&hello.to_string()))
        .await
        .expect("hello");
    let update = crate::helpers::b64(&Editor::new().append("x"));
    let baseline = server.rss_bytes();
    let started = Instant::now();
    let mut written = 0usize;
    let mut op = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        let mut batch = Vec::new();
        for _ in 0..100 {
            op += 1;
            let message = format!(r#"{{"type":"op","client_op_id":{op},"update":"{update}"}}"#);
            batch.extend(masked_text_frame(&message));
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.write_all(&batch)).await {
            Ok(Ok(())) => written += batch.len(),
            Ok(Err(e)) => panic!("the server dropped the flooder: {e}"),
            Err(_) => {} // TCP pushes back: the server is not reading
        }
    }
    let growth = server.rss_bytes().saturating_sub(baseline);
    assert!(
        written < 32 << 20,
        "the flooder wrote {} MiB in 3 s: the server kept reading",
        written >> 20
    );
    assert!(growth < 64 << 20, "the server grew by {} MiB", growth >> 20);
}
