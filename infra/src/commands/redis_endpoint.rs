//! `herald redis-endpoint`: prints the Redis endpoint of an ElastiCache replication group.
//!
//! Prints one line, the endpoint a client connects to as a URL without credentials: the primary
//! endpoint of a group with cluster mode disabled
//! (`rediss://master.herald-prod.abc123.use1.cache.amazonaws.com:6379`), the configuration
//! endpoint of a group with cluster mode enabled
//! (`rediss://clustercfg.herald-prod.abc123.use1.cache.amazonaws.com:6379`). With `--json` it
//! prints one JSON object with the cluster mode, the endpoints, the number of shards, TLS, AUTH
//! and status. Operators use it to check what a hub configured with
//! `redis.elasticache_replication_group` will connect to.
//!
//! AWS credentials and region come from the standard chain (`AWS_ACCESS_KEY_ID`/`AWS_PROFILE`/
//! instance role, `AWS_REGION`); `--region` and `--endpoint-url` override them.
//!
//! # Exit status (sysexits.h)
//! | code | meaning |
//! |---|---|
//! | 0 | printed |
//! | 64 | the id is not a valid replication group id |
//! | 66 | no such replication group in this account and region |
//! | 69 | the ElastiCache API is unreachable or did not answer in time |
//! | 75 | the group has no endpoint yet (creating/modifying): retry later |
//! | 76 | the API's response could not be read |
//! | 77 | the API refused the request (credentials, permissions, throttling) |
//! | 78 | no region, or the request could not be built (no credentials) |

use std::error::Error as StdError;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::discovery::elasticache::{
    self, ClientOptions, DiscoveryError, GroupEndpoint, HostPort, RedisEndpoint,
};

/// Arguments of `herald redis-endpoint`.
#[derive(Debug, Args)]
pub struct RedisEndpointArgs {
    /// The replication group id (cluster mode disabled or enabled).
    #[arg(long, env = "HERALD_REDIS__ELASTICACHE_REPLICATION_GROUP")]
    pub replication_group: String,
    /// The AWS region; defaults to the standard AWS chain (AWS_REGION, profile, instance metadata).
    #[arg(long)]
    pub region: Option<String>,
    /// An ElastiCache API endpoint override, e.g. a VPC endpoint or a local emulator.
    #[arg(long, value_parser = parse_endpoint_url)]
    pub endpoint_url: Option<String>,
    /// Print JSON (cluster mode, endpoints, shards, tls, auth, status) instead of the URL.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many seconds, retries included.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout_secs: u64,
}

/// What `--json` prints. Every field is always present; endpoints a group's cluster mode does
/// not have are `null`.
#[derive(Debug, Serialize)]
struct JsonOutput<'a> {
    replication_group_id: &'a str,
    status: &'a str,
    /// Whether the group is sharded (reached through its configuration endpoint).
    cluster_mode: bool,
    /// The endpoint a client connects to.
    url: String,
    reader_url: Option<String>,
    primary: Option<&'a HostPort>,
    reader: Option<&'a HostPort>,
    configuration: Option<&'a HostPort>,
    shards: usize,
    tls: bool,
    auth_token_enabled: bool,
}

impl<'a> JsonOutput<'a> {
    fn of(endpoint: &'a RedisEndpoint) -> Self {
        let (primary, reader, configuration, shards) = match &endpoint.endpoint {
            GroupEndpoint::Primary { primary, reader } => (Some(primary), reader.as_ref(), None, 1),
            GroupEndpoint::Configuration {
                configuration,
                shards,
            } => (None, None, Some(configuration), *shards),
        };
        JsonOutput {
            replication_group_id: &endpoint.replication_group_id,
            status: &endpoint.status,
            cluster_mode: endpoint.cluster_mode(),
            url: endpoint.url(),
            reader_url: endpoint.reader_url(),
            primary,
            reader,
            configuration,
            shards,
            tls: endpoint.tls,
            auth_token_enabled: endpoint.auth_token_enabled,
        }
    }
}

/// Resolves and prints the endpoint.
pub fn run(args: RedisEndpointArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("herald redis-endpoint: cannot start the async runtime: {error}");
            return ExitCode::from(71);
        }
    };
    let options = ClientOptions {
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let resolved = runtime.block_on(async {
        let client = elasticache::connect(&options).await?;
        elasticache::resolve(&client, &args.replication_group).await
    });
    match resolved {
        Ok(endpoint) => print_endpoint(&endpoint, args.json),
        Err(error) => {
            let hint = if error.is_transient() {
                " (this may be temporary: retry)"
            } else {
                ""
            };
            eprintln!("herald redis-endpoint: {}{hint}", chain(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

fn print_endpoint(endpoint: &RedisEndpoint, json: bool) -> ExitCode {
    let line = if json {
        match serde_json::to_string(&JsonOutput::of(endpoint)) {
            Ok(line) => line,
            Err(error) => {
                eprintln!("herald redis-endpoint: cannot encode JSON: {error}");
                return ExitCode::from(70);
            }
        }
    } else {
        endpoint.url()
    };
    #[allow(
        clippy::print_stdout,
        reason = "printing the endpoint is this subcommand's job"
    )]
    {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// Accepts an `http://` or `https://` URL with a host, and nothing with spaces in it.
fn parse_endpoint_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("{text:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || text.chars().any(char::is_whitespace) {
        return Err(format!("{text:?} is not a URL with a host"));
    }
    Ok(text.to_owned())
}

/// The exit status for each error (see the module documentation).
fn exit_code(error: &DiscoveryError) -> u8 {
    match error {
        DiscoveryError::InvalidGroupId { .. } => 64,
        DiscoveryError::UnknownGroup { .. } => 66,
        DiscoveryError::Unreachable { .. } | DiscoveryError::TimedOut { .. } => 69,
        DiscoveryError::NoEndpoint { .. } => 75,
        DiscoveryError::BadResponse { .. } => 76,
        DiscoveryError::Rejected { .. } => 77,
        DiscoveryError::NoRegion | DiscoveryError::Request { .. } => 78,
    }
}

/// The error and its causes on one line: `error: cause: deeper cause`, skipping a cause whose
/// text repeats its parent's (the SDK nests wrappers that print the same words).
fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if line != last && !last.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        last = line;
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_joins_causes() {
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(chain(&error), "outer: Connection refused");
    }

    #[test]
    fn endpoint_urls_need_a_scheme_and_a_host() {
        assert!(parse_endpoint_url("http://127.0.0.1:5000").is_ok());
        assert!(
            parse_endpoint_url("https://vpce-1.elasticache.eu-west-1.vpce.amazonaws.com").is_ok()
        );
        assert!(parse_endpoint_url("127.0.0.1:5000").is_err());
        assert!(parse_endpoint_url("http://").is_err());
        assert!(parse_endpoint_url("http://a b").is_err());
    }

    #[test]
    fn exit_codes_follow_sysexits() {
        assert_eq!(exit_code(&DiscoveryError::NoRegion), 78);
        let unknown = DiscoveryError::UnknownGroup {
            group_id: "x".into(),
        };
        assert_eq!(exit_code(&unknown), 66);
        let creating = DiscoveryError::NoEndpoint {
            group_id: "x".into(),
            kind: elasticache::EndpointKind::Configuration,
            status: "creating".into(),
        };
        assert_eq!(exit_code(&creating), 75);
    }
}
