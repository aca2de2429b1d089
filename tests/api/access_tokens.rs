//! Who may connect: tokens at the upgrade (401/403 before any upgrade, on
//! both routes), the admin API that mints them, the Origin check, the
//! session limit of a document, and an open server refusing to start.

use serde_json::json;

crate::on_both_backends!(
    upgrades_need_a_token_that_grants_the_document,
    the_admin_api_mints_tokens_for_the_admin_only,
    upgrades_from_origins_not_listed_are_refused,
    a_full_document_refuses_more_sessions,
    a_read_grant_by_prefix_joins,
);

use crate::helpers::{
    ADMIN_KEY, Backend, Incoming, SECRET, WsClient, now, sign, spawn_app_with, spawn_token_app,
    token,
};

/// Every way a token can be wrong is a 401 `unauthorized`; a valid token
/// that grants nothing on the document is a 403 `forbidden`; a good token
/// passes as a bearer header or as `?token=`, on both routes.
async fn upgrades_need_a_token_that_grants_the_document(backend: Backend) {
    let app = spawn_token_app(backend, |_| {}).await;
    let expired = sign(
        json!({"sub": "u", "exp": now() - 60, "docs": {"doc": "write"}}),
        SECRET,
    );
    let forged = sign(
        json!({"sub": "u", "exp": now() + 60, "docs": {"doc": "write"}}),
        "not the server's secret, but long enough",
    );
    let elsewhere = token("u", &[("other-*", "write")]);
    let long_sub = token(&"s".repeat(256), &[("doc", "write")]);
    for route in ["ws", "yjs"] {
        let path = format!("/{route}/doc");
        let refused = [
            (path.clone(), vec![], 401, "unauthorized"),
            (format!("{path}?token=garbage"), vec![], 401, "unauthorized"),
            (
                format!("{path}?token={expired}"),
                vec![],
                401,
                "unauthorized",
            ),
            (
                format!("{path}?token={forged}"),
                vec![],
                401,
                "unauthorized",
            ),
            (
                path.clone(),
                vec![("Authorization", "Basic dTpw")],
                401,
                "unauthorized",
            ),
            (
                format!("{path}?token={elsewhere}"),
                vec![],
                403,
                "forbidden",
            ),
            (
                format!("{path}?token={long_sub}"),
                vec![],
                401,
                "unauthorized",
            ),
        ];
        for (path, headers, status, error) in refused {
            let answer = app.upgrade(&path, &headers).await;
            let (got, body) = answer.expect_err(&path);
            assert_eq!(
                (got, body["error"].as_str()),
                (status, Some(error)),
                "{path}: {body}"
            );
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{body}"
            );
        }
        let good = token("u", &[("doc", "write")]);
        assert_eq!(
            app.upgrade(&format!("{path}?token={good}"), &[]).await,
            Ok(())
        );
        let bearer = format!("Bearer {good}");
        assert_eq!(
            app.upgrade(&path, &[("Authorization", &bearer)]).await,
            Ok(())
        );
    }
    let mut client = WsClient::connect_bearer(
        &format!("ws://127.0.0.1:{}/ws/doc", app.port),
        &token("u", &[("d*", "read")]),
    )
    .await;
    client.hello("c", None, None).await;
    assert_eq!(client.recv_json().await["type"], "welcome");
}

