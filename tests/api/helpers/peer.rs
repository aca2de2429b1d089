//! Editing peers: a yrs `Editor`, a `Peer` that checks its seq stream, and base64 helpers.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Text, TextRef, Transact, Update};

use super::app::TestApp;
use super::ws::{Incoming, WsClient};

/// A yrs document that produces real, causally chained updates.
pub struct Editor {
    pub doc: Doc,
    text: TextRef,
}

impl Editor {
    pub fn new() -> Editor {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("content");
        Editor { doc, text }
    }

    /// Inserts `s` at `index` (clamped) and returns the update.
    pub fn insert(&self, index: u32, s: &str) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        let len = self.text.len(&txn);
        self.text.insert(&mut txn, index.min(len), s);
        txn.encode_update_v1()
    }

    pub fn append(&self, s: &str) -> Vec<u8> {
        self.insert(u32::MAX, s)
    }

    pub fn apply(&self, update: &[u8]) {
        let update = Update::decode_v1(update).expect("server sent a decodable update");
        self.doc
            .transact_mut()
            .apply_update(update)
            .expect("update applies");
    }

    pub fn text(&self) -> String {
        self.text.get_string(&self.doc.transact())
    }

    /// The whole document as one update.
    pub fn full_state(&self) -> Vec<u8> {
        collab_engine::crdt::encode_full_state(&self.doc)
    }

    /// Its state vector, encoded.
    pub fn state_vector(&self) -> Vec<u8> {
        use yrs::ReadTxn;
        use yrs::updates::encoder::Encode;
        self.doc.transact().state_vector().encode_v1()
    }

    pub fn len(&self) -> u32 {
        self.text.len(&self.doc.transact())
    }
}

/// Text of a base64 full state.
pub fn text_of_state(base64_state: &str) -> String {
    let editor = Editor::new();
    editor.apply(&BASE64.decode(base64_state).expect("state is base64"));
    editor.text()
}

pub fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    BASE64.decode(text).expect("valid base64")
}

/// Joins `watcher` and then `writer` to `document_id`; the writer inserts
/// `first` as the document's first op and both read up to seq 1. Returns
/// `(writer, watcher)`.
pub async fn writer_and_watcher(
    app: &TestApp,
    document_id: &str,
    [writer, watcher]: [&str; 2],
    first: &str,
) -> (Peer, Peer) {
    let mut watcher = Peer::join(app, document_id, watcher).await;
    let mut writer = Peer::join(app, document_id, writer).await;
    writer.insert(0, first).await;
    writer.sync_to(1).await;
    watcher.sync_to(1).await;
    (writer, watcher)
}

/// A client that edits a yrs document through the native protocol and
/// checks, message by message, the ordering promise: after the welcome,
/// the seqs it sees through `op` and `ack` are strictly increasing and
/// contiguous.
pub struct Peer {
    pub ws: WsClient,
    pub editor: Editor,
    pub client_id: String,
    pub epoch: String,
    /// Highest seq seen (the `last_seen_server_seq` for a reconnect).
    pub last_seen: u64,
    /// Every seq received after the welcome, in arrival order.
    pub stream: Vec<u64>,
    /// Ops sent and not yet acked, by client_op_id.
    pub unacked: BTreeMap<u64, Vec<u8>>,
    /// client_op_id -> server_seq of acks received.
    pub acks: BTreeMap<u64, u64>,
    pub next_op_id: u64,
    /// The welcome of the current connection.
    pub welcome: Value,
}

impl Peer {
    /// Connects fresh (no `last_seen_server_seq`): gets a snapshot.
    pub async fn join(app: &TestApp, document_id: &str, client_id: &str) -> Peer {
        Self::join_url(&app.ws_url(document_id), client_id).await
    }

    /// Like [`Peer::join`], at a full WebSocket URL.
    pub async fn join_url(url: &str, client_id: &str) -> Peer {
        let mut ws = WsClient::connect_url(url).await;
        ws.hello(client_id, None, None).await;
        let mut peer = Peer {
            ws,
            editor: Editor::new(),
            client_id: client_id.to_owned(),
            epoch: String::new(),
            last_seen: 0,
            stream: Vec::new(),
            unacked: BTreeMap::new(),
            acks: BTreeMap::new(),
            next_op_id: 1,
            welcome: Value::Null,
        };
        peer.read_welcome().await;
        peer
    }

    /// Reconnects with `last_seen_server_seq` and epoch, keeping the editor.
    pub async fn rejoin(self, app: &TestApp, document_id: &str) -> Peer {
        self.rejoin_url(&app.ws_url(document_id)).await
    }

    /// Like [`Peer::rejoin`], at a full WebSocket URL.
    pub async fn rejoin_url(mut self, url: &str) -> Peer {
        self.ws.close().await;
        self.ws = WsClient::connect_url(url).await;
        let (client_id, last_seen, epoch) =
            (self.client_id.clone(), self.last_seen, self.epoch.clone());
        self.ws
            .hello(&client_id, Some(last_seen), Some(&epoch))
            .await;
        self.stream.clear();
        self.read_welcome().await;
        // As docs/protocol.md says: ops up to `last_client_op_id` were
        // accepted; only the others are still pending.
        if let Some(accepted) = self.welcome["last_client_op_id"].as_u64() {
            self.unacked.retain(|op_id, _| *op_id > accepted);
        }
        self
    }

