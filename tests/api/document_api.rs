//! The document API used directly, as an HTTP handler, a revocation or a
//! change feed would: no WebSocket submits, reads or listens here (sessions
//! appear only where the API acts on them). Each test fails if the promise
//! it names is broken.

use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use collab_engine::crdt::{ValidUpdate, decode_update};
use collab_engine::document::{Committed, DocumentEvent};
use collab_engine::vocabulary::{CommittedOp, RefusalReason};
use tokio::sync::mpsc;

use crate::helpers::{Backend, Editor, Peer, RECV_TIMEOUT, spawn_app, spawn_app_with};

crate::on_both_backends!(
    ops_submitted_without_a_session_are_committed_once_and_read_back,
    ops_are_read_from_memory_or_from_the_log_and_marks_survive_a_restart,
    a_failed_commit_is_a_typed_refusal_and_the_resend_succeeds,
);

fn valid(update: Vec<u8>) -> ValidUpdate {
    decode_update(Bytes::from(update)).expect("a real Yjs update")
}

fn new_op(server_seq: u64) -> Committed {
    Committed {
        server_seq: Some(server_seq),
        duplicate: false,
    }
}

fn seqs(ops: &[std::sync::Arc<CommittedOp>]) -> Vec<u64> {
    ops.iter().map(|op| op.server_seq).collect()
}

/// Submitting answers after the commit with the op's seq; a resend is a
/// duplicate with the same seq and is not logged again; the state and the
/// ops read back hold exactly what was committed.
async fn ops_submitted_without_a_session_are_committed_once_and_read_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let documents = app.engine.documents();
    let editor = Editor::new();
    let first = editor.append("hello");
    let answer = documents
        .submit("api", "importer", 1, valid(first.clone()))
        .await;
    assert_eq!(answer, Ok(new_op(1)));
    let resend = documents.submit("api", "importer", 1, valid(first)).await;
    assert_eq!(
        resend,
        Ok(Committed {
            server_seq: Some(1),
            duplicate: true
        })
    );
    let second = documents
        .submit("api", "importer", 2, valid(editor.append(" world")))
        .await;
    assert_eq!(second, Ok(new_op(2)));
    assert_eq!(
        app.logged_ops("api").await.len(),
        2,
        "the resend is not logged"
    );

    let state = documents.state("api").await.expect("state");
    assert_eq!(state.server_seq, 2);
    let reader = Editor::new();
    reader.apply(&state.update);
    assert_eq!(reader.text(), "hello world");

    let read = documents.ops_after("api", 0, 100).await.expect("ops");
    assert_eq!((seqs(&read.ops), read.head), (vec![1, 2], 2));
    assert!(read.ops.iter().all(|op| &*op.client_id == "importer"));
    assert_eq!(
        read.ops
            .iter()
            .map(|op| op.client_op_id)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    let info = documents.info("api").await.expect("info");
    assert_eq!((info.server_seq, info.sessions, info.listeners), (2, 0, 0));
    assert_eq!(info.epoch, state.epoch);
}

/// With a replay tail of 2 ops, older ops come from the op log and newer
/// ones from memory, within the limit asked for; after a restart the
/// client's history is read from the log, so its resends are still
/// recognised.
async fn ops_are_read_from_memory_or_from_the_log_and_marks_survive_a_restart(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.documents.max_replay_ops = 2).await;
    let documents = app.engine.documents();
    let editor = Editor::new();
    let mut updates = Vec::new();
    for (n, s) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        let update = editor.append(s);
        let op_id = n as u64 + 1;
        let answer = documents
            .submit("hist", "w", op_id, valid(update.clone()))
            .await;
        assert_eq!(answer, Ok(new_op(op_id)));
        updates.push(update);
    }
    let all = documents
        .ops_after("hist", 0, 100)
        .await
        .expect("from the log");
    assert_eq!(seqs(&all.ops), vec![1, 2, 3, 4, 5]);
    let recent = documents
        .ops_after("hist", 3, 100)
        .await
        .expect("from memory");
    assert_eq!(seqs(&recent.ops), vec![4, 5]);
    let page = documents.ops_after("hist", 1, 2).await.expect("a page");
    assert_eq!((seqs(&page.ops), page.head), (vec![2, 3], 5));
    let nothing = documents
        .ops_after("hist", 5, 100)
        .await
        .expect("at the head");
    assert!(nothing.ops.is_empty());

    let app = app.restart().await;
    let documents = app.engine.documents();
    let resend = documents
        .submit("hist", "w", 3, valid(updates[2].clone()))
        .await
        .expect("answered");
    assert!(resend.duplicate, "op 3 is in the log: {resend:?}");
    let next = documents
        .submit("hist", "w", 6, valid(editor.append("f")))
        .await;
    assert_eq!(next, Ok(new_op(6)));
    let state = documents.state("hist").await.expect("state");
    let reader = Editor::new();
    reader.apply(&state.update);
    assert_eq!(reader.text(), "abcdef");
    assert_eq!(app.logged_ops("hist").await.len(), 6);
}

