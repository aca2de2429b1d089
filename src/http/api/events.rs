//! The change feed as Server-Sent Events: every op after `since` (or after
//! the `Last-Event-ID` a reconnecting EventSource sends, which wins), then
//! each op as it commits: `id: <server_seq>`, `event: op`, the op as JSON.
//!
//! A task per stream reads the log up to the head, subscribes, fills the
//! gap up to the head at subscription, then forwards live ops. Its
//! answer is a bounded channel: a consumer that does not keep up blocks
//! the task, the task's listener then falls behind the document and
//! stops, and the stream ends; the consumer resumes with `Last-Event-ID`.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::ApiError;
use super::feed::{FeedOp, FeedQuery, Page, admit, check_epoch, read_page};
use super::listener::{FeedEvent, FeedListener};
use crate::document::MAX_OPS_PER_READ;
use crate::http::RouteState;
use crate::transport::ConnectionPermit;
use crate::vocabulary::CommittedOp;

/// A comment line this often keeps proxies from closing an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Chunks of the answer waiting for the consumer.
const ANSWER_CHUNKS: usize = 16;
/// Commit batches waiting for the task before its listener gives up.
const LIVE_BATCHES: usize = 1024;
/// What an EventSource waits before reconnecting, in ms.
const RETRY_MS: u64 = 1000;

/// Starts the stream of `document_id` (after the epoch check).
pub async fn stream(
    req: &HttpRequest,
    state: &RouteState,
    document_id: &str,
    query: &FeedQuery,
    limit: usize,
) -> Result<HttpResponse, ApiError> {
    let since = match req.headers().get("Last-Event-ID") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request("bad_request", "Last-Event-ID must be a server_seq")
            })?,
        None => query.since,
    };
    let first = read_page(state, document_id, since, limit).await?;
    check_epoch(query.epoch.as_deref(), &first)?;
    let connection = admit(req, state)?;
    let (answer, chunks) = mpsc::channel::<Bytes>(ANSWER_CHUNKS);
    let task = Stream {
        state: state.clone(),
        document_id: document_id.to_owned(),
        last: since,
        answer,
        _connection: connection,
    };
    log::debug!("change feed of {document_id:?}: event stream from {since}");
    actix_web::rt::spawn(task.run(first));
    let body = futures_util::stream::unfold(chunks, |mut chunks| async move {
        let chunk = chunks.recv().await?;
        Some((Ok::<Bytes, actix_web::Error>(chunk), chunks))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Tells nginx not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The task behind one stream.
struct Stream {
    state: RouteState,
    document_id: String,
    /// The last seq sent (or the consumer's starting point).
    last: u64,
    answer: mpsc::Sender<Bytes>,
    /// Its place among the connections, for as long as it streams.
    _connection: ConnectionPermit,
}

/// The consumer went away: the task ends.
struct Gone;

impl Stream {
    async fn run(mut self, first: Page) {
        let ended = self.follow(first).await;
        let why = match ended {
            Ok(why) => why,
            Err(Gone) => "the consumer went away".to_owned(),
        };
        log::debug!(
            "change feed of {:?}: event stream ended after {} ({why})",
            self.document_id,
            self.last
        );
    }

    /// Sends everything, then live ops, until something ends the stream.
    async fn follow(&mut self, first: Page) -> Result<String, Gone> {
        self.send(Bytes::from(format!("retry: {RETRY_MS}\n\n")))
            .await?;
        // The log up to the head.
        let mut page = first;
        loop {
            let caught_up = page.ops.is_empty() || self.sent_all(&page);
            self.send_ops(&page.ops).await?;
            if caught_up {
                break;
            }
            page = match read_page(&self.state, &self.document_id, self.last, MAX_OPS_PER_READ)
                .await
            {
                Ok(page) => page,
                Err(e) => return self.end_with(&e.message).await,
            };
        }
        let (listener, mut events) = FeedListener::start(LIVE_BATCHES);
        let subscribed = match self
            .state
            .documents
            .subscribe(&self.document_id, listener)
            .await
        {
            Ok(subscribed) => subscribed,
            Err(refusal) => return self.end_with(&refusal.message).await,
        };
        let ended = self.live(subscribed.server_seq, &mut events).await;
        let _ = self
            .state
            .documents
            .unsubscribe(&self.document_id, subscribed.listener_id)
            .await;
        ended
    }

    /// Ops after the subscription's head come as events; the gap up to it
    /// is read first.
    async fn live(
        &mut self,
        subscribed_at: u64,
        events: &mut mpsc::Receiver<FeedEvent>,
    ) -> Result<String, Gone> {
        if let Err(e) = self.catch_up_to(subscribed_at).await {
            return self.end_with(&e.message).await;
        }
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                // The consumer went away (its answer was dropped): end now,
                // not at the next op or keep-alive.
                () = self.answer.closed() => return Err(Gone),
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    self.send(Bytes::from_static(b": keep-alive\n\n")).await?;
                    continue;
                }
            };
            match event {
                Some(FeedEvent::Ops(ops)) => {
                    let first = ops.first().map_or(0, |op| op.server_seq);
                    if first > self.last + 1 {
                        // Cannot happen with a contiguous subscription;
                        // read from the log rather than skip.
                        if let Err(e) = self.catch_up_to(first - 1).await {
                            return self.end_with(&e.message).await;
                        }
                    }
                    let fresh: Vec<_> = ops
                        .iter()
                        .filter(|op| op.server_seq > self.last)
                        .cloned()
                        .collect();
                    self.send_ops(&fresh).await?;
                }
                Some(FeedEvent::Closed { code, reason }) => {
                    return Ok(format!("the document closed it: {code} {reason}"));
                }
                None => return Ok("the consumer fell too far behind".to_owned()),
            }
        }
    }

    /// Sends the ops after `self.last` up to `upto`, from the log.
    async fn catch_up_to(&mut self, upto: u64) -> Result<(), ApiError> {
        while self.last < upto {
            let page =
                read_page(&self.state, &self.document_id, self.last, MAX_OPS_PER_READ).await?;
            if page.ops.is_empty() {
                break;
            }
            let wanted: Vec<_> = page
                .ops
                .into_iter()
                .take_while(|op| op.server_seq <= upto)
                .collect();
            self.send_ops(&wanted)
                .await
                .map_err(|Gone| ApiError::unavailable("the consumer went away"))?;
        }
        Ok(())
    }

    fn sent_all(&self, page: &Page) -> bool {
        page.ops.last().is_some_and(|op| op.server_seq >= page.head)
    }

    async fn send_ops(&mut self, ops: &[std::sync::Arc<CommittedOp>]) -> Result<(), Gone> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut chunk = String::new();
        for op in ops {
            let data = serde_json::to_string(&FeedOp::of(op)).unwrap_or_default();
            chunk.push_str(&format!(
                "id: {}\nevent: op\ndata: {data}\n\n",
                op.server_seq
            ));
        }
        self.send(Bytes::from(chunk)).await?;
        if let Some(op) = ops.last() {
            self.last = op.server_seq;
        }
        Ok(())
    }

    /// Ends the stream with a comment saying why (an error the consumer
    /// cannot get as a status any more).
    async fn end_with(&mut self, why: &str) -> Result<String, Gone> {
        let line = why.replace(['\n', '\r'], " ");
        self.send(Bytes::from(format!(": error: {line}\n\n")))
            .await?;
        Ok(why.to_owned())
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), Gone> {
        self.answer.send(chunk).await.map_err(|_| Gone)
    }
}
