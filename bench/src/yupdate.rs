//! Just enough of the Yjs v1 update decoder to tell which ops an update
//! carries: for each client section, the client id and the clock range of
//! its structs.
//!
//! Encoding (Yjs `writeStructs` / yrs `encode_update_v1`):
//! `varUint numClients`, then per client `varUint numStructs`,
//! `varUint client`, `varUint clock` and the structs, then the delete set
//! (ignored here). A struct is an info byte followed by, for an item, its
//! origins or parent and its content; GC and Skip structs only carry a length.
//! The length of a struct is its clock span (for strings: UTF-16 units).

use crate::varint::{DecodeError, Reader};

/// The structs of one client in an update: clocks `clock..clock + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRange {
    pub client: u64,
    pub clock: u64,
    pub len: u64,
}

const BIT8: u8 = 0x80; // has origin
const BIT7: u8 = 0x40; // has right origin
const BIT6: u8 = 0x20; // has parentSub
const BITS5: u8 = 0x1f; // content ref

/// Calls `f` for every client section of a v1 update. Stops at the first
/// struct whose content this decoder does not know (`Any`, `Doc`) with an
/// error; sections reported before stay reported.
pub fn for_each_client_range(
    update: &[u8],
    mut f: impl FnMut(ClientRange),
) -> Result<(), DecodeError> {
    let mut r = Reader::new(update);
    let clients = r.var_uint()?;
    for _ in 0..clients {
        let structs = r.var_uint()?;
        let client = r.var_uint()?;
        let clock = r.var_uint()?;
        let mut len = 0u64;
        for _ in 0..structs {
            len += struct_len(&mut r)?;
        }
        f(ClientRange { client, clock, len });
    }
    Ok(())
}

/// Collects the client sections of a v1 update (convenience for tests and
/// generation checks; the hot path uses [`for_each_client_range`]).
pub fn client_ranges(update: &[u8]) -> Result<Vec<ClientRange>, DecodeError> {
    let mut out = Vec::new();
    for_each_client_range(update, |c| out.push(c))?;
    Ok(out)
}

/// Reads one struct and returns its clock length.
fn struct_len(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    let info = r.u8()?;
    match info & BITS5 {
        0 | 10 => return r.var_uint(), // GC, Skip
        _ => {}
    }
    if info & BIT8 != 0 {
        r.var_uint()?;
        r.var_uint()?;
    }
    if info & BIT7 != 0 {
        r.var_uint()?;
        r.var_uint()?;
    }
    if info & (BIT7 | BIT8) == 0 {
        if r.var_uint()? == 1 {
            r.var_string()?; // root type name
        } else {
            r.var_uint()?; // parent item id
            r.var_uint()?;
        }
        if info & BIT6 != 0 {
            r.var_string()?;
        }
    }
    content_len(r, info & BITS5)
}

/// Reads an item's content of type `content_ref` and returns its length.
fn content_len(r: &mut Reader<'_>, content_ref: u8) -> Result<u64, DecodeError> {
    match content_ref {
        1 => r.var_uint(), // Deleted
        2 => {
            // JSON: count, then that many strings
            let n = r.var_uint()?;
            for _ in 0..n {
                r.var_string()?;
            }
            Ok(n)
        }
        3 => r.var_bytes().map(|_| 1), // Binary
        4 => r.var_string().map(utf16_len),
        5 => r.var_string().map(|_| 1), // Embed
        6 => {
            // Format: key, value
            r.var_string()?;
            r.var_string()?;
            Ok(1)
        }
        7 => {
            // Type: type ref; XmlElement (3) and XmlHook (5) carry a name
            let type_ref = r.var_uint()?;
            if type_ref == 3 || type_ref == 5 {
                r.var_string()?;
            }
            Ok(1)
        }
        _ => Err(DecodeError), // Any, Doc, or garbage
    }
}

/// Length in UTF-16 code units of UTF-8 bytes (what Yjs counts for strings).
fn utf16_len(bytes: &[u8]) -> u64 {
    let mut n = 0u64;
    for &b in bytes {
        if b & 0xc0 != 0x80 {
            n += 1; // start of a code point
        }
        if b >= 0xf0 {
            n += 1; // 4-byte sequence: a surrogate pair
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

    fn doc(client: u64) -> Doc {
        Doc::with_client_id(client)
    }

    #[test]
    fn single_character_inserts_by_yrs_give_client_and_clock() {
        let d = doc(4242);
        let text = d.get_or_insert_text("content");
        for k in 0..300u64 {
            let mut txn = d.transact_mut();
            let end = text.len(&txn);
            text.insert(&mut txn, end, "x");
            let update = txn.encode_update_v1();
            assert_eq!(
                client_ranges(&update),
                Ok(vec![ClientRange {
                    client: 4242,
                    clock: k,
                    len: 1
                }]),
                "insert {k}"
            );
        }
    }

    #[test]
    fn merged_updates_of_several_clients_are_all_reported() {
        let mut updates = Vec::new();
        for client in [7u64, 300_000] {
            let d = doc(client);
            let text = d.get_or_insert_text("content");
            for _ in 0..3 {
                let mut txn = d.transact_mut();
                let end = text.len(&txn);
                text.insert(&mut txn, end, "ab");
                updates.push(txn.encode_update_v1());
            }
        }
        let merged = yrs::merge_updates_v1(&updates).expect("merge");
        let mut ranges = client_ranges(&merged).expect("parse");
        ranges.sort_by_key(|r| r.client);
        assert_eq!(
            ranges,
            vec![
                ClientRange {
                    client: 7,
                    clock: 0,
                    len: 6
                },
                ClientRange {
                    client: 300_000,
                    clock: 0,
                    len: 6
                }
            ]
        );
    }

    #[test]
    fn a_full_state_with_a_deletion_parses() {
        let d = doc(9);
        let text = d.get_or_insert_text("content");
        {
            let mut txn = d.transact_mut();
            text.insert(&mut txn, 0, "héllo 😀");
            text.remove_range(&mut txn, 0, 3); // "hé": offsets are UTF-8 bytes
        }
        let state = d.transact().encode_state_as_update_v1(&Default::default());
        let ranges = client_ranges(&state).expect("parse");
        // "héllo 😀" is 8 UTF-16 units: h é l l o ␠ and a surrogate pair.
        assert_eq!(
            ranges,
            vec![ClientRange {
                client: 9,
                clock: 0,
                len: 8
            }]
        );
        // Sanity: yrs agrees the state is valid and holds the text.
        let other = Doc::new();
        let t2 = other.get_or_insert_text("content");
        other
            .transact_mut()
            .apply_update(Update::decode_v1(&state).expect("decode"))
            .expect("apply");
        assert_eq!(t2.get_string(&other.transact()), "llo 😀");
    }

    #[test]
    fn the_empty_update_has_no_sections_and_garbage_is_an_error() {
        assert_eq!(client_ranges(&[0, 0]), Ok(vec![]));
        assert_eq!(client_ranges(&[1, 1]), Err(DecodeError));
        assert_eq!(client_ranges(&[]), Err(DecodeError));
    }
}
