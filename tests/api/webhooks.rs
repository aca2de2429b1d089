//! Webhooks against real receivers (actix-web servers on 127.0.0.1 that
//! record every request): what is posted, signed, retried, debounced, and
//! that a receiver never slows down the acks of a WebSocket writer.
//! Webhooks do not touch storage, so these run on SQLite only.

use std::process::Command;
use std::time::{Duration, Instant};

use collab_engine::Application;
use collab_engine::configuration::WebhookSettings;
use serde_json::json;

use crate::helpers::{
    Answer, Backend, Peer, Received, Receiver, TestApp, TestDatabase, signature_of, spawn_app_with,
    test_settings,
};

const SECRET: &str = "webhook-test-secret";

/// A server posting to `urls`, signed with [`SECRET`], with short delays
/// the test may adjust.
async fn spawn_with_webhooks(urls: &[&str], adjust: impl FnOnce(&mut WebhookSettings)) -> TestApp {
    let mut webhooks = WebhookSettings {
        urls: urls.iter().map(|u| u.to_string()).collect(),
        secret: SECRET.to_owned(),
        debounce_ms: 50,
        timeout_ms: 2000,
        max_attempts: 5,
        retry_initial_ms: 100,
        retry_max_ms: 1000,
        max_concurrent: 8,
    };
    adjust(&mut webhooks);
    spawn_app_with(Backend::Sqlite, |s| s.webhooks = webhooks).await
}

/// Every request is a signed JSON notice of `document` in `epoch`.
fn assert_signed_notices(requests: &[Received], document: &str, epoch: &str) {
    for request in requests {
        assert_eq!(
            request.signature.as_deref(),
            Some(signature_of(SECRET, &request.body).as_str()),
            "the signature is the HMAC-SHA256 of the exact body: {request:?}"
        );
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            request.json,
            json!({"document_id": document, "epoch": epoch, "server_seq": request.seq()}),
        );
    }
}

async fn wait_for_metrics(
    app: &TestApp,
    what: &str,
    done: impl Fn(&collab_engine::MetricsSnapshot) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&app.engine.metrics()) {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?}",
            app.engine.metrics()
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two failed attempts (500) are retried with back-off; the retries carry
/// the latest seq, so the ops committed after the first attempt are in
/// the delivery that succeeds; every request is signed.
#[actix_web::test]
async fn a_webhook_receiver_that_fails_twice_then_succeeds_gets_the_latest_seq() {
    let receiver = Receiver::start(|n| Answer::Status(if n < 2 { 500 } else { 200 }));
    let app = spawn_with_webhooks(&[&receiver.url], |w| w.retry_initial_ms = 300).await;
    let mut peer = Peer::join(&app, "retried", "writer").await;
    peer.insert(0, "a").await;
    peer.sync_to(1).await;
    let first = receiver
        .wait_until(Duration::from_secs(10), "the first attempt", |r| {
            !r.is_empty()
        })
        .await;
    assert_eq!(first[0].seq(), 1);
    peer.insert(1, "b").await;
    peer.insert(2, "c").await;
    peer.sync_to(3).await;

    let requests = receiver
        .wait_until(Duration::from_secs(20), "seq 3 delivered", |r| {
            r.iter().any(|x| x.delivered() && x.seq() == 3)
        })
        .await;
    assert!(!requests[0].delivered() && !requests[1].delivered());
    assert!(
        requests.windows(2).all(|w| w[0].seq() <= w[1].seq()),
        "never an older seq: {requests:?}"
    );
    assert_eq!(requests.last().map(Received::seq), Some(3));
    assert_signed_notices(&requests, "retried", &peer.epoch);
    wait_for_metrics(&app, "one delivered, two retried", |m| {
        m.webhooks_delivered >= 1 && m.webhooks_retried == 2
    })
    .await;
    assert_eq!(app.engine.metrics().webhooks_failed, 0);
}

