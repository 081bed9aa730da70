//! `herald hub`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use herald_hub::cluster::{ClusterSettings, RedisMode};
use herald_hub::{HubListeners, RunningHub};
use herald_shared::ids::HubId;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app_store::poller;
use crate::cli::HubArgs;
use crate::config::raw::RawConfig;
use crate::config::resolve::{self, HubPlan, RedisPlan, RedisSource, Resolver, redis_url};
use crate::discovery::elasticache::{self, ClientOptions, GroupEndpoint};
use crate::process::{EXIT_CONFIG, EXIT_UNAVAILABLE, fail, print_ready};
use crate::tls::files::CertFiles;
use crate::{net, rlimit, tls};

/// Resolves a hub plan, or the exit code of the configuration failure.
pub fn plan(raw: &RawConfig) -> Result<HubPlan, ExitCode> {
    let mut r = Resolver::default();
    // The runtime already runs with it (main, `super::worker_threads`); read for its problems.
    resolve::worker_threads(raw, &mut r);
    let apps = resolve::apps(raw, &mut r);
    let cluster_key = resolve::cluster_key(raw, &mut r);
    let plan = resolve::hub(raw, &mut r, HubId(fastrand::u64(..)), apps, cluster_key);
    super::resolved(r, plan)
}

/// The Redis settings of a region, discovering an ElastiCache group's endpoint when asked — the
/// primary endpoint, or the configuration endpoint of a group with cluster mode enabled
/// (transient discovery failures are retried for a minute).
pub async fn cluster_settings(plan: &RedisPlan) -> Result<ClusterSettings, ExitCode> {
    // What discovery said of the group's mode, when Redis was discovered.
    let mut discovered = None;
    let url = match &plan.source {
        RedisSource::Url(url) => url.clone(),
        RedisSource::ElastiCache {
            group,
            username,
            password,
            db,
        } => {
            let failed = |error: elasticache::DiscoveryError| {
                fail(
                    EXIT_CONFIG,
                    format!("redis.elasticache_replication_group {group:?}: {error}"),
                )
            };
            // Only resolving can fail transiently: connecting fails only for want of a region.
            let client = elasticache::connect(&ClientOptions::default())
                .await
                .map_err(failed)?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            let endpoint = loop {
                match elasticache::resolve(&client, group).await {
                    Ok(endpoint) => break endpoint,
                    Err(error)
                        if error.is_transient() && tokio::time::Instant::now() < deadline =>
                    {
                        tracing::warn!(message = "ElastiCache discovery failed; retrying.", %error);
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Err(error) => return Err(failed(error)),
                }
            };
            let (node, mode) = match &endpoint.endpoint {
                GroupEndpoint::Primary { primary, .. } => (primary, RedisMode::Standalone),
                GroupEndpoint::Configuration { configuration, .. } => {
                    // A sharded group: any node describes the whole cluster to the hub.
                    if plan.mode == Some(RedisMode::Standalone) {
                        return Err(fail(
                            EXIT_CONFIG,
                            format!(
                                "redis.elasticache_replication_group {group:?}: cluster mode is enabled (configuration endpoint {}) but redis.mode is standalone; set redis.mode to auto or cluster",
                                endpoint.url()
                            ),
                        ));
                    }
                    (configuration, RedisMode::Cluster)
                }
            };
            discovered = Some(mode);
            tracing::info!(message = "ElastiCache endpoint discovered.", mode = mode.name(), host = %node.host, port = node.port, tls = endpoint.tls);
            redis_url(
                endpoint.tls,
                &node.host,
                node.port,
                username.as_deref(),
                password.as_ref(),
                *db,
            )
        }
    };
    let redis =
        redis::Client::open(url.expose()).map_err(|e| fail(EXIT_CONFIG, format!("redis: {e}")))?;
    let server = inspect(&redis).await;
    let detected = server.as_ref().map(|server| server.mode).or(discovered);
    let mode = mode(plan.mode, detected).map_err(|error| fail(EXIT_CONFIG, error))?;
    tracing::info!(
        message = "Redis mode decided.",
        mode = mode.name(),
        configured = plan.mode.map(RedisMode::name).unwrap_or("auto")
    );
    let replicas = server.map(|server| server.replicas);
    let replicas_acked = plan
        .min_replicas_acked
        .unwrap_or(u32::from(replicas.is_some_and(|replicas| replicas > 0)));
    tracing::info!(message = "Triggers are answered once this many replicas hold their events.", replicas_acked, replicas_at_start = ?replicas);
    Ok(ClusterSettings {
        redis,
        mode,
        prefix: plan.prefix.clone(),
        hub_ttl: plan.hub_ttl,
        linger: plan.linger,
        replicas_acked,
        replica_ack_timeout: plan.replica_ack_timeout,
        max_backoff: Duration::from_secs(5),
    })
}

/// How long a starting hub waits for Redis to say how it runs.
const MODE_TIMEOUT: Duration = Duration::from_secs(3);

/// What a Redis server said about itself at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Server {
    /// Whether it runs in cluster mode (`INFO cluster`).
    mode: RedisMode,
    /// How many replicas its primary has (`INFO replication`).
    replicas: u32,
}

