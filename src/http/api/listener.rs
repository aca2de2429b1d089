//! A document listener for the change feed: an actor that passes the
//! committed ops of a document into a bounded channel. When the consumer
//! falls that far behind, the listener stops (the document forgets it)
//! and the channel ends without a [`FeedEvent::Closed`]: the feed then
//! ends its answer rather than buffer without bound.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::document::DocumentEvent;
use crate::vocabulary::CommittedOp;

/// What the feed hears from the document.
#[derive(Debug)]
pub enum FeedEvent {
    /// Ops just committed, in seq order.
    Ops(Arc<[Arc<CommittedOp>]>),
    /// The document stopped serving its listeners (restart, unload,
    /// shutdown, deletion).
    Closed { code: u16, reason: String },
}

/// See the module docs.
pub struct FeedListener {
    events: mpsc::Sender<FeedEvent>,
}

impl FeedListener {
    /// A running listener, its recipient for `Subscribe`, and the channel
    /// its events arrive on (at most `capacity` commit batches waiting).
    pub fn start(capacity: usize) -> (Recipient<DocumentEvent>, mpsc::Receiver<FeedEvent>) {
        let (events, receiver) = mpsc::channel(capacity);
        let listener = FeedListener { events }.start();
        (listener.recipient(), receiver)
    }
}

impl Actor for FeedListener {
    type Context = Context<Self>;
}

impl Handler<DocumentEvent> for FeedListener {
    type Result = ();

    fn handle(&mut self, event: DocumentEvent, ctx: &mut Context<Self>) {
        let event = match event {
            // The backlog ticket is released here: the channel's capacity
            // bounds what this listener holds.
            DocumentEvent::Committed { ops, ticket: _ } => FeedEvent::Ops(ops),
            DocumentEvent::Close { code, reason } => {
                let _ = self.events.try_send(FeedEvent::Closed { code, reason });
                return ctx.stop();
            }
            _ => return,
        };
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                log::info!("change feed: the consumer is too slow; ending its stream");
                ctx.stop();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }
}
