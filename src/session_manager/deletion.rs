//! Deleting a document for good: its actor (if loaded) stops accepting,
//! commits what it had accepted and closes every session with 4404; then
//! the store removes its ops, snapshots and row; meanwhile the manager
//! refuses everything for it, so nothing loads it half-deleted.

use std::sync::Arc;

use actix::prelude::*;

use super::SessionManager;
use crate::document::{Flush, Unload};
use crate::vocabulary::Refusal;

/// Deletes document `document_id` (see the module docs). Answers whether
/// the store held it (`false`: it was never written, or already deleted).
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, Refusal>")]
pub struct DeleteDocument {
    pub document_id: Arc<str>,
}

impl Handler<DeleteDocument> for SessionManager {
    type Result = ResponseActFuture<Self, Result<bool, Refusal>>;

    fn handle(&mut self, msg: DeleteDocument, _ctx: &mut Context<Self>) -> Self::Result {
        let id = msg.document_id;
        if self.shutting_down {
            return Box::pin(fut::ready(Err(Refusal::shutting_down())));
        }
        if !self.deleting.insert(id.clone()) {
            let refusal = Refusal::unavailable(format!("document {id} is being deleted; retry"));
            return Box::pin(fut::ready(Err(refusal)));
        }
        // Nothing more is forwarded to the actor: it is forgotten now, and
        // `route` refuses the id until the deletion is done.
        let actor = self.documents.remove(&id).map(|entry| entry.addr);
        let store = self.context.store.clone();
        let document_id = id.clone();
        let deletion = async move {
            if let Some(actor) = &actor {
                // Answered once the accepted ops are committed and every
                // session and listener was closed with 4404.
                let _ = actor.send(Flush::deletion()).await;
            }
            let deleted = store.delete_document(&document_id).await;
            if let Some(actor) = actor {
                actor.do_send(Unload);
            }
            deleted.map_err(|e| {
                Refusal::unavailable(format!("the document could not be deleted: {e}"))
            })
        };
        Box::pin(deletion.into_actor(self).map(move |result, act, _ctx| {
            act.deleting.remove(&id);
            act.failed_until.remove(&id);
            match &result {
                Ok(existed) => log::info!("document {id} deleted (stored: {existed})"),
                Err(refusal) => log::error!("document {id}: {refusal}"),
            }
            result
        }))
    }
}
