//! The document API for callers that are not WebSocket sessions (HTTP
//! handlers, revocation, webhooks, tests): typed async methods over the
//! manager's [`ToDocument`] messages.
//!
//! ```no_run
//! use collab_engine::{CollabEngine, crdt};
//!
//! async fn import(engine: &CollabEngine, update: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//!     let documents = engine.documents();
//!     let update = crdt::decode_update(update.into())?; // must be a Yjs v1 update
//!     let committed = documents.submit("my-document", "importer", 1, update).await?;
//!     let state = documents.state("my-document").await?; // the whole state, a Yjs v1 update
//!     assert_eq!(committed.server_seq, Some(state.server_seq));
//!     Ok(())
//! }
//! ```

use std::sync::Arc;

use actix::prelude::*;

use super::{DeleteDocument, Loading, SessionManager, ToDocument};
use crate::crdt::ValidUpdate;
use crate::document::{
    CloseSessions, ClosedSessions, Committed, DocumentActor, DocumentEvent, DocumentInfo,
    Forwarded, OpsAfter, ReadInfo, ReadOps, ReadState, StateAtHead, SubmitOp, Submitter, Subscribe,
    Subscribed, Unsubscribe,
};
use crate::vocabulary::{
    Refusal, RefusalReason, validate_client_id, validate_client_op_id, validate_document_id,
};

/// A handle on every document of an engine; cheap to clone.
#[derive(Clone)]
pub struct Documents {
    manager: Addr<SessionManager>,
}

impl Documents {
    pub fn new(manager: Addr<SessionManager>) -> Self {
        Documents { manager }
    }

    /// Sends `message` to document `document_id` through the manager; an
    /// invalid id (see [`validate_document_id`]) is refused as
    /// [`RefusalReason::Invalid`].
    pub async fn call<M>(
        &self,
        document_id: &str,
        message: M,
        loading: Loading,
    ) -> Result<M::Result, Refusal>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        DocumentActor: Handler<Forwarded<M>>,
    {
        validate_document_id(document_id).map_err(|e| Refusal::invalid(e.to_string()))?;
        self.manager
            .send(ToDocument {
                document_id: Arc::from(document_id),
                message,
                loading,
            })
            .await
            .map_err(|e| Refusal::unavailable(format!("the session manager did not answer: {e}")))?
    }

    /// Submits `update` as op `client_op_id` of `client_id`; answered once
    /// it is committed (or refused). Submit the ops of one `client_id` one
    /// at a time (see [`Submitter::Client`]). The ids follow the rules of
    /// the native protocol's (refused as [`RefusalReason::Invalid`]).
    pub async fn submit(
        &self,
        document_id: &str,
        client_id: &str,
        client_op_id: u64,
        update: ValidUpdate,
    ) -> Result<Committed, Refusal> {
        self.submit_as(document_id, client_id, client_op_id, update, None)
            .await
    }

    /// [`Documents::submit`], written by `subject` (see
    /// [`Access::subject`](crate::vocabulary::Access::subject):
    /// a client id that another subject wrote with is refused as
    /// [`RefusalReason::Forbidden`]).
    pub async fn submit_as(
        &self,
        document_id: &str,
        client_id: &str,
        client_op_id: u64,
        update: ValidUpdate,
        subject: Option<Arc<str>>,
    ) -> Result<Committed, Refusal> {
        validate_client_id(client_id)
            .and_then(|()| validate_client_op_id(client_op_id))
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        let submit = SubmitOp {
            submitter: Submitter::Client {
                client_id: Arc::from(client_id),
                subject,
            },
            client_op_id,
            update,
            skip_if_redundant: false,
        };
        self.call(document_id, submit, Loading::LoadIfNeeded)
            .await?
    }

    /// The whole state at the head (loading the document if needed).
    pub async fn state(&self, document_id: &str) -> Result<StateAtHead, Refusal> {
        self.call(document_id, ReadState::default(), Loading::LoadIfNeeded)
            .await?
    }

    /// What `state_vector` (a Yjs v1 state vector) lacks of the state at
    /// the head (loading the document if needed).
    pub async fn state_since(
        &self,
        document_id: &str,
        state_vector: bytes::Bytes,
    ) -> Result<StateAtHead, Refusal> {
        let read = ReadState {
            state_vector: Some(state_vector),
        };
        self.call(document_id, read, Loading::LoadIfNeeded).await?
    }

    /// The committed ops after `after`, at most `limit` (from memory or
    /// from the op log).
    pub async fn ops_after(
        &self,
        document_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<OpsAfter, Refusal> {
        self.call(document_id, ReadOps { after, limit }, Loading::LoadIfNeeded)
            .await?
    }

    /// What the document is now (loading it if needed).
    pub async fn info(&self, document_id: &str) -> Result<DocumentInfo, Refusal> {
        self.call(document_id, ReadInfo, Loading::LoadIfNeeded)
            .await?
    }

    /// Subscribes `listener` to the document's committed ops (see [`Subscribe`]).
    pub async fn subscribe(
        &self,
        document_id: &str,
        listener: Recipient<DocumentEvent>,
    ) -> Result<Subscribed, Refusal> {
        self.call(document_id, Subscribe { listener }, Loading::LoadIfNeeded)
            .await?
    }

    /// Ends a subscription (nothing happens if the document is not loaded:
    /// its listeners were closed when it unloaded).
    pub async fn unsubscribe(&self, document_id: &str, listener_id: u64) -> Result<(), Refusal> {
        let unsubscribe = Unsubscribe { listener_id };
        match self
            .call(document_id, unsubscribe, Loading::OnlyIfLoaded)
            .await
        {
            Err(refusal) if refusal.reason == RefusalReason::NotLoaded => Ok(()),
            other => other,
        }
    }

    /// Deletes the document for good (see [`DeleteDocument`]): its
    /// sessions and listeners are closed with 4404, its ops, snapshots and
    /// row removed. Answers whether the store held it.
    pub async fn delete(&self, document_id: &str) -> Result<bool, Refusal> {
        validate_document_id(document_id).map_err(|e| Refusal::invalid(e.to_string()))?;
        self.manager
            .send(DeleteDocument {
                document_id: Arc::from(document_id),
            })
            .await
            .map_err(|e| Refusal::unavailable(format!("the session manager did not answer: {e}")))?
    }

    /// Closes every session and listener of the document with `code` and
    /// `reason`; a document that is not loaded has none.
    pub async fn close_sessions(
        &self,
        document_id: &str,
        code: u16,
        reason: &str,
    ) -> Result<ClosedSessions, Refusal> {
        let close = CloseSessions {
            code,
            reason: reason.to_owned(),
        };
        match self.call(document_id, close, Loading::OnlyIfLoaded).await {
            Err(refusal) if refusal.reason == RefusalReason::NotLoaded => {
                Ok(ClosedSessions::default())
            }
            other => other,
        }
    }
}
