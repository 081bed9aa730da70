//! The deployment's invariants, read from the HCL with hcl-rs: this runs inside `cargo test`, so
//! it holds even where neither terraform (with providers) nor checkov is available.
//!
//! Each test names the setting, where it lives and why, so that a failure says what to restore.
//! The same invariants are enforced on resolved values by the checkov policies in
//! `terraform/policies/` (run by `.ci/deploy-checks.sh`), and the rendered user data by
//! `terraform test` in `terraform/modules/user_data/tests/`.

use std::fs;
use std::sync::OnceLock;

use hcl::expr::{Expression, ObjectKey};
use herald_tests::terraform::{
    Found, Tree, at, attr, boolean, child, number, reference, source, string, workspace_root,
};

/// The edge drain timeout Herald uses by default (R-OPS-1), which the load balancer must outlast.
const DRAIN_TIMEOUT_SECS: f64 = 25.0;

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        Tree::load().unwrap_or_else(|errors| panic!("terraform/ does not parse:\n{errors}"))
    })
}

/// The single resource of `kind` for which `pick` holds.
fn one<'a>(kind: &str, what: &str, pick: impl Fn(&Found<'a>) -> bool) -> Found<'a> {
    let found: Vec<Found<'a>> = tree()
        .resources(kind)
        .into_iter()
        .filter(|found| pick(found))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind} ({what}), found {}",
        found.len()
    );
    found[0]
}

fn literal_number(found: &Found<'_>, path: &[&str]) -> f64 {
    let expr = at(found.body(), path)
        .unwrap_or_else(|| panic!("{}: {} is missing", found.describe(), path.join(".")));
    number(expr).unwrap_or_else(|| {
        panic!(
            "{}: {} must be a literal number (checked offline), found `{}`",
            found.describe(),
            path.join("."),
            source(expr)
        )
    })
}

/// Asserts that the literal string at `path` in `found` is `expected`.
fn expect_literal(found: &Found<'_>, path: &[&str], expected: &str) {
    assert_eq!(
        literal_string(found, path),
        expected,
        "{}",
        found.describe()
    );
}

fn literal_string<'a>(found: &'a Found<'a>, path: &[&str]) -> &'a str {
    let expr = at(found.body(), path)
        .unwrap_or_else(|| panic!("{}: {} is missing", found.describe(), path.join(".")));
    string(expr).unwrap_or_else(|| {
        panic!(
            "{}: {} must be a literal string (checked offline), found `{}`",
            found.describe(),
            path.join("."),
            source(expr)
        )
    })
}

fn literal_bool(found: &Found<'_>, path: &[&str]) -> bool {
    let expr = at(found.body(), path)
        .unwrap_or_else(|| panic!("{}: {} is missing", found.describe(), path.join(".")));
    boolean(expr).unwrap_or_else(|| {
        panic!(
            "{}: {} must be a literal bool (checked offline), found `{}`",
            found.describe(),
            path.join("."),
            source(expr)
        )
    })
}

fn edge_target_group() -> Found<'static> {
    one(
        "aws_lb_target_group",
        "port 8080, the edges' WebSocket port",
        |found| attr(found.body(), "port").and_then(number) == Some(8080.0),
    )
}

fn hub_target_group() -> Found<'static> {
    one(
        "aws_lb_target_group",
        "port 8081, the hubs' HTTP API",
        |found| {
            attr(found.body(), "port").and_then(number) == Some(8081.0)
                && attr(found.body(), "protocol").and_then(string) == Some("HTTP")
        },
    )
}

fn edge_group() -> Found<'static> {
    one("aws_autoscaling_group", "the edges", |_| true)
}

/// The drain timeout the edge module renders into herald.toml.
fn edge_drain_timeout() -> f64 {
    let call = tree()
        .module("modules/edge")
        .block("module", &["user_data"])
        .expect("modules/edge calls ../user_data");
    let expr =
        attr(call.body(), "drain_timeout_secs").expect("modules/edge sets drain_timeout_secs");
    number(expr).unwrap_or_else(|| {
        panic!(
            "modules/edge: drain_timeout_secs must be a literal, found `{}`",
            source(expr)
        )
    })
}

/// The margin `local.timeout_stop_secs = var.drain_timeout_secs + N` adds for systemd.
fn systemd_stop_margin() -> f64 {
    let locals = tree()
        .module("modules/user_data")
        .blocks("locals")
        .find_map(|block| attr(block.body(), "timeout_stop_secs"))
        .expect("modules/user_data defines local.timeout_stop_secs");
    let text = source(locals);
    let margin = text
        .strip_prefix("var.drain_timeout_secs + ")
        .and_then(|rest| rest.trim().parse::<f64>().ok());
    margin.unwrap_or_else(|| {
        panic!(
            "local.timeout_stop_secs must be `var.drain_timeout_secs + <seconds>`, found `{text}`"
        )
    })
}

