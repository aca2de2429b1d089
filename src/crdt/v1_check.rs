//! The validating pre-parser of the lib0 v1 binaries clients send: Yjs
//! updates, state vectors and y-protocols awareness updates.
//!
//! yrs' decoders reserve memory for the number of entries a binary
//! declares before reading any of them, so 8 bytes declaring 2^28 entries
//! make it reserve hundreds of MiB. These functions walk the whole input
//! the way yrs 0.28 reads it and check every count against the bytes that
//! are actually left (each entry taking at least one byte, or at least
//! `k` where its smallest encoding has `k`), so a binary they accept holds
//! no count yrs could over-reserve for. They also refuse truncation,
//! varints over 64 bits or over the 32-bit fields yrs reads them into,
//! clocks past `u32::MAX`, `Any` values nested deeper than
//! [`super::v1_any::MAX_ANY_DEPTH`], unknown tags and trailing bytes.
//! They allocate nothing.

use super::v1_reader::{Malformed, Reader, Result};
use super::v1_struct::client_structs;

/// What a walk met, one bit per kind: the tests use it to show that
/// real updates exercise every branch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Bit `n`: a struct with info `n` (0 GC, 10 skip) or an item with
    /// content ref `n` (1 to 9).
    pub structs: u16,
    /// Bit `n`: a type content with type ref `n`.
    pub type_refs: u16,
    /// Bit `tag - 116`: an `Any` value with that tag.
    pub any_tags: u16,
}

impl Seen {
    pub fn struct_kind(&mut self, kind: u8) {
        self.structs |= 1u16.checked_shl(u32::from(kind)).unwrap_or(0);
    }

    pub fn type_ref(&mut self, type_ref: u8) {
        self.type_refs |= 1u16.checked_shl(u32::from(type_ref)).unwrap_or(0);
    }

    pub fn any_tag(&mut self, tag: u8) {
        if let Some(bit) = tag.checked_sub(116) {
            self.any_tags |= 1u16.checked_shl(u32::from(bit)).unwrap_or(0);
        }
    }
}

/// Checks a v1 update: the structs of each client, then the delete set
/// (`Update::decode` in yrs' `src/update.rs`).
pub fn update(data: &[u8]) -> Result<Seen> {
    let mut reader = Reader::new(data);
    let mut seen = Seen::default();
    let clients = reader.var_u32("update client count")?;
    // A struct count, a client id and a clock.
    reader.check_count(u64::from(clients), "update", "clients", 3)?;
    for _ in 0..clients {
        client_structs(&mut reader, &mut seen)?;
    }
    delete_set(&mut reader)?;
    reader.finish("update")?;
    Ok(seen)
}

/// The delete set ending an update: per client, ranges of (clock,
/// length) (`IdSet::decode` and `IdRange::decode` in yrs'
/// `src/id_set.rs`, which add clock and length in `u32`).
fn delete_set(reader: &mut Reader<'_>) -> Result<()> {
    let clients = reader.var_u32("delete set client count")?;
    // A client id and a range count.
    reader.check_count(u64::from(clients), "delete set", "clients", 2)?;
    for _ in 0..clients {
        reader.var_u64("delete set client id")?;
        let ranges = reader.var_u32("delete range count")?;
        // A clock and a length.
        reader.check_count(u64::from(ranges), "a delete set client", "ranges", 2)?;
        for _ in 0..ranges {
            let clock = reader.var_u32("deleted clock")?;
            let len = reader.var_u32("deleted length")?;
            if clock.checked_add(len).is_none() {
                return Err(Malformed::ClockOverflow {
                    what: "a delete range",
                });
            }
        }
    }
    Ok(())
}

/// Checks a v1 state vector: a count of (client, clock)
/// (`StateVector::decode` in yrs' `src/state_vector.rs`).
pub fn state_vector(data: &[u8]) -> Result<()> {
    let mut reader = Reader::new(data);
    let entries = reader.var_u32("state vector entry count")?;
    reader.check_count(u64::from(entries), "state vector", "entries", 2)?;
    for _ in 0..entries {
        reader.var_u64("state vector client id")?;
        reader.var_u32("state vector clock")?;
    }
    reader.finish("state vector")
}

/// Checks a y-protocols awareness update: a count of (client, clock, JSON
/// state) (`AwarenessUpdate::decode` in yrs' `src/sync/awareness.rs`).
pub fn awareness(data: &[u8]) -> Result<()> {
    let mut reader = Reader::new(data);
    let clients = reader.var_u64("awareness client count")?;
    reader.check_count(clients, "awareness update", "clients", 3)?;
    for _ in 0..clients {
        reader.var_u64("awareness client id")?;
        reader.var_u32("awareness clock")?;
        reader.string("awareness state")?;
    }
    reader.finish("awareness update")
}