/// `POST /api/tokens` mints a token only with the admin key (401 without
/// or with a wrong one, 400 for a bad body); the token works on the
/// documents it names and nowhere else.
async fn the_admin_api_mints_tokens_for_the_admin_only(backend: Backend) {
    let app = spawn_token_app(backend, |_| {}).await;
    let request = json!({"sub": "user-42", "docs": {"notes-*": "write"}, "ttl_secs": 600});
    for key in [None, Some("wrong-key-0123456789"), Some("")] {
        let (status, body) = app.admin_post("/api/tokens", key, request.clone()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{key:?}"
        );
    }
    let (status, body) = app
        .admin_post("/api/tokens", Some(ADMIN_KEY), json!({"docs": {}}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let bad_grant = json!({"sub": "u", "docs": {"x": "admin"}});
    let (status, _) = app
        .admin_post("/api/tokens", Some(ADMIN_KEY), bad_grant)
        .await;
    assert_eq!(status, 400);

    let (status, minted) = app
        .admin_post("/api/tokens", Some(ADMIN_KEY), request)
        .await;
    assert_eq!(status, 200, "{minted}");
    let expires_at = minted["expires_at"].as_i64().expect("expires_at");
    assert!((expires_at - now() - 600).abs() <= 2, "{minted}");
    let token = minted["token"].as_str().expect("token");
    assert_eq!(
        app.upgrade(&format!("/ws/notes-1?token={token}"), &[])
            .await,
        Ok(())
    );
    let (status, _) = app
        .upgrade(&format!("/ws/handbook?token={token}"), &[])
        .await
        .expect_err("not granted");
    assert_eq!(status, 403);
}

/// With `server.allowed_origins`, a browser page of another origin gets 403
/// (cross-site WebSocket hijacking); a listed origin, or no Origin header
/// at all (not a browser), is let through.
async fn upgrades_from_origins_not_listed_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.server.allowed_origins = vec!["https://app.example.com".to_owned()];
    })
    .await;
    let (status, body) = app
        .upgrade("/ws/doc", &[("Origin", "https://evil.example")])
        .await
        .expect_err("refused");
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden_origin")),
        "{body}"
    );
    assert_eq!(
        app.upgrade("/yjs/doc", &[("Origin", "https://evil.example")])
            .await
            .map_err(|e| e.0),
        Err(403)
    );
    assert_eq!(
        app.upgrade("/ws/doc", &[("Origin", "https://app.example.com")])
            .await,
        Ok(())
    );
    assert_eq!(app.upgrade("/ws/doc", &[]).await, Ok(()));
}

/// Beyond `limits.max_sessions_per_document` (both routes together) an
/// upgrade gets 429 `document_full`; other documents are not affected, and
/// a place freed by a leaving session can be taken again.
async fn a_full_document_refuses_more_sessions(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.max_sessions_per_document = 2).await;
    let mut first = WsClient::connect(&app, "busy").await;
    let _second = WsClient::connect_yjs(&app, "busy").await;
    let (status, body) = app.upgrade("/ws/busy", &[]).await.expect_err("full");
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("document_full")),
        "{body}"
    );
    assert_eq!(app.upgrade("/ws/quiet", &[]).await, Ok(()));
    first.close().await;
    let mut freed = false;
    for _ in 0..50 {
        if app.upgrade("/ws/busy", &[]).await.is_ok() {
            freed = true;
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(freed, "the place of the session that left is free again");
}

/// A read token on a document lets a client join (the welcome arrives).
async fn a_read_grant_by_prefix_joins(backend: Backend) {
    let app = spawn_token_app(backend, |_| {}).await;
    let url = app.ws_url_with_token("ws", "team/doc:1", &token("reader", &[("team/*", "read")]));
    let mut client = WsClient::connect_url(&url).await;
    client.hello("r", None, None).await;
    assert!(matches!(client.recv().await, Incoming::Json(v) if v["type"] == "welcome"));
}

/// The server's log shows the requests without their query string: a token
/// passed as `?token=` never reaches the log, accepted or refused.
#[actix_web::test]
async fn tokens_never_appear_in_the_log() {
    let db = crate::helpers::TestDatabase::create(&Backend::Sqlite).await;
    let server = crate::helpers::ServerProcess::start(
        &db.url,
        &[
            ("COLLAB__AUTH__MODE", "token"),
            ("COLLAB__AUTH__SECRET", SECRET),
        ],
    );
    let good = token("user-7", &[("logged", "write")]);
    let url = format!("ws://127.0.0.1:{}/ws/logged?token={good}", server.port);
    let mut peer = crate::helpers::Peer::join_url(&url, "p").await;
    peer.insert(0, "x").await;
    peer.sync_to(1).await;
    let refused = format!("{good}tampered");
    let response = awc::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/ws/logged?token={refused}",
            server.port
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
    peer.ws.close().await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = server.log.lock().expect("log").join("\n");
    assert!(
        log.contains("\"GET /ws/logged\" 401"),
        "the request is logged: {log}"
    );
    let signature = good.rsplit('.').next().expect("a signature");
    assert!(!log.contains(signature), "a token in the log: {log}");
}
