//! `compose.yaml` (Redis, one hub, two edges, the hub link's CA and certificate) against the
//! real `herald`: every herald service's command runs with the service's environment, the
//! one-shot `cert` services for real (into a temporary directory standing in for the
//! `herald-certs` volume) and the servers with `--check`, which resolves their whole
//! configuration (the hub certificate and the CA file included) and exits.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use herald_tests::binary::{herald_binary, target_dir, workspace_root};
use serde_yaml_ng::Value;
use tokio::process::Command;

const VOLUME: &str = "/var/lib/herald";
const LIMIT: Duration = Duration::from_secs(30);

/// One service of the file, merge keys (`<<: *herald`) applied.
struct Service {
    name: String,
    image: String,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    value: Value,
}

fn compose_text() -> String {
    std::fs::read_to_string(workspace_root().join("compose.yaml"))
        .expect("compose.yaml is at the repository root")
}

/// The variables compose.yaml interpolates (`${NAME}`, `${NAME:-default}`): what a user
/// exports in the shell they later run `herald` from.
fn interpolated_variables(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn services() -> Vec<Service> {
    let text = compose_text();
    let mut file: Value = serde_yaml_ng::from_str(&text).expect("compose.yaml is YAML");
    file.apply_merge().expect("merge keys resolve");
    let services = file["services"]
        .as_mapping()
        .expect("compose.yaml has services");
    services
        .iter()
        .map(|(name, service)| {
            let mut service = service.clone();
            service.apply_merge().expect("merge keys resolve");
            let strings = |value: &Value| -> Vec<String> {
                value
                    .as_sequence()
                    .map(|items| {
                        items
                            .iter()
                            .map(|item| item.as_str().expect("a string").to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let environment = service["environment"]
                .as_mapping()
                .map(|map| {
                    map.iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().expect("a variable name").to_owned(),
                                v.as_str().expect("a string value").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Service {
                name: name.as_str().expect("a service name").to_owned(),
                image: service["image"].as_str().unwrap_or_default().to_owned(),
                command: strings(&service["command"]),
                environment,
                value: service,
            }
        })
        .collect()
}

/// Runs this workspace's `herald` with `args` and only `environment` (as in a container).
async fn run(args: &[String], environment: &BTreeMap<String, String>) -> std::process::Output {
    let output = Command::new(herald_binary())
        .args(args)
        .env_clear()
        .envs(environment)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(LIMIT, output)
        .await
        .unwrap_or_else(|_| panic!("herald {args:?} finishes within {LIMIT:?}"))
        .expect("herald can be run")
}

/// The service's command with the volume's mount point moved to `volume`.
fn command_in(service: &Service, volume: &Path) -> Vec<String> {
    let volume = volume.display().to_string();
    service
        .command
        .iter()
        .map(|arg| arg.replace(VOLUME, &volume))
        .collect()
}

fn find<'a>(services: &'a [Service], name: &str) -> &'a Service {
    services
        .iter()
        .find(|service| service.name == name)
        .unwrap_or_else(|| panic!("compose.yaml has no service {name}"))
}

#[tokio::test]
async fn every_herald_service_in_compose_yaml_is_accepted_by_herald() {
    let services = services();
    let herald: Vec<&Service> = services
        .iter()
        .filter(|service| service.image.contains("herald"))
        .collect();
    let roles = |role: &str| {
        herald
            .iter()
            .filter(|service| service.command.first().map(String::as_str) == Some(role))
            .count()
    };
    assert_eq!(roles("hub"), 1, "one hub");
    assert_eq!(roles("edge"), 2, "two edges");
    let redis = find(&services, "herald-redis");
    assert!(redis.image.starts_with("redis:7"), "{}", redis.image);

    // The names the commands use are the services'.
    let hub = find(&services, "herald-hub");
    let redis_url =
        hub.command[hub.command.iter().position(|a| a == "--redis").unwrap() + 1].clone();
    assert_eq!(redis_url, format!("redis://{}:6379", redis.name));
    let hub_cert = find(&services, "herald-hub-cert");
    assert!(
        hub_cert
            .command
            .windows(2)
            .any(|pair| pair == ["--name", "herald-hub"])
    );
    for edge in ["herald-edge-1", "herald-edge-2"] {
        let edge = find(&services, edge);
        assert!(
            edge.command
                .windows(2)
                .any(|pair| pair == ["--hub", "herald-hub:4433"]),
            "{:?}",
            edge.command
        );
        // Drain (25 s) fits in the stop grace period; one file per socket.
        assert_eq!(edge.value["stop_grace_period"].as_str(), Some("40s"));
        assert_eq!(edge.value["ulimits"]["nofile"].as_u64(), Some(65535));
        let health = &edge.value["healthcheck"]["test"];
        assert_eq!(health[1].as_str(), Some("/usr/local/bin/herald"));
        assert_eq!(health[2].as_str(), Some("probe"));
    }
    // The .env lines in the header use the same app as the services.
    let text = std::fs::read_to_string(workspace_root().join("compose.yaml")).unwrap();
    for variable in ["REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET"] {
        let value = &hub.environment[variable];
        assert!(
            text.contains(&format!("#   {variable}={value}\n")),
            "the .env comment must say {variable}={value}"
        );
    }

    let volume = target_dir().join(format!("test-logs/compose/volume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&volume);
    std::fs::create_dir_all(&volume).unwrap();
    // Dependency order: the CA, the hub certificate, then the servers. Twice: the one-shot
    // services run on every `up`, and must keep what the first run made.
    for round in 0..2 {
        for name in ["herald-ca", "herald-hub-cert"] {
            let service = find(&services, name);
            let output = run(&command_in(service, &volume), &service.environment).await;
            assert!(output.status.success(), "{name} (run {round}): {output:?}");
        }
    }
    // The servers, in a shell that also exported compose.yaml's own variables (herald refuses
    // unknown HERALD_ variables, so those must not be named HERALD_…).
    let interpolated = interpolated_variables(&compose_text());
    assert!(
        !interpolated.is_empty(),
        "compose.yaml names its image by a variable"
    );
    for service in herald
        .iter()
        .filter(|s| matches!(s.command[0].as_str(), "hub" | "edge"))
    {
        let mut args = command_in(service, &volume);
        args.push("--check".into());
        let mut environment = service.environment.clone();
        for variable in &interpolated {
            environment.insert(variable.clone(), "localhost/herald:exported".into());
        }
        let output = run(&args, &environment).await;
        assert!(output.status.success(), "{}: {output:?}", service.name);
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("configuration ok"),
            "{}: {output:?}",
            service.name
        );
    }

    // --check checks: without the cluster key an edge is refused, naming the key.
    let edge = find(&services, "herald-edge-1");
    let mut environment = edge.environment.clone();
    environment.remove("HERALD_CLUSTER__KEY");
    let mut args = command_in(edge, &volume);
    args.push("--check".into());
    let output = run(&args, &environment).await;
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cluster.key"),
        "{output:?}"
    );
    std::fs::remove_dir_all(&volume).unwrap();
}
