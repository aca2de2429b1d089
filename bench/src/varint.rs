//! lib0 variable-length encodings, as used by Yjs and y-protocols.
//!
//! - `varUint`: 7 bits per byte, least significant group first, high bit set
//!   on every byte but the last.
//! - `varString`: `varUint` byte length, then the UTF-8 bytes.
//! - `varUint8Array`: `varUint` length, then the bytes.

/// Decoding failed: the input ended early or a number does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("truncated or malformed lib0 encoding")
    }
}

impl std::error::Error for DecodeError {}

/// Appends `value` as a lib0 `varUint`.
pub fn write_var_uint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `bytes` as a lib0 `varUint8Array` (length-prefixed bytes).
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var_uint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends `s` as a lib0 `varString`.
pub fn write_var_string(out: &mut Vec<u8>, s: &str) {
    write_var_bytes(out, s.as_bytes());
}

/// A cursor over lib0-encoded bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Whether everything was read.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads a `varUint` (at most 64 bits).
    pub fn var_uint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift >= 64 {
                return Err(DecodeError);
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError)?;
        self.pos = end;
        Ok(out)
    }

    /// Reads a `varUint8Array`.
    pub fn var_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.var_uint()?).map_err(|_| DecodeError)?;
        self.bytes(n)
    }

    /// Reads a `varString` (its bytes; UTF-8 is not checked).
    pub fn var_string(&mut self) -> Result<&'a [u8], DecodeError> {
        self.var_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_uint_round_trips_at_the_byte_boundaries() {
        for v in [
            0u64,
            1,
            127,
            128,
            255,
            16_383,
            16_384,
            u32::MAX as u64,
            1 << 53,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_var_uint(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.var_uint(), Ok(v), "value {v}");
            assert!(r.is_empty());
        }
    }

    #[test]
    fn var_uint_matches_lib0_bytes() {
        // lib0: writeVarUint(300) = [0xac, 0x02]
        let mut out = Vec::new();
        write_var_uint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let mut out = Vec::new();
        write_var_uint(&mut out, 127);
        assert_eq!(out, [0x7f]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert_eq!(Reader::new(&[0x80]).var_uint(), Err(DecodeError));
        assert_eq!(Reader::new(&[3, b'a']).var_bytes(), Err(DecodeError));
        assert_eq!(Reader::new(&[]).u8(), Err(DecodeError));
        // More than 64 bits of continuation bytes.
        assert_eq!(Reader::new(&[0xff; 11]).var_uint(), Err(DecodeError));
    }

    #[test]
    fn strings_and_byte_arrays_round_trip() {
        let mut out = Vec::new();
        write_var_string(&mut out, "doc-é");
        write_var_bytes(&mut out, &[0, 0]);
        let mut r = Reader::new(&out);
        assert_eq!(r.var_string(), Ok("doc-é".as_bytes()));
        assert_eq!(r.var_bytes(), Ok(&[0u8, 0][..]));
        assert!(r.is_empty());
    }
}
