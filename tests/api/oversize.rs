//! Messages over `documents.max_message_bytes` (64 KiB in tests): refused
//! with close 1009 whose reason names the limit, on both routes, counted in
//! the metrics every time (a y-websocket provider sends the same update
//! again after each reconnect).

use crate::helpers::{Backend, Incoming, WsClient, spawn_app};

/// What a refused client is told: 1009 and a reason with the limit and
/// the setting's name.
fn assert_names_the_limit(client: &WsClient, code: Option<u16>) {
    assert_eq!(code, Some(1009));
    let reason = client.close_reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("65536") && reason.contains("documents.max_message_bytes"),
        "close reason: {reason:?}"
    );
}

#[actix_web::test]
async fn an_oversized_message_is_refused_naming_the_limit_and_counted_every_time() {
    let app = spawn_app(Backend::Sqlite).await;
    let too_big = vec![0u8; 70 * 1024];
    for attempt in 1..=3 {
        let mut provider = WsClient::connect_yjs(&app, "paste").await;
        provider.send_binary(too_big.clone()).await;
        let code = loop {
            if let Incoming::Closed(code) = provider.recv().await {
                break code;
            }
        };
        assert_names_the_limit(&provider, code);
        assert_eq!(app.engine.metrics().messages_too_large, attempt);
    }

    let mut native = WsClient::connect(&app, "paste").await;
    native.hello("n", None, None).await;
    native.recv_json().await;
    let op = format!(
        r#"{{"type":"op","client_op_id":1,"update":"{}"}}"#,
        "A".repeat(70 * 1024)
    );
    native.send_text(&op).await;
    let (messages, code) = native.recv_until_close().await;
    assert_eq!(
        messages.last().map(|m| m["code"].clone()),
        Some("too_large".into())
    );
    let message = messages
        .last()
        .and_then(|m| m["message"].as_str())
        .unwrap_or_default();
    assert!(message.contains("65536"), "{message}");
    assert_names_the_limit(&native, code);
    assert_eq!(app.engine.metrics().messages_too_large, 4);
    assert!(app.logged_ops("paste").await.is_empty());
}
