//! One client connection on the current-thread runtime: a socket shared by a
//! receive loop and a writer task.
//!
//! [`Conn::send`] writes straight to the socket when nothing is queued (so
//! the send timestamp is the write), and otherwise queues the bytes for the
//! writer task, which drains them when the socket is writable. Nothing here
//! is `Send`: everything runs on one thread.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::ws::{self, Frame, RecvBuf};

/// Why a connection ended, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Still open.
    Open,
    /// The server sent a close frame (with this code, if any).
    ClosedByServer(Option<u16>),
    /// We closed it.
    ClosedByUs,
    /// End of stream or an I/O or framing error.
    Failed(String),
}

/// A client connection. Create with [`Conn::open`], then spawn
/// [`Conn::write_loop`] on a `LocalSet`.
pub struct Conn {
    stream: TcpStream,
    pending: RefCell<Vec<u8>>,
    wake: Notify,
    ended: RefCell<Ended>,
    /// Bytes queued because the socket was not writable right away.
    pub queued_bytes: Cell<u64>,
}

impl Conn {
    /// Connects and upgrades; returns the connection and its receive buffer.
    pub async fn open(authority: &str, path: &str) -> io::Result<(Rc<Conn>, RecvBuf)> {
        let (stream, leftover) = ws::connect(authority, path).await?;
        let conn = Rc::new(Conn {
            stream,
            pending: RefCell::new(Vec::new()),
            wake: Notify::new(),
            ended: RefCell::new(Ended::Open),
            queued_bytes: Cell::new(0),
        });
        Ok((conn, RecvBuf::new(256 * 1024, &leftover)))
    }

    /// Whether the connection is still usable.
    pub fn is_open(&self) -> bool {
        matches!(*self.ended.borrow(), Ended::Open)
    }

    /// How the connection ended.
    pub fn ended(&self) -> Ended {
        self.ended.borrow().clone()
    }

    /// Records the end of the connection (the first reason wins).
    pub fn end(&self, why: Ended) {
        let mut ended = self.ended.borrow_mut();
        if *ended == Ended::Open {
            *ended = why;
        }
        drop(ended);
        self.wake.notify_one();
    }

    /// Sends already-framed bytes. Returns false when the connection is
    /// closed (the bytes are dropped).
    pub fn send(&self, bytes: &[u8]) -> bool {
        if !self.is_open() {
            return false;
        }
        let mut pending = self.pending.borrow_mut();
        if !pending.is_empty() {
            pending.extend_from_slice(bytes);
            self.queued_bytes
                .set(self.queued_bytes.get() + bytes.len() as u64);
            return true;
        }
        let rest = match self.stream.try_write(bytes) {
            Ok(n) if n == bytes.len() => return true,
            Ok(n) => &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => bytes,
            Err(e) => {
                drop(pending);
                self.end(Ended::Failed(format!("write: {e}")));
                return false;
            }
        };
        pending.extend_from_slice(rest);
        self.queued_bytes
            .set(self.queued_bytes.get() + rest.len() as u64);
        drop(pending);
        self.wake.notify_one();
        true
    }

    /// Frames `payload` as a client message and sends it.
    pub fn send_message(&self, opcode: u8, payload: &[u8]) -> bool {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        ws::encode_client_frame(&mut frame, opcode, payload);
        self.send(&frame)
    }

    /// Sends a close frame with `code` and marks the connection closed by us.
    pub fn close(&self, code: u16) {
        let mut frame = Vec::with_capacity(8);
        ws::encode_close(&mut frame, code);
        self.send(&frame);
        self.end(Ended::ClosedByUs);
    }

    /// Drains queued bytes whenever there are some; ends when the connection
    /// ends (after trying to flush what is queued, e.g. a close frame).
    pub async fn write_loop(self: Rc<Self>) {
        loop {
            let has_pending = !self.pending.borrow().is_empty();
            if !has_pending {
                if !self.is_open() {
                    return;
                }
                self.wake.notified().await;
                continue;
            }
            if let Err(e) = self.stream.writable().await {
                self.end(Ended::Failed(format!("writable: {e}")));
                return;
            }
            let mut pending = self.pending.borrow_mut();
            match self.stream.try_write(&pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    pending.clear();
                    drop(pending);
                    self.end(Ended::Failed(format!("write: {e}")));
                    return;
                }
            }
        }
    }

    /// Reads once from the socket into `rb` (waiting until there is
    /// something). Returns false once the connection has ended.
    pub async fn fill(&self, rb: &mut RecvBuf) -> bool {
        match rb.fill(&self.stream).await {
            Ok(0) => {
                self.end(Ended::Failed(
                    "connection closed without a close frame".into(),
                ));
                false
            }
            Ok(_) => true,
            Err(e) => {
                self.end(Ended::Failed(format!("read: {e}")));
                false
            }
        }
    }

    /// Hands every complete message in `rb` to `on_message(opcode, payload)`;
    /// answers pings and records a close. Returns whether the connection is
    /// still open.
    pub fn dispatch(&self, rb: &mut RecvBuf, on_message: &mut impl FnMut(u8, &[u8])) -> bool {
        loop {
            match rb.next_frame() {
                Ok(None) => return self.is_open(),
                Ok(Some(Frame::Data { opcode })) => on_message(opcode, rb.payload()),
                Ok(Some(Frame::Ping)) => {
                    let payload = rb.payload().to_vec();
                    self.send_message(ws::OP_PONG, &payload);
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(Some(Frame::Close(code))) => {
                    let mut frame = Vec::with_capacity(8);
                    ws::encode_close(&mut frame, code.unwrap_or(1000));
                    self.send(&frame);
                    self.end(Ended::ClosedByServer(code));
                    return false;
                }
                Err(e) => {
                    self.end(Ended::Failed(e.to_string()));
                    return false;
                }
            }
        }
    }

    /// Waits for the next message (allocating; for handshakes only).
    pub async fn next_message(&self, rb: &mut RecvBuf) -> io::Result<(u8, Vec<u8>)> {
        let mut got = None;
        loop {
            // Frames already buffered first, then the socket.
            let open = self.dispatch_one(rb, &mut got);
            if let Some(m) = got {
                return Ok(m);
            }
            if !open {
                return Err(io::Error::other(format!(
                    "connection ended during the handshake: {:?}",
                    self.ended()
                )));
            }
            match rb.fill(&self.stream).await {
                Ok(0) => {
                    self.end(Ended::Failed(
                        "connection closed during the handshake".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    self.end(Ended::Failed(format!("read: {e}")));
                    return Err(e);
                }
            }
        }
    }

    /// Takes at most one message out of `rb` into `got`; control frames are
    /// handled. Returns whether the connection is open.
    fn dispatch_one(&self, rb: &mut RecvBuf, got: &mut Option<(u8, Vec<u8>)>) -> bool {
        loop {
            match rb.next_frame() {
                Ok(None) => return self.is_open(),
                Ok(Some(Frame::Data { opcode })) => {
                    *got = Some((opcode, rb.payload().to_vec()));
                    return true;
                }
                Ok(Some(Frame::Ping)) => {
                    let payload = rb.payload().to_vec();
                    self.send_message(ws::OP_PONG, &payload);
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(Some(Frame::Close(code))) => {
                    self.end(Ended::ClosedByServer(code));
                    return false;
                }
                Err(e) => {
                    self.end(Ended::Failed(e.to_string()));
                    return false;
                }
            }
        }
    }
}
