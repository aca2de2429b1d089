//! Hostile Yjs binaries (`tests/probes`: a few bytes declaring 2^28, 2^40
//! or 2^64 - 1 entries, `Any` nested deep) sent to a running server on
//! both routes: each gets its documented answer, nothing is logged, and
//! the server goes on serving.
//!
//! - native: an `op` carrying a probe update gets `error` `invalid_update`
//!   with its `client_op_id`, an `awareness` carrying a probe gets `error`
//!   `bad_message` (docs/protocol.md); the session stays open. (The native
//!   `hello` carries no state vector.)
//! - y-websocket, without any hello: sync step 1 with a probe state
//!   vector, a sync update or step 2 with a probe update, an awareness
//!   message with a probe: close 1007.

#[path = "../probes/mod.rs"]
mod probes;

use serde_json::{Value, json};

use crate::helpers::{Backend, Editor, TestApp, WsClient, b64, spawn_app};
use probes::{Kind, Probe};

/// The probes that fit the tests' 64 KiB message limit as base64.
fn probes() -> Vec<Probe> {
    let mut probes = probes::counted();
    probes.push(probes::nested_any(10_000));
    probes
}

/// Asserts that `text` names what the probe lies about.
fn names_the_count(text: &str, probe: &Probe) {
    let named = match probe.count {
        Some(count) => count.to_string(),
        None => "deeper than 64 levels".to_owned(),
    };
    assert!(text.contains(&named), "{}: {text:?}", probe.name);
}

/// lib0 `varUint8Array`.
fn buf(bytes: &[u8]) -> Vec<u8> {
    [probes::var(bytes.len() as u64), bytes.to_vec()].concat()
}

/// The y-websocket frames carrying `probe`.
fn yjs_frames(probe: &Probe) -> Vec<Vec<u8>> {
    match probe.kind {
        // Sync step 1.
        Kind::StateVector => vec![[&[0u8, 0][..], &buf(&probe.bytes)].concat()],
        // Sync update and sync step 2.
        Kind::Update => vec![
            [&[0u8, 2][..], &buf(&probe.bytes)].concat(),
            [&[0u8, 1][..], &buf(&probe.bytes)].concat(),
        ],
        Kind::Awareness => vec![[&[1u8][..], &buf(&probe.bytes)].concat()],
    }
}

fn assert_error(message: &Value, code: &str, probe: &Probe) {
    assert_eq!(message["type"], "error", "{}: {message}", probe.name);
    assert_eq!(message["code"], code, "{}: {message}", probe.name);
    names_the_count(message["message"].as_str().unwrap_or_default(), probe);
}

/// A native session on `document_id` that has had its welcome.
async fn joined(app: &TestApp, document_id: &str, client_id: &str) -> WsClient {
    let mut ws = WsClient::connect(app, document_id).await;
    ws.hello(client_id, None, None).await;
    assert_eq!(ws.recv_json().await["type"], "welcome");
    assert_eq!(ws.recv_json().await["type"], "snapshot");
    ws
}

#[actix_web::test]
async fn hostile_binaries_get_their_documented_answers_and_the_server_goes_on() {
    let app = spawn_app(Backend::Sqlite).await;
    let probes = probes();

    let mut native = joined(&app, "hostile", "n").await;
    let mut client_op_id = 0;
    for probe in &probes {
        match probe.kind {
            Kind::Update => {
                client_op_id += 1;
                native.send_op(client_op_id, &probe.bytes).await;
                let answer = native.recv_json().await;
                assert_error(&answer, "invalid_update", probe);
                assert_eq!(answer["client_op_id"], client_op_id, "{answer}");
            }
            Kind::Awareness => {
                let awareness = json!({"type": "awareness", "update": b64(&probe.bytes)});
                native.send_json(awareness).await;
                assert_error(&native.recv_json().await, "bad_message", probe);
            }
            Kind::StateVector => {}
        }
    }

    for probe in &probes {
        for frame in yjs_frames(probe) {
            let mut provider = WsClient::connect_yjs(&app, "hostile").await;
            provider.send_binary(frame).await;
            let (_, code) = provider.recv_until_close().await;
            assert_eq!(code, Some(1007), "{}", probe.name);
            names_the_count(provider.close_reason.as_deref().unwrap_or_default(), probe);
        }
    }

    // The native session is still open, and another client on another
    // document is served.
    let update = Editor::new().append("still serving");
    native.send_op(client_op_id + 1, &update).await;
    assert_eq!(
        native.recv_json().await,
        json!({"type": "ack", "client_op_id": client_op_id + 1, "server_seq": 1})
    );
    let mut other = joined(&app, "elsewhere", "o").await;
    other.send_op(1, &Editor::new().append("hello")).await;
    assert_eq!(
        other.recv_json().await,
        json!({"type": "ack", "client_op_id": 1, "server_seq": 1})
    );
    assert_eq!(app.logged_ops("hostile").await.len(), 1, "only the real op");
}
