//! The trigger side: signed `POST /apps/{id}/events` requests at a fixed rate (open loop), round
//! robin over the API URLs, each carrying its sequence number and send time in its data.
//!
//! Open loop means the schedule does not wait for replies: event `i` is due at `start + i/rate`
//! and is sent then, however slow earlier replies are, up to a bound of requests in flight (past
//! it the schedule slips, and the slip is reported as `max_lag_ms`).
//!
//! [`once`] sends a single event the same way (`herald-bench trigger`): the one event that idle
//! runs with `--await-event` time the fan-out of.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_shared::auth::api;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::payload::{self, Stamp};
use crate::sequence::SeqSet;
use crate::stats::{self, Summary};

/// Why an API URL is not usable.
#[derive(Debug, thiserror::Error)]
#[error("{url:?} is not a usable HTTP API URL: {reason}")]
pub struct ApiUrlError {
    url: String,
    reason: &'static str,
}

/// Why a trigger request failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// A short label to count failures by (`HTTP 503`, `timeout`, `connect`…).
    pub label: String,
    /// The full message.
    pub message: String,
}

/// What to trigger, where and how fast.
#[derive(Debug, Clone)]
pub struct TriggerPlan {
    /// API base URLs (`http://host:port[/prefix]`, see [`check_url`]), taken round-robin.
    pub apis: Vec<Url>,
    /// The app id.
    pub app_id: String,
    /// The app key.
    pub app_key: String,
    /// The app secret.
    pub app_secret: String,
    /// The channels: event `seq` goes to `channels[seq % len]`.
    pub channels: Vec<String>,
    /// The event name.
    pub event: String,
    /// Events per second.
    pub rate: f64,
    /// How many events.
    pub count: u64,
    /// Size of each event's data, bytes.
    pub payload: usize,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// How long one request may take.
    pub timeout: Duration,
}

/// What triggering showed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TriggerReport {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered 2xx.
    pub accepted: u64,
    /// Failed requests by kind (`HTTP 503`, `timeout`, `connect`…).
    pub errors: BTreeMap<String, u64>,
    /// One full message per kind of failure.
    pub error_examples: BTreeMap<String, String>,
    /// Seconds from the first send to the last reply.
    pub elapsed_seconds: f64,
    /// Requests sent per second over that time.
    pub achieved_rate: f64,
    /// Request latency (send → full response), ms.
    pub http_ms: Summary,
    /// The largest delay of a send behind its schedule, ms.
    pub max_lag_ms: f64,
}

/// The report plus what delivery accounting needs.
pub struct TriggerOutcome {
    /// The report.
    pub report: TriggerReport,
    /// The sequence numbers the server accepted.
    pub accepted: SeqSet,
}

/// Checks an API base URL.
pub fn check_url(url: &str) -> Result<Url, ApiUrlError> {
    let error = |reason| ApiUrlError {
        url: url.to_string(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|_| error("it does not parse"))?;
    match parsed.scheme() {
        "http" => {}
        "https" => return Err(error("https:// is not supported; use the http:// port")),
        _ => return Err(error("the scheme must be http://")),
    }
    if parsed.host_str().is_none() {
        return Err(error("it has no host"));
    }
    if parsed.query().is_some() {
        return Err(error("give the base URL, without a query"));
    }
    Ok(parsed)
}

/// A trigger's request, ready to send.
struct Signed {
    url: String,
    body: String,
}

impl TriggerPlan {
    /// The signed request for `data` to `channel`, sent to API number `api`.
    fn request(&self, api: usize, channel: &str, data: &str) -> Signed {
        let base = &self.apis[api % self.apis.len()];
        let path = format!(
            "{}/apps/{}/events",
            base.path().trim_end_matches('/'),
            self.app_id
        );
        let body =
            serde_json::json!({"name": self.event, "channel": channel, "data": data}).to_string();
        let now = payload::now_us() / 1_000_000;
        let params = api::sign(
            &self.app_key,
            &self.app_secret,
            "POST",
            &path,
            &[],
            body.as_bytes(),
            now,
        );
        let query = api::query_string(&params);
        let origin = base.origin().ascii_serialization();
        Signed {
            url: format!("{origin}{path}?{query}"),
            body,
        }
    }
}

/// Sends one request.
async fn send(client: &reqwest::Client, signed: Signed) -> Result<(), SendError> {
    let response = client
        .post(&signed.url)
        .header("content-type", "application/json")
        .body(signed.body)
        .send()
        .await
        .map_err(|error| {
            let label = if error.is_timeout() {
                "timeout"
            } else if error.is_connect() {
                "connect"
            } else {
                "request"
            };
            SendError {
                label: label.to_string(),
                message: format!("{error:#}"),
            }
        })?;
    let status = response.status();
    // Reading the body to the end lets the connection be reused.
    let body = response.bytes().await.unwrap_or_default();
    if status.is_success() {
        Ok(())
    } else {
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        Err(SendError {
            label: format!("HTTP {}", status.as_u16()),
            message: format!("HTTP {status}: {text}"),
        })
    }
}

/// An HTTP client for the API (keep-alive, no proxy).
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .tcp_nodelay(true)
        .no_proxy()
        .build()
}

/// Triggers one event on a side channel through every API URL, to find a wrong URL, key or
/// secret before connecting thousands of subscribers.
pub async fn preflight(plan: &TriggerPlan, client: &reqwest::Client) -> Result<(), String> {
    let channel = format!("{}-preflight", plan.channels[0]);
    for api in 0..plan.apis.len() {
        let signed = plan.request(api, &channel, "herald-bench preflight");
        send(client, signed)
            .await
            .map_err(|error| format!("{}: {error}", plan.apis[api]))?;
    }
    Ok(())
}

