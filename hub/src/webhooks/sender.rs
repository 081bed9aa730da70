//! Sending one signed webhook request over HTTP(S).
//!
//! One pooled client per hub (hyper-util's, with rustls and the system's root certificates):
//! requests to an endpoint reuse its connections. A request succeeds on a 2xx answer within the
//! policy's timeout; everything else — another status, a timeout, a refused or reset
//! connection, a TLS failure — is a [`SendFailure`] and is retried by the caller.

use std::time::Duration;

use bytes::Bytes;
use herald_shared::auth::webhook::{KEY_HEADER, SIGNATURE_HEADER, sign};
use herald_shared::ids::AppKey;
use herald_shared::secret::Secret;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::endpoint::Endpoint;

/// Most of an endpoint's answer body read (and thrown away) to keep the connection reusable.
const ANSWER_LIMIT: usize = 64 * 1024;
/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// The endpoint answered with a status other than 2xx.
    #[error("the endpoint answered {0}")]
    Status(http::StatusCode),
    /// No complete answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed (refused, reset, TLS, DNS).
    #[error("cannot reach the endpoint: {0}")]
    Connection(#[from] hyper_util::client::legacy::Error),
    /// The request could not be built (a header value the endpoint's URL rejects).
    #[error("cannot build the request: {0}")]
    Request(#[from] http::Error),
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the system's root certificates for https webhooks: {0}")]
pub struct ClientError(#[from] std::io::Error);

/// The hub's webhook HTTP client.
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A client whose requests fail after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, ClientError> {
        let provider = rustls::crypto::ring::default_provider();
        let connector = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(std::sync::Arc::new(provider))?
            .https_or_http()
            .enable_http1()
            .build();
        // `X-Pusher-Key`, not `x-pusher-key`: PHP endpoints read `getallheaders()` by exact name.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .http1_title_case_headers(true)
            .build(connector);
        Ok(Self { client, timeout })
    }

    /// POSTs `body`, signed with the app's secret, to the endpoint.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        key: &AppKey,
        secret: &Secret,
        body: Bytes,
    ) -> Result<(), SendFailure> {
        let signature = sign(secret, &body);
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(endpoint.url().clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(KEY_HEADER, key.as_str())
            .header(SIGNATURE_HEADER, signature);
        for (name, value) in endpoint.headers() {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Read what little the endpoint answers so the connection can serve the next one.
            let _ = Limited::new(response.into_body(), ANSWER_LIMIT)
                .collect()
                .await;
            Ok::<_, SendFailure>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(SendFailure::Timeout(self.timeout)),
            Ok(Err(failure)) => Err(failure),
            Ok(Ok(status)) if status.is_success() => Ok(()),
            Ok(Ok(status)) => Err(SendFailure::Status(status)),
        }
    }
}
