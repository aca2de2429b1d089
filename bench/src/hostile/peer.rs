//! One connection of a hostile probe: the upgrade (a refusal comes back as
//! its HTTP status and `error` code), then a single task that writes what
//! is queued and reads what arrives, without ever waiting past a deadline.
//! Also the plain HTTP `GET /health` of the health checks.

use std::io;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::protocol::json_str;
use crate::ws::{self, Frame, RecvBuf};

/// Largest HTTP response head (and body of a refusal) read.
const MAX_HEAD: usize = 16 * 1024;

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The server answered the upgrade with this status (and `error` code
    /// of its JSON body, when there was one).
    Refused {
        status: u16,
        error: Option<String>,
    },
    /// No answer in time.
    Timeout,
    Io(io::Error),
}

impl OpenError {
    /// A short key for counting refusals: `http 429 too_many_upgrades`,
    /// `connect timeout`, `EMFILE`...
    pub fn key(&self) -> String {
        match self {
            OpenError::Refused { status, error } => match error {
                Some(e) => format!("http {status} {e}"),
                None => format!("http {status}"),
            },
            OpenError::Timeout => "open timeout".to_string(),
            OpenError::Io(e) => io_key(e),
        }
    }
}

/// A short name for an I/O error (the errno for the usual ones).
pub fn io_key(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(24) => "EMFILE",
        Some(99) => "EADDRNOTAVAIL",
        Some(104) => "ECONNRESET",
        Some(110) => "ETIMEDOUT",
        Some(111) => "ECONNREFUSED",
        Some(32) => "EPIPE",
        _ => return format!("io {:?}", e.kind()),
    };
    name.to_string()
}

/// Reads an HTTP response head from `stream`; returns it and the bytes
/// that came after it.
async fn read_head(stream: &mut TcpStream) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the response head",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = head.split_off(i + 4);
            return Ok((head, rest));
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("response head too long"));
        }
    }
}

/// The status code of an HTTP response head.
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let code = line.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

async fn upgrade(authority: &str, path: &str) -> Result<(TcpStream, Vec<u8>), OpenError> {
    let mut stream = TcpStream::connect(authority).await.map_err(OpenError::Io)?;
    stream.set_nodelay(true).map_err(OpenError::Io)?;
    let key = base64::engine::general_purpose::STANDARD.encode(fastrand::u128(..).to_le_bytes());
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(OpenError::Io)?;
    let (head, mut rest) = read_head(&mut stream).await.map_err(OpenError::Io)?;
    match status_of(&head) {
        Some(101) => Ok((stream, rest)),
        status => {
            // The JSON body of a refusal, if it did not come along.
            if rest.is_empty() {
                let mut more = [0u8; 1024];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(50), stream.read(&mut more)).await
                {
                    rest.extend_from_slice(&more[..n]);
                }
            }
            let error =
                json_str(&rest, b"\"error\":\"").map(|e| String::from_utf8_lossy(e).into_owned());
            // Close at once, without a TIME_WAIT on our side.
            let _ = stream.set_zero_linger();
            Err(OpenError::Refused {
                status: status.unwrap_or(0),
                error,
            })
        }
    }
}

/// What [`Peer::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Some I/O happened, or the socket became ready: call again.
    Io,
    /// The deadline passed.
    Deadline,
    /// The connection ended (see [`Peer::ended`]).
    Ended,
}

/// An open WebSocket connection.
pub struct Peer {
    stream: TcpStream,
    rb: RecvBuf,
    out: Vec<u8>,
    out_at: usize,
    ended: Option<String>,
    /// Bytes written to the socket so far.
    pub bytes_out: u64,
}

impl Peer {
    /// Connects and upgrades `path`, within `timeout`.
    pub async fn open(authority: &str, path: &str, timeout: Duration) -> Result<Peer, OpenError> {
        let (stream, leftover) = tokio::time::timeout(timeout, upgrade(authority, path))
            .await
            .map_err(|_| OpenError::Timeout)??;
        Ok(Peer {
            stream,
            rb: RecvBuf::new(64 * 1024, &leftover),
            out: Vec::new(),
            out_at: 0,
            ended: None,
            bytes_out: 0,
        })
    }

    /// Queues a message (masked client frame).
    pub fn queue(&mut self, opcode: u8, payload: &[u8]) {
        if self.ended.is_none() {
            ws::encode_client_frame(&mut self.out, opcode, payload);
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.out_at
    }

    /// How the connection ended (`close 1007`, `eof`, ...), if it did.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    fn end(&mut self, why: String) {
        if self.ended.is_none() {
            self.ended = Some(why);
        }
    }

    /// Closes the connection from our side (close frame, best effort), with
    /// no TIME_WAIT left behind.
    pub fn close(&mut self) {
        if self.ended.is_none() {
            let mut frame = Vec::with_capacity(8);
            ws::encode_close(&mut frame, 1000);
            let _ = self.stream.try_write(&frame);
            self.end("closed by us".to_string());
        }
    }

