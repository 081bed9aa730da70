//! The Redis endpoint of an ElastiCache replication group, for hubs configured with
//! `redis.elasticache_replication_group` instead of a URL, and for `herald redis-endpoint`.
//!
//! A group with cluster mode **disabled** has one node group whose primary endpoint is a DNS name
//! that ElastiCache moves to the promoted replica on failover; [`resolve`] returns it with the
//! reader endpoint. A group with cluster mode **enabled** has several shards and one
//! configuration endpoint, a DNS name resolving to its nodes, from which a cluster client
//! discovers the shards (`CLUSTER SHARDS`/`CLUSTER SLOTS`) and follows them; [`resolve`] returns
//! that endpoint and the number of shards. Either way it says whether in-transit encryption
//! (TLS) and AUTH are on ([`GroupEndpoint`] tells the two shapes apart).
//!
//! A hub resolves once, at start, retrying for a minute while [`DiscoveryError::is_transient`]
//! says trying again may help; each call is bounded by the timeouts given to [`connect`]. It then
//! connects to the endpoint by name, so its reconnections follow a failover without resolving
//! again.
//!
//! The HTTPS client is built here with rustls on `ring`, so the AWS SDK's default client (and its
//! `aws-lc-rs`/cmake build) is not needed; plain `http://` endpoints (a local emulator) work too.

use std::error::Error as StdError;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_elasticache::Client;
use aws_sdk_elasticache::error::SdkError;
use aws_sdk_elasticache::operation::describe_replication_groups::DescribeReplicationGroupsError;
use aws_sdk_elasticache::types::{ClusterMode, Endpoint, ReplicationGroup};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use serde::Serialize;

/// The Redis port ElastiCache uses when a group does not report one.
const DEFAULT_PORT: u16 = 6379;

/// How to reach the ElastiCache API.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The AWS region; `None` takes it from the standard chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// An endpoint override such as `http://127.0.0.1:5000` (a local emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// The bound on one whole resolution, retries included; one attempt gets half of it (at
    /// least 100 ms) and connecting gets at most three seconds of that.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    /// The standard chain's region, AWS's endpoint, and 10 s for a whole resolution.
    fn default() -> Self {
        ClientOptions {
            region: None,
            endpoint_url: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A client for the ElastiCache API, with where its requests go and their time bound (for error
/// messages).
#[derive(Debug, Clone)]
pub struct DiscoveryClient {
    client: Client,
    /// Where requests go, for error messages.
    target: String,
    timeout: Duration,
}

/// A host and a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostPort {
    /// The DNS name (or address) of the endpoint.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

/// Where a replication group's Redis answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedisEndpoint {
    /// The replication group id.
    pub replication_group_id: String,
    /// The group's status as ElastiCache reports it (`available`, `modifying`, …).
    pub status: String,
    /// The endpoint(s) clients connect to, which depend on the group's cluster mode.
    pub endpoint: GroupEndpoint,
    /// Whether in-transit encryption is on, i.e. clients must speak TLS (`rediss://`).
    pub tls: bool,
    /// Whether the group requires `AUTH` with a token.
    pub auth_token_enabled: bool,
}

/// The endpoints of a replication group, by cluster mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum GroupEndpoint {
    /// Cluster mode disabled: one shard, a primary and its replicas.
    Primary {
        /// The primary endpoint: the writer, and the one name that follows failovers.
        primary: HostPort,
        /// The reader endpoint (spreads over replicas), when the group has one.
        reader: Option<HostPort>,
    },
    /// Cluster mode enabled: shards, each a primary with replicas, found through one name.
    Configuration {
        /// The configuration endpoint: resolves to the group's nodes; any of them describes the
        /// whole cluster to a cluster client.
        configuration: HostPort,
        /// The number of shards (node groups) ElastiCache reports.
        shards: usize,
    },
}

impl RedisEndpoint {
    /// The endpoint a client connects to, as a Redis URL without credentials: the primary
    /// endpoint of a cluster-mode-disabled group, the configuration endpoint of a
    /// cluster-mode-enabled one. `rediss://host:port` when TLS is on, `redis://host:port`
    /// otherwise.
    pub fn url(&self) -> String {
        match &self.endpoint {
            GroupEndpoint::Primary { primary, .. } => self.url_of(primary),
            GroupEndpoint::Configuration { configuration, .. } => self.url_of(configuration),
        }
    }

    /// The reader endpoint as a Redis URL without credentials, when there is one (only groups
    /// with cluster mode disabled have one).
    pub fn reader_url(&self) -> Option<String> {
        match &self.endpoint {
            GroupEndpoint::Primary { reader, .. } => {
                reader.as_ref().map(|reader| self.url_of(reader))
            }
            GroupEndpoint::Configuration { .. } => None,
        }
    }

    /// Whether the group runs in cluster mode (sharded, reached through its configuration
    /// endpoint).
    pub fn cluster_mode(&self) -> bool {
        matches!(self.endpoint, GroupEndpoint::Configuration { .. })
    }

    fn url_of(&self, endpoint: &HostPort) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{}:{}", endpoint.host, endpoint.port)
    }
}

