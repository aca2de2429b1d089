//! Servers with access control on, tokens, and requests that show how an
//! upgrade was answered.

use serde_json::{Value, json};

use super::app::{TestApp, spawn_app_with};
use super::database::Backend;
use super::ws::WsClient;
use collab_engine::configuration::{AuthMode, Settings};

/// The HS256 secret of test servers with `auth.mode = "token"`.
pub const SECRET: &str = "test-secret-of-at-least-32-bytes!";
/// Their admin key.
pub const ADMIN_KEY: &str = "test-admin-key-0123";

/// A server with `auth.mode = "token"` and the admin API on.
pub async fn spawn_token_app(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(backend, |s| {
        s.auth.mode = AuthMode::Token;
        s.auth.secret = SECRET.to_owned();
        s.auth.admin_key = ADMIN_KEY.to_owned();
        adjust(s);
    })
    .await
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token signed with `secret` carrying exactly `claims`.
pub fn sign(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("key"),
    )
    .expect("sign")
}

/// A token for `sub` granting `docs` (id or prefix → "read"/"write") for an
/// hour, issued now.
pub fn token(sub: &str, docs: &[(&str, &str)]) -> String {
    let docs: serde_json::Map<String, Value> = docs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    sign(
        json!({"sub": sub, "iat": now(), "exp": now() + 3600, "docs": docs}),
        SECRET,
    )
}

impl TestApp {
    /// `ws://…/{route}/{document_id}?token=…`.
    pub fn ws_url_with_token(&self, route: &str, document_id: &str, token: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/{route}/{document_id}?token={token}",
            self.port
        )
    }

    /// How an upgrade of `path` with `headers` is answered: `Ok(())` when
    /// it became a WebSocket, else the status and the JSON body.
    pub async fn upgrade(&self, path: &str, headers: &[(&str, &str)]) -> Result<(), (u16, Value)> {
        let url = format!("ws://127.0.0.1:{}{path}", self.port);
        let mut request = awc::Client::new().ws(url.as_str());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match request.connect().await {
            Ok(_) => Ok(()),
            Err(awc::error::WsClientError::InvalidResponseStatus(_)) => {
                let mut plain =
                    awc::Client::new().get(format!("http://127.0.0.1:{}{path}", self.port));
                for (name, value) in headers {
                    plain = plain.insert_header((*name, *value));
                }
                let mut response = plain.send().await.expect("http request");
                let status = response.status().as_u16();
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                Err((status, body))
            }
            Err(e) => panic!("upgrade of {path}: {e}"),
        }
    }

    /// `POST path` with the admin key (or `key`) and a JSON body; the status
    /// and the JSON body (`Null` when empty).
    pub async fn admin_post(&self, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = awc::Client::new().post(format!("http://127.0.0.1:{}{path}", self.port));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send_json(&body).await.expect("admin request");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }
}

impl WsClient {
    /// Connects with `Authorization: Bearer <token>`.
    pub async fn connect_bearer(url: &str, token: &str) -> WsClient {
        let (_response, framed) = awc::Client::new()
            .ws(url)
            .bearer_auth(token)
            .max_frame_size(64 << 20)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("websocket connect to {url}: {e}"));
        WsClient::from_framed(framed)
    }
}
