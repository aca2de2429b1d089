//! Probes on the native protocol: `flood`, `never-integrate` and
//! `big-deletes`. Each attacking connection says `hello`, waits for its
//! `welcome` (and snapshot), then writes ops as fast as the socket takes
//! them, reading the acks; when the server ends the session it reconnects
//! with a fresh client (fresh Yjs client id) and goes on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Text, TextRef, Transact, Update};

use super::peer::{Peer, Step};
use super::tally::Ctx;
use super::updates::{self, Chain};
use crate::protocol::{json_str, json_u64};
use crate::ws;

/// Where an attacking session's updates come from.
pub trait Source {
    /// Starts over for a new session: a fresh Yjs client; `snapshot` is the
    /// document's state when the server sent one.
    fn reset(&mut self, snapshot: Option<&[u8]>) -> Result<(), String>;
    fn next_update(&mut self) -> Result<Vec<u8>, String>;
}

/// Single-chunk appends by one client (`start` 0), or appends that all
/// depend on a clock never sent (`start` 1: pending forever).
pub struct ChainSource {
    start: u64,
    chunk: &'static str,
    chain: Chain,
}

impl ChainSource {
    pub fn new(start: u64, chunk: &'static str) -> Self {
        ChainSource {
            start,
            chunk,
            chain: Chain::new(updates::random_client(), start, chunk),
        }
    }
}

impl Source for ChainSource {
    fn reset(&mut self, _snapshot: Option<&[u8]>) -> Result<(), String> {
        self.chain = Chain::new(updates::random_client(), self.start, self.chunk);
        debug_assert_eq!(self.chain.pending_forever(), self.start > 0);
        Ok(())
    }

    fn next_update(&mut self) -> Result<Vec<u8>, String> {
        Ok(self.chain.next_update())
    }
}

/// Characters of the document built first.
pub const BIG_DOC_CHARS: u32 = 200_000;
/// Characters of each insert while building.
const BUILD_CHUNK: u32 = 50_000;
/// Characters each edit deletes and reinserts.
pub const BIG_EDIT_CHARS: u32 = 100_000;

/// A real yrs document: built to 200,000 characters by big inserts, then
/// each op deletes a 100,000-character range at a random offset and
/// inserts as many characters there (one transaction).
pub struct BigEdits {
    doc: Doc,
    text: TextRef,
    n: u64,
}

impl BigEdits {
    pub fn new() -> Self {
        let doc = Doc::with_client_id(updates::random_client());
        let text = doc.get_or_insert_text("content");
        BigEdits { doc, text, n: 0 }
    }
}

impl Source for BigEdits {
    fn reset(&mut self, snapshot: Option<&[u8]>) -> Result<(), String> {
        *self = BigEdits::new();
        if let Some(state) = snapshot {
            let update = Update::decode_v1(state).map_err(|e| format!("snapshot: {e}"))?;
            self.doc
                .transact_mut()
                .apply_update(update)
                .map_err(|e| format!("snapshot: {e}"))?;
        }
        Ok(())
    }

    fn next_update(&mut self) -> Result<Vec<u8>, String> {
        self.n += 1;
        let letter = char::from(b'a' + (self.n % 26) as u8);
        let mut txn = self.doc.transact_mut();
        let len = self.text.len(&txn);
        if len < BIG_DOC_CHARS {
            let chunk: String = std::iter::repeat_n(letter, BUILD_CHUNK as usize).collect();
            self.text.insert(&mut txn, len, &chunk);
        } else {
            let at = fastrand::u32(0..=len - BIG_EDIT_CHARS);
            let chunk: String = std::iter::repeat_n(letter, BIG_EDIT_CHARS as usize).collect();
            self.text.remove_range(&mut txn, at, BIG_EDIT_CHARS);
            self.text.insert(&mut txn, at, &chunk);
        }
        Ok(txn.encode_update_v1())
    }
}

/// The text of a big-edits document (for checks).
#[cfg(test)]
fn text_of(source: &BigEdits) -> String {
    use yrs::GetString;
    source.text.get_string(&source.doc.transact())
}

/// Joins `doc` natively: `hello`, `welcome`, and the snapshot's state when
/// the recovery is a snapshot.
async fn join(
    peer: &mut Peer,
    client_id: &str,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, String> {
    peer.queue(
        ws::OP_TEXT,
        crate::native::hello_json(client_id, None, None).as_bytes(),
    );
    let welcomed = Cell::new(false);
    let done = Cell::new(false);
    let state = RefCell::new(None::<Result<Vec<u8>, String>>);
    let mut on_msg = |_: u8, payload: &[u8]| match json_str(payload, b"\"type\":\"") {
        Some(b"welcome") => {
            welcomed.set(true);
            if crate::protocol::find(payload, b"\"recovery\":\"snapshot\"").is_none() {
                done.set(true);
            }
        }
        Some(b"snapshot") => {
            let parsed = serde_json::from_slice::<serde_json::Value>(payload)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    let s = v["state"].as_str().ok_or("snapshot without state")?;
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .map_err(|e| e.to_string())
                });
            *state.borrow_mut() = Some(parsed);
            done.set(true);
        }
        Some(b"error") => {
            let code = json_str(payload, b"\"code\":\"").unwrap_or(b"?");
            *state.borrow_mut() = Some(Err(format!("error {}", String::from_utf8_lossy(code))));
            done.set(true);
        }
        _ => {}
    };
    let ok = peer.until(deadline, &mut on_msg, &|| done.get()).await;
    if !ok {
        return Err(match peer.ended() {
            Some(why) => format!("join: {why}"),
            None => "join: no welcome in time".to_string(),
        });
    }
    match state.into_inner() {
        Some(Ok(state)) => Ok(Some(state)),
        Some(Err(e)) if welcomed.get() => Err(format!("after the welcome: {e}")),
        Some(Err(e)) => Err(format!("join: {e}")),
        None => Ok(None),
    }
}

