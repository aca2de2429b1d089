//! Pre-generated workload: real Yjs updates made with yrs, framed for the
//! wire before the timed phase so that sending is a memcpy into the socket.
//!
//! Client `i` owns a `yrs::Doc` with client id [`CLIENT_BASE`]` + i` and
//! appends one character at a time to the `Y.Text` named `content`; op `k`
//! of that client is the update of its k-th transaction. An op is identified
//! on the receiving side by (client index, sequence number): natively by the
//! `client_id` `c{i}` and `client_op_id` `k + 1`, in Yjs updates by the yrs
//! client id and the clock (looked up in [`ClientOps::clocks`]).

use yrs::{Doc, Text, Transact};

use crate::protocol::Protocol;
use crate::yupdate;

/// The yrs client id of client 0 (the others follow).
pub const CLIENT_BASE: u64 = 1_000_000;

/// The ops of one client, ready to send.
pub struct ClientOps {
    /// Native `client_id` of the client.
    pub name: String,
    /// WebSocket frames of all ops, back to back.
    frames: Vec<u8>,
    /// Op `k` is `frames[offsets[k]..offsets[k + 1]]`.
    offsets: Vec<usize>,
    /// Yjs clock of the first struct of op `k` (strictly increasing).
    pub clocks: Vec<u64>,
}

impl ClientOps {
    /// The frame of op `k`.
    pub fn frame(&self, k: usize) -> &[u8] {
        &self.frames[self.offsets[k]..self.offsets[k + 1]]
    }

    /// The sequence numbers of the ops whose first clock lies in
    /// `clock..clock + len`.
    pub fn seqs_in(&self, clock: u64, len: u64) -> std::ops::Range<usize> {
        let a = self.clocks.partition_point(|&c| c < clock);
        let b = self
            .clocks
            .partition_point(|&c| c < clock.saturating_add(len));
        a..b
    }
}

/// The native `client_id` of client `index`.
pub fn client_name(index: usize) -> String {
    format!("c{index}")
}

/// Parses a native `client_id` made by [`client_name`].
pub fn parse_client_name(id: &[u8]) -> Option<usize> {
    let digits = id.strip_prefix(b"c")?;
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')),
    )
}

/// Generates `ops_per_client` single-character inserts for each of
/// `clients` clients, framed for `protocol` on document `doc`.
pub fn generate(
    protocol: Protocol,
    doc: &str,
    clients: usize,
    ops_per_client: usize,
) -> Result<Vec<ClientOps>, String> {
    (0..clients)
        .map(|i| generate_client(protocol, doc, i, ops_per_client))
        .collect()
}

fn generate_client(
    protocol: Protocol,
    doc: &str,
    index: usize,
    ops: usize,
) -> Result<ClientOps, String> {
    let client = CLIENT_BASE + index as u64;
    let ydoc = Doc::with_client_id(client);
    let text = ydoc.get_or_insert_text("content");
    let mut out = ClientOps {
        name: client_name(index),
        frames: Vec::with_capacity(ops * 40),
        offsets: Vec::with_capacity(ops + 1),
        clocks: Vec::with_capacity(ops),
    };
    out.offsets.push(0);
    let mut ch = [0u8; 1];
    for k in 0..ops {
        let update = {
            let mut txn = ydoc.transact_mut();
            let end = text.len(&txn);
            ch[0] = b'a' + (k % 26) as u8;
            text.insert(
                &mut txn,
                end,
                std::str::from_utf8(&ch).map_err(|e| e.to_string())?,
            );
            txn.encode_update_v1()
        };
        // Self-check of the decoder the receivers rely on.
        let ranges = yupdate::client_ranges(&update)
            .map_err(|e| format!("generated update {k} of client {index}: {e}"))?;
        let [range] = ranges.as_slice() else {
            return Err(format!(
                "generated update {k} has {} client sections",
                ranges.len()
            ));
        };
        if range.client != client {
            return Err(format!("generated update {k} has client {}", range.client));
        }
        out.clocks.push(range.clock);
        protocol.encode_op_frame(&mut out.frames, doc, k as u64 + 1, &update);
        out.offsets.push(out.frames.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_identified_by_clock_and_name() {
        let ops = generate(Protocol::Yjs, "d", 3, 50).expect("generate");
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[2].name, "c2");
        assert_eq!(ops[1].clocks, (0..50).collect::<Vec<u64>>());
        assert_eq!(ops[1].seqs_in(10, 3), 10..13);
        assert_eq!(ops[1].seqs_in(49, 10), 49..50);
        assert_eq!(ops[1].seqs_in(60, 1), 50..50);
        assert!(!ops[0].frame(0).is_empty());
        assert_eq!(ops[0].clocks.len(), 50);
    }

    #[test]
    fn client_names_round_trip() {
        assert_eq!(parse_client_name(client_name(17).as_bytes()), Some(17));
        assert_eq!(parse_client_name(b"c"), None);
        assert_eq!(parse_client_name(b"yjs-1"), None);
        assert_eq!(parse_client_name(b"c1x"), None);
    }
}
