//! The pre-parser of lib0 `Any` values (map values, array contents, `Any`
//! item content, subdocument options), as yrs' `Any::decode` reads them:
//! one tag byte, then
//!
//! | tag | value | then |
//! |---|---|---|
//! | 127, 126, 121, 120 | undefined, null, false, true | nothing |
//! | 125 | integer | a lib0 `varInt` |
//! | 124, 123, 122 | float32, float64, bigint | 4, 8, 8 bytes |
//! | 119 | string | a `varString` |
//! | 118 | map | a `varUint` count of (`varString` key, value) |
//! | 117 | array | a `varUint` count of values |
//! | 116 | buffer | a `varUint8Array` |
//!
//! yrs reserves map and array counts up front and recurses without limit;
//! here each count is checked against the bytes left and maps and arrays
//! nest at most [`MAX_ANY_DEPTH`] deep.

use super::v1_check::Seen;
use super::v1_reader::{Malformed, Reader, Result};

/// Arrays and maps nested deeper than this are refused (yrs would recurse
/// once per level, a stack overflow for a few hundred KiB of input).
pub const MAX_ANY_DEPTH: usize = 64;

const TAG_BUFFER: u8 = 116;
const TAG_ARRAY: u8 = 117;
const TAG_MAP: u8 = 118;
const TAG_STRING: u8 = 119;
const TAG_TRUE: u8 = 120;
const TAG_FALSE: u8 = 121;
const TAG_BIGINT: u8 = 122;
const TAG_FLOAT64: u8 = 123;
const TAG_FLOAT32: u8 = 124;
const TAG_INTEGER: u8 = 125;
const TAG_NULL: u8 = 126;
const TAG_UNDEFINED: u8 = 127;

/// Walks one `Any` value.
pub fn any(reader: &mut Reader<'_>, seen: &mut Seen) -> Result<()> {
    value(reader, seen, 0)
}

/// Walks one value that is inside `depth` arrays and maps.
fn value(reader: &mut Reader<'_>, seen: &mut Seen, depth: usize) -> Result<()> {
    let tag = reader.u8("Any tag")?;
    seen.any_tag(tag);
    match tag {
        TAG_UNDEFINED | TAG_NULL | TAG_FALSE | TAG_TRUE => {}
        TAG_INTEGER => {
            reader.var_i64("Any integer")?;
        }
        TAG_FLOAT32 => {
            reader.exact(4, "Any float32")?;
        }
        TAG_FLOAT64 => {
            reader.exact(8, "Any float64")?;
        }
        TAG_BIGINT => {
            reader.exact(8, "Any bigint")?;
        }
        TAG_STRING => {
            reader.string("Any string")?;
        }
        TAG_BUFFER => {
            reader.buf("Any buffer")?;
        }
        TAG_MAP => {
            enter(depth)?;
            let count = reader.var_u64("Any map size")?;
            // A key (at least its length byte) and a value (its tag).
            reader.check_count(count, "Any map", "entries", 2)?;
            for _ in 0..count {
                reader.string("Any map key")?;
                value(reader, seen, depth + 1)?;
            }
        }
        TAG_ARRAY => {
            enter(depth)?;
            let count = reader.var_u64("Any array length")?;
            reader.check_count(count, "Any array", "values", 1)?;
            for _ in 0..count {
                value(reader, seen, depth + 1)?;
            }
        }
        tag => {
            return Err(Malformed::UnknownTag {
                what: "Any tag",
                tag: u64::from(tag),
            });
        }
    }
    Ok(())
}

/// Refuses an array or map inside [`MAX_ANY_DEPTH`] others.
fn enter(depth: usize) -> Result<()> {
    if depth >= MAX_ANY_DEPTH {
        return Err(Malformed::TooDeep {
            limit: MAX_ANY_DEPTH,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use yrs::Any;
    use yrs::updates::encoder::{Encoder, EncoderV1};

    fn walk(bytes: &[u8]) -> Result<()> {
        let mut reader = Reader::new(bytes);
        any(&mut reader, &mut Seen::default())?;
        reader.finish("Any value")
    }

    fn encoded(value: &Any) -> Vec<u8> {
        let mut encoder = EncoderV1::new();
        encoder.write_any(value);
        encoder.to_vec()
    }

    #[test]
    fn accepts_every_value_yrs_encodes() {
        let nested = Any::from(HashMap::from([
            (
                "list".to_owned(),
                Any::from(vec![Any::Null, Any::from(-3i64)]),
            ),
            ("empty".to_owned(), Any::from(Vec::<Any>::new())),
        ]));
        let values = [
            Any::Undefined,
            Any::Null,
            Any::Bool(true),
            Any::Bool(false),
            Any::from(0i64),
            Any::from(-0x7fff_ffffi64),
            Any::from(i64::MAX),
            Any::from(i64::MIN + 1),
            Any::from(1i64 << 40),
            Any::from(0.5),
            Any::from(0.1),
            Any::from(f64::NAN),
            Any::from("héllo"),
            Any::from(""),
            Any::Buffer(Arc::from(&b"\x00\x01"[..])),
            nested,
        ];
        let mut seen = Seen::default();
        for value in &values {
            let bytes = encoded(value);
            let mut reader = Reader::new(&bytes);
            any(&mut reader, &mut seen).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(reader.left(), 0, "{value:?}");
        }
        assert_eq!(
            seen.any_tags, 0xfff,
            "every tag 116..=127: {:b}",
            seen.any_tags
        );
    }

    #[test]
    fn refuses_counts_larger_than_the_bytes_left() {
        // An array of 2^28 values, an array of arrays of 2^40, a map of
        // 2^64 - 1 entries.
        for (bytes, count) in [
            (vec![117, 0x80, 0x80, 0x80, 0x80, 0x01, 126], 1u64 << 28),
            (
                vec![117, 1, 117, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20],
                1 << 40,
            ),
            (
                vec![
                    118, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                u64::MAX,
            ),
        ] {
            let e = walk(&bytes).expect_err("refused");
            assert!(
                matches!(e, Malformed::TooMany { count: c, .. } if c == count),
                "{e}"
            );
            assert!(e.to_string().contains(&count.to_string()), "{e}");
        }
    }

    #[test]
    fn nests_up_to_the_limit_and_no_deeper() {
        let nest = |levels: usize| {
            let mut bytes = [117u8, 1].repeat(levels);
            bytes.push(126);
            bytes
        };
        walk(&nest(MAX_ANY_DEPTH)).expect("at the limit");
        let e = walk(&nest(MAX_ANY_DEPTH + 1)).expect_err("deeper");
        assert_eq!(e, Malformed::TooDeep { limit: 64 });
        let mut maps = [118u8, 1, 1, b'k'].repeat(100_000);
        maps.push(126);
        assert_eq!(walk(&maps), Err(Malformed::TooDeep { limit: 64 }));
    }

    #[test]
    fn refuses_unknown_tags_truncation_and_overlong_integers() {
        assert!(matches!(
            walk(&[115]),
            Err(Malformed::UnknownTag { tag: 115, .. })
        ));
        assert!(matches!(
            walk(&[123, 0, 0]),
            Err(Malformed::Truncated { needed: 8, .. })
        ));
        assert!(matches!(
            walk(&[119, 5, b'a']),
            Err(Malformed::Truncated { .. })
        ));
        assert!(matches!(
            walk(&[119, 1, 0xff]),
            Err(Malformed::NotUtf8 { .. })
        ));
        let overlong = [
            125, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert!(matches!(
            walk(&overlong),
            Err(Malformed::VarintOver64 { .. })
        ));
    }
}