fn read_template(name: &str) -> String {
    let path = tree().root.join("modules/user_data/templates").join(name);
    fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn every_module_parses_and_is_local() {
    let dirs: Vec<String> = tree()
        .modules
        .keys()
        .map(|dir| dir.display().to_string())
        .collect();
    for expected in [
        ".",
        "modules/alarms",
        "modules/alb",
        "modules/ecr",
        "modules/edge",
        "modules/edge_fargate",
        "modules/hub",
        "modules/iam",
        "modules/launch_template",
        "modules/redis",
        "modules/secrets",
        "modules/security_groups",
        "modules/user_data",
    ] {
        assert!(
            dirs.iter().any(|dir| dir == expected),
            "terraform/{expected} is missing; found {dirs:?}"
        );
    }
    for (dir, module) in &tree().modules {
        for call in module.blocks("module") {
            let source = attr(call.body(), "source")
                .and_then(string)
                .unwrap_or_default();
            assert!(
                source.starts_with("./") || source.starts_with("../"),
                "terraform/{}: module source {source:?} is not local (registries are unreachable offline)",
                dir.display()
            );
        }
    }
}

#[test]
fn references_and_module_calls_resolve() {
    let problems = tree().reference_problems();
    assert!(
        problems.is_empty(),
        "unresolved references:\n{}",
        problems.join("\n")
    );
}

#[test]
fn alb_keeps_websockets_open() {
    let alb = one("aws_lb", "the application load balancer", |found| {
        attr(found.body(), "load_balancer_type").and_then(string) == Some("application")
    });
    assert_eq!(
        literal_number(&alb, &["idle_timeout"]),
        3600.0,
        "{}: idle_timeout must be 3600 s (the default 60 s drops idle WebSockets)",
        alb.describe()
    );
    assert!(
        literal_bool(&alb, &["drop_invalid_header_fields"]),
        "{}: drop_invalid_header_fields",
        alb.describe()
    );
    if attr(alb.body(), "client_keep_alive").is_some() {
        assert!(
            literal_number(&alb, &["client_keep_alive"]) >= 3600.0,
            "{}: client_keep_alive must not cut connections before the idle timeout",
            alb.describe()
        );
    }
}

#[test]
fn listeners_are_https_with_tls12_or_newer() {
    let listeners = tree().resources("aws_lb_listener");
    let mut https = 0;
    for listener in &listeners {
        match attr(listener.body(), "protocol").and_then(string) {
            Some("HTTPS") => {
                https += 1;
                let policy = literal_string(listener, &["ssl_policy"]);
                assert!(
                    [
                        "ELBSecurityPolicy-TLS13-1-2-",
                        "ELBSecurityPolicy-TLS13-1-3-",
                        "ELBSecurityPolicy-TLS-1-2-"
                    ]
                    .iter()
                    .any(|prefix| policy.starts_with(prefix)),
                    "{}: ssl_policy {policy:?} allows TLS older than 1.2",
                    listener.describe()
                );
            }
            Some("HTTP") => {
                expect_literal(listener, &["default_action", "type"], "redirect");
                assert_eq!(
                    literal_string(listener, &["default_action", "redirect", "protocol"]),
                    "HTTPS",
                    "{}: plain HTTP must only redirect to HTTPS",
                    listener.describe()
                );
            }
            Some("UDP") => {}
            other => panic!(
                "{}: unexpected listener protocol {other:?}",
                listener.describe()
            ),
        }
    }
    assert_eq!(
        https, 1,
        "one HTTPS listener terminates TLS for clients and Laravel"
    );
}

#[test]
fn edge_target_group_is_sticky_and_checks_up_on_the_admin_port() {
    let group = edge_target_group();
    assert!(
        literal_bool(&group, &["stickiness", "enabled"]),
        "{}: stickiness must be enabled",
        group.describe()
    );
    expect_literal(&group, &["stickiness", "type"], "lb_cookie");
    assert_eq!(
        literal_number(&group, &["stickiness", "cookie_duration"]),
        86400.0,
        "{}",
        group.describe()
    );
    assert_eq!(
        literal_string(&group, &["health_check", "path"]),
        "/up",
        "{}: ALB health checks cannot speak WebSocket; Herald serves GET /up",
        group.describe()
    );
    expect_literal(&group, &["health_check", "matcher"], "200,204");
    assert_eq!(
        literal_string(&group, &["health_check", "port"]),
        "9080",
        "{}: the edge answers /up on its admin port, never on the WebSocket port",
        group.describe()
    );
    if let Some(enabled) = attr(group.body(), "load_balancing_cross_zone_enabled") {
        assert_ne!(
            string(enabled),
            Some("false"),
            "{}: stickiness is not supported with cross-zone load balancing off",
            group.describe()
        );
    }
}

#[test]
fn hub_target_group_checks_up() {
    let group = hub_target_group();
    expect_literal(&group, &["health_check", "path"], "/up");
    expect_literal(&group, &["health_check", "matcher"], "200,204");
}

#[test]
fn draining_outlasts_the_edge_drain() {
    let drain = edge_drain_timeout();
    assert_eq!(
        drain, DRAIN_TIMEOUT_SECS,
        "modules/edge: the edge drain timeout is Herald's 25 s default"
    );
    let mut http_groups = 0;
    for group in tree().resources("aws_lb_target_group") {
        if attr(group.body(), "protocol").and_then(string) != Some("HTTP") {
            continue;
        }
        http_groups += 1;
        let delay = literal_number(&group, &["deregistration_delay"]);
        assert!(
            (drain..=3600.0).contains(&delay),
            "{}: deregistration_delay {delay} must be at least the {drain} s drain timeout (and at most 3600)",
            group.describe()
        );
    }
    assert_eq!(http_groups, 2, "edge and hub target groups");

    let margin = systemd_stop_margin();
    assert!(
        margin >= 5.0,
        "systemd TimeoutStopSec must exceed the drain by a margin, found +{margin}"
    );
    let edge_delay = literal_number(&edge_target_group(), &["deregistration_delay"]);
    let group = edge_group();
    let heartbeat = literal_number(&group, &["initial_lifecycle_hook", "heartbeat_timeout"]);
    assert!(
        heartbeat > edge_delay + drain + margin,
        "{}: the lifecycle hook ({heartbeat} s) must outlast deregistration ({edge_delay} s) plus the systemd stop ({} s)",
        group.describe(),
        drain + margin
    );
}

#[test]
fn paths_route_websockets_to_edges_and_the_api_to_hubs() {
    let rules = tree().resources("aws_lb_listener_rule");
    let target_of = |pattern: &str| -> String {
        let rule = rules
            .iter()
            .find(|rule| {
                matches!(
                    at(rule.body(), &["condition", "path_pattern", "values"]),
                    Some(hcl::Expression::Array(values))
                        if values.len() == 1 && string(&values[0]) == Some(pattern)
                )
            })
            .unwrap_or_else(|| panic!("no listener rule for path {pattern:?}"));
        expect_literal(rule, &["action", "type"], "forward");
        at(rule.body(), &["action", "target_group_arn"])
            .and_then(reference)
            .unwrap_or_else(|| {
                panic!(
                    "{}: target_group_arn must reference a target group",
                    rule.describe()
                )
            })
    };
    assert_eq!(
        target_of("/app/*"),
        format!("aws_lb_target_group.{}.arn", edge_target_group().name()),
        "/app/* (WebSockets) must go to the edge target group"
    );
    assert_eq!(
        target_of("/apps/*"),
        format!("aws_lb_target_group.{}.arn", hub_target_group().name()),
        "/apps/* (Pusher HTTP API) must go to the hub target group"
    );
}

#[test]
fn instances_require_imdsv2_and_boot_from_rendered_user_data() {
    let templates = tree().resources("aws_launch_template");
    assert_eq!(
        templates.len(),
        1,
        "one launch template, in modules/launch_template, shared by edges and hubs; found {:?}",
        templates.iter().map(Found::describe).collect::<Vec<_>>()
    );
    let template = &templates[0];
    assert_eq!(
        template.module.display().to_string(),
        "modules/launch_template",
        "{}: the launch template lives in modules/launch_template",
        template.describe()
    );
    assert_eq!(
        literal_string(template, &["metadata_options", "http_tokens"]),
        "required",
        "{}: IMDSv2 only",
        template.describe()
    );
    expect_literal(template, &["metadata_options", "http_endpoint"], "enabled");
    assert_eq!(
        literal_number(
            template,
            &["metadata_options", "http_put_response_hop_limit"]
        ),
        1.0,
        "{}",
        template.describe()
    );
    assert_eq!(
        attr(template.body(), "user_data")
            .and_then(reference)
            .as_deref(),
        Some("var.user_data"),
        "{}: user_data must be the caller's rendered user data",
        template.describe()
    );

    // Edges and hubs each launch from their own instance of the shared module, given the user
    // data rendered for the same role.
    for role in ["edge", "hub"] {
        let dir = format!("modules/{role}");
        let module = tree().module(&dir);
        let call = module
            .block("module", &["launch_template"])
            .unwrap_or_else(|| panic!("{dir} calls ../launch_template as module.launch_template"));
        assert_eq!(
            attr(call.body(), "source").and_then(string),
            Some("../launch_template"),
            "{dir}: module.launch_template"
        );
        assert_eq!(
            attr(call.body(), "role").and_then(string),
            Some(role),
            "{dir}: module.launch_template must be given role = {role:?}"
        );
        assert_eq!(
            attr(call.body(), "user_data")
                .and_then(reference)
                .as_deref(),
            Some("module.user_data.rendered_base64"),
            "{dir}: user_data must come from the user_data module (secrets are fetched at boot, never inlined)"
        );
        let rendered = module
            .block("module", &["user_data"])
            .unwrap_or_else(|| panic!("{dir} calls ../user_data"));
        assert_eq!(
            attr(rendered.body(), "role").and_then(string),
            Some(role),
            "{dir}: module.user_data must render the {role} boot script"
        );
    }
    let launched_from = |found: &Found<'_>| {
        at(found.body(), &["launch_template", "id"])
            .and_then(reference)
            .unwrap_or_default()
    };
    let group = edge_group();
    assert_eq!(
        launched_from(&group),
        "module.launch_template.id",
        "{}: edges launch from the shared launch template",
        group.describe()
    );
    let instances = tree().resources("aws_instance");
    assert!(!instances.is_empty(), "hubs are aws_instance resources");
    for instance in &instances {
        assert_eq!(
            launched_from(instance),
            "module.launch_template.id",
            "{}: hubs launch from the shared launch template",
            instance.describe()
        );
        expect_literal(instance, &["metadata_options", "http_tokens"], "required");
    }
}

