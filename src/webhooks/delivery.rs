//! One webhook request: the JSON body, its signature, the `POST` with a
//! timeout, and what counts as delivered (a 2xx answer). Retrying is the
//! dispatcher's job.

use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::http::Uri;
use actix_web::http::header::{CONTENT_TYPE, USER_AGENT};
use awc::error::SendRequestError;
use serde_json::json;

use super::signature::{SIGNATURE_HEADER, Signer};
use crate::configuration::{WebhookSettings, redact_query};
use crate::document::DocumentChanged;

/// At most this much of an answer's body is read (and thrown away), so
/// that the connection can be reused.
const BODY_LIMIT: usize = 64 * 1024;

/// Why a request did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("answered {0}")]
    Status(u16),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Request(SendRequestError),
}

/// A URL notices are posted to.
pub struct Endpoint {
    pub uri: Uri,
    /// The URL for log lines: without its query (which may hold a token).
    pub shown: String,
}

impl Endpoint {
    pub fn new(uri: Uri) -> Endpoint {
        let shown = redact_query(&uri.to_string());
        Endpoint { uri, shown }
    }
}

/// Posts notices: one HTTP client (a pool of keep-alive connections) for
/// every URL. Lives on the dispatcher's thread (awc's client is not `Send`).
pub struct Poster {
    client: awc::Client,
    signer: Option<Signer>,
    timeout: Duration,
}

/// The body of a request for `change`: `{"document_id", "epoch", "server_seq"}`.
pub fn body_of(change: &DocumentChanged) -> String {
    json!({
        "document_id": &*change.document_id,
        "epoch": &*change.epoch,
        "server_seq": change.server_seq,
    })
    .to_string()
}

impl Poster {
    pub fn new(settings: &WebhookSettings, signer: Option<Signer>) -> Poster {
        let timeout = settings.timeout();
        let connector = awc::Connector::new()
            .timeout(timeout)
            .limit(settings.max_concurrent);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(timeout)
            // A redirect is an answer that is not 2xx: a failure.
            .disable_redirects()
            .finish();
        Poster {
            client,
            signer,
            timeout,
        }
    }

    /// `POST`s `change` to `endpoint`: `Ok` when answered 2xx within the
    /// timeout. The future owns everything it needs.
    pub fn post(
        &self,
        endpoint: &Endpoint,
        change: &DocumentChanged,
    ) -> impl Future<Output = Result<(), DeliveryError>> + 'static {
        let body = body_of(change);
        let mut request = self
            .client
            .post(endpoint.uri.clone())
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((
                USER_AGENT,
                concat!("collab-engine/", env!("CARGO_PKG_VERSION")),
            ));
        if let Some(signer) = &self.signer {
            request = request.insert_header((SIGNATURE_HEADER, signer.sign(body.as_bytes())));
        }
        let timeout = self.timeout;
        async move {
            let started = Instant::now();
            let mut response = request.send_body(body).await.map_err(|e| match e {
                SendRequestError::Timeout => DeliveryError::Timeout(timeout),
                other => DeliveryError::Request(other),
            })?;
            let status = response.status();
            let left = timeout.saturating_sub(started.elapsed());
            // Whatever the body holds (or however it ends), the status said it.
            let _ = tokio::time::timeout(left, response.body().limit(BODY_LIMIT)).await;
            if status.is_success() {
                Ok(())
            } else {
                Err(DeliveryError::Status(status.as_u16()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_holds_the_three_fields() {
        let body = body_of(&DocumentChanged {
            document_id: "notes/1".into(),
            epoch: "e\"1".into(),
            server_seq: 42,
        });
        assert_eq!(
            body,
            r#"{"document_id":"notes/1","epoch":"e\"1","server_seq":42}"#
        );
    }

    #[test]
    fn urls_are_shown_without_their_query() {
        let uri: Uri = "http://indexer:8000/hook?token=t0k".parse().expect("uri");
        assert_eq!(Endpoint::new(uri).shown, "http://indexer:8000/hook?***");
    }
}
