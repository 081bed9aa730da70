//! `herald redis-endpoint` against a local ElastiCache API: the real binary, the AWS SDK's
//! endpoint override, and moto's server on a free loopback port. moto 5.2 models a
//! cluster-mode-enabled group's configuration endpoint (`clustercfg.<id>.….cache.amazonaws.com`)
//! and its node groups, so the sharded case runs against it too.
//!
//! moto cannot express a group without a primary endpoint (its groups are `available` from
//! birth), so that case is served by a tiny local HTTP responder replaying a
//! DescribeReplicationGroups response in AWS's wire format for a group still `creating`
//! (`fixtures/describe_replication_groups_creating.xml`, written from the API's response shape,
//! not captured from AWS). An unreachable API is a closed loopback port; a silent one is a
//! listener that accepts and never answers.

use std::process::Output;
use std::time::{Duration, Instant};

use herald_tests::binary::herald_binary;
use herald_tests::moto::{Moto, REGION};
use herald_tests::process::HeraldProcess;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The bound on one `herald redis-endpoint` run.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished `herald redis-endpoint` run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn from(output: Output, elapsed: Duration) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        }
    }

    fn describe(&self) -> String {
        format!(
            "exit {:?} after {:?}\nstdout: {}\nstderr: {}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Dummy credentials and nothing else from this machine: no profile, no instance metadata, no
/// proxy settings.
fn aws_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

async fn redis_endpoint(args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let output = tokio::process::Command::new(herald_binary())
        .arg("redis-endpoint")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_TIMEOUT, output)
        .await
        .unwrap_or_else(|_| {
            panic!("herald redis-endpoint {args:?} did not exit within {RUN_TIMEOUT:?}")
        })
        .expect("herald runs");
    Run::from(output, started.elapsed())
}

async fn resolve(endpoint: &str, group: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--replication-group",
        group,
        "--region",
        REGION,
        "--endpoint-url",
        endpoint,
    ];
    args.extend_from_slice(extra);
    redis_endpoint(&args, &aws_env()).await
}

/// The text of the first `<tag>` inside the first `<outer>` of an XML document.
fn xml_text<'a>(xml: &'a str, outer: &str, tag: &str) -> &'a str {
    let after_outer = xml
        .split(&format!("<{outer}>"))
        .nth(1)
        .unwrap_or_else(|| panic!("no <{outer}> in {xml}"));
    after_outer
        .split(&format!("<{tag}>"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("</{tag}>")).next())
        .unwrap_or_else(|| panic!("no <{tag}> in <{outer}> of {xml}"))
}

fn create_group(moto: &Moto, id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("ReplicationGroupId", id),
        ("ReplicationGroupDescription", "Herald test"),
        ("Engine", "redis"),
        ("EngineVersion", "7.1"),
        ("NumCacheClusters", "2"),
        ("MultiAZEnabled", "true"),
        ("AutomaticFailoverEnabled", "true"),
    ];
    params.extend_from_slice(extra);
    moto.elasticache("CreateReplicationGroup", &params)
}