/// A commit that fails is answered with an `Unavailable` refusal, nothing
/// is logged, and the same op submitted again is committed once.
async fn a_failed_commit_is_a_typed_refusal_and_the_resend_succeeds(backend: Backend) {
    let app = spawn_app(backend).await;
    let documents = app.engine.documents();
    let editor = Editor::new();
    let first = documents
        .submit("shaky", "w", 1, valid(editor.append("a")))
        .await;
    assert_eq!(first, Ok(new_op(1)));
    assert_eq!(app.inject("shaky", "fail-commits?count=1").await, 200);
    let update = editor.append("b");
    let refused = documents
        .submit("shaky", "w", 2, valid(update.clone()))
        .await
        .expect_err("the commit fails");
    assert_eq!(refused.reason, RefusalReason::Unavailable, "{refused}");
    assert_eq!(app.logged_ops("shaky").await.len(), 1);
    let resent = documents.submit("shaky", "w", 2, valid(update)).await;
    assert_eq!(resent, Ok(new_op(2)));
    assert_eq!(app.logged_ops("shaky").await.len(), 2);
    assert_eq!(app.engine.metrics().commit_failures, 1);
}

/// Collects the events of a listener into a channel.
struct Collector(mpsc::UnboundedSender<DocumentEvent>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<DocumentEvent> for Collector {
    type Result = ();

    fn handle(&mut self, event: DocumentEvent, _ctx: &mut Context<Self>) {
        let _ = self.0.send(event);
    }
}

/// Stops a collector, as a change feed whose client went away would.
#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

impl Handler<Stop> for Collector {
    type Result = ();

    fn handle(&mut self, _msg: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

fn listener() -> (
    Recipient<DocumentEvent>,
    mpsc::UnboundedReceiver<DocumentEvent>,
) {
    let (recipient, events, _) = stoppable_listener();
    (recipient, events)
}

fn stoppable_listener() -> (
    Recipient<DocumentEvent>,
    mpsc::UnboundedReceiver<DocumentEvent>,
    Addr<Collector>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = Collector(tx).start();
    (collector.clone().recipient(), rx, collector)
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<DocumentEvent>) -> DocumentEvent {
    tokio::time::timeout(RECV_TIMEOUT, events.recv())
        .await
        .expect("an event in time")
        .expect("the listener is alive")
}

/// The code and reason of the next event, which must be a close.
async fn next_close(events: &mut mpsc::UnboundedReceiver<DocumentEvent>) -> (u16, String) {
    match next_event(events).await {
        DocumentEvent::Close { code, reason } => (code, reason),
        other => panic!("expected a close, got {other:?}"),
    }
}

/// The seqs of committed events until `count` ops were seen.
async fn committed_seqs(
    events: &mut mpsc::UnboundedReceiver<DocumentEvent>,
    count: usize,
) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.len() < count {
        match next_event(events).await {
            DocumentEvent::Committed { ops, .. } => seen.extend(seqs(&ops)),
            other => panic!("expected committed ops, got {other:?}"),
        }
    }
    seen
}

/// A listener subscribed at seq N gets every op after N, from API writers
/// and sessions alike, in order and without a gap; after unsubscribing it
/// gets nothing; a new listener is closed with 1012 when the document
/// restarts, so it knows to subscribe again.
#[actix_web::test]
async fn a_listener_follows_every_committed_op_in_order_until_it_leaves() {
    let app = spawn_app(Backend::Sqlite).await;
    let documents = app.engine.documents();
    let editor = Editor::new();
    documents
        .submit("feed", "api", 1, valid(editor.append("x")))
        .await
        .expect("op 1");
    let (recipient, mut events) = listener();
    let subscribed = documents
        .subscribe("feed", recipient)
        .await
        .expect("subscribed");
    assert_eq!(subscribed.server_seq, 1);
    assert_eq!(documents.info("feed").await.expect("info").listeners, 1);

    let mut writer = Peer::join(&app, "feed", "session").await;
    writer.insert(0, "s").await;
    documents
        .submit("feed", "api", 2, valid(editor.append("y")))
        .await
        .expect("op 3");
    writer.sync_to(3).await;
    assert_eq!(committed_seqs(&mut events, 2).await, vec![2, 3]);

    documents
        .unsubscribe("feed", subscribed.listener_id)
        .await
        .expect("unsubscribed");
    documents
        .submit("feed", "api", 3, valid(editor.append("z")))
        .await
        .expect("op 4");
    // The document let go of the listener (whose actor then stops, closing
    // the channel) or keeps quiet: either way no event comes.
    let heard = tokio::time::timeout(Duration::from_millis(300), events.recv()).await;
    assert!(
        !matches!(heard, Ok(Some(_))),
        "an unsubscribed listener hears nothing: {heard:?}"
    );

    // A listener whose actor stops without unsubscribing is forgotten.
    let (recipient, _events, collector) = stoppable_listener();
    documents
        .subscribe("feed", recipient)
        .await
        .expect("subscribed");
    collector.send(Stop).await.expect("stopped");
    documents
        .submit("feed", "api", 4, valid(editor.append("!")))
        .await
        .expect("op 5");
    let info = documents.info("feed").await.expect("info");
    assert_eq!(info.listeners, 0, "the stopped listener is gone");

    let (recipient, mut events) = listener();
    let again = documents
        .subscribe("feed", recipient)
        .await
        .expect("subscribed");
    assert_eq!(again.server_seq, 5);
    assert_eq!(app.inject("feed", "panic").await, 200);
    assert_eq!(next_close(&mut events).await.0, 1012);
}

/// Closing a document's sessions (what deletion and revocation use)
/// closes each with the given code and reason and says how many; the
/// document goes on serving, and a document that is not loaded has none.
#[actix_web::test]
async fn every_session_of_a_document_is_closed_with_the_code_given() {
    let app = spawn_app(Backend::Sqlite).await;
    let documents = app.engine.documents();
    let mut a = Peer::join(&app, "revoked", "a").await;
    let mut b = Peer::join(&app, "revoked", "b").await;
    let (recipient, mut events) = listener();
    documents
        .subscribe("revoked", recipient)
        .await
        .expect("subscribed");
    let closed = documents
        .close_sessions("revoked", 1008, "access revoked")
        .await
        .expect("closed");
    assert_eq!((closed.sessions, closed.listeners), (2, 1));
    for peer in [&mut a, &mut b] {
        let (code, refused) = peer.drain_until_close().await;
        assert_eq!((code, refused), (Some(1008), vec![]));
    }
    let (code, reason) = next_close(&mut events).await;
    assert_eq!((code, reason.as_str()), (1008, "access revoked"));
    let info = documents.info("revoked").await.expect("info");
    assert_eq!((info.sessions, info.listeners), (0, 0));
    let mut c = Peer::join(&app, "revoked", "c").await;
    c.insert(0, "still served").await;
    c.sync_to(1).await;

    let none = documents
        .close_sessions("never-loaded", 1008, "x")
        .await
        .expect("nothing to close");
    assert_eq!((none.sessions, none.listeners), (0, 0));
    assert_eq!(
        app.engine.stats().await.documents_loaded,
        1,
        "closing the sessions of an unloaded document does not load it"
    );
}

/// While the server shuts down, the API refuses with `ShuttingDown`.
#[actix_web::test]
async fn the_api_refuses_while_shutting_down() {
    let app = spawn_app(Backend::Sqlite).await;
    let documents = app.engine.documents();
    app.shutdown().await;
    let refused = documents
        .submit("late", "w", 1, valid(Editor::new().append("x")))
        .await
        .expect_err("refused");
    assert_eq!(refused.reason, RefusalReason::ShuttingDown, "{refused}");
    let refused = documents.state("late").await.expect_err("refused");
    assert_eq!(refused.reason, RefusalReason::ShuttingDown);
}

/// The ids a native client could not use are refused through the API too,
/// as `Invalid`, before anything reaches a document.
#[actix_web::test]
async fn the_api_refuses_ids_the_protocols_refuse() {
    let app = spawn_app(Backend::Sqlite).await;
    let documents = app.engine.documents();
    let update = || valid(Editor::new().append("x"));
    let long_client = "c".repeat(65);
    for (document_id, client_id, client_op_id, names) in [
        ("doc", "", 1, "client_id"),
        ("doc", long_client.as_str(), 1, "client_id"),
        ("doc", "tab\there", 1, "control characters"),
        ("doc", "w", u64::MAX, "client_op_id"),
        ("a\nb", "w", 1, "document id"),
    ] {
        let refused = documents
            .submit(document_id, client_id, client_op_id, update())
            .await
            .expect_err("refused");
        assert_eq!(refused.reason, RefusalReason::Invalid, "{refused}");
        assert!(refused.message.contains(names), "{refused}");
    }
    let refused = documents.state("").await.expect_err("no such id");
    assert_eq!(refused.reason, RefusalReason::Invalid);
    assert_eq!(app.engine.stats().await.documents_loaded, 0);
}
