//! Calls of the HTTP API for documents (`/api/documents/…`), with or
//! without a bearer token, answered as status, headers and body.

use awc::http::header::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

use super::app::TestApp;

/// An answer of the API.
pub struct ApiAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiAnswer {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The `error` code of a JSON error answer.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// A request to send: method, path, bearer token, headers, body.
pub struct ApiCall<'a> {
    pub method: &'a str,
    pub path: String,
    pub token: Option<&'a str>,
    pub headers: Vec<(&'a str, String)>,
    pub body: Option<(&'a str, Vec<u8>)>,
}

impl<'a> ApiCall<'a> {
    pub fn new(method: &'a str, path: impl Into<String>) -> Self {
        ApiCall {
            method,
            path: path.into(),
            token: None,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A Yjs v1 update as the body (`application/octet-stream`).
    pub fn update(mut self, update: Vec<u8>) -> Self {
        self.body = Some(("application/octet-stream", update));
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(("application/json", body.to_string().into_bytes()));
        self
    }

    pub fn body(mut self, content_type: &'a str, body: Vec<u8>) -> Self {
        self.body = Some((content_type, body));
        self
    }
}

impl TestApp {
    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends `call` and reads the whole answer.
    pub async fn api(&self, call: ApiCall<'_>) -> ApiAnswer {
        let method = awc::http::Method::from_bytes(call.method.as_bytes()).expect("a method");
        let mut request = awc::Client::builder()
            .timeout(std::time::Duration::from_secs(90))
            .finish()
            .request(method, self.http_url(&call.path));
        if let Some(token) = call.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &call.headers {
            request = request.insert_header((*name, value.as_str()));
        }
        let sent = match call.body {
            Some((content_type, body)) => {
                request
                    .insert_header(("Content-Type", content_type))
                    .send_body(body)
                    .await
            }
            None => request.send().await,
        };
        let mut response = sent.unwrap_or_else(|e| panic!("{} {}: {e}", call.method, call.path));
        let body = response
            .body()
            .limit(256 << 20)
            .await
            .unwrap_or_else(|e| panic!("body of {}: {e}", call.path));
        ApiAnswer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
        }
    }

    /// `GET path` without a token.
    pub async fn api_get(&self, path: &str) -> ApiAnswer {
        self.api(ApiCall::new("GET", path)).await
    }

    /// `POST /api/documents/{id}/updates` of `update`, without a token.
    pub async fn post_update(&self, document_id: &str, update: Vec<u8>) -> ApiAnswer {
        let path = format!("/api/documents/{document_id}/updates");
        self.api(ApiCall::new("POST", path).update(update)).await
    }
}
