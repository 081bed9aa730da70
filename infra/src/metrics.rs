//! The process's metrics: one Prometheus recorder per process, installed on first use, with
//! the process collector (CPU, memory, open files) and `herald_build_info`. The hub and the
//! edge record through the `metrics` facade and serve what [`render`] returns on `/metrics`;
//! `herald dev` runs both in one process, so both endpoints show both sets.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_process::Collector;

/// Histogram buckets for every `_seconds` metric: from half a millisecond (a local delivery)
/// to ten seconds (a request at its timeout).
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histograms are compacted when nobody scrapes (they would grow otherwise).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The build's information metric.
const BUILD_INFO: &str = "herald_build_info";

struct Exporter {
    handle: PrometheusHandle,
    process: Collector,
}

static EXPORTER: OnceLock<Option<Arc<Exporter>>> = OnceLock::new();

fn install() -> Option<Arc<Exporter>> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .expect("the bucket list is not empty");
    let handle = match builder.install_recorder() {
        Ok(handle) => handle,
        Err(error) => {
            tracing::error!(message = "Metrics unavailable: cannot install the recorder.", %error);
            return None;
        }
    };
    let process = Collector::default();
    process.describe();
    metrics::describe_gauge!(BUILD_INFO, "1, labelled with the version of this build.");
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Lives as long as the process's runtime: compacts histograms between scrapes.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(Arc::new(Exporter { handle, process }))
}

/// The renderer for `/metrics`, installing the recorder on first use (inside the runtime);
/// `describe` declares the caller's metrics (the edge's or the hub's) on it.
pub fn render(describe: fn()) -> Arc<dyn Fn() -> String + Send + Sync> {
    let exporter = EXPORTER.get_or_init(install).clone();
    describe();
    Arc::new(move || match &exporter {
        Some(exporter) => {
            exporter.process.collect();
            exporter.handle.render()
        }
        None => String::new(),
    })
}