#[tokio::test]
async fn prints_the_primary_endpoint_as_a_tls_url() {
    let moto = Moto::start("elasticache_discovery/primary");
    let created = create_group(
        &moto,
        "herald-prod",
        &[
            ("TransitEncryptionEnabled", "true"),
            ("AuthToken", "a-token-of-at-least-16-characters"),
        ],
    );
    let address = xml_text(&created, "PrimaryEndpoint", "Address");

    let run = resolve(&moto.endpoint(), "herald-prod", &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(
        run.stdout,
        format!("rediss://{address}:6379\n"),
        "{}",
        run.describe()
    );
    assert!(run.stderr.is_empty(), "{}", run.describe());
}

#[tokio::test]
async fn json_output_reports_tls_auth_status_and_reader() {
    let moto = Moto::start("elasticache_discovery/json");
    let created = create_group(
        &moto,
        "herald-json",
        &[
            ("TransitEncryptionEnabled", "true"),
            ("AuthToken", "a-token-of-at-least-16-characters"),
        ],
    );
    let address = xml_text(&created, "PrimaryEndpoint", "Address");

    let run = resolve(&moto.endpoint(), "herald-json", &["--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let json: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|error| panic!("{error}: {}", run.describe()));
    assert_eq!(json["replication_group_id"], "herald-json");
    assert_eq!(json["status"], "available");
    assert_eq!(json["tls"], true);
    assert_eq!(json["auth_token_enabled"], true);
    assert_eq!(json["primary"]["host"], address);
    assert_eq!(json["primary"]["port"], 6379);
    assert_eq!(json["url"], format!("rediss://{address}:6379"));
    // moto 5.2 does not report a reader endpoint for cluster-mode-disabled groups; when it is
    // absent the field is null rather than missing.
    assert!(
        json.get("reader").is_some() && json.get("reader_url").is_some(),
        "{json}"
    );
}

#[tokio::test]
async fn group_without_transit_encryption_is_plain_redis() {
    let moto = Moto::start("elasticache_discovery/plain");
    let created = create_group(&moto, "herald-dev", &[]);
    let address = xml_text(&created, "PrimaryEndpoint", "Address");

    let run = resolve(&moto.endpoint(), "herald-dev", &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(
        run.stdout,
        format!("redis://{address}:6379\n"),
        "{}",
        run.describe()
    );
}

#[tokio::test]
async fn unknown_group_is_a_clear_error() {
    let moto = Moto::start("elasticache_discovery/unknown");
    let run = resolve(&moto.endpoint(), "no-such-group", &[]).await;
    assert_eq!(run.code, Some(66), "{}", run.describe());
    assert!(run.stdout.is_empty(), "{}", run.describe());
    assert!(
        run.stderr
            .contains(r#"replication group "no-such-group" not found"#),
        "{}",
        run.describe()
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.describe());
}

fn create_sharded_group(moto: &Moto, id: &str) -> String {
    moto.elasticache(
        "CreateReplicationGroup",
        &[
            ("ReplicationGroupId", id),
            ("ReplicationGroupDescription", "sharded"),
            ("Engine", "redis"),
            ("EngineVersion", "7.1"),
            ("ClusterMode", "enabled"),
            ("NumNodeGroups", "3"),
            ("ReplicasPerNodeGroup", "1"),
            ("TransitEncryptionEnabled", "true"),
        ],
    )
}

#[tokio::test]
async fn cluster_mode_group_resolves_to_its_configuration_endpoint() {
    let moto = Moto::start("elasticache_discovery/cluster_mode");
    let created = create_sharded_group(&moto, "herald-sharded");
    let address = xml_text(&created, "ConfigurationEndpoint", "Address");
    assert!(address.starts_with("clustercfg."), "{created}");

    let run = resolve(&moto.endpoint(), "herald-sharded", &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(
        run.stdout,
        format!("rediss://{address}:6379\n"),
        "{}",
        run.describe()
    );
    assert!(run.stderr.is_empty(), "{}", run.describe());

    let run = resolve(&moto.endpoint(), "herald-sharded", &["--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let json: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|error| panic!("{error}: {}", run.describe()));
    assert_eq!(json["cluster_mode"], true, "{json}");
    assert_eq!(json["configuration"]["host"], address, "{json}");
    assert_eq!(json["configuration"]["port"], 6379, "{json}");
    assert_eq!(json["url"], format!("rediss://{address}:6379"), "{json}");
    assert_eq!(json["shards"], 3, "{json}");
    assert_eq!(json["tls"], true, "{json}");
    for absent in ["primary", "reader", "reader_url"] {
        assert!(json[absent].is_null(), "{absent} in {json}");
    }
}

#[tokio::test]
async fn json_of_a_cluster_mode_disabled_group_says_so() {
    let moto = Moto::start("elasticache_discovery/cluster_mode_disabled_json");
    create_group(&moto, "herald-single", &[]);
    let run = resolve(&moto.endpoint(), "herald-single", &["--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let json: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|error| panic!("{error}: {}", run.describe()));
    assert_eq!(json["cluster_mode"], false, "{json}");
    assert_eq!(json["shards"], 1, "{json}");
    assert!(json["configuration"].is_null(), "{json}");
    assert_eq!(
        json["url"],
        format!("redis://{}:6379", json["primary"]["host"].as_str().unwrap())
    );
}

#[tokio::test]
async fn a_hub_told_standalone_refuses_a_cluster_mode_group_naming_its_configuration_endpoint() {
    let moto = Moto::start("elasticache_discovery/hub_cluster_mode");
    let created = create_sharded_group(&moto, "herald-sharded");
    let address = xml_text(&created, "ConfigurationEndpoint", "Address");
    let endpoint = moto.endpoint();
    let mut env: Vec<(&str, &str)> = aws_env().into_iter().collect();
    env.extend([
        ("AWS_REGION", REGION),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        (
            "HERALD_REDIS__ELASTICACHE_REPLICATION_GROUP",
            "herald-sharded",
        ),
        ("HERALD_REDIS__MODE", "standalone"),
        ("HERALD_CLUSTER__KEY", "0123456789abcdef0123456789abcdef"),
        ("REVERB_APP_ID", "100001"),
        ("REVERB_APP_KEY", "key"),
        ("REVERB_APP_SECRET", "secret"),
    ]);
    let mut hub = HeraldProcess::spawn(
        "elasticache_discovery/hub_cluster_mode",
        "hub",
        &[
            "hub",
            "--http-listen",
            "127.0.0.1:0",
            "--link-listen",
            "127.0.0.1:0",
        ],
        &env,
    );
    assert_eq!(
        hub.exit_code(RUN_TIMEOUT).await,
        Some(64),
        "{}",
        hub.stderr()
    );
    let stderr = hub.stderr();
    assert!(
        stderr.contains(
            r#"redis.elasticache_replication_group "herald-sharded": cluster mode is enabled"#
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("but redis.mode is standalone; set redis.mode to auto or cluster"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("rediss://{address}:6379")),
        "{stderr}"
    );
}

/// Serves `body` as the answer to every request, until the returned task is aborted.
async fn replay(body: &'static str) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, body));
        }
    });
    (endpoint, task)
}

async fn answer(mut stream: TcpStream, body: &'static str) {
    // Read the request head and its body (the SDK sends Content-Length), then answer.
    let mut request = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let Ok(read) = stream.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        request.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&request);
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if rest.len() >= length {
                break;
            }
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The client may already have given up; nothing to do about a failed write.
    let _ = stream.write_all(response.as_bytes()).await;
}

#[tokio::test]
async fn group_without_a_primary_yet_says_to_retry() {
    let (endpoint, server) = replay(include_str!(
        "fixtures/describe_replication_groups_creating.xml"
    ))
    .await;
    let run = resolve(&endpoint, "herald-new", &[]).await;
    server.abort();
    assert_eq!(run.code, Some(75), "{}", run.describe());
    assert!(
        run.stderr
            .contains(r#"has no primary endpoint yet (status "creating")"#),
        "{}",
        run.describe()
    );
    assert!(run.stderr.contains("retry"), "{}", run.describe());
}

#[tokio::test]
async fn unreachable_api_fails_fast_with_a_clear_error() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        listener.local_addr().expect("bound")
        // The listener is dropped here: connections to this port are refused.
    };
    let endpoint = format!("http://{closed}");
    let run = resolve(&endpoint, "herald-prod", &[]).await;
    assert_eq!(run.code, Some(69), "{}", run.describe());
    assert!(
        run.stderr
            .contains(&format!("the ElastiCache API at {endpoint} is unreachable")),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("Connection refused"),
        "{}",
        run.describe()
    );
    assert!(run.elapsed < Duration::from_secs(10), "{}", run.describe());
}

#[tokio::test]
async fn silent_api_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
    // Accepts and holds every connection without answering.
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let run = resolve(&endpoint, "herald-prod", &["--timeout-secs", "2"]).await;
    server.abort();
    assert_eq!(run.code, Some(69), "{}", run.describe());
    assert!(
        run.stderr.contains("did not answer within 2s"),
        "{}",
        run.describe()
    );
    assert!(run.elapsed < Duration::from_secs(8), "{}", run.describe());
}

#[tokio::test]
async fn missing_region_and_credentials_are_configuration_errors() {
    let moto = Moto::start("elasticache_discovery/configuration");
    let endpoint = moto.endpoint();

    let mut no_region = aws_env();
    no_region.retain(|(name, _)| !name.starts_with("AWS_REGION"));
    let run = redis_endpoint(
        &["--replication-group", "x", "--endpoint-url", &endpoint],
        &no_region,
    )
    .await;
    assert_eq!(run.code, Some(78), "{}", run.describe());
    assert!(run.stderr.contains("no AWS region"), "{}", run.describe());

    let no_credentials: Vec<(&str, &str)> = aws_env()
        .into_iter()
        .filter(|(name, _)| {
            !name.starts_with("AWS_ACCESS_KEY_ID") && !name.starts_with("AWS_SECRET")
        })
        .collect();
    let run = redis_endpoint(
        &[
            "--replication-group",
            "x",
            "--region",
            REGION,
            "--endpoint-url",
            &endpoint,
        ],
        &no_credentials,
    )
    .await;
    assert_eq!(run.code, Some(78), "{}", run.describe());
    assert!(
        run.stderr.contains("are AWS credentials configured?"),
        "{}",
        run.describe()
    );
}