/// Which endpoint a group's cluster mode calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// Cluster mode disabled.
    Primary,
    /// Cluster mode enabled.
    Configuration,
}

impl std::fmt::Display for EndpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Primary => "primary",
            Self::Configuration => "configuration",
        })
    }
}

/// Why a replication group could not be resolved to an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No region was given and none is configured.
    #[error(
        "no AWS region: pass --region or set AWS_REGION (or a region in the AWS config profile)"
    )]
    NoRegion,
    /// The request could not be built or signed, typically for want of credentials.
    #[error(
        "could not build the ElastiCache request (are AWS credentials configured? AWS_ACCESS_KEY_ID, AWS_PROFILE or an instance role)"
    )]
    Request {
        /// What the SDK reported.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The API could not be reached at all.
    #[error("the ElastiCache API at {target} is unreachable")]
    Unreachable {
        /// Where the request went.
        target: String,
        /// What the connection reported.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The API did not answer in time.
    #[error("the ElastiCache API at {target} did not answer within {after:?}")]
    TimedOut {
        /// Where the request went.
        target: String,
        /// The bound that expired.
        after: Duration,
    },
    /// The API answered something that is not a valid response.
    #[error("the ElastiCache API at {target} sent a response that could not be read")]
    BadResponse {
        /// Where the request went.
        target: String,
        /// What the SDK reported.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The replication group does not exist (in this account and region).
    #[error(
        "ElastiCache replication group {group_id:?} not found (check the id, region and account)"
    )]
    UnknownGroup {
        /// The id asked for.
        group_id: String,
    },
    /// The id was refused as invalid.
    #[error("{group_id:?} is not a valid ElastiCache replication group id")]
    InvalidGroupId {
        /// The id asked for.
        group_id: String,
        /// What the API said.
        #[source]
        source: Box<DescribeReplicationGroupsError>,
    },
    /// The API refused the request for another reason (credentials, permissions, throttling).
    #[error("the ElastiCache API refused to describe {group_id:?}")]
    Rejected {
        /// The id asked for.
        group_id: String,
        /// What the API said.
        #[source]
        source: Box<DescribeReplicationGroupsError>,
    },
    /// The group exists but has no endpoint yet (being created or modified).
    #[error(
        "ElastiCache replication group {group_id:?} has no {kind} endpoint yet (status {status:?}); retry when it is available"
    )]
    NoEndpoint {
        /// The id asked for.
        group_id: String,
        /// The endpoint its cluster mode calls for.
        kind: EndpointKind,
        /// The group's status.
        status: String,
    },
}

impl DiscoveryError {
    /// Whether trying again later may succeed without anyone changing anything: the API was
    /// unreachable or slow, or the group is still coming up. A hub retries these at start.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. }
            | Self::TimedOut { .. }
            | Self::BadResponse { .. }
            | Self::NoEndpoint { .. } => true,
            Self::NoRegion
            | Self::Request { .. }
            | Self::UnknownGroup { .. }
            | Self::InvalidGroupId { .. }
            | Self::Rejected { .. } => false,
        }
    }
}