    /// Writes and reads what can be done without waiting; hands every
    /// complete message to `on_msg`. Returns whether anything happened.
    fn try_io(&mut self, on_msg: &mut dyn FnMut(u8, &[u8])) -> bool {
        let mut progress = false;
        if self.queued() > 0 {
            match self.stream.try_write(&self.out[self.out_at..]) {
                Ok(n) => {
                    progress = true;
                    self.out_at += n;
                    self.bytes_out += n as u64;
                    if self.out_at == self.out.len() {
                        self.out.clear();
                        self.out_at = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.end(format!("write {}", io_key(&e)));
                    return true;
                }
            }
        }
        match self.rb.try_fill(&self.stream) {
            Ok(0) => {
                self.end("eof".to_string());
                return true;
            }
            // Something arrived: the frames below.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return progress,
            Err(e) => {
                self.end(format!("read {}", io_key(&e)));
                return true;
            }
        }
        loop {
            match self.rb.next_frame() {
                Ok(None) => return true,
                Ok(Some(Frame::Data { opcode })) => on_msg(opcode, self.rb.payload()),
                Ok(Some(Frame::Ping)) => {
                    let payload = self.rb.payload().to_vec();
                    ws::encode_client_frame(&mut self.out, ws::OP_PONG, &payload);
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(Some(Frame::Close(code))) => {
                    let mut frame = Vec::with_capacity(8);
                    ws::encode_close(&mut frame, code.unwrap_or(1000));
                    let _ = self.stream.try_write(&frame);
                    self.end(match code {
                        Some(c) => format!("close {c}"),
                        None => "close".to_string(),
                    });
                    return true;
                }
                Err(e) => {
                    self.end(e.to_string());
                    return true;
                }
            }
        }
    }

    /// Does some I/O, or waits (at most until `deadline`) until the socket
    /// is ready for some.
    pub async fn step(&mut self, deadline: Instant, on_msg: &mut dyn FnMut(u8, &[u8])) -> Step {
        if self.ended.is_some() {
            return Step::Ended;
        }
        if Instant::now() >= deadline {
            return Step::Deadline;
        }
        if self.try_io(on_msg) {
            // Let the other connections of this thread run.
            tokio::task::yield_now().await;
            return if self.ended.is_some() {
                Step::Ended
            } else {
                Step::Io
            };
        }
        let want_write = self.queued() > 0;
        let ready = tokio::select! {
            r = self.stream.readable() => r,
            r = self.stream.writable(), if want_write => r,
            () = tokio::time::sleep_until(deadline.into()) => return Step::Deadline,
        };
        if let Err(e) = ready {
            self.end(format!("poll {}", io_key(&e)));
            return Step::Ended;
        }
        Step::Io
    }

    /// Runs [`Peer::step`] until `done()` holds, the connection ended or
    /// `deadline` passed. Returns whether `done()` held.
    pub async fn until(
        &mut self,
        deadline: Instant,
        on_msg: &mut dyn FnMut(u8, &[u8]),
        done: &dyn Fn() -> bool,
    ) -> bool {
        loop {
            if done() {
                return true;
            }
            if self.step(deadline, on_msg).await != Step::Io {
                return done();
            }
        }
    }
}

impl Drop for Peer {
    /// No TIME_WAIT left behind: probes open thousands of connections.
    fn drop(&mut self) {
        let _ = self.stream.set_zero_linger();
    }
}

/// One plain `GET /health`: the status and the time to the response head.
pub async fn get_health(authority: &str, timeout: Duration) -> Result<(u16, Duration), String> {
    let started = Instant::now();
    let attempt = async {
        let mut stream = TcpStream::connect(authority).await?;
        let request =
            format!("GET /health HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let (head, _) = read_head(&mut stream).await?;
        let _ = stream.set_zero_linger();
        Ok::<_, io::Error>(status_of(&head).unwrap_or(0))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(status)) => Ok((status, started.elapsed())),
        Ok(Err(e)) => Err(io_key(&e)),
        Err(_) => Err("timeout".to_string()),
    }
}

/// A plain TCP connection upgraded to WebSocket and then left idle (never
/// read): for the idle-connections probe.
pub async fn open_idle(
    authority: &str,
    path: &str,
    timeout: Duration,
) -> Result<TcpStream, OpenError> {
    tokio::time::timeout(timeout, upgrade(authority, path))
        .await
        .map_err(|_| OpenError::Timeout)?
        .map(|(stream, _)| stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_error_keys() {
        assert_eq!(status_of(b"HTTP/1.1 429 Too Many Requests\r\n"), Some(429));
        assert_eq!(
            status_of(b"HTTP/1.1 101 Switching Protocols\r\n"),
            Some(101)
        );
        assert_eq!(status_of(b"garbage"), None);
        let refused = OpenError::Refused {
            status: 503,
            error: Some("server_full".into()),
        };
        assert_eq!(refused.key(), "http 503 server_full");
        assert_eq!(io_key(&io::Error::from_raw_os_error(24)), "EMFILE");
    }
}
