//! Backpressure on what a client sends. actix-web-actors' frame decoder
//! moves every byte the connection has into its own buffer each time it
//! is polled, so a session that is slow to handle small messages (over
//! its rate, or its document busy) would buffer without bound what a fast
//! client writes. [`GatedPayload`] sits between the connection's payload
//! and that decoder: it finds the frame boundaries in the bytes (the
//! WebSocket frame header says each frame's length) and lets at most
//! [`MAX_FRAMES_AHEAD`] complete frames past the ones the session has
//! handled ([`InboundGate::handled_frame`]); then it stops pulling, the
//! HTTP dispatcher stops reading the socket, and TCP pushes back on the
//! client. A frame already started is always let through whole (a big
//! message must arrive to be handled; `documents.max_message_bytes`
//! bounds it).

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::Stream;

/// Complete frames let through beyond those the session handled.
pub const MAX_FRAMES_AHEAD: u64 = 32;

/// What the session and its [`GatedPayload`] share (one thread).
#[derive(Debug, Default)]
pub struct InboundGate {
    state: RefCell<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// Complete frames let through.
    passed: u64,
    /// Frames the session handled.
    handled: u64,
    /// The payload waiting for the session to catch up.
    waiting: Option<Waker>,
}

impl InboundGate {
    /// The session handled one frame (a message, a fragment, a ping...).
    pub fn handled_frame(&self) {
        let mut state = self.state.borrow_mut();
        state.handled += 1;
        if state.passed.saturating_sub(state.handled) < MAX_FRAMES_AHEAD
            && let Some(waker) = state.waiting.take()
        {
            waker.wake();
        }
    }

    /// How many more complete frames may pass now.
    fn allowance(&self) -> u64 {
        let state = self.state.borrow();
        MAX_FRAMES_AHEAD.saturating_sub(state.passed.saturating_sub(state.handled))
    }
}

/// Where the scan of the byte stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Reading a frame header: `have` of its bytes seen so far.
    Header { have: usize, header: [u8; 14] },
    /// Skipping `left` bytes of a frame's payload.
    Payload { left: u64 },
}

impl Default for Scan {
    fn default() -> Self {
        Scan::Header {
            have: 0,
            header: [0; 14],
        }
    }
}

/// Finds frame boundaries in a client's byte stream.
#[derive(Debug, Default)]
struct FrameScanner {
    scan: Scan,
}

impl FrameScanner {
    /// Whether a frame has started and not ended.
    fn mid_frame(&self) -> bool {
        !matches!(self.scan, Scan::Header { have: 0, .. })
    }

    /// Consumes `data` until `max_frames` frames completed (stopping right
    /// after the last one) or `data` ends; answers the bytes consumed and
    /// the frames completed.
    fn scan(&mut self, data: &[u8], max_frames: u64) -> (usize, u64) {
        let mut at = 0;
        let mut completed = 0;
        while completed < max_frames && (at < data.len() || self.completes_empty()) {
            match &mut self.scan {
                Scan::Header { have, header } => {
                    header[*have] = data[at];
                    *have += 1;
                    at += 1;
                    if let Some(payload) = header_done(&header[..*have]) {
                        self.scan = Scan::Payload { left: payload };
                        if payload == 0 {
                            self.scan = Scan::default();
                            completed += 1;
                        }
                    }
                }
                Scan::Payload { left } => {
                    let take = (*left).min((data.len() - at) as u64);
                    at += take as usize;
                    *left -= take;
                    if *left == 0 {
                        self.scan = Scan::default();
                        completed += 1;
                    }
                }
            }
        }
        (at, completed)
    }

    /// A payload of zero bytes left ends without more data.
    fn completes_empty(&self) -> bool {
        matches!(self.scan, Scan::Payload { left: 0 })
    }
}

/// The payload length once `header` (the bytes seen of a frame header) is
/// complete; `None` while more header bytes are needed.
fn header_done(header: &[u8]) -> Option<u64> {
    if header.len() < 2 {
        return None;
    }
    let masked = header[1] & 0x80 != 0;
    let mask = if masked { 4 } else { 0 };
    let (extra, len7) = match header[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    if header.len() < 2 + extra + mask {
        return None;
    }
    Some(len7.unwrap_or_else(|| {
        header[2..2 + extra]
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b))
    }))
}