    async fn read_welcome(&mut self) {
        let welcome = self.ws.recv_json().await;
        assert_eq!(
            welcome["type"], "welcome",
            "expected welcome, got {welcome}"
        );
        self.epoch = welcome["epoch"].as_str().expect("epoch").to_owned();
        let head = welcome["server_seq"].as_u64().expect("server_seq");
        if welcome["recovery"] == "snapshot" {
            let snapshot = self.ws.recv_json().await;
            assert_eq!(
                snapshot["type"], "snapshot",
                "expected snapshot, got {snapshot}"
            );
            assert_eq!(snapshot["server_seq"].as_u64(), Some(head));
            self.editor
                .apply(&unb64(snapshot["state"].as_str().expect("state")));
            self.last_seen = head;
        } else {
            assert_eq!(welcome["recovery"], "replay", "{welcome}");
            // The replayed ops arrive as ordinary `op` messages.
        }
        self.welcome = welcome;
    }

    /// Edits locally and sends the update as the next op.
    pub async fn insert(&mut self, index: u32, s: &str) -> u64 {
        let update = self.editor.insert(index, s);
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        self.ws.send_op(op_id, &update).await;
        self.unacked.insert(op_id, update);
        op_id
    }

    /// Like [`Peer::insert`], but tolerates a dead connection (the op then
    /// stays pending, to be resent). Returns whether it was sent.
    pub async fn try_insert(&mut self, index: u32, s: &str) -> bool {
        let update = self.editor.insert(index, s);
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        self.unacked.insert(op_id, update.clone());
        self.ws.try_send_op(op_id, &update).await
    }

    /// Resends every unacked op (after a reconnect).
    pub async fn resend_unacked(&mut self) {
        for (op_id, update) in self.unacked.clone() {
            self.ws.send_op(op_id, &update).await;
        }
    }

    fn see_seq(&mut self, seq: u64, what: &Value) {
        assert_eq!(
            seq,
            self.last_seen + 1,
            "client {}: seq stream not contiguous: after {} got {what}",
            self.client_id,
            self.last_seen
        );
        self.last_seen = seq;
        self.stream.push(seq);
    }

    /// Processes one incoming message; returns it.
    pub async fn step(&mut self) -> Value {
        let message = self.ws.recv_json().await;
        self.handle(&message);
        message
    }

    pub fn handle(&mut self, message: &Value) {
        match message["type"].as_str() {
            Some("op") => {
                let seq = message["server_seq"].as_u64().expect("op server_seq");
                self.see_seq(seq, message);
                self.editor
                    .apply(&unb64(message["update"].as_str().expect("update")));
            }
            Some("ack") => {
                let op_id = message["client_op_id"].as_u64().expect("ack client_op_id");
                if message["duplicate"] == true {
                    if let Some(seq) = message["server_seq"].as_u64() {
                        assert!(
                            seq <= self.last_seen,
                            "duplicate ack for a seq not yet seen: {message}"
                        );
                    }
                } else {
                    let seq = message["server_seq"].as_u64().expect("ack server_seq");
                    self.see_seq(seq, message);
                    self.acks.insert(op_id, seq);
                }
                self.unacked.remove(&op_id);
            }
            _ => panic!("client {}: unexpected message {message}", self.client_id),
        }
    }

    /// Handles messages until the connection closes; `unavailable` errors
    /// leave their op pending (to be resent). Returns the close code and
    /// the ids of the ops answered `unavailable`.
    pub async fn drain_until_close(&mut self) -> (Option<u16>, Vec<u64>) {
        let mut unavailable = Vec::new();
        loop {
            match self.ws.recv().await {
                Incoming::Closed(code) => return (code, unavailable),
                Incoming::Json(message) if message["type"] == "error" => {
                    assert_eq!(message["code"], "unavailable", "{message}");
                    if let Some(op_id) = message["client_op_id"].as_u64() {
                        unavailable.push(op_id);
                    }
                }
                Incoming::Json(message) => self.handle(&message),
            }
        }
    }

    /// Handles messages until the connection closes, asserts the close code
    /// is 1013 (a refused op closes its session), and returns the ids of the
    /// ops answered `unavailable`.
    pub async fn refused_until_close(&mut self) -> Vec<u64> {
        let (code, refused) = self.drain_until_close().await;
        assert_eq!(
            code,
            Some(1013),
            "client {}: a refused op closes its session (refused {refused:?})",
            self.client_id
        );
        refused
    }

    /// Like [`Peer::refused_until_close`], asserting that exactly the ops
    /// `op_ids` were answered `unavailable`.
    pub async fn expect_refused(&mut self, op_ids: &[u64]) {
        let refused = self.refused_until_close().await;
        assert_eq!(
            refused, op_ids,
            "client {}: the ops answered `unavailable`",
            self.client_id
        );
    }

    /// Reads until the stream reached `seq` and nothing is unacked.
    pub async fn sync_to(&mut self, seq: u64) {
        while self.last_seen < seq || !self.unacked.is_empty() {
            self.step().await;
        }
    }

    pub fn text(&self) -> String {
        self.editor.text()
    }
}
