//! A Pusher HTTP API client that signs requests like the SDKs do.

use std::time::{SystemTime, UNIX_EPOCH};

use herald_shared::auth::api;
use serde_json::Value;

use crate::topology::{APP_ID, APP_KEY, APP_SECRET};

/// A response: status and body (JSON when it parses, else a string).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

/// A client for one hub and one app.
pub struct Api {
    base: String,
    app_id: String,
    key: String,
    secret: String,
    http: reqwest::Client,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Percent-encodes a query component.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The query string of signed parameters.
pub fn query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Api {
    /// A client for the test app on the hub at `host:port`.
    pub fn new(http: &str) -> Self {
        Self::for_app(http, APP_ID, APP_KEY, APP_SECRET)
    }

    /// A client for another app.
    pub fn for_app(http: &str, app_id: &str, key: &str, secret: &str) -> Self {
        Self {
            base: format!("http://{http}"),
            app_id: app_id.to_string(),
            key: key.to_string(),
            secret: secret.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// The signed query parameters for a request.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Vec<(String, String)> {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        api::sign(
            &self.key,
            &self.secret,
            method,
            path,
            &extra,
            body.as_bytes(),
            unix_now(),
        )
    }

    /// Sends a request with the given query string, as it is, declared as JSON.
    pub async fn raw(&self, method: &str, path_and_query: &str, body: &str) -> Reply {
        self.raw_as(method, path_and_query, body, Some("application/json"))
            .await
    }

    /// Sends a request with the given query string, as it is, with `content_type` (or no
    /// `Content-Type` header at all).
    pub async fn raw_as(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        content_type: Option<&str>,
    ) -> Reply {
        let url = format!("{}{path_and_query}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut request = self.http.request(method, &url);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.expect("a readable body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    /// A signed request to `/apps/{app_id}/{path}`, declared as JSON.
    pub async fn signed(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        self.signed_as(method, path, extra, body, Some("application/json"))
            .await
    }

    /// A signed request to `/apps/{app_id}/{path}` with `content_type` (or none).
    pub async fn signed_as(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &str,
        content_type: Option<&str>,
    ) -> Reply {
        let path = format!("/apps/{}/{path}", self.app_id);
        let params = self.sign(method, &path, extra, body);
        self.raw_as(
            method,
            &format!("{path}?{}", query(&params)),
            body,
            content_type,
        )
        .await
    }

    /// Triggers an event; the body is the JSON the SDKs send.
    pub async fn trigger(&self, body: Value) -> Reply {
        self.signed("POST", "events", &[], &body.to_string()).await
    }

    /// A signed GET.
    pub async fn get(&self, path: &str, extra: &[(&str, &str)]) -> Reply {
        self.signed("GET", path, extra, "").await
    }
}