#[test]
fn edge_group_spans_zones_drains_and_refreshes() {
    let group = edge_group();
    expect_literal(
        &group,
        &["initial_lifecycle_hook", "lifecycle_transition"],
        "autoscaling:EC2_INSTANCE_TERMINATING",
    );
    expect_literal(
        &group,
        &["initial_lifecycle_hook", "default_result"],
        "CONTINUE",
    );
    expect_literal(&group, &["instance_refresh", "strategy"], "Rolling");
    assert_eq!(
        literal_string(&group, &["health_check_type"]),
        "ELB",
        "{}: /up decides health",
        group.describe()
    );
    assert_eq!(
        attr(group.body(), "vpc_zone_identifier")
            .and_then(reference)
            .as_deref(),
        Some("var.private_subnet_ids"),
        "{}",
        group.describe()
    );
    let edge = tree().module("modules/edge");
    for (variable, condition) in [
        ("private_subnet_ids", "length(var.private_subnet_ids) >= 2"),
        ("min_size", "var.min_size >= 2"),
    ] {
        let block = edge
            .block("variable", &[variable])
            .expect("modules/edge declares it");
        let conditions: Vec<String> = block
            .body()
            .blocks()
            .filter(|block| block.identifier() == "validation")
            .filter_map(|validation| attr(validation.body(), "condition").map(source))
            .collect();
        assert!(
            conditions.iter().any(|text| text.contains(condition)),
            "modules/edge: var.{variable} must be validated with `{condition}` (edges across >= 2 zones); found {conditions:?}"
        );
    }
}

