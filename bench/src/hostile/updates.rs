//! The messages of the hostile probes, encoded by hand (cheap enough to make
//! at full speed while sending): Yjs v1 updates on the `Y.Text` `content`,
//! y-websocket frames, awareness updates, and the allocation bombs.
//!
//! A Yjs v1 update of one item: `varUint 1` (clients), `varUint 1`
//! (structs), `varUint client`, `varUint clock`, the info byte, the left
//! origin (`client`, `clock`) when bit 8 is set or else the parent (`1`,
//! the root type name), the content (`4` = string: a `varString`), then an
//! empty delete set (`varUint 0`).

use crate::protocol::{SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, write_y_sync};
use crate::varint::{write_var_string, write_var_uint};

/// Name of the root `Y.Text` every probe writes to.
const TEXT: &str = "content";
/// Info byte: string content.
const CONTENT_STRING: u8 = 4;
/// Info bit: the item has a left origin.
const HAS_ORIGIN: u8 = 0x80;
/// y-protocols message type of awareness.
const MESSAGE_AWARENESS: u64 = 1;

/// `text` inserted by `client` at `clock`: after the item
/// `origin` (`client`, `clock`) when given, else at the start of `content`
/// with no origin on either side.
pub fn insert(client: u64, clock: u64, origin: Option<(u64, u64)>, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + text.len());
    write_var_uint(&mut out, 1);
    write_var_uint(&mut out, 1);
    write_var_uint(&mut out, client);
    write_var_uint(&mut out, clock);
    match origin {
        Some((c, k)) => {
            out.push(CONTENT_STRING | HAS_ORIGIN);
            write_var_uint(&mut out, c);
            write_var_uint(&mut out, k);
        }
        None => {
            out.push(CONTENT_STRING);
            write_var_uint(&mut out, 1); // parent given by a root type name
            write_var_string(&mut out, TEXT);
        }
    }
    write_var_string(&mut out, text);
    write_var_uint(&mut out, 0); // empty delete set
    out
}

/// Yjs clock length of an ASCII string (one unit per character).
pub fn clock_len(text: &str) -> u64 {
    text.encode_utf16().count() as u64
}

/// Successive appends of one Yjs client to its own text: each op is
/// `chunk` placed right after the previous op's last character.
#[derive(Debug, Clone)]
pub struct Chain {
    pub client: u64,
    clock: u64,
    /// The clock the first op starts at (0: a normal chain; more: the
    /// clocks before it are never sent, every op stays pending).
    start: u64,
    chunk: String,
}

impl Chain {
    /// A chain of `client` whose first op has clock `start`.
    pub fn new(client: u64, start: u64, chunk: &str) -> Self {
        Chain {
            client,
            clock: start,
            start,
            chunk: chunk.to_string(),
        }
    }

    /// The next op's update.
    pub fn next_update(&mut self) -> Vec<u8> {
        let origin = (self.clock > 0).then(|| (self.client, self.clock - 1));
        let update = insert(self.client, self.clock, origin, &self.chunk);
        self.clock += clock_len(&self.chunk);
        update
    }

    /// Whether every op so far depends on a clock that was never sent.
    pub fn pending_forever(&self) -> bool {
        self.start > 0
    }
}

/// A fresh random Yjs client id (below 2^53, like Yjs's own).
pub fn random_client() -> u64 {
    fastrand::u64(1 << 20..1 << 53)
}

/// A y-websocket message: sync update carrying `update`.
pub fn y_update(update: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(update.len() + 8);
    write_y_sync(&mut out, SYNC_UPDATE, update);
    out
}

/// Our sync step 1 with an empty state vector.
pub fn y_step1_empty() -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    write_y_sync(&mut out, SYNC_STEP1, &[0]);
    out
}

/// An empty sync step 2 (the answer to the server's step 1).
pub fn y_step2_empty() -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    write_y_sync(&mut out, SYNC_STEP2, &[0, 0]);
    out
}

