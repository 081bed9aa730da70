//! `deploy/grafana/herald.json` and `deploy/prometheus/alerts.yml` against what Herald really
//! exports: every PromQL expression parses and names only metric families that a running hub
//! and edge of a region serve on `/metrics` after some traffic. The alert rules also pass
//! `promtool check rules` (required in CI, where `.ci/run` installs Debian's `prometheus`).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use herald_tests::binary::workspace_root;
use herald_tests::client::{expect_close, open};
use herald_tests::metrics::{scrape, scrape_until};
use herald_tests::topology::Region;
use promql_parser::parser::{self, Expr};
use serde::Deserialize;
use serde_json::{Value, json};

/// Every metric name a PromQL expression selects.
fn names(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::VectorSelector(selector) => out.extend(selector.name.clone()),
        Expr::MatrixSelector(matrix) => out.extend(matrix.vs.name.clone()),
        Expr::Aggregate(aggregate) => {
            names(&aggregate.expr, out);
            if let Some(param) = &aggregate.param {
                names(param, out);
            }
        }
        Expr::Unary(unary) => names(&unary.expr, out),
        Expr::Binary(binary) => {
            names(&binary.lhs, out);
            names(&binary.rhs, out);
        }
        Expr::Paren(paren) => names(&paren.expr, out),
        Expr::Subquery(subquery) => names(&subquery.expr, out),
        Expr::Call(call) => call.args.args.iter().for_each(|arg| names(arg, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The metric names of `expr`, after Grafana's interval macros are given a value.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let promql = ["$__rate_interval", "$__interval", "$__range"]
        .iter()
        .fold(expr.to_string(), |text, macro_name| {
            text.replace(macro_name, "5m")
        });
    let parsed = parser::parse(&promql).unwrap_or_else(|e| panic!("{expr:?} is not PromQL: {e}"));
    let mut out = BTreeSet::new();
    names(&parsed, &mut out);
    assert!(!out.is_empty(), "{expr:?} names no metric");
    out
}

/// Every `expr` string anywhere in a dashboard.
fn dashboard_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_exprs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| dashboard_exprs(item, out)),
        _ => {}
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    _for: Option<String>,
    labels: Labels,
    annotations: Annotations,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Labels {
    severity: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Annotations {
    summary: String,
    description: String,
}

/// The metric families a hub and an edge of a region serve after a subscription and a trigger
/// (the app has a webhook endpoint, so the webhook families exist).
async fn exported_families() -> BTreeSet<String> {
    let hooks = json!([{"url": "http://127.0.0.1:9/hooks"}]).to_string();
    let hub_env = [("HERALD_APP__WEBHOOKS", hooks.as_str())];
    let region = Region::start("dashboards_name_only_exported_metrics", 1, 1, &hub_env, &[]).await;
    let mut clients = region.subscribers("dashboard-check").await;
    let reply = region.hubs[0]
        .api()
        .trigger(json!({"name": "e", "channel": "dashboard-check", "data": "x"}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    clients[0].next_event().await;
    // A client leaves and an unknown key is refused, so the close and refusal counters exist.
    let mut client = clients.remove(0);
    client
        .ws
        .close(None)
        .await
        .expect("a close frame can be sent");
    expect_close(&mut client.ws).await;
    let wrong_key = format!(
        "ws://{}/app/no-such-key?protocol=7",
        region.edges[0].websocket
    );
    assert_eq!(expect_close(&mut open(&wrong_key).await).await, Some(4001));
    let edge = scrape_until(&region.edges[0].admin, Duration::from_secs(10), |m| {
        m.has("herald_edge_connections_closed_total")
    })
    .await;
    let mut families = scrape(&region.hubs[0].http).await.families();
    families.extend(edge.families());
    families
}

#[tokio::test]
async fn dashboards_and_alerts_name_only_exported_metrics() {
    let families = exported_families().await;
    let root = workspace_root().join("deploy");

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana/herald.json"))
            .expect("deploy/grafana/herald.json is readable"),
    )
    .expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "herald");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 20, "the dashboard has its panels: {exprs:?}");

    let rules: RuleFile = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("prometheus/alerts.yml"))
            .expect("deploy/prometheus/alerts.yml is readable"),
    )
    .expect("the alert rules have Prometheus's rule-file shape");
    let mut alerts = BTreeSet::new();
    for group in &rules.groups {
        assert!(!group.name.is_empty());
        for rule in &group.rules {
            assert!(
                matches!(rule.labels.severity.as_str(), "critical" | "warning"),
                "{}: severity {}",
                rule.alert,
                rule.labels.severity
            );
            assert!(
                !rule.annotations.summary.is_empty() && !rule.annotations.description.is_empty()
            );
            alerts.insert(rule.alert.clone());
            exprs.push(rule.expr.clone());
        }
    }
    for alert in [
        "HeraldEdgeWithoutHubLink",
        "HeraldHubDeafToRedis",
        "HeraldDeliveryLatencyHigh",
        "HeraldEventsLost",
        "HeraldWebhooksLost",
        "HeraldWebhookEndpointFailing",
    ] {
        assert!(alerts.contains(alert), "{alert} is missing: {alerts:?}");
    }

    let mut unknown = BTreeSet::new();
    for expr in &exprs {
        for name in metric_names(expr) {
            if !families.contains(&name) {
                unknown.insert(format!("{name} (in {expr})"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "expressions name metrics Herald does not export: {unknown:#?}\nexported: {families:#?}"
    );
}

#[test]
fn alert_rules_pass_promtool() {
    let rules = workspace_root().join("deploy/prometheus/alerts.yml");
    let output = match Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
    {
        Ok(output) => output,
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "promtool is not installed ({error}); `apt-get install prometheus` adds it. The rule shapes are still checked by dashboards_and_alerts_name_only_exported_metrics."
            );
            return;
        }
        Err(error) => panic!("CI installs promtool (Debian's prometheus package): {error}"),
    };
    assert!(
        output.status.success(),
        "promtool check rules failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