#[test]
fn edges_scale_on_connections_and_scale_in_slowly() {
    let policies = tree().resources("aws_autoscaling_policy");
    let tracking = policies
        .iter()
        .find(|policy| {
            attr(policy.body(), "policy_type").and_then(string) == Some("TargetTrackingScaling")
        })
        .expect("a target tracking policy scales the edges");
    assert_eq!(
        literal_string(
            tracking,
            &[
                "target_tracking_configuration",
                "customized_metric_specification",
                "metric_name"
            ]
        ),
        "EdgeConnections",
        "{}: scale on open connections, not CPU",
        tracking.describe()
    );
    let configuration =
        child(tracking.body(), "target_tracking_configuration").expect("checked above");
    assert!(
        child(configuration.body(), "predefined_metric_specification").is_none(),
        "{}: no predefined (CPU/request) metric",
        tracking.describe()
    );
    assert!(
        literal_bool(
            tracking,
            &["target_tracking_configuration", "disable_scale_in"]
        ),
        "{}: scale-in is left to the slow policy",
        tracking.describe()
    );
    let scale_in = policies
        .iter()
        .find(|policy| attr(policy.body(), "policy_type").and_then(string) == Some("SimpleScaling"))
        .expect("a simple scaling policy removes edges slowly");
    assert_eq!(
        literal_number(scale_in, &["scaling_adjustment"]),
        -1.0,
        "{}: one edge at a time",
        scale_in.describe()
    );
    assert!(
        literal_number(scale_in, &["cooldown"]) >= 300.0,
        "{}: cooldown >= 300 s",
        scale_in.describe()
    );
}

/// The replication group `name` of modules/redis (`this`: cluster mode disabled, `cluster`:
/// enabled).
fn redis_group(name: &str) -> Found<'static> {
    one(
        "aws_elasticache_replication_group",
        &format!("Herald's Redis, {name}"),
        |found| found.name() == name,
    )
}

fn redis_parameter_group(name: &str) -> Found<'static> {
    one(
        "aws_elasticache_parameter_group",
        &format!("Herald's Redis parameters, {name}"),
        |found| found.name() == name,
    )
}