/// Sends event `seq` now, stamped with the time, to channel `seq % channels` through API
/// `seq % apis`: its stamp, the outcome, and how long the request took.
async fn fire(
    plan: &TriggerPlan,
    client: &reqwest::Client,
    seq: u64,
) -> (Stamp, Result<(), SendError>, Duration) {
    let stamp = Stamp {
        seq,
        sent_us: payload::now_us(),
    };
    let sent = Instant::now();
    let data = payload::encode(stamp, plan.payload);
    let channel = &plan.channels[(seq % plan.channels.len() as u64) as usize];
    let signed = plan.request(seq as usize, channel, &data);
    let result = send(client, signed).await;
    (stamp, result, sent.elapsed())
}

/// One event sent by [`once`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fired {
    /// The channel.
    pub channel: String,
    /// The event name.
    pub event: String,
    /// Its sequence number (0).
    pub seq: u64,
    /// The send stamp in its data, µs since the Unix epoch: what receivers time it from.
    pub sent_us: u64,
    /// How long the request took, ms.
    pub http_ms: f64,
}

/// Sends one event, sequence number 0, to the plan's first channel through its first API URL
/// (the plan's rate, count and in-flight bound do not matter).
pub async fn once(plan: &TriggerPlan, client: &reqwest::Client) -> Result<Fired, SendError> {
    let (stamp, result, elapsed) = fire(plan, client, 0).await;
    result?;
    Ok(Fired {
        channel: plan.channels[0].clone(),
        event: plan.event.clone(),
        seq: stamp.seq,
        sent_us: stamp.sent_us,
        http_ms: elapsed.as_secs_f64() * 1000.0,
    })
}

/// Runs the schedule and waits for every reply.
pub async fn run(plan: TriggerPlan, client: reqwest::Client) -> TriggerOutcome {
    let plan = Arc::new(plan);
    let mut accepted = SeqSet::with_bound(plan.count);
    let mut http = stats::histogram();
    let mut report = TriggerReport::default();
    let mut tasks = JoinSet::new();
    let mut max_lag = Duration::ZERO;
    let mut on_done = |(seq, result, elapsed): (u64, Result<(), SendError>, Duration)| {
        stats::record(&mut http, elapsed.as_micros() as u64);
        match result {
            Ok(()) => {
                accepted.insert(seq);
            }
            Err(SendError { label, message }) => {
                report
                    .error_examples
                    .entry(label.clone())
                    .or_insert(message);
                *report.errors.entry(label).or_default() += 1;
            }
        }
    };
    let started = Instant::now();
    for seq in 0..plan.count {
        let due = started + Duration::from_secs_f64(seq as f64 / plan.rate);
        loop {
            let full = tasks.len() >= plan.max_in_flight;
            tokio::select! {
                biased;
                Some(done) = tasks.join_next() => on_done(done.expect("a trigger task does not panic")),
                () = tokio::time::sleep_until(due.into()), if !full => break,
            }
        }
        max_lag = max_lag.max(due.elapsed());
        let (plan, client) = (plan.clone(), client.clone());
        tasks.spawn(async move {
            let (_, result, elapsed) = fire(&plan, &client, seq).await;
            (seq, result, elapsed)
        });
    }
    report.sent = plan.count;
    while let Some(done) = tasks.join_next().await {
        on_done(done.expect("a trigger task does not panic"));
    }
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    report.accepted = accepted.len();
    report.achieved_rate = report.sent as f64 / report.elapsed_seconds.max(1e-9);
    report.http_ms = Summary::of(&http);
    report.max_lag_ms = max_lag.as_secs_f64() * 1000.0;
    TriggerOutcome { report, accepted }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(api: &str) -> TriggerPlan {
        TriggerPlan {
            apis: vec![check_url(api).expect("a valid URL")],
            app_id: "app".into(),
            app_key: "key".into(),
            app_secret: "secret".into(),
            channels: vec!["bench".into()],
            event: "e".into(),
            rate: 1.0,
            count: 1,
            payload: 0,
            max_in_flight: 1,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn requests_are_signed_for_the_path_the_server_sees() {
        for (base, path) in [
            ("http://127.0.0.1:8081", "/apps/app/events"),
            ("http://127.0.0.1:8081/", "/apps/app/events"),
            ("http://h:1/pusher", "/pusher/apps/app/events"),
        ] {
            let signed = plan(base).request(0, "bench", "hb:0:1:");
            let url = Url::parse(&signed.url).expect("a valid URL");
            assert_eq!(url.path(), path);
            let params: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let now = params
                .iter()
                .find(|(k, _)| k == "auth_timestamp")
                .and_then(|(_, v)| v.parse().ok())
                .expect("a timestamp");
            api::verify(
                "key",
                "secret",
                "POST",
                path,
                &params,
                signed.body.as_bytes(),
                now,
            )
            .expect("the signature verifies");
            let body: serde_json::Value = serde_json::from_str(&signed.body).expect("JSON");
            assert_eq!(
                body,
                serde_json::json!({"name": "e", "channel": "bench", "data": "hb:0:1:"})
            );
        }
    }

    #[test]
    fn api_urls_are_checked() {
        assert!(check_url("http://127.0.0.1:8081").is_ok());
        for bad in ["https://h", "ws://h:1", "nonsense", "http://h:1/?x=1"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
