//! Webhooks: after a document changes, every URL of `[webhooks]` gets
//! `POST {"document_id", "epoch", "server_seq"}`, debounced per document
//! and URL, signed, retried with back-off (docs/webhooks.md).
//!
//! Above the document layer and unknown to it: the engine gives documents
//! a [`ChangeInbox`] as their [`ChangeListener`]; a document leaves its
//! latest notice there after each commit and goes on (no I/O, no waiting);
//! the [`dispatcher`] takes the notices on a thread of its own and posts
//! them ([`delivery`], signed by [`signature`]).
//!
//! Outcomes are counted in the engine's [`Metrics`] (delivered, retried,
//! failed). On shutdown pending and in-flight deliveries are dropped.

mod delivery;
mod dispatcher;
mod inbox;
mod signature;

use std::sync::Arc;

use actix::prelude::*;

use crate::configuration::{InvalidSetting, WebhookSettings};
use crate::document::ChangeListener;
use crate::metrics::Metrics;
use delivery::{Endpoint, Poster};
use dispatcher::Dispatcher;
use inbox::ChangeInbox;
use signature::Signer;
pub use signature::{InvalidKey, SIGNATURE_HEADER};

/// Why webhooks could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    #[error(transparent)]
    Settings(#[from] InvalidSetting),
    #[error(transparent)]
    Key(#[from] InvalidKey),
}

/// Running webhooks: the inbox documents notify and the dispatcher's
/// thread. Dropping it stops them, like [`Webhooks::stop`].
pub struct Webhooks {
    inbox: Arc<ChangeInbox>,
    arbiter: Arbiter,
}

impl Webhooks {
    /// Starts the dispatcher for `settings` (whose `urls` are not empty) on
    /// an arbiter of its own. Must be called inside a running actix system.
    pub fn start(
        settings: &WebhookSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Webhooks, WebhooksError> {
        settings.validate()?;
        let endpoints: Vec<Endpoint> = settings
            .parsed_urls()?
            .into_iter()
            .map(Endpoint::new)
            .collect();
        let signer = Signer::new(&settings.secret)?;
        let inbox = Arc::new(ChangeInbox::default());
        let arbiter = Arbiter::new();
        let (for_dispatcher, settings) = (inbox.clone(), settings.clone());
        log::info!(
            "webhooks to {} ({}signed, debounce {} ms)",
            endpoints
                .iter()
                .map(|e| e.shown.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if signer.is_some() { "" } else { "not " },
            settings.debounce_ms,
        );
        Dispatcher::start_in_arbiter(&arbiter.handle(), move |_| {
            // The HTTP client is made on the dispatcher's own thread.
            let poster = Poster::new(&settings, signer);
            Dispatcher::new(for_dispatcher, endpoints, poster, settings, metrics)
        });
        Ok(Webhooks { inbox, arbiter })
    }

    /// What documents notify.
    pub fn listener(&self) -> Arc<dyn ChangeListener> {
        self.inbox.clone()
    }

    /// Drops pending and in-flight deliveries and stops the dispatcher's
    /// thread, without waiting for anything.
    pub fn stop(&self) {
        self.inbox.close();
        self.arbiter.stop();
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.stop();
    }
}