/// The literal `name = value` parameter blocks of a parameter group (not its dynamic ones).
fn literal_parameters(group: &Found<'_>) -> Vec<(String, String)> {
    group
        .body()
        .blocks()
        .filter(|block| block.identifier() == "parameter")
        .filter_map(|block| {
            let name = attr(block.body(), "name").and_then(string)?;
            let value = attr(block.body(), "value").and_then(string)?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Validation condition of `variable` in modules/redis.
fn redis_validation(variable: &str) -> String {
    let block = tree()
        .module("modules/redis")
        .block("variable", &[variable])
        .unwrap_or_else(|| panic!("modules/redis declares {variable}"));
    let validation = child(block.body(), "validation")
        .unwrap_or_else(|| panic!("modules/redis: {variable} is validated"));
    source(attr(validation.body(), "condition").expect("with a condition"))
}

/// The default of a root variable, as HCL.
fn root_default(variable: &str) -> String {
    tree()
        .module(".")
        .block("variable", &[variable])
        .and_then(|block| attr(block.body(), "default"))
        .map(source)
        .unwrap_or_default()
}

#[test]
fn both_redis_shapes_are_7_multi_az_with_failover_encrypted_with_auth() {
    for name in ["this", "cluster"] {
        let group = redis_group(name);
        let describe = group.describe();
        assert_eq!(literal_string(&group, &["engine"]), "redis", "{describe}");
        for flag in [
            "multi_az_enabled",
            "automatic_failover_enabled",
            "transit_encryption_enabled",
            "at_rest_encryption_enabled",
        ] {
            assert!(
                literal_bool(&group, &[flag]),
                "{describe}: {flag} must be true"
            );
        }
        assert_eq!(
            literal_string(&group, &["transit_encryption_mode"]),
            "required",
            "{describe}"
        );
        assert_eq!(literal_number(&group, &["port"]), 6379.0, "{describe}");
        assert!(
            attr(group.body(), "auth_token").is_some(),
            "{describe}: an AUTH token is required"
        );
        assert_eq!(
            attr(group.body(), "parameter_group_name")
                .and_then(reference)
                .as_deref(),
            Some(format!("aws_elasticache_parameter_group.{name}[].name").as_str()),
            "{describe}: its own parameter group"
        );
        assert!(
            attr(group.body(), "subnet_group_name").is_some(),
            "{describe}: a subnet group"
        );
        expect_literal(&redis_parameter_group(name), &["family"], "redis7");
    }

    // Exactly one of the two exists, chosen by cluster_mode.
    let count = |found: Found<'_>| source(attr(found.body(), "count").expect("counted"));
    assert_eq!(count(redis_group("this")), "local.cluster ? 0 : 1");
    assert_eq!(
        count(redis_parameter_group("this")),
        "local.cluster ? 0 : 1"
    );
    assert_eq!(count(redis_group("cluster")), "local.cluster ? 1 : 0");
    assert_eq!(
        count(redis_parameter_group("cluster")),
        "local.cluster ? 1 : 0"
    );
    assert!(
        redis_validation("cluster_mode").contains(r#"["disabled", "enabled"]"#),
        "modules/redis: cluster_mode is \"disabled\" or \"enabled\""
    );
    assert!(
        redis_validation("engine_version").contains(r#"regex("^7\\.[0-9]+$""#),
        "modules/redis: engine_version must be validated as 7.x"
    );
    assert!(
        root_default("redis_engine_version").starts_with("\"7."),
        "root: redis_engine_version defaults to 7.x"
    );
}

#[test]
fn redis_without_cluster_mode_is_a_primary_with_replicas() {
    let group = redis_group("this");
    let describe = group.describe();
    assert_eq!(
        literal_string(&group, &["cluster_mode"]),
        "disabled",
        "{describe}"
    );
    for absent in ["num_node_groups", "replicas_per_node_group"] {
        assert!(
            attr(group.body(), absent).is_none(),
            "{describe}: {absent} implies cluster mode"
        );
    }
    let parameters = redis_parameter_group("this");
    assert!(
        !literal_parameters(&parameters)
            .iter()
            .any(|(name, _)| name == "cluster-enabled"),
        "{}: cluster-enabled belongs to the cluster-mode group only",
        parameters.describe()
    );
    assert!(
        redis_validation("num_cache_clusters").contains("var.num_cache_clusters >= 2"),
        "modules/redis: at least a primary and a replica"
    );
    let nodes = root_default("redis_num_cache_clusters");
    assert!(
        nodes.parse::<f64>().is_ok_and(|nodes| nodes >= 2.0),
        "root: redis_num_cache_clusters defaults to {nodes}; multi-AZ failover needs a primary and a replica"
    );
}

#[test]
fn redis_in_cluster_mode_has_a_replica_in_every_shard() {
    let group = redis_group("cluster");
    let describe = group.describe();
    assert_eq!(
        literal_string(&group, &["cluster_mode"]),
        "enabled",
        "{describe}"
    );
    assert!(
        attr(group.body(), "num_cache_clusters").is_none(),
        "{describe}: num_cache_clusters conflicts with num_node_groups"
    );
    for (attribute, variable) in [
        ("num_node_groups", "var.shards"),
        ("replicas_per_node_group", "var.replicas_per_shard"),
    ] {
        assert_eq!(
            attr(group.body(), attribute).and_then(reference).as_deref(),
            Some(variable),
            "{describe}: {attribute}"
        );
    }
    let parameters = redis_parameter_group("cluster");
    assert!(
        literal_parameters(&parameters).contains(&("cluster-enabled".into(), "yes".into())),
        "{}: a cluster-mode group needs a parameter group with cluster-enabled = yes",
        parameters.describe()
    );
    assert!(
        redis_validation("replicas_per_shard").contains("var.replicas_per_shard >= 1"),
        "modules/redis: every shard needs a replica (automatic failover, and WAIT for min_replicas_acked)"
    );
    assert!(
        redis_validation("shards").contains("var.shards >= 1"),
        "modules/redis: at least one shard"
    );
    let replicas = root_default("redis_replicas_per_shard");
    assert!(
        replicas
            .parse::<f64>()
            .is_ok_and(|replicas| replicas >= 1.0),
        "root: redis_replicas_per_shard defaults to {replicas}; every shard needs a replica"
    );
    let shards = root_default("redis_shards");
    assert!(
        shards.parse::<f64>().is_ok_and(|shards| shards >= 1.0),
        "root: redis_shards defaults to {shards}"
    );
    assert_eq!(root_default("redis_cluster_mode"), "\"disabled\"");
}

#[test]
fn hubs_answer_a_trigger_once_a_replica_holds_the_event() {
    let path = workspace_root().join("terraform/modules/user_data/templates/herald.toml.tftpl");
    let template = fs::read_to_string(&path).expect("the hub config template");
    let redis = template
        .split("\n[redis]\n")
        .nth(1)
        .expect("the hub config has a [redis] table");
    let redis = redis.split("\n[").next().unwrap_or(redis);
    let settings: Vec<&str> = redis
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("min_replicas_acked"))
        .collect();
    assert_eq!(
        settings,
        ["min_replicas_acked = 1"],
        "{}: hubs must set redis.min_replicas_acked = 1 (both Redis shapes have a replica per primary)",
        path.display()
    );
}

#[test]
fn redis_auth_token_uses_elasticache_charset() {
    let token = one("random_password", "the Redis AUTH token", |found| {
        found.name() == "redis_auth_token"
    });
    assert_eq!(
        literal_string(&token, &["override_special"]),
        "!&#$^<>-",
        "{}: ElastiCache accepts only these specials in an AUTH token",
        token.describe()
    );
    let length = literal_number(&token, &["length"]);
    assert!(
        (16.0..=128.0).contains(&length),
        "{}: AUTH tokens are 16-128 characters",
        token.describe()
    );
}

#[test]
fn systemd_unit_and_sysctls() {
    let unit = read_template("herald.service.tftpl");
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for line in [
        "LimitNOFILE=65535",
        "KillSignal=SIGTERM",
        "Restart=always",
        "TimeoutStopSec=${timeout_stop_secs}",
        "ExecStart=/usr/local/bin/herald ${role} --config /etc/herald/herald.toml",
    ] {
        assert!(
            lines.contains(&line),
            "herald.service.tftpl must contain the line {line:?}"
        );
    }
    assert!(systemd_stop_margin() > 0.0);
    let bootstrap = read_template("bootstrap.sh.tftpl");
    let sysctl = bootstrap
        .split("cat > /etc/sysctl.d/90-herald.conf <<'SYSCTL'")
        .nth(1)
        .and_then(|rest| rest.split("\nSYSCTL\n").next())
        .expect(
            "bootstrap.sh.tftpl writes /etc/sysctl.d/90-herald.conf (persistent across reboots)",
        );
    for setting in [
        "net.core.somaxconn = 4096",
        "net.ipv4.tcp_max_syn_backlog = 4096",
    ] {
        assert!(
            sysctl.lines().any(|line| line.trim() == setting),
            "90-herald.conf must set {setting:?}"
        );
    }
    assert!(
        bootstrap.contains("sysctl --system"),
        "the sysctls must be applied at boot too"
    );
    assert!(
        bootstrap.contains("cat > /etc/systemd/system/herald.service <<'UNIT'\n${unit}\nUNIT"),
        "the unit is installed"
    );
}

#[test]
fn security_groups_are_least_privilege() {
    for rule in tree().resources("aws_vpc_security_group_ingress_rule") {
        let describe = rule.describe();
        let port = literal_number(&rule, &["from_port"]);
        assert_eq!(
            port,
            literal_number(&rule, &["to_port"]),
            "{describe}: one port per rule"
        );
        let protocol = literal_string(&rule, &["ip_protocol"]);
        let from_group = attr(rule.body(), "referenced_security_group_id").is_some();
        let from_cidr = attr(rule.body(), "cidr_ipv4").or_else(|| attr(rule.body(), "cidr_ipv6"));
        if protocol == "udp" {
            assert!(
                from_group && from_cidr.is_none(),
                "{describe}: QUIC is admitted from edge/NLB security groups only"
            );
        }
        if let Some(cidr) = from_cidr {
            let for_each = attr(rule.body(), "for_each")
                .map(source)
                .unwrap_or_default();
            let allowed = match port as u16 {
                80 | 443 => for_each.contains("var.client_cidrs"),
                8081 => for_each.contains("var.laravel_cidrs"),
                _ => false,
            };
            assert!(
                allowed,
                "{describe}: port {port} open to `{}` (only the ALB's 80/443 and the hub API for Laravel CIDRs may use CIDRs)",
                source(cidr)
            );
        }
        if port == 6379.0 {
            assert_eq!(
                attr(rule.body(), "referenced_security_group_id")
                    .and_then(reference)
                    .as_deref(),
                Some("aws_security_group.hub.id"),
                "{describe}: Redis admits hubs only"
            );
        }
    }
    for group in tree().resources("aws_security_group") {
        assert!(
            child(group.body(), "ingress").is_none(),
            "{}: rules are separate resources",
            group.describe()
        );
    }
}

// --- Fargate edges (edge_platform = "fargate") ------------------------------------------------

/// The single container of the edge task definition: `container_definitions = jsonencode([{…}])`
/// written as a literal HCL object, so its settings can be read here.
fn edge_task() -> Found<'static> {
    one("aws_ecs_task_definition", "the edge task", |_| true)
}

/// The single container of `task` (see [`edge_task`]).
fn edge_container<'a>(task: &'a Found<'static>) -> &'a Expression {
    let definitions = attr(task.body(), "container_definitions")
        .unwrap_or_else(|| panic!("{}: container_definitions is missing", task.describe()));
    let Expression::FuncCall(call) = definitions else {
        panic!(
            "{}: container_definitions must be jsonencode([...]) of a literal, found `{}`",
            task.describe(),
            source(definitions)
        );
    };
    let containers = match call.args.first() {
        Some(Expression::Array(containers)) if call.name.name.as_str() == "jsonencode" => {
            containers
        }
        _ => panic!(
            "{}: container_definitions must be jsonencode([...]), found `{}`",
            task.describe(),
            source(definitions)
        ),
    };
    assert_eq!(
        containers.len(),
        1,
        "{}: one container, the edge",
        task.describe()
    );
    &containers[0]
}

/// The field `key` of a literal HCL object expression.
fn field<'a>(object: &'a Expression, key: &str) -> Option<&'a Expression> {
    let Expression::Object(object) = object else {
        return None;
    };
    object.iter().find_map(|(name, value)| {
        let matches = match name {
            ObjectKey::Identifier(identifier) => identifier.as_str() == key,
            ObjectKey::Expression(expr) => string(expr) == Some(key),
            _ => false,
        };
        matches.then_some(value)
    })
}

/// The elements of a literal list.
fn elements(expr: &Expression) -> &[Expression] {
    match expr {
        Expression::Array(items) => items,
        _ => &[],
    }
}

/// The value of the container's environment variable `name` (a literal).
fn container_env<'a>(container: &'a Expression, name: &str) -> Option<&'a str> {
    elements(field(container, "environment")?)
        .iter()
        .find(|item| field(item, "name").and_then(string) == Some(name))
        .and_then(|item| field(item, "value").and_then(string))
}

