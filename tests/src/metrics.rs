//! Scraping a process's `GET /metrics` (Prometheus text format) and reading samples.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use promql_parser::parser::{self, Expr};

use crate::eventually::eventually;

/// One sample line: metric name, labels, value.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The metric (a histogram's series end in `_bucket`, `_sum`, `_count`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// One scrape of `/metrics`.
pub struct Metrics {
    samples: Vec<Sample>,
    /// The text as served.
    pub text: String,
}

/// Parses a sample line. Its `name{labels}` part is a PromQL vector selector, so the PromQL
/// parser reads it (label values may hold spaces, braces and escapes); the value follows the
/// last space (the exporter writes no timestamps).
fn sample(line: &str) -> Result<Sample, String> {
    let (selector, value) = line
        .rsplit_once(' ')
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .map_err(|_| format!("bad value in {line:?}"))?,
    };
    let Expr::VectorSelector(selector) = parser::parse(selector.trim())? else {
        return Err(format!("not a series in {line:?}"));
    };
    let name = selector
        .name
        .ok_or_else(|| format!("no metric name in {line:?}"))?;
    let labels = selector
        .matchers
        .matchers
        .into_iter()
        .filter(|m| m.name != "__name__")
        .map(|m| (m.name, m.value))
        .collect();
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Scrapes `http://{addr}/metrics`; panics when it does not answer 200 in the text format.
pub async fn scrape(addr: &str) -> Metrics {
    let url = format!("http://{addr}/metrics");
    let response = tokio::time::timeout(Duration::from_secs(10), reqwest::get(&url))
        .await
        .unwrap_or_else(|_| panic!("{url} answers within 10 s"))
        .unwrap_or_else(|e| panic!("{url} answers: {e}"));
    assert_eq!(response.status().as_u16(), 200, "{url}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{url} content type {content_type:?}"
    );
    let text = response.text().await.expect("the body is text");
    let samples = text
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(sample)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{url} is in the Prometheus text format: {e}\n{text}"));
    Metrics { samples, text }
}

impl Metrics {
    /// The sum of the samples named `name` whose labels include `labels` (0 when none does);
    /// for a histogram, its number of observations (`name_count`).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sum = |name: &str| {
            let matching: Vec<f64> = self
                .samples
                .iter()
                .filter(|sample| {
                    sample.name == name
                        && labels.iter().all(|(key, value)| {
                            sample.labels.get(*key).map(String::as_str) == Some(*value)
                        })
                })
                .map(|sample| sample.value)
                .collect();
            (!matching.is_empty()).then(|| matching.iter().sum::<f64>())
        };
        sum(name)
            .or_else(|| sum(&format!("{name}_count")))
            .unwrap_or(0.0)
    }

    /// Whether a sample named `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// Every metric family name served, with a histogram's `_bucket`, `_sum` and `_count`
    /// series (PromQL names those) and its base name.
    pub fn families(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.samples.iter().map(|s| s.name.clone()).collect();
        for line in self.text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ")
                && let Some(name) = rest.split_whitespace().next()
            {
                names.insert(name.to_string());
            }
        }
        names
    }
}

/// Scrapes `addr` until `check` holds (what another task updates right after the client saw
/// its effect), at most `limit`; returns that scrape, or panics with the last one.
pub async fn scrape_until(
    addr: &str,
    limit: Duration,
    check: impl Fn(&Metrics) -> bool,
) -> Metrics {
    eventually(
        &format!("the metrics of {addr} to reach the expected values"),
        limit,
        async || scrape(addr).await,
        |metrics| check(metrics),
    )
    .await
    .unwrap_or_else(|unmet| {
        panic!(
            "waited {:?} for {}; last scrape:\n{}",
            unmet.waited, unmet.what, unmet.last.text
        )
    })
}
