//! `herald probe`: a WebSocket-aware health check. It performs a real upgrade to
//! `/app/{key}?protocol=7` and waits for `pusher:connection_established` — what a client needs,
//! which a plain `GET /up` cannot show. With `--channel` it also subscribes, which on Herald
//! proves the edge's hub link too (the edge confirms a subscription only once the hub has it).
//!
//! Exit codes: 0 healthy (the socket id is printed), 1 unhealthy (the reason is printed on
//! stderr), 64 for a bad URL or flag.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use crate::process::{EXIT_CONFIG, fail};
use herald_shared::dev::DEV_APP_KEY;
use herald_wire::{self as wire, WireError, WsTarget};

/// Arguments of `herald probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The server's WebSocket URL: a base URL (ws://127.0.0.1:8080) or a client URL as
    /// `herald dev` prints it (ws://127.0.0.1:8080/app/KEY?protocol=7…), whose key is used.
    pub url: String,
    /// App key (default: the key in the URL, else herald dev's).
    #[arg(long)]
    pub app_key: Option<String>,
    /// Seconds to wait for the whole check.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub timeout: f64,
    /// Also subscribe to this public channel and wait for subscription_succeeded.
    #[arg(long)]
    pub channel: Option<String>,
}

async fn check(
    target: &WsTarget,
    key: &str,
    args: &ProbeArgs,
) -> Result<wire::Established, WireError> {
    let mut ws = wire::connect(target, key, None).await?;
    let established = wire::establish(&mut ws).await?;
    if let Some(channel) = &args.channel {
        wire::subscribe(&mut ws, channel).await?;
    }
    wire::close(&mut ws).await;
    Ok(established)
}

/// Probes the server once.
pub async fn run(args: ProbeArgs) -> ExitCode {
    let Ok(timeout) = Duration::try_from_secs_f64(args.timeout) else {
        return fail(
            EXIT_CONFIG,
            "probe: --timeout must be a non-negative number of seconds",
        );
    };
    let target = match WsTarget::resolve(&args.url).await {
        Ok(target) => target,
        Err(error @ WireError::InvalidUrl { .. }) => {
            return fail(EXIT_CONFIG, format!("probe: {error}"));
        }
        Err(error) => return fail(1, format!("probe: {error}")),
    };
    let key = match target.key(args.app_key.as_deref(), DEV_APP_KEY) {
        Ok(key) => key,
        Err(conflict) => return fail(EXIT_CONFIG, format!("probe: {conflict}")),
    };
    let started = Instant::now();
    let waiting_for = if args.channel.is_some() {
        "subscription_succeeded"
    } else {
        "pusher:connection_established"
    };
    let result = tokio::time::timeout(timeout, check(&target, key, &args))
        .await
        .unwrap_or(Err(WireError::TimedOut {
            waiting_for,
            after: timeout,
        }));
    match result {
        Ok(established) => {
            let subscribed = args
                .channel
                .as_deref()
                .map_or(String::new(), |channel| format!(" subscribed={channel}"));
            #[allow(clippy::print_stdout, reason = "the probe's verdict is its output")]
            {
                println!(
                    "ok {} socket_id={}{subscribed} in {:.1} ms",
                    target.url,
                    established.socket_id,
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => fail(1, format!("probe {}: {error}", target.url)),
    }
}
