//! An operation as the op log holds it: a Yjs v1 update with its
//! `server_seq` and its sender's `(client_id, client_op_id)`.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use bytestring::ByteString;
use chrono::{DateTime, Utc};

use super::SessionId;

/// A WebSocket message one wire protocol made of an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(ByteString),
    Binary(Bytes),
    /// One big message (a snapshot, a sync step 2) made of shared parts,
    /// sent as a fragmented WebSocket message a fragment at a time as the
    /// socket drains: every receiver shares the parts (the encoded state
    /// of the document), none needs a copy of the whole message.
    /// `text`: a text message (the parts are UTF-8 once joined).
    Parts {
        text: bool,
        parts: Vec<Bytes>,
    },
}

/// The wire formats that encode committed ops for their receivers. Each
/// encoding of an op is built once, by the first session that needs it,
/// and shared by every other session of that format (see
/// [`CommittedOp::frame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// The native protocol's `op` message.
    NativeJson = 0,
    /// The y-websocket sync `Update` message.
    YjsSync = 1,
}

impl WireFormat {
    const COUNT: usize = 2;
}

/// An operation that is in the op log (or, for a commit in flight, about
/// to be: its `server_seq` is assigned once, when its transaction starts).
#[derive(Debug)]
pub struct CommittedOp {
    /// Its position in the document's total order (1-based, contiguous).
    pub server_seq: u64,
    pub client_id: Arc<str>,
    /// The sender's own number; unique per `(document, client_id)`.
    pub client_op_id: u64,
    /// The Yjs v1 update exactly as received.
    pub update: Bytes,
    /// The session that sent it, while that is known (live ops only): it
    /// gets an `ack` where everyone else gets the `op`.
    pub origin: Option<SessionId>,
    /// Who wrote it, when access control is on (see
    /// [`Access::subject`](super::Access)); stored with the op.
    pub subject: Option<Arc<str>>,
    /// When its commit started (the op log stores this time with it).
    pub committed_at: DateTime<Utc>,
    /// Wire encodings, by [`WireFormat`], built on first use.
    frames: [OnceLock<Frame>; WireFormat::COUNT],
}

impl CommittedOp {
    pub fn new(
        server_seq: u64,
        client_id: Arc<str>,
        client_op_id: u64,
        update: Bytes,
        origin: Option<SessionId>,
    ) -> Self {
        CommittedOp {
            server_seq,
            client_id,
            client_op_id,
            update,
            origin,
            subject: None,
            committed_at: Utc::now(),
            frames: Default::default(),
        }
    }

    /// The same op, written by `subject`.
    pub fn with_subject(mut self, subject: Option<Arc<str>>) -> Self {
        self.subject = subject;
        self
    }

    /// The same op, committed at `at` (read back from the log).
    pub fn with_committed_at(mut self, at: DateTime<Utc>) -> Self {
        self.committed_at = at;
        self
    }

    /// This op encoded for `format`: `encode` runs for the first caller of
    /// each format only; everyone gets a shared copy.
    pub fn frame(&self, format: WireFormat, encode: impl FnOnce(&CommittedOp) -> Frame) -> Frame {
        self.frames[format as usize]
            .get_or_init(|| encode(self))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_encoded_once() {
        let op = CommittedOp::new(1, Arc::from("c"), 1, Bytes::from_static(b"u"), None);
        let mut calls = 0;
        for _ in 0..3 {
            let frame = op.frame(WireFormat::YjsSync, |op| {
                calls += 1;
                Frame::Binary(op.update.clone())
            });
            assert_eq!(frame, Frame::Binary(Bytes::from_static(b"u")));
        }
        assert_eq!(calls, 1);
        let text = op.frame(WireFormat::NativeJson, |_| Frame::Text("t".into()));
        assert_eq!(text, Frame::Text("t".into()));
    }
}
