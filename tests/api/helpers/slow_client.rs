//! A client that joins and never reads (`StalledClient`), so the server's socket to it fills up.

use serde_json::json;

/// A native client on a raw socket with a tiny receive buffer that sends
/// its `hello` and then never reads: the server's socket to it fills up.
pub struct StalledClient {
    _socket: tokio::net::TcpStream,
}

impl StalledClient {
    pub async fn join(port: u16, document_id: &str, client_id: &str) -> StalledClient {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        socket.connect(&address.into()).expect("connect");
        socket.set_nonblocking(true).expect("non-blocking");
        let mut stream = tokio::net::TcpStream::from_std(socket.into()).expect("tokio stream");
        let request = format!(
            "GET /ws/{document_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
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
        let hello = json!({"type": "hello", "protocol": 1, "client_id": client_id}).to_string();
        // A masked text frame (clients must mask; the mask is all zeros).
        let mut frame = vec![0x81u8, 0x80 | hello.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(hello.as_bytes());
        stream.write_all(&frame).await.expect("hello");
        StalledClient { _socket: stream }
    }
}
