//! `GET /metrics`: the Prometheus text format, counters that move with
//! real traffic, engines that count apart, and the bearer key.

use actix_web::web;
use collab_engine::{CollabEngine, EngineOptions};
use serde_json::Value;

use crate::embedding::{host_store, serve_host};
use crate::helpers::{
    Backend, Peer, Scrape, TestDatabase, WsClient, spawn_app, spawn_app_with, spawn_token_app,
    token,
};

const WS_ROUTE: &str = "/ws/{document_id:.*}";

/// Every series the operations guide lists, with its type.
const SERIES: [(&str, &str); 13] = [
    ("collab_ops_committed_total", "counter"),
    ("collab_commits_total", "counter"),
    ("collab_commit_duration_seconds", "histogram"),
    ("collab_commit_batch_ops", "histogram"),
    ("collab_commit_failures_total", "counter"),
    ("collab_documents_loaded", "gauge"),
    ("collab_sessions", "gauge"),
    ("collab_joins_total", "counter"),
    ("collab_document_restarts_total", "counter"),
    ("collab_slow_sessions_dropped_total", "counter"),
    ("collab_refusals_total", "counter"),
    ("collab_http_requests_total", "counter"),
    ("collab_webhook_deliveries_total", "counter"),
];

#[actix_web::test]
async fn metrics_answer_the_prometheus_text_format_with_every_series() {
    let app = spawn_app(Backend::Sqlite).await;
    let scrape = app.scrape().await;
    for (name, kind) in SERIES {
        assert_eq!(
            scrape.types.get(name).map(String::as_str),
            Some(kind),
            "TYPE of {name}"
        );
        assert!(
            scrape.help.get(name).is_some_and(|h| !h.is_empty()),
            "HELP of {name}"
        );
    }
    // The closed label sets are there from the start, at 0.
    for (name, label, values) in [
        ("collab_sessions", "route", &["native", "yjs"][..]),
        (
            "collab_joins_total",
            "recovery",
            &["replay", "snapshot"][..],
        ),
        (
            "collab_refusals_total",
            "reason",
            &[
                "unauthorized",
                "forbidden",
                "rate_limited",
                "too_large",
                "unavailable",
            ][..],
        ),
        (
            "collab_webhook_deliveries_total",
            "outcome",
            &["delivered", "retried", "failed"][..],
        ),
    ] {
        for value in values {
            assert_eq!(
                scrape.value(name, &[(label, value)]),
                Some(0.0),
                "{name}{{{label}={value:?}}}"
            );
        }
    }
    assert_eq!(scrape.value("collab_commits_total", &[]), Some(0.0));
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.labels.contains_key("document_id")),
        "no per-document label"
    );
    app.shutdown().await;
}