/// `redis.mode` disagrees with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "redis.mode is {configured} but the server runs {} (INFO cluster: cluster_enabled:{}); set redis.mode to auto or {}",
    if *.server == RedisMode::Cluster { "in cluster mode" } else { "without cluster mode" },
    u8::from(*.server == RedisMode::Cluster),
    .server.name(),
    configured = .configured.name(),
)]
struct ModeMismatch {
    configured: RedisMode,
    server: RedisMode,
}

/// The mode the hub speaks: `redis.mode` when set (and the server, when it answered, agrees),
/// else what the server says; a server that could not be asked is taken as standalone, as hubs
/// always did (set `redis.mode` to be independent of Redis at start).
fn mode(
    configured: Option<RedisMode>,
    server: Option<RedisMode>,
) -> Result<RedisMode, ModeMismatch> {
    match (configured, server) {
        (Some(configured), Some(server)) if configured != server => {
            Err(ModeMismatch { configured, server })
        }
        (Some(mode), _) | (None, Some(mode)) => Ok(mode),
        (None, None) => {
            tracing::warn!(
                message = "Redis could not say whether it runs in cluster mode; speaking to it as one primary (set redis.mode to choose)."
            );
            Ok(RedisMode::Standalone)
        }
    }
}

/// Asks Redis, at start, how it runs (`None` when it could not be asked in time: the hub
/// starts anyway, connects lazily and retries, as it always did).
async fn inspect(redis: &redis::Client) -> Option<Server> {
    let asked = tokio::time::timeout(MODE_TIMEOUT, async {
        let mut connection = redis.get_multiplexed_async_connection().await?;
        redis::pipe()
            .cmd("INFO")
            .arg("cluster")
            .cmd("INFO")
            .arg("replication")
            .query_async::<(String, String)>(&mut connection)
            .await
    })
    .await;
    match asked {
        Ok(Ok((cluster, replication))) => Some(Server {
            mode: if cluster_enabled(&cluster) {
                RedisMode::Cluster
            } else {
                RedisMode::Standalone
            },
            replicas: connected_replicas(&replication),
        }),
        Ok(Err(error)) => {
            tracing::warn!(message = "Cannot ask Redis how it runs; starting anyway.", %error);
            None
        }
        Err(_) => {
            tracing::warn!(message = "Redis did not say in time how it runs; starting anyway.");
            None
        }
    }
}

