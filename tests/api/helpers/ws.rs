//! A raw native-protocol WebSocket client (`WsClient`): JSON frames out, timed reads in.

use std::time::Duration;

use actix_web::rt::time::timeout;
use awc::BoxedSocket;
use awc::ws::{Codec, Frame, Message};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use super::app::TestApp;

/// How long any single expected message may take before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// What a raw client read.
#[derive(Debug)]
pub enum Incoming {
    Json(Value),
    Closed(Option<u16>),
}

/// A raw WebSocket client speaking JSON text frames.
pub struct WsClient {
    framed: actix_codec::Framed<BoxedSocket, Codec>,
    /// The reason of the server's close frame, once one arrived.
    pub close_reason: Option<String>,
    /// Skip binary frames (a y-websocket connection) instead of failing.
    skip_binary: bool,
    /// A fragmented message being reassembled (`true`: text).
    fragments: Option<(bool, Vec<u8>)>,
}

impl WsClient {
    pub async fn connect(app: &TestApp, document_id: &str) -> WsClient {
        Self::connect_url(&app.ws_url(document_id)).await
    }

    pub async fn connect_url(url: &str) -> WsClient {
        let (_response, framed) = awc::Client::new()
            .ws(url)
            .max_frame_size(64 << 20)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("websocket connect to {url}: {e}"));
        WsClient::from_framed(framed)
    }

    /// A client over an established connection.
    pub fn from_framed(framed: actix_codec::Framed<BoxedSocket, Codec>) -> WsClient {
        WsClient {
            framed,
            close_reason: None,
            skip_binary: false,
            fragments: None,
        }
    }

    /// A client of the y-websocket route that only looks at text frames
    /// and the close (binary frames are skipped).
    pub async fn connect_yjs(app: &TestApp, document_id: &str) -> WsClient {
        let url = format!("ws://127.0.0.1:{}/yjs/{document_id}", app.port);
        let mut client = Self::connect_url(&url).await;
        client.skip_binary = true;
        client
    }

    pub async fn send_text(&mut self, text: &str) {
        self.framed
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send text frame");
    }

    /// Sends an op; `false` if the connection is gone.
    pub async fn try_send_op(&mut self, client_op_id: u64, update: &[u8]) -> bool {
        let text = json!({
            "type": "op",
            "client_op_id": client_op_id,
            "update": BASE64.encode(update),
        })
        .to_string();
        self.framed.send(Message::Text(text.into())).await.is_ok()
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.framed
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send binary frame");
    }

    pub async fn hello(&mut self, client_id: &str, last_seen: Option<u64>, epoch: Option<&str>) {
        let mut hello = json!({"type": "hello", "protocol": 1, "client_id": client_id});
        if let Some(seq) = last_seen {
            hello["last_seen_server_seq"] = json!(seq);
        }
        if let Some(epoch) = epoch {
            hello["epoch"] = json!(epoch);
        }
        self.send_json(hello).await;
    }

    pub async fn send_op(&mut self, client_op_id: u64, update: &[u8]) {
        self.send_json(json!({
            "type": "op",
            "client_op_id": client_op_id,
            "update": BASE64.encode(update),
        }))
        .await;
    }

    /// Next JSON message or the close; answers pings; fails after [`RECV_TIMEOUT`].
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(RECV_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("no message within {RECV_TIMEOUT:?}"))
    }

    /// Like [`WsClient::recv`], but `None` when nothing arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Incoming> {
        // One deadline for the whole call: the server's pings must not
        // restart the clock.
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let frame = match timeout(left, self.framed.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Incoming::Closed(None)),
                // The connection broke (e.g. the server was killed).
                Ok(Some(Err(_))) => return Some(Incoming::Closed(None)),
                Ok(Some(Ok(frame))) => frame,
            };
            let frame = match frame {
                Frame::Continuation(item) => match self.reassemble(item) {
                    Some(frame) => frame,
                    None => continue,
                },
                frame => frame,
            };
            match frame {
                Frame::Text(bytes) => {
                    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                        panic!(
                            "server sent invalid JSON ({e}): {}",
                            String::from_utf8_lossy(&bytes)
                        )
                    });
                    return Some(Incoming::Json(value));
                }
                Frame::Close(reason) => {
                    self.close_reason = reason.as_ref().and_then(|r| r.description.clone());
                    return Some(Incoming::Closed(reason.map(|r| u16::from(r.code))));
                }
                Frame::Ping(payload) => {
                    let _ = self.framed.send(Message::Pong(payload)).await;
                }
                Frame::Pong(_) => {}
                Frame::Binary(_) if self.skip_binary => {}
                Frame::Binary(_) => panic!("unexpected binary frame"),
                Frame::Continuation(_) => unreachable!("reassembled above"),
            }
        }
    }

    /// Adds a fragment to the message being reassembled; the whole message
    /// once its last fragment arrived.
    fn reassemble(&mut self, item: actix_http::ws::Item) -> Option<Frame> {
        use actix_http::ws::Item;
        match item {
            Item::FirstText(data) => self.fragments = Some((true, data.to_vec())),
            Item::FirstBinary(data) => self.fragments = Some((false, data.to_vec())),
            Item::Continue(data) => {
                let (_, buffer) = self
                    .fragments
                    .as_mut()
                    .expect("a continuation without a first frame");
                buffer.extend_from_slice(&data);
            }
            Item::Last(data) => {
                let (text, mut buffer) = self
                    .fragments
                    .take()
                    .expect("a last frame without a first frame");
                buffer.extend_from_slice(&data);
                let bytes = bytes::Bytes::from(buffer);
                return Some(if text {
                    Frame::Text(bytes)
                } else {
                    Frame::Binary(bytes)
                });
            }
        }
        None
    }

    /// Asserts that nothing (no message, no close) arrives within `wait`;
    /// `why` says what the silence shows.
    pub async fn hears_nothing_for(&mut self, wait: Duration, why: &str) {
        let heard = self.recv_within(wait).await;
        assert!(heard.is_none(), "{why}; heard {heard:?}");
    }

    /// Next message, which must be JSON.
    pub async fn recv_json(&mut self) -> Value {
        match self.recv().await {
            Incoming::Json(value) => value,
            Incoming::Closed(code) => {
                panic!("connection closed ({code:?}) while a message was expected")
            }
        }
    }

    /// Reads until the close frame and returns its code; messages before it
    /// are returned too.
    pub async fn recv_until_close(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut before = Vec::new();
        loop {
            match self.recv().await {
                Incoming::Json(value) => before.push(value),
                Incoming::Closed(code) => return (before, code),
            }
        }
    }

    pub async fn close(&mut self) {
        let _ = self.framed.send(Message::Close(None)).await;
        // Drain until the server's close (or the end of the stream).
        let _ = timeout(Duration::from_secs(2), async {
            while let Some(Ok(frame)) = self.framed.next().await {
                if matches!(frame, Frame::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}