#[actix_web::test]
async fn counters_move_with_native_and_yjs_traffic() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut alice = Peer::join(&app, "counted", "alice").await;
    let scrape = app.scrape().await;
    assert_eq!(scrape.get("collab_sessions", &[("route", "native")]), 1.0);
    assert_eq!(
        scrape.get("collab_joins_total", &[("recovery", "snapshot")]),
        1.0
    );
    assert_eq!(scrape.get("collab_documents_loaded", &[]), 1.0);

    for (i, word) in ["one ", "two ", "three "].iter().enumerate() {
        let at = alice.editor.len();
        alice.insert(at, word).await;
        alice.sync_to(i as u64 + 1).await;
    }
    let scrape = app.scrape().await;
    assert_eq!(scrape.get("collab_ops_committed_total", &[]), 3.0);
    let commits = scrape.get("collab_commits_total", &[]);
    assert!((1.0..=3.0).contains(&commits), "{commits} commits");
    assert_eq!(scrape.get("collab_commit_batch_ops_sum", &[]), 3.0);
    assert_eq!(scrape.get("collab_commit_batch_ops_count", &[]), commits);
    assert!(scrape.get("collab_commit_duration_seconds_count", &[]) >= commits);
    assert_eq!(scrape.get("collab_commit_failures_total", &[]), 0.0);

    // A reconnect with last_seen_server_seq is a replay.
    let alice = alice.rejoin(&app, "counted").await;
    assert_eq!(alice.welcome["recovery"], "replay");
    let mut yjs = WsClient::connect_yjs(&app, "counted").await;
    let scrape = app
        .scrape_until("one session per route, the y-websocket one joined", |s| {
            s.get("collab_joins_total", &[("recovery", "sync")]) == 1.0
                && s.get("collab_sessions", &[("route", "yjs")]) == 1.0
                && s.get("collab_sessions", &[("route", "native")]) == 1.0
        })
        .await;
    assert_eq!(
        scrape.get("collab_joins_total", &[("recovery", "replay")]),
        1.0
    );
    // Upgrades are counted by route pattern (101), the scrapes too.
    assert_eq!(
        scrape.get(
            "collab_http_requests_total",
            &[("route", WS_ROUTE), ("status", "101")]
        ),
        2.0
    );
    assert_eq!(
        scrape.get(
            "collab_http_requests_total",
            &[("route", "/yjs/{document_id:.*}"), ("status", "101")]
        ),
        1.0
    );
    assert!(
        scrape.get(
            "collab_http_requests_total",
            &[("route", "/metrics"), ("status", "200")]
        ) >= 2.0
    );
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.labels.get("route").is_some_and(|r| r.contains("counted"))),
        "no raw path as a route label"
    );

    drop(alice);
    yjs.close().await;
    app.scrape_until("both sessions are gone", |s| {
        s.get("collab_sessions", &[("route", "native")]) == 0.0
            && s.get("collab_sessions", &[("route", "yjs")]) == 0.0
    })
    .await;
    app.shutdown().await;
}

#[actix_web::test]
async fn a_failed_commit_is_counted_and_its_op_refused_unavailable() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut peer = Peer::join(&app, "failing", "p").await;
    peer.insert(0, "kept").await;
    peer.sync_to(1).await;
    assert_eq!(app.inject("failing", "fail-commits?count=1").await, 200);
    peer.insert(0, "lost").await;
    peer.expect_refused(&[2]).await;
    let scrape = app.scrape().await;
    assert_eq!(scrape.get("collab_commit_failures_total", &[]), 1.0);
    assert_eq!(
        scrape.get("collab_refusals_total", &[("reason", "unavailable")]),
        1.0
    );
    assert_eq!(scrape.get("collab_ops_committed_total", &[]), 1.0);
    app.shutdown().await;
}

#[actix_web::test]
async fn refused_upgrades_are_counted_by_reason() {
    let app = spawn_token_app(Backend::Sqlite, |_| {}).await;
    let (status, body) = app.upgrade("/ws/guarded", &[]).await.expect_err("no token");
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let other = token("mallory", &[("elsewhere", "write")]);
    let (status, _) = app
        .upgrade(&format!("/ws/guarded?token={other}"), &[])
        .await
        .expect_err("another document's token");
    assert_eq!(status, 403);
    let scrape = app.scrape().await;
    // `upgrade` tries the WebSocket, then a plain GET for the body: both count.
    assert_eq!(
        scrape.get("collab_refusals_total", &[("reason", "unauthorized")]),
        2.0
    );
    assert_eq!(
        scrape.get("collab_refusals_total", &[("reason", "forbidden")]),
        2.0
    );
    assert_eq!(
        scrape.get(
            "collab_http_requests_total",
            &[("route", WS_ROUTE), ("status", "401")]
        ),
        2.0
    );
    assert_eq!(scrape.get("collab_sessions", &[("route", "native")]), 0.0);
    app.shutdown().await;
}