/// A y-websocket awareness message: one client's state at `clock`.
pub fn y_awareness(client: u64, clock: u64, state_json: &str) -> Vec<u8> {
    let mut update = Vec::with_capacity(state_json.len() + 16);
    write_var_uint(&mut update, 1);
    write_var_uint(&mut update, client);
    write_var_uint(&mut update, clock);
    write_var_string(&mut update, state_json);
    let mut out = Vec::with_capacity(update.len() + 4);
    write_var_uint(&mut out, MESSAGE_AWARENESS);
    crate::varint::write_var_bytes(&mut out, &update);
    out
}

/// The count every bomb declares.
pub const BOMB_COUNT: u64 = 1 << 28;

/// The kinds of allocation bomb, each an 8-byte y-websocket message whose
/// payload starts with a count of 2^28 and then ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bomb {
    /// Sync step 1 whose state vector declares 2^28 clients.
    StateVector,
    /// Sync update whose first varint (number of clients) is 2^28.
    Update,
    /// Awareness update declaring 2^28 clients.
    Awareness,
}

impl Bomb {
    pub const ALL: [Bomb; 3] = [Bomb::StateVector, Bomb::Update, Bomb::Awareness];

    pub fn name(self) -> &'static str {
        match self {
            Bomb::StateVector => "sync step 1",
            Bomb::Update => "update",
            Bomb::Awareness => "awareness",
        }
    }

    /// The 8 bytes of the message.
    pub fn message(self) -> Vec<u8> {
        let mut count = Vec::with_capacity(5);
        write_var_uint(&mut count, BOMB_COUNT);
        let mut out = Vec::with_capacity(8);
        match self {
            Bomb::StateVector => write_y_sync(&mut out, SYNC_STEP1, &count),
            Bomb::Update => write_y_sync(&mut out, SYNC_UPDATE, &count),
            Bomb::Awareness => {
                // One padding byte (a truncated client id) makes it 8 bytes.
                count.push(0x80);
                write_var_uint(&mut out, MESSAGE_AWARENESS);
                crate::varint::write_var_bytes(&mut out, &count);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::varint::Reader;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, ReadTxn, Transact, Update};

    fn apply(doc: &Doc, update: &[u8]) {
        let update = Update::decode_v1(update).expect("decodes");
        doc.transact_mut().apply_update(update).expect("applies");
    }

    #[test]
    fn chains_build_the_text_yrs_sees() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("content");
        let mut a = Chain::new(77, 0, "ab");
        let mut b = Chain::new(300_000, 0, "x");
        for _ in 0..3 {
            apply(&doc, &a.next_update());
        }
        apply(&doc, &b.next_update());
        // Concurrent at the start: the lower client id comes first.
        assert_eq!(text.get_string(&doc.transact()), "abababx");
        assert!(doc.transact().store().pending_update().is_none());
    }

    #[test]
    fn a_chain_that_skips_clock_zero_stays_pending() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("content");
        let mut c = Chain::new(5, 1, "yy");
        assert!(c.pending_forever());
        for _ in 0..4 {
            apply(&doc, &c.next_update());
        }
        assert_eq!(text.get_string(&doc.transact()), "");
        assert!(doc.transact().store().pending_update().is_some());
    }

    #[test]
    fn inserts_without_origin_from_fresh_clients_all_land() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("content");
        for client in 10..20 {
            apply(&doc, &insert(client, 0, None, "z"));
        }
        assert_eq!(text.get_string(&doc.transact()).len(), 10);
    }

    #[test]
    fn bombs_are_eight_bytes_declaring_two_to_the_28() {
        for bomb in Bomb::ALL {
            let m = bomb.message();
            assert_eq!(m.len(), 8, "{}", bomb.name());
            let mut r = Reader::new(&m);
            let kind = r.var_uint().expect("type");
            if kind == 0 {
                r.var_uint().expect("step");
            }
            let payload = r.var_bytes().expect("payload");
            assert_eq!(Reader::new(payload).var_uint(), Ok(BOMB_COUNT));
        }
    }

    #[test]
    fn awareness_messages_decode_with_yrs() {
        let m = y_awareness(42, 7, r#"{"user":"x"}"#);
        let mut r = Reader::new(&m);
        assert_eq!(r.var_uint(), Ok(1));
        let update = yrs::sync::AwarenessUpdate::decode_v1(r.var_bytes().expect("payload"))
            .expect("awareness decodes");
        let entry = update.clients.values().next().expect("one client");
        assert_eq!(entry.clock, 7);
    }
}
