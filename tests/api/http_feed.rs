//! The change feed over a real server: pages, long polls and Server-Sent
//! Events, each checked for gaps and repeats across reconnects.

use std::time::{Duration, Instant};

use bytes::Bytes;
use collab_engine::crdt::decode_update;
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{ApiCall, Backend, Editor, TestApp, spawn_app};

crate::on_both_backends!(
    the_feed_pages_through_10000_ops_with_no_gap_loaded_or_not,
    a_long_poll_wakes_on_a_commit_and_an_epoch_mismatch_is_409,
    an_event_stream_killed_and_resumed_sees_every_op_once,
);

/// Submits `clients × per_client` ops through the document API (each
/// client's ops in order, the clients at once, so commits are grouped).
async fn write_ops(
    app: &TestApp,
    document_id: &str,
    name: &str,
    clients: usize,
    per_client: usize,
) {
    let writers = (0..clients).map(|c| async move {
        let documents = app.engine.documents();
        let editor = Editor::new();
        for op in 1..=per_client {
            let update = decode_update(Bytes::from(editor.append("x"))).expect("update");
            let client = format!("{name}-{c}");
            documents
                .submit(document_id, &client, op as u64, update)
                .await
                .expect("committed");
        }
    });
    join_all(writers).await;
}

fn seqs(page: &Value) -> Vec<u64> {
    page["ops"]
        .as_array()
        .expect("ops")
        .iter()
        .filter_map(|op| op["server_seq"].as_u64())
        .collect()
}

/// Every op of document `long`, page by page of `limit`, checking each page.
async fn read_all(app: &TestApp, limit: usize) -> Vec<u64> {
    let mut all = Vec::new();
    let mut since = 0;
    loop {
        let url = format!("/api/documents/long/ops?since={since}&limit={limit}");
        let page = app.api_get(&url).await.json();
        assert_eq!(page["head"], 10_000, "{page}");
        let got = seqs(&page);
        if got.is_empty() {
            assert_eq!(page["next_since"], since);
            break;
        }
        assert!(got.len() <= limit);
        since = page["next_since"].as_u64().expect("next_since");
        assert_eq!(Some(&since), got.last());
        let op = &page["ops"][0];
        for key in ["client_id", "client_op_id", "committed_at", "update"] {
            assert!(!op[key].is_null(), "{key} in {op}");
        }
        all.extend(got);
    }
    all
}

/// Pages of 1,000 follow `next_since` to the head with every seq once;
/// the same after a restart, when the document is not loaded and the
/// store answers.
async fn the_feed_pages_through_10000_ops_with_no_gap_loaded_or_not(backend: Backend) {
    let app = spawn_app(backend).await;
    write_ops(&app, "long", "w", 50, 200).await;
    let expected: Vec<u64> = (1..=10_000).collect();
    assert_eq!(read_all(&app, 1000).await, expected);
    let app = app.restart().await;
    assert_eq!(app.engine.stats().await.documents_loaded, 0);
    assert_eq!(read_all(&app, 10_000).await, expected);
    assert_eq!(
        app.engine.stats().await.documents_loaded,
        0,
        "the feed of an unloaded document is read from the store"
    );
    let too_many = app.api_get("/api/documents/long/ops?limit=10001").await;
    assert_eq!(
        (too_many.status, too_many.error().as_str()),
        (400, "bad_request")
    );
}

/// A long poll answers as soon as an op after `since` commits; with none
/// it answers empty at the timeout; a recreated document is 409.
async fn a_long_poll_wakes_on_a_commit_and_an_epoch_mismatch_is_409(backend: Backend) {
    let app = spawn_app(backend).await;
    let editor = Editor::new();
    let first = app.post_update("polled", editor.append("a")).await.json();
    assert_eq!(first["server_seq"], 1);
    let epoch = app.api_get("/api/documents/polled").await.json()["epoch"]
        .as_str()
        .expect("epoch")
        .to_owned();
    let started = Instant::now();
    let poll_url = format!("/api/documents/polled/ops?since=1&wait=30&epoch={epoch}");
    let poll = app.api_get(&poll_url);
    let write = async {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        app.post_update("polled", editor.append("b")).await
    };
    let (polled, written) = tokio::join!(poll, write);
    assert_eq!(written.json()["server_seq"], 2);
    let page = polled.json();
    assert_eq!(seqs(&page), vec![2], "{page}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "woke on the commit, not at the timeout"
    );
    let started = Instant::now();
    let empty = app
        .api_get("/api/documents/polled/ops?since=2&wait=1")
        .await
        .json();
    assert_eq!(seqs(&empty), Vec::<u64>::new());
    assert_eq!(empty["next_since"], 2);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        app.api_get("/api/documents/polled/ops?wait=61")
            .await
            .status,
        400
    );

    let deleted = app
        .api(ApiCall::new("DELETE", "/api/documents/polled"))
        .await;
    assert_eq!(deleted.status, 204);
    app.post_update("polled", Editor::new().append("new")).await;
    let stale = app
        .api_get(&format!("/api/documents/polled/ops?since=2&epoch={epoch}"))
        .await;
    assert_eq!(
        (stale.status, stale.error().as_str()),
        (409, "epoch_mismatch")
    );
}

/// Reads SSE events from an open stream until `until` returns true or
/// the stream ends; answers the seqs (in order) and whether it ended.
struct EventStream {
    body: awc::ClientResponse,
    buffer: String,
}

