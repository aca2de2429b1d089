//! A minimal WebSocket client (RFC 6455), built for counting a million
//! frames a second on one core: the upgrade handshake, masked client frames
//! written into a caller's buffer, and a frame parser over a receive buffer
//! that hands out payloads as borrowed slices (no allocation per frame).
//!
//! No extensions are negotiated (no permessage-deflate), so frames are plain.

use std::io;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;

/// Largest handshake response accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Where to connect: `host:port` and the path prefix of a `ws://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    pub authority: String,
    pub path: String,
}

impl WsUrl {
    /// Parses `ws://host:port[/path]` (no TLS, no query).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("URL must start with ws://, got {url:?}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || !authority.contains(':') {
            return Err(format!("URL needs host:port, got {url:?}"));
        }
        Ok(WsUrl {
            authority: authority.to_string(),
            path: path.trim_end_matches('/').to_string(),
        })
    }
}

/// Opens a TCP connection to `authority`, performs the WebSocket upgrade
/// for `path` and returns the stream plus any frame bytes that arrived with
/// the response.
pub async fn connect(authority: &str, path: &str) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let key = base64::engine::general_purpose::STANDARD.encode(fastrand::u128(..).to_le_bytes());
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed during the WebSocket handshake",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_RESPONSE_HEAD {
            return Err(io::Error::other("handshake response too long"));
        }
    };
    let status_line = head[..end]
        .split(|&b| b == b'\r')
        .next()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    if !status_line.starts_with("HTTP/1.1 101") {
        return Err(io::Error::other(format!(
            "upgrade of {path} refused: {status_line}"
        )));
    }
    Ok((stream, head[end..].to_vec()))
}

/// Appends a masked client frame (FIN set) with `payload` to `out`.
pub fn encode_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = fastrand::u32(..).to_ne_bytes();
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Appends a close frame with `code` (and no reason) to `out`.
pub fn encode_close(out: &mut Vec<u8>, code: u16) {
    encode_client_frame(out, OP_CLOSE, &code.to_be_bytes());
}

/// A frame header as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: u8,
    pub header_len: usize,
    pub payload_len: usize,
    pub mask: Option<[u8; 4]>,
}

/// A peer sent something that is not a WebSocket frame we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad WebSocket frame: {}", self.0)
    }
}

impl std::error::Error for FrameError {}

/// Parses the header at the start of `buf`; `Ok(None)` when more bytes are
/// needed.
pub fn parse_header(buf: &[u8]) -> Result<Option<FrameHeader>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let b0 = buf[0];
    let b1 = buf[1];
    if b0 & 0x70 != 0 {
        return Err(FrameError(format!("reserved bits set (0x{b0:02x})")));
    }
    let mut pos = 2;
    let payload_len = match b1 & 0x7f {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            pos = 4;
            usize::from(u16::from_be_bytes([b[0], b[1]]))
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            pos = 10;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            usize::try_from(u64::from_be_bytes(a))
                .map_err(|_| FrameError("payload length overflows".into()))?
        }
        n => usize::from(n),
    };
    let mask = if b1 & 0x80 != 0 {
        let Some(b) = buf.get(pos..pos + 4) else {
            return Ok(None);
        };
        pos += 4;
        Some([b[0], b[1], b[2], b[3]])
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        header_len: pos,
        payload_len,
        mask,
    }))
}

/// A complete message or control frame taken from a [`RecvBuf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A text or binary message; its payload is [`RecvBuf::payload`].
    Data {
        opcode: u8,
    },
    Ping,
    Pong,
    /// A close frame with its status code, if any.
    Close(Option<u16>),
}

/// Receive buffer of one connection: bytes read from the socket, parsed into
/// frames in place. Fragmented messages are reassembled (copied).
pub struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Payload of the current frame: a range of `buf`, or `assembled`.
    current: (usize, usize),
    current_assembled: bool,
    assembled: Vec<u8>,
    fragments: Option<(u8, Vec<u8>)>,
}

impl RecvBuf {
    /// A buffer of `capacity` bytes, starting with `initial` (bytes that
    /// arrived with the handshake response).
    pub fn new(capacity: usize, initial: &[u8]) -> Self {
        let mut buf = vec![0u8; capacity.max(initial.len() * 2).max(4096)];
        buf[..initial.len()].copy_from_slice(initial);
        RecvBuf {
            buf,
            start: 0,
            end: initial.len(),
            current: (0, 0),
            current_assembled: false,
            assembled: Vec::new(),
            fragments: None,
        }
    }