/// A burst of ops gives at most one request per debounce interval (plus
/// one), far fewer than ops, each with a newer seq, the last with the
/// final seq; then nothing more.
#[actix_web::test]
async fn a_burst_of_ops_gives_few_webhooks_and_the_last_carries_the_final_seq() {
    const OPS: u64 = 60;
    const DEBOUNCE_MS: u64 = 300;
    let receiver = Receiver::ok();
    let app = spawn_with_webhooks(&[&receiver.url], |w| w.debounce_ms = DEBOUNCE_MS).await;
    let mut peer = Peer::join(&app, "burst", "typist").await;
    let started = Instant::now();
    for n in 0..OPS {
        peer.insert(n as u32, "x").await;
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    peer.sync_to(OPS).await;
    receiver
        .wait_until(Duration::from_secs(10), "the final seq", |r| {
            r.iter().any(|x| x.seq() == OPS)
        })
        .await;
    actix_web::rt::time::sleep(Duration::from_millis(3 * DEBOUNCE_MS)).await;

    let requests = receiver.requests();
    let span = requests.last().map_or(Duration::ZERO, |r| r.at - started);
    let bound = span.as_millis() as usize / DEBOUNCE_MS as usize + 2;
    assert!(
        requests.len() <= bound && requests.len() < (OPS / 4) as usize,
        "{} requests in {span:?} (at most {bound})",
        requests.len()
    );
    assert!(
        requests.windows(2).all(|w| w[0].seq() < w[1].seq()),
        "each request carries a newer seq: {:?}",
        requests.iter().map(Received::seq).collect::<Vec<_>>()
    );
    assert!(
        requests
            .windows(2)
            .all(|w| w[1].at - w[0].at >= Duration::from_millis(DEBOUNCE_MS / 2)),
        "requests are a debounce apart"
    );
    assert_eq!(
        requests.last().map(Received::seq),
        Some(OPS),
        "nothing after the final seq"
    );
    assert_signed_notices(&requests, "burst", &peer.epoch);
}

/// Every URL gets its own delivery of the same notice.
#[actix_web::test]
async fn two_webhook_urls_both_receive_the_change() {
    let (a, b) = (Receiver::ok(), Receiver::ok());
    let app = spawn_with_webhooks(&[&a.url, &b.url], |_| {}).await;
    let mut peer = Peer::join(&app, "twice", "writer").await;
    peer.insert(0, "hello").await;
    peer.sync_to(1).await;
    let mut bodies = Vec::new();
    for receiver in [&a, &b] {
        let requests = receiver
            .wait_until(Duration::from_secs(10), "seq 1", |r| {
                r.iter().any(|x| x.seq() == 1)
            })
            .await;
        assert_signed_notices(&requests, "twice", &peer.epoch);
        bodies.push(requests[0].body.clone());
    }
    assert_eq!(bodies[0], bodies[1]);
    wait_for_metrics(&app, "two delivered", |m| m.webhooks_delivered >= 2).await;
}

/// A receiver that never answers is timed out, retried, then given up
/// (counted as failed), while the writer's acks keep coming as usual;
/// shutdown does not wait for it either.
#[actix_web::test]
async fn a_hanging_webhook_receiver_is_timed_out_and_does_not_delay_acks() {
    let receiver = Receiver::start(|_| Answer::Hang);
    let app = spawn_with_webhooks(&[&receiver.url], |w| {
        w.debounce_ms = 0;
        w.timeout_ms = 500;
        w.max_attempts = 2;
    })
    .await;
    let mut peer = Peer::join(&app, "hanging", "writer").await;
    peer.insert(0, "a").await;
    peer.sync_to(1).await;
    receiver
        .wait_until(Duration::from_secs(10), "a request hangs", |r| {
            !r.is_empty()
        })
        .await;

    let started = Instant::now();
    for n in 1..=20u64 {
        peer.insert(n as u32, "b").await;
        peer.sync_to(n + 1).await;
    }
    let acks = started.elapsed();
    assert!(
        acks < Duration::from_secs(5),
        "20 acks took {acks:?} while the receiver hangs"
    );
    wait_for_metrics(&app, "timed out, retried, given up", |m| {
        m.webhooks_retried >= 1 && m.webhooks_failed >= 1
    })
    .await;
    assert_eq!(app.engine.metrics().webhooks_delivered, 0);
    assert!(receiver.requests().len() >= 2, "the retry was sent too");

    // A new change starts afresh (and hangs again); shutdown does not wait.
    peer.insert(0, "c").await;
    peer.sync_to(22).await;
    receiver
        .wait_until(Duration::from_secs(10), "a new request", |r| {
            r.iter().any(|x| x.seq() == 22)
        })
        .await;
    let stopping = Instant::now();
    actix_web::rt::time::timeout(Duration::from_secs(8), app.shutdown())
        .await
        .expect("shutdown does not wait for a hanging webhook");
    assert!(stopping.elapsed() < Duration::from_secs(8));
}

/// A webhook URL that does not parse stops start-up with an error naming
/// the key, both for the library and for the binary (exit code 2, naming
/// the variable it came from).
#[actix_web::test]
async fn a_webhook_url_that_does_not_parse_is_a_startup_error() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let mut settings = test_settings(&db.url);
    settings.webhooks.urls = vec!["http://127.0.0.1:9/hook".into(), "not a url".into()];
    let error = match Application::build(settings).await {
        Ok(_) => panic!("started with a bad webhook URL"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("webhooks.urls") && error.contains("`not a url` is not a URL"),
        "{error}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_collab-engine"))
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env(
            "COLLAB__WEBHOOKS__URLS",
            "http://indexer/hook,ftp://audit/hook",
        )
        .output()
        .expect("run collab-engine");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for needle in [
        "webhooks.urls",
        "COLLAB__WEBHOOKS__URLS",
        "ftp://audit/hook",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }

    // check-config shows the URLs without their query, and masks the secret.
    let output = Command::new(env!("CARGO_BIN_EXE_collab-engine"))
        .current_dir(dir.path())
        .arg("check-config")
        .env("COLLAB__WEBHOOKS__URLS", "http://indexer/hook?token=t0k3n")
        .env("COLLAB__WEBHOOKS__SECRET", "s3cret-key")
        .output()
        .expect("run collab-engine check-config");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("secret = \"***\"  # environment variable COLLAB__WEBHOOKS__SECRET"),
        "{stdout}"
    );
    assert!(stdout.contains("http://indexer/hook?***"), "{stdout}");
    assert!(
        !stdout.contains("s3cret") && !stdout.contains("t0k3n"),
        "{stdout}"
    );
}