#[test]
fn fargate_edge_tasks_hold_65535_sockets_and_outlast_the_drain() {
    let task = edge_task();
    let container = edge_container(&task);
    let describe = task.describe();
    let nofile = field(container, "ulimits")
        .map(elements)
        .unwrap_or_default()
        .iter()
        .find(|limit| field(limit, "name").and_then(string) == Some("nofile"))
        .unwrap_or_else(|| {
            panic!("{describe}: the edge container needs a nofile ulimit (Fargate's default soft limit is 1024 sockets)")
        });
    for limit in ["softLimit", "hardLimit"] {
        let value = field(nofile, limit).and_then(number);
        assert!(
            value.is_some_and(|value| value >= 65535.0),
            "{describe}: nofile {limit} must be a literal >= 65535 (one descriptor per WebSocket), found {value:?}"
        );
    }

    let drain = container_env(container, "HERALD_EDGE__DRAIN_TIMEOUT_SECS")
        .and_then(|text| text.parse::<f64>().ok())
        .unwrap_or_else(|| {
            panic!("{describe}: HERALD_EDGE__DRAIN_TIMEOUT_SECS must be set to a literal number")
        });
    assert_eq!(
        drain, DRAIN_TIMEOUT_SECS,
        "{describe}: Fargate edges drain like EC2 edges"
    );
    let stop = field(container, "stopTimeout").and_then(number);
    assert!(
        stop.is_some_and(|stop| stop >= drain + 5.0 && stop <= 120.0),
        "{describe}: stopTimeout must be a literal at least 5 s longer than the {drain} s drain (and at most Fargate's 120 s), or ECS kills edges mid-drain; found {stop:?}"
    );
    let delay = literal_number(&edge_target_group(), &["deregistration_delay"]);
    assert!(
        delay >= drain,
        "the target group's deregistration delay ({delay} s) must cover the drain"
    );

    let health = field(container, "healthCheck")
        .and_then(|check| field(check, "command"))
        .map(elements)
        .unwrap_or_default();
    let words: Vec<&str> = health.iter().filter_map(string).collect();
    assert!(
        words.first() == Some(&"CMD")
            && words.contains(&"/usr/local/bin/herald")
            && words.contains(&"probe"),
        "{describe}: the container health check runs `herald probe` without a shell (exec form CMD), found {words:?}"
    );
    let log_driver = field(container, "logConfiguration")
        .and_then(|config| field(config, "logDriver"))
        .and_then(string);
    assert_eq!(log_driver, Some("awslogs"), "{describe}");
    assert!(
        field(container, "secrets").is_some_and(|secrets| elements(secrets).len() >= 2),
        "{describe}: the cluster key and hub CA come from SSM as secrets"
    );
    expect_literal(&task, &["network_mode"], "awsvpc");
    let compatibilities = attr(task.body(), "requires_compatibilities")
        .map(elements)
        .unwrap_or_default();
    assert_eq!(
        compatibilities
            .iter()
            .filter_map(string)
            .collect::<Vec<_>>(),
        ["FARGATE"],
        "{describe}"
    );
}