#[actix_web::test]
async fn the_bearer_key_guards_the_metrics() {
    const KEY: &str = "scraper-key-0123456789";
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics.bearer_key = KEY.to_owned()).await;
    for key in [None, Some("wrong-key-0123456789"), Some("")] {
        let (status, content_type, body) = app.get_metrics(key).await;
        assert_eq!(status, 401, "{key:?}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let body: Value = serde_json::from_str(&body).expect("JSON error");
        assert_eq!(body["error"], "unauthorized");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The key goes in the header only, never in a URL.
    let in_query = app.get_status(&format!("/metrics?token={KEY}")).await;
    assert_eq!(in_query, 401);
    let (status, _, body) = app.get_metrics(Some(KEY)).await;
    assert_eq!(status, 200, "{body}");
    let scrape = Scrape::parse(&body);
    assert_eq!(
        scrape.get(
            "collab_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ),
        4.0
    );
    app.shutdown().await;
}

#[actix_web::test]
async fn engines_in_one_process_count_apart_also_under_a_host_scope() {
    let busy = spawn_app(Backend::Sqlite).await;
    let mut peer = Peer::join(&busy, "only-here", "p").await;
    peer.insert(0, "x").await;
    peer.sync_to(1).await;

    let db = TestDatabase::create(&Backend::Sqlite).await;
    let quiet = CollabEngine::start(host_store(&db).await, EngineOptions::default());
    let mount = quiet.configure();
    let (port, handle) = serve_host(move |cfg| {
        cfg.service(web::scope("/collab").configure(mount.clone()));
    });
    let url = format!("ws://127.0.0.1:{port}/collab/ws/hosted");
    let mut hosted = WsClient::connect_url(&url).await;
    hosted.hello("h", None, None).await;
    assert_eq!(hosted.recv_json().await["type"], "welcome");
    let mut response = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/collab/metrics"))
        .send()
        .await
        .expect("hosted metrics");
    assert_eq!(response.status().as_u16(), 200);
    let body = response.body().await.expect("body");
    let hosted_scrape = Scrape::parse(std::str::from_utf8(&body).expect("UTF-8"));
    assert_eq!(hosted_scrape.get("collab_ops_committed_total", &[]), 0.0);
    assert_eq!(
        hosted_scrape.get("collab_sessions", &[("route", "native")]),
        1.0
    );
    assert_eq!(
        hosted_scrape.get(
            "collab_http_requests_total",
            &[("route", "/collab/ws/{document_id:.*}"), ("status", "101")]
        ),
        1.0,
        "the pattern carries the host's scope"
    );
    let busy_scrape = busy.scrape().await;
    assert_eq!(busy_scrape.get("collab_ops_committed_total", &[]), 1.0);
    assert_eq!(
        busy_scrape.get("collab_sessions", &[("route", "native")]),
        1.0
    );

    hosted.close().await;
    quiet.shutdown().await;
    handle.stop(true).await;
    busy.shutdown().await;
}

#[actix_web::test]
async fn documents_loaded_counts_the_documents_in_memory_through_a_restart_and_an_unload() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.documents.idle_unload_secs = 1).await;
    let mut peer = Peer::join(&app, "gauged", "p").await;
    peer.insert(0, "x").await;
    peer.sync_to(1).await;
    assert_eq!(app.inject("gauged", "panic").await, 200);
    let (code, _) = peer.drain_until_close().await;
    assert_eq!(code, Some(1012), "a restart closes the session with 1012");
    let scrape = app
        .scrape_until("the document restarted and reloaded", |s| {
            s.get("collab_document_restarts_total", &[]) == 1.0
                && s.get("collab_document_loads_total", &[]) == 2.0
        })
        .await;
    assert_eq!(
        scrape.get("collab_documents_loaded", &[]),
        1.0,
        "loaded once"
    );
    app.scrape_until("the idle document unloaded", |s| {
        s.get("collab_documents_loaded", &[]) == 0.0
    })
    .await;
    app.shutdown().await;
}