/// The replicas an `INFO replication` reply counts (`connected_slaves`).
fn connected_replicas(info: &str) -> u32 {
    info.lines()
        .find_map(|line| line.trim().strip_prefix("connected_slaves:"))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

/// Whether an `INFO cluster` reply says cluster mode is on.
fn cluster_enabled(info: &str) -> bool {
    info.lines().any(|line| line.trim() == "cluster_enabled:1")
}

/// A started hub and the fingerprint of its link certificate.
pub struct StartedHub {
    /// The hub.
    pub running: RunningHub,
    /// SHA-256 of its link certificate, for edges to pin.
    pub cert_sha256: String,
    /// The certificate its HTTP API serves, to be watched for renewals.
    pub http_tls: Option<Arc<CertFiles>>,
    /// The app store's refresh loop, which ends on shutdown; await it after the hub stopped.
    pub app_store: Option<tokio::task::JoinHandle<()>>,
}

/// Binds the hub's sockets and starts it (joining its region through Redis when configured).
pub async fn start(mut plan: HubPlan, shutdown: CancellationToken) -> Result<StartedHub, ExitCode> {
    if let Some(redis) = &plan.redis {
        plan.config.cluster = Some(cluster_settings(redis).await?);
    }
    let poller = match &plan.app_store {
        Some(store) => {
            let file = plan.config.apps.current().apps().cloned().collect();
            let started = poller::start(store, file)
                .await
                .map_err(|error| match error {
                    poller::StartError::Clash(_) => fail(EXIT_CONFIG, error),
                    _ => fail(EXIT_UNAVAILABLE, error),
                })?;
            plan.config.apps = started.apps;
            plan.config.webhooks.endpoints.extend(started.webhooks);
            Some(started.poller)
        }
        None => None,
    };
    let http = net::tcp(plan.http_listen)
        .map_err(super::cannot_bind("hub.http_listen", plan.http_listen))?;
    let link = net::udp(plan.link_listen)
        .map_err(super::cannot_bind("hub.link_listen", plan.link_listen))?;
    let cert_sha256 = tls::fingerprint(&plan.config.tls);
    let hub_id = plan.config.hub_id;
    let http_tls = plan.http_tls.clone();
    let listeners = HubListeners {
        http,
        http_tls: http_tls.as_ref().map(CertFiles::server_config),
        link,
        metrics: crate::metrics::render(herald_hub::metrics::describe),
    };
    let running = herald_hub::start(plan.config, listeners, shutdown.clone())
        .map_err(|e| fail(EXIT_CONFIG, e))?;
    let app_store = poller.map(|poller| tokio::spawn(poller.run(shutdown)));
    tracing::info!(
        message = "Hub serving.",
        %hub_id,
        http = %running.http_addr,
        https = http_tls.is_some(),
        link = %running.link_addr,
        cert_sha256 = %cert_sha256,
    );
    Ok(StartedHub {
        running,
        cert_sha256,
        http_tls,
        app_store,
    })
}

/// Runs `herald hub` on its configuration (`raw`, loaded before the runtime) until a signal.
pub async fn run(args: HubArgs, raw: RawConfig) -> ExitCode {
    let plan = match plan(&raw) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if args.common.check {
        return super::configuration_ok("hub");
    }
    rlimit::raise_open_files();
    let shutdown = match super::shutdown_token() {
        Ok(token) => token,
        Err(code) => return code,
    };
    let hub_id = plan.config.hub_id;
    let tls_watch = plan.tls_watch;
    let started = match start(plan, shutdown.clone()).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let reloader = super::watch_certificates([started.http_tls.clone()], tls_watch, &shutdown);
    if args.common.ready_json {
        print_ready(json!({
            "role": "hub",
            "hub_id": hub_id.to_string(),
            "http": started.running.http_addr.to_string(),
            "link": started.running.link_addr.to_string(),
            "cert_sha256": started.cert_sha256,
        }));
    }
    started.running.stopped().await;
    let _ = reloader.await;
    if let Some(app_store) = started.app_store {
        let _ = app_store.await;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_mode_is_configured_or_detected_and_a_disagreement_is_an_error() {
        use RedisMode::{Cluster, Standalone};
        assert_eq!(mode(None, Some(Cluster)), Ok(Cluster));
        assert_eq!(mode(None, Some(Standalone)), Ok(Standalone));
        assert_eq!(mode(None, None), Ok(Standalone));
        assert_eq!(mode(Some(Cluster), None), Ok(Cluster));
        assert_eq!(mode(Some(Cluster), Some(Cluster)), Ok(Cluster));
        assert_eq!(
            mode(Some(Standalone), Some(Cluster))
                .unwrap_err()
                .to_string(),
            "redis.mode is standalone but the server runs in cluster mode (INFO cluster: cluster_enabled:1); set redis.mode to auto or cluster"
        );
        assert_eq!(
            mode(Some(Cluster), Some(Standalone))
                .unwrap_err()
                .to_string(),
            "redis.mode is cluster but the server runs without cluster mode (INFO cluster: cluster_enabled:0); set redis.mode to auto or standalone"
        );
    }

    #[test]
    fn reads_cluster_mode_from_info() {
        assert!(cluster_enabled("# Cluster\r\ncluster_enabled:1\r\n"));
        assert!(!cluster_enabled("# Cluster\r\ncluster_enabled:0\r\n"));
        assert!(!cluster_enabled(""));
    }

    #[test]
    fn reads_connected_replicas_from_info() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=a\r\n";
        assert_eq!(connected_replicas(info), 2);
        assert_eq!(
            connected_replicas("role:master\r\nconnected_slaves:0\r\n"),
            0
        );
        assert_eq!(connected_replicas(""), 0);
    }
}
