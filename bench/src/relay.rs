//! The bare relay: a WebSocket server that forwards every text or binary
//! message to every other connection with the same request path, and does
//! nothing else. It is the upper bound of what a server can do on this
//! machine, and shows that the load generator is not the limit.
//!
//! One thread (current-thread runtime): each connection has a reader task,
//! which clones incoming messages (a reference count, not a copy) into the
//! queues of its peers, and a writer task, which feeds everything queued to
//! tungstenite and flushes once per batch.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The connections of one path.
type Room = RefCell<Vec<(u64, UnboundedSender<Message>)>>;

/// Rooms by path; a room lives while it has connections.
#[derive(Default)]
struct Rooms {
    by_path: RefCell<HashMap<String, Weak<Room>>>,
}

impl Rooms {
    fn join(&self, path: &str, id: u64, tx: UnboundedSender<Message>) -> Rc<Room> {
        let mut by_path = self.by_path.borrow_mut();
        let room = match by_path.get(path).and_then(Weak::upgrade) {
            Some(room) => room,
            None => {
                let room = Rc::new(RefCell::new(Vec::new()));
                by_path.insert(path.to_string(), Rc::downgrade(&room));
                room
            }
        };
        room.borrow_mut().push((id, tx));
        room
    }

    fn leave(&self, path: &str, room: Rc<Room>, id: u64) {
        room.borrow_mut().retain(|(peer, _)| *peer != id);
        if Rc::strong_count(&room) == 1 {
            self.by_path.borrow_mut().remove(path);
        }
    }
}

/// Serves on `host:port` until the process is stopped. Must run inside a
/// `LocalSet`.
pub async fn serve(host: &str, port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind((host, port)).await?;
    log::info!("relay listening on {}", listener.local_addr()?);
    let rooms = Rc::new(Rooms::default());
    let mut next_id = 0u64;
    loop {
        let (stream, _) = listener.accept().await?;
        next_id += 1;
        tokio::task::spawn_local(connection(stream, Rc::clone(&rooms), next_id));
    }
}

async fn connection(stream: TcpStream, rooms: Rc<Rooms>, id: u64) {
    if let Err(e) = stream.set_nodelay(true) {
        log::debug!("set_nodelay: {e}");
    }
    let mut path = String::new();
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    let remember_path = |req: &Request, resp: Response| {
        path = req.uri().path().to_string();
        Ok::<_, ErrorResponse>(resp)
    };
    // Small read buffers: thousands of idle connections in W2 should not
    // cost 128 KiB each; throughput does not need more.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let ws =
        match tokio_tungstenite::accept_hdr_async_with_config(stream, remember_path, Some(config))
            .await
        {
            Ok(ws) => ws,
            Err(e) => {
                log::debug!("handshake failed: {e}");
                return;
            }
        };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = unbounded_channel::<Message>();
    let room = rooms.join(&path, id, tx);

    let writer = tokio::task::spawn_local(async move {
        while let Some(first) = rx.recv().await {
            if sink.feed(first).await.is_err() {
                return;
            }
            while let Ok(more) = rx.try_recv() {
                if sink.feed(more).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });

    while let Some(msg) = source.next().await {
        match msg {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                for (peer, tx) in room.borrow().iter() {
                    if *peer != id {
                        // A peer that is gone just drops the message.
                        let _ = tx.send(m.clone());
                    }
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {} // ping / pong: tungstenite answers pings itself
        }
    }
    rooms.leave(&path, room, id);
    writer.abort();
}