/// A payload stream let through frame by frame (see the module docs).
pub struct GatedPayload<S> {
    inner: S,
    gate: Rc<InboundGate>,
    scanner: FrameScanner,
    /// Bytes pulled from `inner` and not let through yet (one chunk at most).
    held: Bytes,
}

impl<S> GatedPayload<S> {
    pub fn new(inner: S, gate: Rc<InboundGate>) -> Self {
        GatedPayload {
            inner,
            gate,
            scanner: FrameScanner::default(),
            held: Bytes::new(),
        }
    }
}

impl<S, E> Stream for GatedPayload<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let mut allowance = this.gate.allowance();
            if allowance == 0 {
                if !this.scanner.mid_frame() {
                    this.gate.state.borrow_mut().waiting = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                // The frame under way passes whole.
                allowance = 1;
            }
            let mut data = if this.held.is_empty() {
                match Pin::new(&mut this.inner).poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => chunk,
                    other => return other,
                }
            } else {
                std::mem::take(&mut this.held)
            };
            let (consumed, completed) = this.scanner.scan(&data, allowance);
            this.gate.state.borrow_mut().passed += completed;
            this.held = data.split_off(consumed);
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(data)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use std::task::Waker;

    /// A masked client text frame of `len` payload bytes.
    fn frame(len: usize) -> Vec<u8> {
        let mut out = vec![0x81];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(std::iter::repeat_n(b'x', len));
        out
    }

    #[test]
    fn the_scanner_finds_frame_ends_across_chunks() {
        let mut bytes = Vec::new();
        for len in [0, 5, 125, 126, 300, 70_000] {
            bytes.extend(frame(len));
        }
        let mut scanner = FrameScanner::default();
        let mut frames = 0;
        for chunk in bytes.chunks(7) {
            let (consumed, completed) = scanner.scan(chunk, u64::MAX);
            assert_eq!(consumed, chunk.len());
            frames += completed;
        }
        assert_eq!(frames, 6);
        assert!(!scanner.mid_frame());
        // Stopping after a number of frames, right at a boundary.
        let mut scanner = FrameScanner::default();
        let (consumed, completed) = scanner.scan(&bytes, 2);
        assert_eq!((consumed, completed), (frame(0).len() + frame(5).len(), 2));
    }

    fn poll<S: Stream + Unpin>(s: &mut S) -> Poll<Option<S::Item>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(s).poll_next(&mut cx)
    }

    #[test]
    fn small_frames_pass_only_as_fast_as_the_session_handles_them() {
        let mut all = Vec::new();
        for _ in 0..100 {
            all.extend(frame(10));
        }
        let chunks: Vec<Result<Bytes, ()>> = vec![Ok(Bytes::from(all))];
        let gate = Rc::new(InboundGate::default());
        let mut gated = GatedPayload::new(stream::iter(chunks), gate.clone());
        let Poll::Ready(Some(Ok(first))) = poll(&mut gated) else {
            panic!("the first frames pass");
        };
        assert_eq!(first.len(), MAX_FRAMES_AHEAD as usize * frame(10).len());
        assert!(
            poll(&mut gated).is_pending(),
            "nothing more until frames are handled"
        );
        for _ in 0..3 {
            gate.handled_frame();
        }
        let Poll::Ready(Some(Ok(more))) = poll(&mut gated) else {
            panic!("three more frames");
        };
        assert_eq!(more.len(), 3 * frame(10).len());
    }

    #[test]
    fn a_big_frame_under_way_passes_whole() {
        let big = frame(100_000);
        let chunks: Vec<Result<Bytes, ()>> = big
            .chunks(8192)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let gate = Rc::new(InboundGate::default());
        {
            let mut state = gate.state.borrow_mut();
            state.passed = MAX_FRAMES_AHEAD - 1; // one frame of allowance left
        }
        let mut gated = GatedPayload::new(stream::iter(chunks), gate.clone());
        let mut through = 0;
        while let Poll::Ready(Some(Ok(chunk))) = poll(&mut gated) {
            through += chunk.len();
        }
        assert_eq!(through, big.len(), "the whole frame passed");
    }
}
