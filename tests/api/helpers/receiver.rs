//! A webhook receiver (`Receiver`): a real actix-web server on 127.0.0.1,
//! port 0, that records every request and answers as its plan says, and
//! `signature_of`, the check a consumer makes of `X-Collab-Signature`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Never answers (until the receiver stops).
    Hang,
}

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    /// The exact body bytes (what the signature covers).
    pub body: Bytes,
    pub json: Value,
    pub signature: Option<String>,
    pub content_type: Option<String>,
    /// What it was answered.
    pub answer: Answer,
}

impl Received {
    pub fn seq(&self) -> u64 {
        self.json["server_seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("no server_seq in {}", self.json))
    }

    pub fn delivered(&self) -> bool {
        matches!(self.answer, Answer::Status(status) if (200..300).contains(&status))
    }
}

type Plan = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

struct State {
    plan: Plan,
    requests: Arc<Mutex<Vec<Received>>>,
}

/// See the module docs. Stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    requests: Arc<Mutex<Vec<Received>>>,
    handle: ServerHandle,
}

impl Receiver {
    /// A receiver answering every request 200.
    pub fn ok() -> Receiver {
        Receiver::start(|_| Answer::Status(200))
    }

    /// A receiver answering request number `n` (0-based) with `plan(n)`.
    pub fn start(plan: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Receiver {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = web::Data::new(State {
            plan: Arc::new(plan),
            requests: requests.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/hook", web::post().to(record))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .expect("bind the receiver");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            requests,
            handle,
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().expect("requests").clone()
    }

    /// Waits until `done` holds for the requests so far (fails after `within`).
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; got {:#?}",
                requests
                    .iter()
                    .map(|r| (&r.json, r.answer))
                    .collect::<Vec<_>>()
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // The stop command is sent at once; nothing waits for it.
        drop(self.handle.stop(false));
    }
}

async fn record(request: HttpRequest, body: Bytes, state: web::Data<State>) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = {
        let mut requests = state.requests.lock().expect("requests");
        let answer = (state.plan)(requests.len());
        requests.push(Received {
            at: Instant::now(),
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            body,
            signature: header("X-Collab-Signature"),
            content_type: header("Content-Type"),
            answer,
        });
        answer
    };
    match answer {
        Answer::Status(status) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status).expect("a status code"),
        )
        .body("recorded"),
        Answer::Hang => {
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
    }
}

/// The `X-Collab-Signature` value a consumer computes for `body` with
/// `secret`: `sha256=` and the lowercase hex HMAC-SHA256 of the bytes.
pub fn signature_of(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}
