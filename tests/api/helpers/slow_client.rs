//! A client that joins and never reads (`StalledClient`), so the server's
//! socket to it fills up; the raw handshake and frame it is made of.

use serde_json::json;

/// A native client on a raw socket with a tiny receive buffer that sends
/// its `hello` and then never reads: the server's socket to it fills up.
pub struct StalledClient {
    _socket: tokio::net::TcpStream,
}

impl StalledClient {
    pub async fn join(port: u16, document_id: &str, client_id: &str) -> StalledClient {
        use tokio::io::AsyncWriteExt;
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        socket.connect(&address.into()).expect("connect");
        socket.set_nonblocking(true).expect("non-blocking");
        let mut stream = tokio::net::TcpStream::from_std(socket.into()).expect("tokio stream");
        upgrade_raw(&mut stream, &format!("/ws/{document_id}")).await;
        let hello = json!({"type": "hello", "protocol": 1, "client_id": client_id}).to_string();
        stream
            .write_all(&masked_text_frame(&hello))
            .await
            .expect("hello");
        StalledClient { _socket: stream }
    }
}

/// The WebSocket handshake of `path` on a raw socket; panics unless the
/// server switched protocols.
pub async fn upgrade_raw(stream: &mut tokio::net::TcpStream, path: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("handshake");
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(stream.read_u8().await.expect("handshake response"));
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
}

/// A masked client text frame of `text` (clients must mask; the mask is
/// all zeros), for texts under 64 KiB.
pub fn masked_text_frame(text: &str) -> Vec<u8> {
    let mut out = vec![0x81u8];
    let len = text.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(text.as_bytes());
    out
}
