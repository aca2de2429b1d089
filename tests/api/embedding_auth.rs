//! A host application mounts the engine with its own authorizer: it
//! decides from its own session cookie who may do what.

use std::sync::Arc;

use actix_web::HttpRequest;
use collab_engine::auth::{Authorizer, Denied};
use collab_engine::vocabulary::{Access, Permission};
use collab_engine::{CollabEngine, EngineOptions};
use futures_util::future::LocalBoxFuture;

use crate::embedding::{host_store, serve_host};
use crate::helpers::{Backend, Editor, TestDatabase, WsClient};

/// The host's rule: cookie `session=alice` writes, `session=bob` reads,
/// anything else is refused.
struct CookieAuthorizer;

impl Authorizer for CookieAuthorizer {
    fn authorize<'a>(
        &'a self,
        request: &'a HttpRequest,
        _document_id: &'a str,
    ) -> LocalBoxFuture<'a, Result<Access, Denied>> {
        let session = request
            .headers()
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|cookies| {
                cookies
                    .split(';')
                    .find_map(|c| c.trim().strip_prefix("session="))
            });
        let answer = match session {
            Some(user @ ("alice" | "bob")) => Ok(Access {
                subject: Some(Arc::from(user)),
                token_id: None,
                permission: if user == "alice" {
                    Permission::Write
                } else {
                    Permission::Read
                },
                expires_at: None,
            }),
            Some(_) => Err(Denied::Forbidden("unknown user".to_owned())),
            None => Err(Denied::Unauthorized("log in first".to_owned())),
        };
        Box::pin(async move { answer })
    }
}

async fn connect_as(port: u16, user: Option<&str>) -> Result<WsClient, u16> {
    let url = format!("ws://127.0.0.1:{port}/collab/ws/hosted-auth");
    let mut request = awc::Client::new().ws(url.as_str());
    if let Some(user) = user {
        request = request.header("Cookie", format!("session={user}"));
    }
    match request.connect().await {
        Ok((_, framed)) => Ok(WsClient::from_framed(framed)),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
        Err(e) => panic!("connect: {e}"),
    }
}

crate::on_both_backends!(a_host_authorizer_reading_a_cookie_decides_who_reads_and_writes);

async fn a_host_authorizer_reading_a_cookie_decides_who_reads_and_writes(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let store = host_store(&db).await;
    let options = EngineOptions {
        authorizer: Arc::new(CookieAuthorizer),
        ..EngineOptions::default()
    };
    let engine = CollabEngine::start(store, options);
    let mount = engine.configure();
    let (port, handle) = serve_host(move |cfg| {
        cfg.service(actix_web::web::scope("/collab").configure(mount.clone()));
    });

    assert_eq!(connect_as(port, None).await.err(), Some(401));
    assert_eq!(connect_as(port, Some("eve")).await.err(), Some(403));
    let mut alice = connect_as(port, Some("alice")).await.expect("alice");
    let mut bob = connect_as(port, Some("bob")).await.expect("bob");
    for (ws, id) in [(&mut alice, "a"), (&mut bob, "b")] {
        ws.hello(id, None, None).await;
        assert_eq!(ws.recv_json().await["type"], "welcome");
        assert_eq!(ws.recv_json().await["type"], "snapshot");
    }
    alice.send_op(1, &Editor::new().append("by alice")).await;
    assert_eq!(alice.recv_json().await["type"], "ack");
    assert_eq!(bob.recv_json().await["client_id"], "a");
    bob.send_op(1, &Editor::new().append("by bob")).await;
    assert_eq!(bob.recv_json().await["code"], "forbidden");

    engine.shutdown().await;
    handle.stop(true).await;
}