#[test]
fn fargate_edges_span_zones_behind_the_same_target_group_and_roll_back() {
    let service = one("aws_ecs_service", "the edge service", |_| true);
    let describe = service.describe();
    expect_literal(&service, &["launch_type"], "FARGATE");
    assert!(
        literal_bool(&service, &["deployment_circuit_breaker", "enable"])
            && literal_bool(&service, &["deployment_circuit_breaker", "rollback"]),
        "{describe}: a release whose tasks never turn healthy must stop and roll back"
    );
    assert_eq!(
        at(service.body(), &["network_configuration", "subnets"])
            .and_then(reference)
            .as_deref(),
        Some("var.private_subnet_ids"),
        "{describe}"
    );
    assert!(!literal_bool(
        &service,
        &["network_configuration", "assign_public_ip"]
    ));
    assert_eq!(
        literal_number(&service, &["load_balancer", "container_port"]),
        8080.0,
        "{describe}"
    );
    assert_eq!(
        at(service.body(), &["load_balancer", "target_group_arn"])
            .and_then(reference)
            .as_deref(),
        Some("var.edge_target_group_arn"),
        "{describe}: Fargate edges use the ALB's edge target group (stickiness, idle timeout, /up)"
    );
    let module = tree().module("modules/edge_fargate");
    for (variable, condition) in [
        ("private_subnet_ids", "length(var.private_subnet_ids) >= 2"),
        ("min_count", "var.min_count >= 2"),
    ] {
        let conditions: Vec<String> = module
            .block("variable", &[variable])
            .expect("modules/edge_fargate declares it")
            .body()
            .blocks()
            .filter(|block| block.identifier() == "validation")
            .filter_map(|validation| attr(validation.body(), "condition").map(source))
            .collect();
        assert!(
            conditions.iter().any(|text| text.contains(condition)),
            "modules/edge_fargate: var.{variable} must be validated with `{condition}`; found {conditions:?}"
        );
    }

    // The one edge target group registers tasks by IP on Fargate, instances on EC2.
    let group = edge_target_group();
    let target_type = attr(group.body(), "target_type")
        .map(source)
        .unwrap_or_default();
    assert!(
        target_type.contains("\"ip\"")
            && target_type.contains("\"instance\"")
            && target_type.contains("var.edge_platform"),
        "{}: target_type must follow var.edge_platform (ip for Fargate tasks), found `{target_type}`",
        group.describe()
    );

    let policy = one("aws_appautoscaling_policy", "edge task scaling", |_| true);
    let text = hcl::format::to_string(policy.body()).unwrap_or_default();
    assert!(
        text.contains("ActiveConnectionCount") && !text.contains("CPUUtilization"),
        "{}: Fargate edges scale on connections per task, not CPU",
        policy.describe()
    );

    let repository = one("aws_ecr_repository", "the Herald image", |_| true);
    expect_literal(&repository, &["image_tag_mutability"], "IMMUTABLE");
    assert!(literal_bool(
        &repository,
        &["image_scanning_configuration", "scan_on_push"]
    ));
}
