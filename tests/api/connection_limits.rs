//! The connection limits of `[limits]`, checked before the upgrade: the
//! server's `max_connections` (503 `server_full`), per address
//! `max_connections_per_ip`, `upgrades_per_ip_per_sec` and
//! `documents_created_per_ip_per_min` (429). Refused handshakes hold
//! nothing, plain HTTP keeps being served, and a freed place is reusable.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Backend, Peer, TestApp, WsClient, spawn_app_with};

/// A WebSocket handshake of `path` that is expected to be refused, sent
/// as a plain request so that the refusal's JSON body can be read.
async fn handshake(app: &TestApp, path: &str) -> (u16, Value) {
    let mut response = awc::Client::new()
        .get(format!("http://127.0.0.1:{}{path}", app.port))
        .insert_header(("Connection", "Upgrade"))
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Sec-WebSocket-Version", "13"))
        .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .send()
        .await
        .expect("handshake request");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Whether a real WebSocket handshake of `path` succeeds (the connection
/// is closed again at once); a refusal's status otherwise.
async fn connects(app: &TestApp, path: &str) -> Result<(), u16> {
    let url = format!("ws://127.0.0.1:{}{path}", app.port);
    match awc::Client::new().ws(url.as_str()).connect().await {
        Ok(_) => Ok(()),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
        Err(e) => panic!("handshake of {path}: {e}"),
    }
}

fn assert_refused(answer: (u16, Value), status: u16, code: &str, names: &str) {
    let (got, body) = answer;
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(names), "{message}");
}

#[actix_web::test]
async fn beyond_max_connections_upgrades_get_503_and_http_is_still_served() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.max_connections = 3).await;
    let mut native = Peer::join(&app, "a", "p").await;
    let _second = WsClient::connect_yjs(&app, "b").await;
    let _third = WsClient::connect(&app, "c").await;
    assert_refused(
        handshake(&app, "/ws/a").await,
        503,
        "server_full",
        "limits.max_connections",
    );
    assert_refused(
        handshake(&app, "/yjs/d").await,
        503,
        "server_full",
        "max_connections",
    );
    assert_eq!(
        app.get_status("/health").await,
        200,
        "plain HTTP does not count"
    );
    // The sessions already open keep working.
    native.insert(0, "still here").await;
    native.sync_to(1).await;
    native.ws.close().await;
    let started = std::time::Instant::now();
    loop {
        match connects(&app, "/ws/a").await {
            Ok(()) => break,
            Err(503) if started.elapsed() < Duration::from_secs(5) => {
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("a freed place is not reusable: {other}"),
        }
    }
}

#[actix_web::test]
async fn one_address_may_hold_max_connections_per_ip() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.max_connections_per_ip = 2).await;
    let first = WsClient::connect(&app, "a").await;
    let _second = WsClient::connect_yjs(&app, "a").await;
    assert_refused(
        handshake(&app, "/ws/other").await,
        429,
        "too_many_connections",
        "limits.max_connections_per_ip",
    );
    drop(first);
    let started = std::time::Instant::now();
    while connects(&app, "/ws/other").await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the place was not given back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn upgrades_beyond_the_per_second_rate_get_429_then_pass_again() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.upgrades_per_ip_per_sec = 5).await;
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(connects(&app, "/ws/rate").await);
    }
    let passed = answers.iter().filter(|answer| answer.is_ok()).count();
    assert!(
        (5..=6).contains(&passed),
        "a burst of 5 passes: {answers:?}"
    );
    assert!(
        answers[passed..].iter().all(|a| *a == Err(429)),
        "{answers:?}"
    );
    assert_refused(
        handshake(&app, "/ws/rate").await,
        429,
        "too_many_upgrades",
        "limits.upgrades_per_ip_per_sec",
    );
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(connects(&app, "/ws/rate").await, Ok(()), "the rate refills");
}

#[actix_web::test]
async fn opening_new_documents_is_rate_limited_per_address() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.documents_created_per_ip_per_min = 3
    })
    .await;
    let mut writer = Peer::join(&app, "new-0", "w").await;
    writer.insert(0, "exists").await;
    writer.sync_to(1).await;
    writer.ws.close().await;
    for n in 1..3 {
        assert_eq!(connects(&app, &format!("/yjs/new-{n}")).await, Ok(()));
    }
    assert_refused(
        handshake(&app, "/ws/new-3").await,
        429,
        "too_many_documents",
        "limits.documents_created_per_ip_per_min",
    );
    // A document that exists, or that has a session now, is not a new one.
    assert_eq!(connects(&app, "/ws/new-0").await, Ok(()), "written before");
    let _open = WsClient::connect(&app, "new-0").await;
    let _again = WsClient::connect(&app, "new-0").await;
}
