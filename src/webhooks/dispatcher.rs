//! The dispatcher actor: takes the documents' change notices from the
//! inbox and keeps, per (document, URL), one pending delivery carrying the
//! latest seq, so its memory is bounded by documents × URLs, never by ops.
//!
//! For each (document, URL):
//! - a first change is sent `debounce` later; changes meanwhile, and while
//!   a request is in flight, only update the seq the next request carries;
//! - no two requests start less than `debounce` apart (retries included);
//! - a failed request (non-2xx, no connection, timeout) is retried after
//!   `retry_delay(failures)` with the latest seq; after `max_attempts`
//!   failed requests the delivery is given up (a warning) and forgotten:
//!   the document's next change starts afresh;
//! - once a request delivered the latest seq, the entry is forgotten.
//!
//! At most `max_concurrent` requests are in flight; due ones wait in a
//! queue (one place per entry).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::delivery::{DeliveryError, Endpoint, Poster};
use super::inbox::ChangeInbox;
use crate::configuration::WebhookSettings;
use crate::document::DocumentChanged;
use crate::metrics::{Metrics, WebhookOutcome};

/// A document and the index of a URL in `endpoints`.
type TargetKey = (Arc<str>, usize);

/// The pending delivery of one document to one URL.
struct Target {
    /// The newest notice: what the next request carries.
    latest: DocumentChanged,
    /// Failed requests since the last delivered one.
    failures: u32,
    /// When the latest request started (the next may start `debounce` later).
    last_attempt: Option<Instant>,
}

/// See the module docs.
pub struct Dispatcher {
    inbox: Arc<ChangeInbox>,
    endpoints: Vec<Endpoint>,
    poster: Poster,
    settings: WebhookSettings,
    metrics: Arc<Metrics>,
    targets: HashMap<TargetKey, Target>,
    /// Due targets waiting for a free request slot, in the order they came due.
    ready: VecDeque<TargetKey>,
    in_flight: usize,
}

impl Dispatcher {
    pub fn new(
        inbox: Arc<ChangeInbox>,
        endpoints: Vec<Endpoint>,
        poster: Poster,
        settings: WebhookSettings,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        Dispatcher {
            inbox,
            endpoints,
            poster,
            settings,
            metrics,
            targets: HashMap::new(),
            ready: VecDeque::new(),
            in_flight: 0,
        }
    }

    /// Takes the next notices from the inbox (when there are some), then
    /// waits again.
    fn wait_for_changes(&mut self, ctx: &mut Context<Self>) {
        let inbox = self.inbox.clone();
        ctx.spawn(
            async move { inbox.next().await }
                .into_actor(self)
                .map(|changes, act, ctx| {
                    for change in changes {
                        act.changed(change, ctx);
                    }
                    act.wait_for_changes(ctx);
                }),
        );
    }

    /// A document changed: every URL's entry carries the new seq; a new
    /// entry is due `debounce` from now.
    fn changed(&mut self, change: DocumentChanged, ctx: &mut Context<Self>) {
        for index in 0..self.endpoints.len() {
            let key = (change.document_id.clone(), index);
            match self.targets.entry(key.clone()) {
                Entry::Occupied(mut entry) => entry.get_mut().latest = change.clone(),
                Entry::Vacant(entry) => {
                    entry.insert(Target {
                        latest: change.clone(),
                        failures: 0,
                        last_attempt: None,
                    });
                    self.due_in(key, self.settings.debounce(), ctx);
                }
            }
        }
    }

    fn due_in(&mut self, key: TargetKey, delay: Duration, ctx: &mut Context<Self>) {
        ctx.run_later(delay, move |act, ctx| act.due(key, ctx));
    }

    /// The entry's next request may start: now, or when a slot is free.
    fn due(&mut self, key: TargetKey, ctx: &mut Context<Self>) {
        if self.in_flight < self.settings.max_concurrent {
            self.start(key, ctx);
        } else {
            self.ready.push_back(key);
        }
    }

    /// Starts a request with the entry's latest seq.
    fn start(&mut self, key: TargetKey, ctx: &mut Context<Self>) {
        let Some(target) = self.targets.get_mut(&key) else {
            return;
        };
        target.last_attempt = Some(Instant::now());
        let sent = target.latest.clone();
        let request = self.poster.post(&self.endpoints[key.1], &sent);
        self.in_flight += 1;
        ctx.spawn(
            request
                .into_actor(self)
                .map(move |result, act, ctx| act.finished(key, sent, result, ctx)),
        );
    }

    /// A request of `key`, which carried `sent`, is done.
    fn finished(
        &mut self,
        key: TargetKey,
        sent: DocumentChanged,
        result: Result<(), DeliveryError>,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let url = &self.endpoints[key.1].shown;
        let Some(target) = self.targets.get_mut(&key) else {
            return self.start_waiting(ctx);
        };
        let since_attempt = target.last_attempt.map_or(Duration::ZERO, |t| t.elapsed());
        let debounce_left = self.settings.debounce().saturating_sub(since_attempt);
        match result {
            Ok(()) => {
                self.metrics.webhook_delivery(WebhookOutcome::Delivered);
                log::debug!(
                    "webhook {url}: document {} seq {} delivered",
                    sent.document_id,
                    sent.server_seq
                );
                target.failures = 0;
                if target.latest == sent {
                    self.targets.remove(&key);
                } else {
                    self.due_in(key, debounce_left, ctx);
                }
            }
            Err(error) => {
                target.failures += 1;
                let failures = target.failures;
                if failures >= self.settings.max_attempts {
                    self.metrics.webhook_delivery(WebhookOutcome::Failed);
                    log::warn!(
                        "webhook {url}: giving up on document {} seq {} after {failures} \
                         failed attempts (last: {error}); its next change is sent again",
                        sent.document_id,
                        target.latest.server_seq,
                    );
                    self.targets.remove(&key);
                } else {
                    self.metrics.webhook_delivery(WebhookOutcome::Retried);
                    let delay = self.settings.retry_delay(failures).max(debounce_left);
                    log::info!(
                        "webhook {url}: document {} seq {}: {error}; attempt {} in {} ms",
                        sent.document_id,
                        sent.server_seq,
                        failures + 1,
                        delay.as_millis(),
                    );
                    self.due_in(key, delay, ctx);
                }
            }
        }
        self.start_waiting(ctx);
    }

    /// Starts due entries while slots are free.
    fn start_waiting(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight < self.settings.max_concurrent {
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            self.start(key, ctx);
        }
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.wait_for_changes(ctx);
    }
}