/// One attacking connection on `doc` until the attack ends: ops in batches
/// of `batch` whenever the socket has taken the previous batch.
pub async fn attacker(ctx: &Ctx, doc: &str, mut source: Box<dyn Source>, batch: usize) {
    let b64 = base64::engine::general_purpose::STANDARD;
    while ctx.running() {
        let mut peer = match Peer::open(
            ctx.authority(),
            &format!("/ws/{doc}"),
            Duration::from_secs(3),
        )
        .await
        {
            Ok(peer) => peer,
            Err(e) => {
                ctx.open_failed(&e);
                ctx.pause(Duration::from_millis(50)).await;
                continue;
            }
        };
        ctx.add("sessions", 1);
        let join_deadline = (Instant::now() + Duration::from_secs(5)).min(ctx.deadline);
        let client_id = format!("atk-{}", fastrand::u64(..));
        let snapshot = match join(&mut peer, &client_id, join_deadline).await {
            Ok(s) => s,
            Err(e) => {
                ctx.failure(e);
                peer.close();
                ctx.pause(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = source.reset(snapshot.as_deref()) {
            ctx.refusal(format!("cannot continue from the snapshot: {e}"));
            peer.close();
            return;
        }
        // client_op_id and update size of the ops not acked yet, in order.
        let in_flight: RefCell<VecDeque<(u64, usize)>> = RefCell::new(VecDeque::new());
        let mut on_msg = |_: u8, payload: &[u8]| match json_str(payload, b"\"type\":\"") {
            Some(b"ack") => {
                let Some(id) = json_u64(payload, b"\"client_op_id\":") else {
                    return;
                };
                let mut in_flight = in_flight.borrow_mut();
                while let Some(&(op, len)) = in_flight.front() {
                    if op > id {
                        break;
                    }
                    in_flight.pop_front();
                    if op == id && Instant::now() < ctx.deadline {
                        ctx.add("ops_acked", 1);
                        ctx.add("bytes_acked", len as u64);
                    }
                }
            }
            Some(b"error") => {
                let code = json_str(payload, b"\"code\":\"").unwrap_or(b"?");
                ctx.refusal(format!("error {}", String::from_utf8_lossy(code)));
            }
            _ => {}
        };
        let mut next_op = 1u64;
        let mut unflushed = 0u64;
        while ctx.running() {
            if peer.queued() == 0 {
                ctx.add("ops_written", unflushed);
                unflushed = 0;
                for _ in 0..batch {
                    let update = match source.next_update() {
                        Ok(u) => u,
                        Err(e) => {
                            ctx.refusal(format!("generator: {e}"));
                            peer.close();
                            return;
                        }
                    };
                    let op = format!(
                        "{{\"type\":\"op\",\"client_op_id\":{next_op},\"update\":\"{}\"}}",
                        b64.encode(&update)
                    );
                    peer.queue(ws::OP_TEXT, op.as_bytes());
                    in_flight.borrow_mut().push_back((next_op, update.len()));
                    next_op += 1;
                    unflushed += 1;
                }
            }
            if peer.step(ctx.deadline, &mut on_msg).await == Step::Ended {
                break;
            }
        }
        ctx.add("bytes_written", peer.bytes_out);
        match peer.ended() {
            Some(why) => {
                ctx.refusal(format!("session ended: {why}"));
                ctx.pause(Duration::from_millis(50)).await;
            }
            None => peer.close(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, ReadTxn};

    #[test]
    fn big_edits_build_then_keep_the_size() {
        let mut s = BigEdits::new();
        let server = Doc::new();
        let text = server.get_or_insert_text("content");
        for _ in 0..6 {
            let u = s.next_update().expect("update");
            server
                .transact_mut()
                .apply_update(Update::decode_v1(&u).expect("decodes"))
                .expect("applies");
        }
        assert_eq!(text_of(&s).len(), BIG_DOC_CHARS as usize);
        assert_eq!(text.get_string(&server.transact()), text_of(&s));
        // A new session continues from the server's state.
        let state = server
            .transact()
            .encode_state_as_update_v1(&Default::default());
        s.reset(Some(&state)).expect("reset");
        assert_eq!(text_of(&s).len(), BIG_DOC_CHARS as usize);
        let u = s.next_update().expect("update");
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&u).expect("decodes"))
            .expect("applies");
        assert_eq!(text.get_string(&server.transact()), text_of(&s));
    }
}