    /// Reads what the socket has (waiting until it has something).
    /// Returns the number of bytes read, 0 at end of stream.
    pub async fn fill(&mut self, stream: &TcpStream) -> io::Result<usize> {
        loop {
            stream.readable().await?;
            match self.try_fill(stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    /// Reads what the socket has without waiting (`WouldBlock` when it has
    /// nothing). Returns the number of bytes read, 0 at end of stream.
    pub fn try_fill(&mut self, stream: &TcpStream) -> io::Result<usize> {
        if self.start > 0 && (self.start == self.end || self.start > self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let len = self.buf.len();
            self.buf.resize(len * 2, 0);
        }
        let n = stream.try_read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// The next complete frame in the buffer, or `Ok(None)` when more bytes
    /// must be read first. Continuation frames are folded into their message.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            let Some(h) = parse_header(&self.buf[self.start..self.end])? else {
                return Ok(None);
            };
            let total = h.header_len + h.payload_len;
            if self.end - self.start < total {
                // Make sure a large frame fits once the buffer is compacted.
                if total > self.buf.len() {
                    self.buf.resize(total.next_power_of_two(), 0);
                }
                return Ok(None);
            }
            let p0 = self.start + h.header_len;
            let p1 = p0 + h.payload_len;
            self.start += total;
            if let Some(mask) = h.mask {
                for (i, b) in self.buf[p0..p1].iter_mut().enumerate() {
                    *b ^= mask[i & 3];
                }
            }
            self.current = (p0, p1);
            self.current_assembled = false;
            match h.opcode {
                OP_TEXT | OP_BINARY if h.fin => return Ok(Some(Frame::Data { opcode: h.opcode })),
                OP_TEXT | OP_BINARY => {
                    self.fragments = Some((h.opcode, self.buf[p0..p1].to_vec()));
                }
                OP_CONTINUATION => {
                    let Some((opcode, mut data)) = self.fragments.take() else {
                        return Err(FrameError("continuation without a first frame".into()));
                    };
                    data.extend_from_slice(&self.buf[p0..p1]);
                    if h.fin {
                        self.assembled = data;
                        self.current_assembled = true;
                        return Ok(Some(Frame::Data { opcode }));
                    }
                    self.fragments = Some((opcode, data));
                }
                OP_PING => return Ok(Some(Frame::Ping)),
                OP_PONG => return Ok(Some(Frame::Pong)),
                OP_CLOSE => {
                    let p = &self.buf[p0..p1];
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    return Ok(Some(Frame::Close(code)));
                }
                other => return Err(FrameError(format!("unknown opcode {other}"))),
            }
        }
    }

    /// Payload of the frame last returned by [`RecvBuf::next_frame`].
    pub fn payload(&self) -> &[u8] {
        if self.current_assembled {
            &self.assembled
        } else {
            &self.buf[self.current.0..self.current.1]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(bytes: &[u8]) -> Vec<(Frame, Vec<u8>)> {
        let mut rb = RecvBuf::new(8, bytes);
        let mut out = Vec::new();
        while let Some(f) = rb.next_frame().expect("valid frames") {
            out.push((f, rb.payload().to_vec()));
        }
        out
    }

    #[test]
    fn masked_frames_of_every_length_class_parse_back() {
        for len in [0usize, 1, 125, 126, 65_535, 65_536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = Vec::new();
            encode_client_frame(&mut out, OP_BINARY, &payload);
            let h = parse_header(&out).expect("ok").expect("complete");
            assert!(h.fin && h.mask.is_some());
            assert_eq!(h.payload_len, len);
            assert_eq!(h.header_len + len, out.len());
            let frames = frames_of(&out);
            assert_eq!(
                frames,
                vec![(Frame::Data { opcode: OP_BINARY }, payload)],
                "len {len}"
            );
        }
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut out = Vec::new();
        encode_client_frame(&mut out, OP_TEXT, b"hello");
        for cut in 0..out.len() {
            assert_eq!(
                RecvBuf::new(64, &out[..cut]).next_frame(),
                Ok(None),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn server_frames_control_frames_and_fragments() {
        // Unmasked server frames: "ab" in two fragments with a ping between,
        // then a close with code 1013.
        let bytes = [
            0x01, 1, b'a', // text, not FIN
            0x89, 1, b'p', // ping
            0x80, 1, b'b', // continuation, FIN
            0x88, 2, 0x03, 0xf5, // close 1013
        ];
        assert_eq!(
            frames_of(&bytes),
            vec![
                (Frame::Ping, b"p".to_vec()),
                (Frame::Data { opcode: OP_TEXT }, b"ab".to_vec()),
                (Frame::Close(Some(1013)), vec![0x03, 0xf5]),
            ]
        );
    }

    #[test]
    fn reserved_bits_and_bad_opcodes_are_errors() {
        assert!(parse_header(&[0xc1, 0]).is_err());
        assert!(RecvBuf::new(8, &[0x83, 0]).next_frame().is_err());
        assert!(RecvBuf::new(8, &[0x80, 0]).next_frame().is_err());
    }

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            WsUrl::parse("ws://127.0.0.1:8080"),
            Ok(WsUrl {
                authority: "127.0.0.1:8080".into(),
                path: String::new()
            })
        );
        assert_eq!(
            WsUrl::parse("ws://localhost:1/yjs/").map(|u| u.path),
            Ok("/yjs".to_string())
        );
        assert!(WsUrl::parse("http://x:1").is_err());
        assert!(WsUrl::parse("ws://nohost").is_err());
    }
}