impl EventStream {
    async fn open(app: &TestApp, document_id: &str, last_event_id: Option<u64>) -> EventStream {
        let mut request = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish()
            .get(app.http_url(&format!("/api/documents/{document_id}/ops")))
            .insert_header(("Accept", "text/event-stream"));
        if let Some(id) = last_event_id {
            request = request.insert_header(("Last-Event-ID", id.to_string()));
        }
        let body = request.send().await.expect("event stream");
        assert_eq!(body.status().as_u16(), 200);
        assert_eq!(
            body.headers()
                .get("Content-Type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        EventStream {
            body,
            buffer: String::new(),
        }
    }

    /// Seqs of the events read until `last` was seen (or the stream ended).
    async fn read_until(&mut self, last: u64, within: Duration) -> (Vec<u64>, bool) {
        let mut seqs = Vec::new();
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if let Some(seq) = parse_op_event(&event) {
                    seqs.push(seq);
                    if seq >= last {
                        return (seqs, false);
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) | Ok(Some(Err(_))) => return (seqs, true),
                Err(_) => panic!("no event up to {last} within {within:?}; got {seqs:?}"),
            }
        }
    }
}

/// The seq of an `op` event (checking that its id and data agree).
fn parse_op_event(event: &str) -> Option<u64> {
    let mut id = None;
    let mut kind = None;
    let mut data = None;
    for line in event.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.parse::<u64>().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = serde_json::from_str::<Value>(v).ok();
        }
    }
    if kind.as_deref() != Some("op") {
        return None;
    }
    let data = data.expect("op data is JSON");
    assert_eq!(data["server_seq"].as_u64(), id, "id and data agree");
    id
}

/// Catch-up and live ops arrive in order; a consumer that went away and
/// comes back with `Last-Event-ID` gets exactly the ops after it; one that
/// stops reading is ended (not buffered without bound) and resumes too.
async fn an_event_stream_killed_and_resumed_sees_every_op_once(backend: Backend) {
    let app = spawn_app(backend).await;
    write_ops(&app, "live", "a", 1, 5).await;
    let mut seen = Vec::new();
    let mut stream = EventStream::open(&app, "live", None).await;
    let (got, ended) = stream.read_until(5, Duration::from_secs(20)).await;
    assert!(!ended);
    seen.extend(got);
    write_ops(&app, "live", "b", 2, 5).await; // ops 6..=15
    let (got, _) = stream.read_until(15, Duration::from_secs(20)).await;
    seen.extend(got);
    drop(stream);
    write_ops(&app, "live", "a", 1, 5).await; // resends: duplicates, not in the feed
    let editor = Editor::new();
    for _ in 0..5 {
        app.post_update("live", editor.append("y")).await;
    }
    let mut stream = EventStream::open(&app, "live", seen.last().copied()).await;
    let (got, _) = stream.read_until(20, Duration::from_secs(20)).await;
    seen.extend(got);
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>());

    // A consumer that does not read: big ops, one commit each, far more
    // than the stream holds.
    // Each op sets one map key to 32 KiB: big ops, a small document.
    let big = "z".repeat(32 * 1024);
    let documents = app.engine.documents();
    let doc = yrs::Doc::new();
    let map = doc.get_or_insert_map("big");
    for op in 1..=1500u64 {
        let update = {
            use yrs::{Map, Transact};
            let mut txn = doc.transact_mut();
            map.insert(&mut txn, "k", format!("{op}{big}"));
            txn.encode_update_v1()
        };
        let update = decode_update(Bytes::from(update)).expect("update");
        documents
            .submit("live", "bulk", op, update)
            .await
            .expect("committed");
    }
    let (got, ended) = stream.read_until(1520, Duration::from_secs(60)).await;
    assert!(ended, "a consumer that fell behind is ended");
    assert!(got.last().copied().unwrap_or(20) < 1520);
    let resumed_from = got.last().copied().unwrap_or(20);
    assert_eq!(got, (21..=resumed_from).collect::<Vec<u64>>());
    let mut stream = EventStream::open(&app, "live", Some(resumed_from)).await;
    let (rest, _) = stream.read_until(1520, Duration::from_secs(60)).await;
    assert_eq!(rest, (resumed_from + 1..=1520).collect::<Vec<u64>>());
}

/// Event streams and long polls hold connections: past
/// `limits.max_connections_per_ip` they are refused with 429, and a
/// closed stream gives its place back.
#[actix_web::test]
async fn event_streams_count_against_the_connection_limits() {
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, |s| {
        s.limits.max_connections_per_ip = 2;
    })
    .await;
    let first = EventStream::open(&app, "limited", None).await;
    let _second = EventStream::open(&app, "limited", None).await;
    let refused = app
        .api(
            ApiCall::new("GET", "/api/documents/limited/ops").header("Accept", "text/event-stream"),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error().as_str()),
        (429, "too_many_connections")
    );
    let poll = app.api_get("/api/documents/limited/ops?wait=1").await;
    assert_eq!(poll.status, 429);
    // Pages do not hold a connection.
    assert_eq!(app.api_get("/api/documents/limited/ops").await.status, 200);
    drop(first);
    // The server sees the connection gone when it reads it, at the latest
    // when the next keep-alive (every 15 s) fails to be written.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if app
            .api_get("/api/documents/limited/ops?wait=1")
            .await
            .status
            == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's place is given back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}
