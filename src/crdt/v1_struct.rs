//! The pre-parser of the structs of an update (GC, skip, item), in the
//! order yrs 0.28's `Update::decode_block` and `ItemContent::decode` read
//! them (`src/update.rs`, `src/block.rs` of the yrs crate):
//!
//! - a struct starts with an info byte: exactly 0 is a GC struct and
//!   exactly 10 a skip struct, each followed by a non-zero length;
//! - anything else is an item: bit 7 says an origin id follows, bit 6 a
//!   right-origin id; with neither, a parent (`varUint` 1 and a root type
//!   name, or 0 and the id of the parent item) and, when bit 5 is set, a
//!   parent sub (the map key) follow. The low five bits are the content
//!   ref, 1 to 9, and the content follows last.
//!
//! An id is a `varUint` client and a `varUint` (32-bit) clock.

use super::v1_any::any;
use super::v1_check::Seen;
use super::v1_reader::{Malformed, Reader, Result};

/// Info byte of a GC struct.
const GC: u8 = 0;
/// Info byte of a skip struct (a gap in an update of pending content).
const SKIP: u8 = 10;
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
/// Bits of the info byte that hold the content ref (as Yjs reads them;
/// yrs never sets bit 4).
const CONTENT_REF: u8 = 0b0001_1111;

const DELETED: u8 = 1;
const JSON: u8 = 2;
const BINARY: u8 = 3;
const STRING: u8 = 4;
const EMBED: u8 = 5;
const FORMAT: u8 = 6;
const TYPE: u8 = 7;
const ANY: u8 = 8;
const DOC: u8 = 9;

/// Type refs of yrs' `TypeRef::decode` (yrs is built without its `weak`
/// feature, so 7, weak links, is unknown to it too).
const XML_ELEMENT: u8 = 3;
const KNOWN_TYPE_REFS: [u8; 9] = [0, 1, 2, XML_ELEMENT, 4, 5, 6, 9, 15];

/// Walks the structs of one client (their count, the client id, the clock
/// of the first) and refuses clocks past `u32::MAX`, which yrs would add
/// up in a `u32`.
pub fn client_structs(reader: &mut Reader<'_>, seen: &mut Seen) -> Result<()> {
    let count = reader.var_u32("struct count")?;
    reader.var_u64("client id of a struct list")?;
    let clock = reader.var_u32("first clock of a struct list")?;
    // The smallest struct, GC or skip, is an info byte and a length.
    reader.check_count(u64::from(count), "a client's struct list", "structs", 2)?;
    let mut end = u64::from(clock);
    for _ in 0..count {
        end += one_struct(reader, seen)?;
        if end > u64::from(u32::MAX) {
            return Err(Malformed::ClockOverflow {
                what: "a client's struct list",
            });
        }
    }
    Ok(())
}

/// Walks one struct; answers its length in clocks, as yrs counts it.
fn one_struct(reader: &mut Reader<'_>, seen: &mut Seen) -> Result<u64> {
    let info = reader.u8("struct info")?;
    match info {
        GC | SKIP => {
            seen.struct_kind(info);
            let what = if info == GC {
                "GC struct"
            } else {
                "skip struct"
            };
            match reader.var_u32(what)? {
                0 => Err(Malformed::EmptyStruct { what }),
                len => Ok(u64::from(len)),
            }
        }
        info => item(reader, info, seen),
    }
}

/// Walks an item after its info byte.
fn item(reader: &mut Reader<'_>, info: u8, seen: &mut Seen) -> Result<u64> {
    let content_ref = info & CONTENT_REF;
    if !(DELETED..=DOC).contains(&content_ref) {
        return Err(Malformed::UnknownTag {
            what: "item content ref",
            tag: u64::from(content_ref),
        });
    }
    if info & HAS_ORIGIN != 0 {
        id(reader, "origin")?;
    }
    if info & HAS_RIGHT_ORIGIN != 0 {
        id(reader, "right origin")?;
    }
    if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
        match reader.var_u32("parent info")? {
            1 => {
                reader.string("root type name")?;
            }
            0 => id(reader, "parent id")?,
            other => {
                return Err(Malformed::UnknownTag {
                    what: "parent info",
                    tag: u64::from(other),
                });
            }
        }
        if info & HAS_PARENT_SUB != 0 {
            reader.string("parent sub (map key)")?;
        }
    }
    seen.struct_kind(content_ref);
    content(reader, content_ref, seen)
}

fn id(reader: &mut Reader<'_>, what: &'static str) -> Result<()> {
    reader.var_u64(what)?;
    reader.var_u32(what)?;
    Ok(())
}

/// Walks an item's content; answers its length in clocks (`len_utf16` of
/// yrs' `ItemContent`: UTF-16 units of a string, entries of JSON and
/// `Any` content, the length of deleted content, 1 for the others).
fn content(reader: &mut Reader<'_>, content_ref: u8, seen: &mut Seen) -> Result<u64> {
    Ok(match content_ref {
        DELETED => u64::from(reader.var_u32("deleted content length")?),
        JSON => json_strings(reader)?,
        BINARY => {
            reader.buf("binary content")?;
            1
        }
        STRING => reader.string("string content")?.encode_utf16().count() as u64,
        EMBED => {
            reader.string("embed content (JSON)")?;
            1
        }
        FORMAT => {
            reader.string("format key")?;
            reader.string("format value (JSON)")?;
            1
        }
        TYPE => {
            type_ref(reader, seen)?;
            1
        }
        ANY => {
            let count = reader.var_u32("Any content length")?;
            reader.check_count(u64::from(count), "Any content", "values", 1)?;
            for _ in 0..count {
                any(reader, seen)?;
            }
            u64::from(count)
        }
        DOC => {
            reader.string("subdocument guid")?;
            any(reader, seen)?;
            1
        }
        other => {
            return Err(Malformed::UnknownTag {
                what: "item content ref",
                tag: u64::from(other),
            });
        }
    })
}

/// JSON content (legacy Yjs `ContentJSON`). yrs 0.28 reserves the count
/// it reads and then reads one string more than that count (its loop runs
/// while the remaining count is >= 0), so the walk does the same to stay
/// in step with it; a count over `i32::MAX` it would turn negative.
fn json_strings(reader: &mut Reader<'_>) -> Result<u64> {
    let count = reader.var_u32("JSON content string count")?;
    if count > i32::MAX as u32 {
        return Err(Malformed::TooLarge {
            what: "JSON content string count",
            value: u64::from(count),
            bits: 31,
        });
    }
    reader.check_count(u64::from(count), "JSON content", "strings", 1)?;
    let strings = u64::from(count) + 1;
    for _ in 0..strings {
        reader.string("JSON content string")?;
    }
    Ok(strings)
}

/// The type ref of a type content: one byte, an XML element's name after
/// 3. (yrs reads no name after 5, an XML hook, and writes none.)
fn type_ref(reader: &mut Reader<'_>, seen: &mut Seen) -> Result<()> {
    let type_ref = reader.u8("type ref")?;
    if !KNOWN_TYPE_REFS.contains(&type_ref) {
        return Err(Malformed::UnknownTag {
            what: "type ref",
            tag: u64::from(type_ref),
        });
    }
    seen.type_ref(type_ref);
    if type_ref == XML_ELEMENT {
        reader.string("XML element name")?;
    }
    Ok(())
}
