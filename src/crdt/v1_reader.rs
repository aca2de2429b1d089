//! A bounds-checked reader of lib0 v1 primitives (the encoding of Yjs
//! updates, state vectors and awareness updates), and [`Malformed`], what
//! the pre-parser says about input it refuses.
//!
//! Every read checks the bytes actually left first and nothing here
//! allocates from a value read from the input. The integer reads refuse
//! more than yrs does: a varint over 64 bits, or over the 32 bits of the
//! field yrs reads it into (where yrs would silently wrap).

use std::fmt;

/// Why a lib0 v1 binary was refused: each variant names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// A count of entries that cannot all be present: `count` entries of at
    /// least `each` bytes in only `left` bytes.
    #[error("{subject} declares {count} {entries} but only {left} bytes follow{}", EachTakes(*each))]
    TooMany {
        subject: &'static str,
        count: u64,
        entries: &'static str,
        each: usize,
        left: usize,
    },
    /// The input ends inside `what`.
    #[error("truncated {what}: {needed} bytes needed, {left} left")]
    Truncated {
        what: &'static str,
        needed: u64,
        left: usize,
    },
    /// A varint runs on past 64 bits (ten bytes).
    #[error("{what} is a varint of more than 64 bits")]
    VarintOver64 { what: &'static str },
    /// A value larger than the integer yrs reads it into.
    #[error("{what} is {value}, more than the {bits}-bit field holds")]
    TooLarge {
        what: &'static str,
        value: u64,
        bits: u32,
    },
    /// A tag (struct info, content ref, type ref, `Any` tag, parent info)
    /// that yrs does not know.
    #[error("{what} {tag} is unknown")]
    UnknownTag { what: &'static str, tag: u64 },
    /// A string that is not UTF-8.
    #[error("{what} is not UTF-8")]
    NotUtf8 { what: &'static str },
    /// A GC or skip struct of length 0 (yrs refuses them too).
    #[error("{what} has length 0")]
    EmptyStruct { what: &'static str },
    /// Clocks past `u32::MAX` (yrs adds them in `u32`).
    #[error("{what} runs past clock {max}", max = u32::MAX)]
    ClockOverflow { what: &'static str },
    /// Nested `Any` arrays and maps deeper than the limit.
    #[error("Any value nests arrays and maps deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// Bytes after the end of the structure.
    #[error("{left} bytes follow the end of the {what}")]
    Trailing { what: &'static str, left: usize },
}

/// The "(each takes at least k)" tail of a [`Malformed::TooMany`] message.
struct EachTakes(usize);

impl fmt::Display for EachTakes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 | 1 => Ok(()),
            k => write!(f, " (each takes at least {k})"),
        }
    }
}

pub type Result<T> = std::result::Result<T, Malformed>;

/// A cursor over one lib0 v1 binary: `data` is the whole input, `at` the
/// offset of the next unread byte.
pub struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, at: 0 }
    }

    /// Bytes not read yet.
    pub fn left(&self) -> usize {
        self.data.len() - self.at
    }

    /// Refuses bytes after the end of `what`.
    pub fn finish(&self, what: &'static str) -> Result<()> {
        match self.left() {
            0 => Ok(()),
            left => Err(Malformed::Trailing { what, left }),
        }
    }

    /// One raw byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.exact(1, what)?[0])
    }

    /// The next `len` bytes.
    pub fn exact(&mut self, len: u64, what: &'static str) -> Result<&'a [u8]> {
        let left = self.left();
        let Some(len) = usize::try_from(len).ok().filter(|len| *len <= left) else {
            return Err(Malformed::Truncated {
                what,
                needed: len,
                left,
            });
        };
        let bytes = &self.data[self.at..self.at + len];
        self.at += len;
        Ok(bytes)
    }

    /// lib0 `varUint` of at most 64 bits.
    pub fn var_u64(&mut self, what: &'static str) -> Result<u64> {
        let mut value = 0u64;
        for index in 0..10 {
            let byte = self.exact(1, what)?[0];
            // The tenth byte holds bit 63 only, and ends the varint.
            if index == 9 && byte > 1 {
                return Err(Malformed::VarintOver64 { what });
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed::VarintOver64 { what })
    }

    /// lib0 `varUint` read into a `u32` by yrs.
    pub fn var_u32(&mut self, what: &'static str) -> Result<u32> {
        let value = self.var_u64(what)?;
        u32::try_from(value).map_err(|_| Malformed::TooLarge {
            what,
            value,
            bits: 32,
        })
    }

    /// lib0 `varInt`: sign in bit 6 of the first byte, magnitude of at
    /// most 63 bits.
    pub fn var_i64(&mut self, what: &'static str) -> Result<i64> {
        let first = self.exact(1, what)?[0];
        let negative = first & 0x40 != 0;
        let mut magnitude = u64::from(first & 0x3f);
        let mut more = first & 0x80 != 0;
        let mut shift = 6;
        while more {
            let byte = self.exact(1, what)?[0];
            // Bits 62 and up: only bit 62 fits a positive i64 magnitude.
            if shift == 62 && byte > 1 {
                return Err(Malformed::VarintOver64 { what });
            }
            magnitude |= u64::from(byte & 0x7f) << shift;
            more = byte & 0x80 != 0;
            shift += 7;
        }
        let magnitude = i64::try_from(magnitude).map_err(|_| Malformed::VarintOver64 { what })?;
        Ok(if negative { -magnitude } else { magnitude })
    }

    /// A count of entries that each take at least `each` bytes, checked
    /// against the bytes left: the count yrs reserves for.
    pub fn check_count(
        &self,
        count: u64,
        subject: &'static str,
        entries: &'static str,
        each: usize,
    ) -> Result<u64> {
        let left = self.left();
        let room = (left / each.max(1)) as u64;
        if count > room {
            return Err(Malformed::TooMany {
                subject,
                count,
                entries,
                each,
                left,
            });
        }
        Ok(count)
    }

    /// lib0 `varUint8Array`: a `u32` length (as yrs reads it) and the bytes.
    pub fn buf(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let len = self.var_u32(what)?;
        self.exact(u64::from(len), what)
    }

    /// lib0 `varString`: a [`Reader::buf`] of UTF-8.
    pub fn string(&mut self, what: &'static str) -> Result<&'a str> {
        let bytes = self.buf(what)?;
        std::str::from_utf8(bytes).map_err(|_| Malformed::NotUtf8 { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::encoding::write::Write;

    fn written<T: yrs::encoding::varint::VarInt>(value: T) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.write_var(value);
        bytes
    }

    #[test]
    fn reads_the_varints_yrs_writes() {
        for value in [
            0u64,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            1 << 40,
            u64::MAX,
        ] {
            let bytes = written(value);
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.var_u64("n"), Ok(value));
            assert_eq!(reader.left(), 0);
        }
        for value in [0i64, 63, 64, -1, -64, -65, 1 << 40, i64::MAX, -i64::MAX] {
            let bytes = written(value);
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.var_i64("n"), Ok(value), "{bytes:?}");
            assert_eq!(reader.left(), 0);
        }
        // Not the shortest form, as lib0 would write it, but still one value.
        assert_eq!(Reader::new(&[0x80, 0x80, 0x00]).var_u64("n"), Ok(0));
    }

    #[test]
    fn refuses_varints_over_64_bits_or_over_the_field() {
        let mut over = vec![0xff; 9];
        over.push(0x02);
        let e = Reader::new(&over).var_u64("count").expect_err("65 bits");
        assert_eq!(e, Malformed::VarintOver64 { what: "count" });
        assert_eq!(e.to_string(), "count is a varint of more than 64 bits");
        let mut eleven = vec![0x80; 10];
        eleven.push(0x00);
        assert!(Reader::new(&eleven).var_u64("count").is_err());
        assert!(Reader::new(&eleven).var_i64("count").is_err());
        let mut signed = vec![0xff; 9];
        signed.push(0x02);
        assert!(Reader::new(&signed).var_i64("count").is_err());

        assert_eq!(
            Reader::new(&written(u64::from(u32::MAX))).var_u32("clock"),
            Ok(u32::MAX)
        );
        let e = Reader::new(&written(1u64 << 32))
            .var_u32("clock")
            .expect_err("33 bits");
        assert_eq!(
            e.to_string(),
            "clock is 4294967296, more than the 32-bit field holds"
        );
    }

    #[test]
    fn refuses_truncation_and_counts_beyond_the_bytes_left() {
        let e = Reader::new(&[0x80]).var_u64("count").expect_err("cut");
        assert_eq!(e.to_string(), "truncated count: 1 bytes needed, 0 left");
        let e = Reader::new(&[5, b'a', b'b'])
            .string("name")
            .expect_err("cut");
        assert_eq!(e.to_string(), "truncated name: 5 bytes needed, 2 left");
        assert!(matches!(
            Reader::new(&[2, 0xc3, 0x28]).string("name"),
            Err(Malformed::NotUtf8 { what: "name" })
        ));

        let reader = Reader::new(&[0; 6]);
        assert_eq!(reader.check_count(3, "list", "pairs", 2), Ok(3));
        let e = reader
            .check_count(4, "list", "pairs", 2)
            .expect_err("too many");
        assert_eq!(
            e.to_string(),
            "list declares 4 pairs but only 6 bytes follow (each takes at least 2)"
        );
        let e = reader
            .check_count(u64::MAX, "list", "items", 1)
            .expect_err("");
        assert_eq!(
            e.to_string(),
            "list declares 18446744073709551615 items but only 6 bytes follow"
        );
        assert_eq!(
            Reader::new(&[1]).finish("thing"),
            Err(Malformed::Trailing {
                what: "thing",
                left: 1
            })
        );
    }
}
