//! The y-websocket route `/yjs/{id}`, spoken with yrs's own y-protocols
//! messages, side by side with native clients on the same document.

use std::time::Duration;

use actix_web::rt::time::timeout;
use awc::BoxedSocket;
use awc::ws::{Codec, Frame, Message as WsMessage};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Transact};

use crate::helpers::{Backend, Editor, Peer, RECV_TIMEOUT, TestApp, b64, spawn_app, unb64};

crate::on_both_backends!(
    yjs_clients_sync_and_every_update_is_sequenced_and_logged,
    native_and_yjs_clients_edit_the_same_document,
    awareness_is_relayed_on_both_routes_and_removed_on_close,
    empty_and_redundant_updates_are_not_logged,
    a_burst_of_chained_updates_is_all_logged,
);

/// What a y-websocket client read.
#[derive(Debug)]
enum Received {
    Message(Message),
    Closed(Option<u16>),
}

/// A y-websocket client: binary frames of y-protocols messages.
struct YjsClient {
    framed: actix_codec::Framed<BoxedSocket, Codec>,
    editor: Editor,
}

impl YjsClient {
    async fn connect(app: &TestApp, document_id: &str) -> YjsClient {
        let url = format!("ws://127.0.0.1:{}/yjs/{document_id}", app.port);
        let (_, framed) = awc::Client::new()
            .ws(url.as_str())
            .max_frame_size(64 << 20)
            .connect()
            .await
            .expect("connect /yjs/");
        YjsClient {
            framed,
            editor: Editor::new(),
        }
    }

    async fn send(&mut self, message: Message) {
        self.send_raw(message.encode_v1()).await;
    }

    async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.framed
            .send(WsMessage::Binary(bytes.into()))
            .await
            .expect("send frame");
    }

    /// The next message; each frame must hold exactly one (the JS client
    /// reads only the first message of a frame).
    async fn recv_within(&mut self, wait: Duration) -> Option<Received> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let frame = match timeout(left, self.framed.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Received::Closed(None)),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Frame::Binary(bytes) => {
                    let mut decoder = yrs::updates::decoder::DecoderV1::from(bytes.as_ref());
                    let mut reader = yrs::sync::MessageReader::new(&mut decoder);
                    let message = reader
                        .next()
                        .expect("a message")
                        .expect("server sent a decodable message");
                    assert!(reader.next().is_none(), "one message per frame");
                    return Some(Received::Message(message));
                }
                Frame::Close(reason) => {
                    return Some(Received::Closed(reason.map(|r| u16::from(r.code))));
                }
                Frame::Ping(p) => {
                    let _ = self.framed.send(WsMessage::Pong(p)).await;
                }
                Frame::Text(text) => panic!("text frame on /yjs/: {text:?}"),
                _ => {}
            }
        }
    }

    async fn recv(&mut self) -> Received {
        self.recv_within(RECV_TIMEOUT)
            .await
            .expect("a message in time")
    }

    async fn recv_message(&mut self) -> Message {
        match self.recv().await {
            Received::Message(message) => message,
            Received::Closed(code) => panic!("closed ({code:?}) while a message was expected"),
        }
    }

    /// The y-websocket handshake: the server's sync step 1 (answered with
    /// our sync step 2) and the answer to our sync step 1.
    async fn handshake(&mut self) {
        let sv = self.editor.doc.transact().state_vector();
        self.send(Message::Sync(SyncMessage::SyncStep1(sv))).await;
        let mut got_step1 = false;
        let mut got_step2 = false;
        while !(got_step1 && got_step2) {
            match self.recv_message().await {
                Message::Sync(SyncMessage::SyncStep1(server_sv)) => {
                    let diff = self
                        .editor
                        .doc
                        .transact()
                        .encode_state_as_update_v1(&server_sv);
                    self.send(Message::Sync(SyncMessage::SyncStep2(diff))).await;
                    got_step1 = true;
                }
                Message::Sync(SyncMessage::SyncStep2(update)) => {
                    self.editor.apply(&update);
                    got_step2 = true;
                }
                // Live traffic may already flow.
                Message::Sync(SyncMessage::Update(update)) => self.editor.apply(&update),
                Message::Awareness(_) => {}
                other => panic!("unexpected during handshake: {other:?}"),
            }
        }
    }

    /// Applies incoming updates until the text is `expected`.
    async fn sync_until_text(&mut self, expected: &str) {
        while self.editor.text() != expected {
            match self.recv_message().await {
                Message::Sync(SyncMessage::Update(update))
                | Message::Sync(SyncMessage::SyncStep2(update)) => self.editor.apply(&update),
                _ => {}
            }
        }
    }

    async fn insert(&mut self, index: u32, s: &str) {
        let update = self.editor.insert(index, s);
        self.send(Message::Sync(SyncMessage::Update(update))).await;
    }
}