/// Builds an ElastiCache client from the standard AWS chain (environment, profile, instance
/// role) and `options`. It does not call the ElastiCache API yet, so its only failure is an
/// unknown region.
pub async fn connect(options: &ClientOptions) -> Result<DiscoveryClient, DiscoveryError> {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let attempt = (options.timeout / 2).max(Duration::from_millis(100));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(3)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(options.timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    let config = loader.load().await;
    let Some(region) = config.region() else {
        return Err(DiscoveryError::NoRegion);
    };
    let target = match &options.endpoint_url {
        Some(url) => url.clone(),
        None => format!("elasticache.{region}.amazonaws.com"),
    };
    Ok(DiscoveryClient {
        client: Client::new(&config),
        target,
        timeout: options.timeout,
    })
}

/// Resolves `group_id` to its current endpoint with one `DescribeReplicationGroups` request (and
/// the SDK's own retries, within the client's timeout).
pub async fn resolve(
    client: &DiscoveryClient,
    group_id: &str,
) -> Result<RedisEndpoint, DiscoveryError> {
    let output = client
        .client
        .describe_replication_groups()
        .replication_group_id(group_id)
        .send()
        .await
        .map_err(|error| classify(client, group_id, error))?;
    let group = output
        .replication_groups()
        .iter()
        .find(|group| group.replication_group_id() == Some(group_id))
        .ok_or_else(|| DiscoveryError::UnknownGroup {
            group_id: group_id.to_owned(),
        })?;
    endpoint_of(group_id, group)
}

/// Turns an SDK failure into the error that says what went wrong.
fn classify(
    client: &DiscoveryClient,
    group_id: &str,
    error: SdkError<
        DescribeReplicationGroupsError,
        aws_sdk_elasticache::config::http::HttpResponse,
    >,
) -> DiscoveryError {
    let target = client.target.clone();
    match error {
        SdkError::ServiceError(context) => {
            let source = context.into_err();
            if source.is_replication_group_not_found_fault() {
                DiscoveryError::UnknownGroup {
                    group_id: group_id.to_owned(),
                }
            } else if source.is_invalid_parameter_value_exception()
                || source.is_invalid_parameter_combination_exception()
            {
                DiscoveryError::InvalidGroupId {
                    group_id: group_id.to_owned(),
                    source: Box::new(source),
                }
            } else {
                DiscoveryError::Rejected {
                    group_id: group_id.to_owned(),
                    source: Box::new(source),
                }
            }
        }
        SdkError::TimeoutError(_) => DiscoveryError::TimedOut {
            target,
            after: client.timeout,
        },
        SdkError::DispatchFailure(ref failure) if failure.is_timeout() => {
            DiscoveryError::TimedOut {
                target,
                after: client.timeout,
            }
        }
        SdkError::DispatchFailure(ref failure) if failure.is_io() => DiscoveryError::Unreachable {
            target,
            source: Box::new(error),
        },
        SdkError::ResponseError(_) => DiscoveryError::BadResponse {
            target,
            source: Box::new(error),
        },
        // The rest are problems on our side: construction failures (a bad endpoint URL), dispatch
        // failures that are neither I/O nor timeouts (no credentials in the chain), and whatever
        // `SdkError`, which is non-exhaustive, adds later.
        _ => DiscoveryError::Request {
            source: Box::new(error),
        },
    }
}

/// Reads the endpoint out of a described group.
fn endpoint_of(group_id: &str, group: &ReplicationGroup) -> Result<RedisEndpoint, DiscoveryError> {
    let cluster_mode = group.cluster_enabled() == Some(true)
        || matches!(group.cluster_mode(), Some(ClusterMode::Enabled));
    let status = group.status().unwrap_or("unknown").to_owned();
    let not_yet = |kind| DiscoveryError::NoEndpoint {
        group_id: group_id.to_owned(),
        kind,
        status: status.clone(),
    };
    let endpoint = if cluster_mode {
        let configuration = group
            .configuration_endpoint()
            .and_then(host_port)
            .ok_or_else(|| not_yet(EndpointKind::Configuration))?;
        GroupEndpoint::Configuration {
            configuration,
            shards: group.node_groups().len(),
        }
    } else {
        let node_group = group.node_groups().first();
        let primary = node_group
            .and_then(|node_group| node_group.primary_endpoint())
            .and_then(host_port)
            .ok_or_else(|| not_yet(EndpointKind::Primary))?;
        let reader = node_group
            .and_then(|node_group| node_group.reader_endpoint())
            .and_then(host_port);
        GroupEndpoint::Primary { primary, reader }
    };
    Ok(RedisEndpoint {
        replication_group_id: group_id.to_owned(),
        status,
        endpoint,
        tls: group.transit_encryption_enabled() == Some(true),
        auth_token_enabled: group.auth_token_enabled() == Some(true),
    })
}

/// An SDK endpoint with a non-empty address; a missing or out-of-range port means the default.
fn host_port(endpoint: &Endpoint) -> Option<HostPort> {
    let host = endpoint.address().filter(|address| !address.is_empty())?;
    let port = endpoint
        .port()
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0)
        .unwrap_or(DEFAULT_PORT);
    Some(HostPort {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_elasticache::types::NodeGroup;

    use super::*;

    fn endpoint(address: &str, port: i32) -> Endpoint {
        Endpoint::builder().address(address).port(port).build()
    }

    fn group(node_group: NodeGroup) -> ReplicationGroup {
        ReplicationGroup::builder()
            .replication_group_id("herald-prod")
            .status("available")
            .node_groups(node_group)
            .transit_encryption_enabled(true)
            .auth_token_enabled(true)
            .build()
    }

    #[test]
    fn reads_primary_reader_and_tls() {
        let node_group = NodeGroup::builder()
            .primary_endpoint(endpoint("master.herald-prod.cache.amazonaws.com", 6380))
            .reader_endpoint(endpoint("replica.herald-prod.cache.amazonaws.com", 6380))
            .build();
        let resolved = endpoint_of("herald-prod", &group(node_group)).expect("resolves");
        assert!(!resolved.cluster_mode());
        assert_eq!(
            resolved.url(),
            "rediss://master.herald-prod.cache.amazonaws.com:6380"
        );
        assert_eq!(
            resolved.reader_url().as_deref(),
            Some("rediss://replica.herald-prod.cache.amazonaws.com:6380")
        );
        assert!(resolved.auth_token_enabled);
        assert_eq!(resolved.status, "available");
    }

    #[test]
    fn plain_redis_without_transit_encryption() {
        let node_group = NodeGroup::builder()
            .primary_endpoint(Endpoint::builder().address("10.0.0.5").build())
            .build();
        let group = ReplicationGroup::builder()
            .replication_group_id("dev")
            .node_groups(node_group)
            .build();
        let resolved = endpoint_of("dev", &group).expect("resolves");
        assert_eq!(resolved.url(), "redis://10.0.0.5:6379");
        assert_eq!(resolved.reader_url(), None);
        assert_eq!(resolved.status, "unknown");
    }

    #[test]
    fn a_group_being_created_has_no_primary() {
        let creating = ReplicationGroup::builder()
            .replication_group_id("herald-prod")
            .status("creating")
            .node_groups(NodeGroup::builder().status("creating").build())
            .build();
        let error = endpoint_of("herald-prod", &creating).expect_err("no primary yet");
        assert!(matches!(
            &error,
            DiscoveryError::NoEndpoint { kind: EndpointKind::Primary, status, .. } if status == "creating"
        ));
        assert!(error.is_transient());
        let empty_address = group(
            NodeGroup::builder()
                .primary_endpoint(endpoint("", 6379))
                .build(),
        );
        assert!(matches!(
            endpoint_of("herald-prod", &empty_address),
            Err(DiscoveryError::NoEndpoint { .. })
        ));
    }

    #[test]
    fn cluster_mode_resolves_to_the_configuration_endpoint() {
        let shard = |id: &str| NodeGroup::builder().node_group_id(id).build();
        let clustered = ReplicationGroup::builder()
            .replication_group_id("sharded")
            .status("available")
            .cluster_enabled(true)
            .configuration_endpoint(endpoint("clustercfg.sharded.cache.amazonaws.com", 6379))
            .node_groups(shard("0001"))
            .node_groups(shard("0002"))
            .node_groups(shard("0003"))
            .transit_encryption_enabled(true)
            .build();
        let resolved = endpoint_of("sharded", &clustered).expect("resolves");
        assert!(resolved.cluster_mode());
        assert_eq!(
            resolved.endpoint,
            GroupEndpoint::Configuration {
                configuration: HostPort {
                    host: "clustercfg.sharded.cache.amazonaws.com".into(),
                    port: 6379
                },
                shards: 3
            }
        );
        assert_eq!(
            resolved.url(),
            "rediss://clustercfg.sharded.cache.amazonaws.com:6379"
        );
        assert_eq!(resolved.reader_url(), None);

        // `ClusterMode` alone (newer API responses) also means cluster mode.
        let by_mode = ReplicationGroup::builder()
            .replication_group_id("sharded")
            .cluster_mode(ClusterMode::Enabled)
            .configuration_endpoint(endpoint("clustercfg.sharded", 0))
            .build();
        let resolved = endpoint_of("sharded", &by_mode).expect("resolves");
        assert_eq!(resolved.url(), "redis://clustercfg.sharded:6379");
    }

    #[test]
    fn a_cluster_mode_group_being_created_has_no_configuration_endpoint() {
        let creating = ReplicationGroup::builder()
            .replication_group_id("sharded")
            .status("creating")
            .cluster_enabled(true)
            .node_groups(
                NodeGroup::builder()
                    .primary_endpoint(endpoint("x", 1))
                    .build(),
            )
            .build();
        let error = endpoint_of("sharded", &creating).expect_err("no configuration endpoint");
        assert!(matches!(
            error,
            DiscoveryError::NoEndpoint {
                kind: EndpointKind::Configuration,
                ..
            }
        ));
        assert!(error.is_transient());
        assert!(error.to_string().contains("no configuration endpoint yet"));
    }
}