fn awareness(client: u64, clock: u32, json: &str) -> AwarenessUpdate {
    use yrs::sync::awareness::AwarenessUpdateEntry;
    AwarenessUpdate {
        clients: [(
            yrs::ClientID::new(client),
            AwarenessUpdateEntry {
                clock,
                json: json.into(),
            },
        )]
        .into_iter()
        .collect(),
    }
}

/// Two y-websocket clients sync through the server; each update becomes an
/// op with the next seq in the log and reaches the other client as one
/// sync `Update` message.
async fn yjs_clients_sync_and_every_update_is_sequenced_and_logged(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut a = YjsClient::connect(&app, "yjs-doc").await;
    a.handshake().await;
    a.insert(0, "hello").await;
    let mut b = YjsClient::connect(&app, "yjs-doc").await;
    b.handshake().await;
    b.sync_until_text("hello").await;
    b.insert(5, " world").await;
    a.sync_until_text("hello world").await;
    a.insert(0, ">").await;
    b.sync_until_text(">hello world").await;
    let log = app.logged_ops("yjs-doc").await;
    assert_eq!(
        log.iter().map(|(seq, _, _)| *seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(log.iter().all(|(_, client, _)| client.starts_with("yjs-")));
    // A late joiner gets everything through the handshake alone.
    let mut c = YjsClient::connect(&app, "yjs-doc").await;
    c.handshake().await;
    assert_eq!(c.editor.text(), ">hello world");
}

/// A native client and a y-websocket client edit the same document: native
/// ops reach the y-websocket client as updates, y-websocket updates reach
/// the native client as `op` messages in seq order, and both converge.
async fn native_and_yjs_clients_edit_the_same_document(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut native = Peer::join(&app, "mixed", "native").await;
    let mut yjs = YjsClient::connect(&app, "mixed").await;
    yjs.handshake().await;
    native.insert(0, "abc").await;
    native.sync_to(1).await;
    yjs.sync_until_text("abc").await;
    yjs.insert(3, "def").await;
    let op = native.step().await;
    assert_eq!(op["type"], "op");
    assert_eq!(op["server_seq"], 2);
    assert!(op["client_id"].as_str().unwrap().starts_with("yjs-"));
    assert_eq!(native.text(), "abcdef");
    native.insert(0, "<").await;
    native.sync_to(3).await;
    yjs.sync_until_text("<abcdef").await;
}

/// Awareness goes from a y-websocket client to the native client (and the
/// other way), is sent to late joiners, is never logged, and is removed for
/// everyone when its session closes.
async fn awareness_is_relayed_on_both_routes_and_removed_on_close(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut native = Peer::join(&app, "presence", "native").await;
    let mut yjs = YjsClient::connect(&app, "presence").await;
    yjs.handshake().await;

    yjs.send(Message::Awareness(awareness(42, 1, r#"{"user":"yjs"}"#)))
        .await;
    // y-websocket providers get their own awareness back (a sign of life).
    loop {
        if let Message::Awareness(echo) = yjs.recv_message().await {
            assert!(echo.clients.contains_key(&yrs::ClientID::new(42)));
            break;
        }
    }
    let relayed = native.ws.recv_json().await;
    assert_eq!(relayed["type"], "awareness");
    let update = AwarenessUpdate::decode_v1(&unb64(relayed["update"].as_str().unwrap())).unwrap();
    assert_eq!(
        &*update.clients[&yrs::ClientID::new(42)].json,
        r#"{"user":"yjs"}"#
    );

    native
        .ws
        .send_json(json!({"type":"awareness","update": b64(&awareness(7, 1, r#"{"user":"native"}"#).encode_v1())}))
        .await;
    loop {
        if let Message::Awareness(update) = yjs.recv_message().await {
            assert_eq!(
                &*update.clients[&yrs::ClientID::new(7)].json,
                r#"{"user":"native"}"#
            );
            break;
        }
    }

    // A late joiner gets both states after its catch-up.
    let mut late = Peer::join(&app, "presence", "late").await;
    let states = late.ws.recv_json().await;
    assert_eq!(states["type"], "awareness");
    let update = AwarenessUpdate::decode_v1(&unb64(states["update"].as_str().unwrap())).unwrap();
    assert_eq!(update.clients.len(), 2);

    // The y-websocket client goes away: its state is removed for the others.
    drop(yjs);
    for peer in [&mut native, &mut late] {
        let removal = peer.ws.recv_json().await;
        assert_eq!(removal["type"], "awareness");
        let update =
            AwarenessUpdate::decode_v1(&unb64(removal["update"].as_str().unwrap())).unwrap();
        let entry = &update.clients[&yrs::ClientID::new(42)];
        assert_eq!(&*entry.json, "null");
        assert_eq!(
            entry.clock, 1,
            "a removal keeps the state's clock, as in y-protocols"
        );
    }
    assert!(
        app.logged_ops("presence").await.is_empty(),
        "awareness is never logged"
    );

    // A bad native awareness message is refused, the session goes on.
    native
        .ws
        .send_json(json!({"type":"awareness","update":"!!"}))
        .await;
    assert_eq!(native.ws.recv_json().await["code"], "bad_message");
}

/// The sync step 2 a y-websocket client sends after the handshake carries
/// nothing new (or only its whole delete set): it must not grow the log.
async fn empty_and_redundant_updates_are_not_logged(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut a = YjsClient::connect(&app, "quiet").await;
    a.handshake().await;
    a.insert(0, "abcdef").await;
    let delete = {
        let text = a.editor.doc.get_or_insert_text("content");
        let mut txn = a.editor.doc.transact_mut();
        yrs::Text::remove_range(&text, &mut txn, 1, 2);
        txn.encode_update_v1()
    };
    a.send(Message::Sync(SyncMessage::Update(delete))).await;
    let mut b = YjsClient::connect(&app, "quiet").await;
    b.handshake().await;
    b.sync_until_text("adef").await;
    assert_eq!(app.logged_ops("quiet").await.len(), 2);
    // Reconnecting clients send everything the server already has.
    for _ in 0..3 {
        let mut again = YjsClient::connect(&app, "quiet").await;
        again.editor = Editor::new();
        again.editor.apply(
            &b.editor
                .doc
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
        );
        again.handshake().await;
        again
            .send(Message::Sync(SyncMessage::Update(vec![0, 0])))
            .await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.logged_ops("quiet").await.len(),
        2,
        "nothing redundant was logged"
    );
}

/// Malformed binary frames close the connection (1007 undecodable, 1003
/// unknown type or a text frame) without touching the document; other
/// clients are unaffected.
#[actix_web::test]
async fn malformed_yjs_frames_close_the_connection_and_log_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut good = YjsClient::connect(&app, "fuzz").await;
    good.handshake().await;
    let truncated =
        Message::Sync(SyncMessage::Update(Editor::new().append("x"))).encode_v1()[..4].to_vec();
    let bad_update = Message::Sync(SyncMessage::Update(vec![0xff, 0xff, 0xff, 1])).encode_v1();
    let cases: [(Vec<u8>, u16); 3] = [(truncated, 1007), (bad_update, 1007), (vec![9, 1, 0], 1003)];
    for (frame, code) in cases {
        let mut bad = YjsClient::connect(&app, "fuzz").await;
        bad.handshake().await;
        bad.send_raw(frame).await;
        loop {
            match bad.recv().await {
                Received::Closed(got) => {
                    assert_eq!(got, Some(code));
                    break;
                }
                Received::Message(_) => {}
            }
        }
    }
    let mut texting = YjsClient::connect(&app, "fuzz").await;
    texting
        .framed
        .send(WsMessage::Text("hello".into()))
        .await
        .expect("send");
    loop {
        match texting.recv().await {
            Received::Closed(got) => {
                assert_eq!(got, Some(1003));
                break;
            }
            Received::Message(_) => {}
        }
    }
    assert!(app.logged_ops("fuzz").await.is_empty());
    assert!(good.recv_within(Duration::from_millis(200)).await.is_none());
    good.insert(0, "still fine").await;
    let mut check = YjsClient::connect(&app, "fuzz").await;
    check.handshake().await;
    check.sync_until_text("still fine").await;
}

/// Updates sent back to back, each building on the previous one (which is
/// not committed yet when the next arrives), are all sequenced and logged:
/// none is mistaken for redundant.
async fn a_burst_of_chained_updates_is_all_logged(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut writer = YjsClient::connect(&app, "burst").await;
    writer.handshake().await;
    let mut frame = Vec::new();
    for i in 0..50 {
        let update = writer.editor.append(&(i % 10).to_string());
        let message = Message::Sync(SyncMessage::Update(update)).encode_v1();
        if i < 10 {
            // Ten of them in one frame, the rest one per frame.
            frame.extend(message);
            if i == 9 {
                writer.send_raw(std::mem::take(&mut frame)).await;
            }
        } else {
            writer.send_raw(message).await;
        }
    }
    let expected = writer.editor.text();
    let mut reader = YjsClient::connect(&app, "burst").await;
    reader.handshake().await;
    reader.sync_until_text(&expected).await;
    assert_eq!(app.logged_ops("burst").await.len(), 50);
}
