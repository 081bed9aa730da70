//! `herald edge`.

use std::process::ExitCode;

use herald_edge::{EdgeListeners, LinkConfig, RunningEdge};
use herald_shared::ids::EdgeId;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::EdgeArgs;
use crate::config::raw::RawConfig;
use crate::config::resolve::{self, EdgePlan, Resolver};
use crate::process::{EXIT_OS, fail, print_ready};
use crate::tls::files::CertFiles;
use crate::{net, rlimit};

/// A fresh edge id: random, in the range of the first half of Pusher socket ids.
pub fn new_edge_id() -> EdgeId {
    EdgeId(fastrand::u64(100_000..u64::from(u32::MAX)))
}

/// Binds the edge's sockets and starts it.
pub fn start(
    plan: &EdgePlan,
    edge_id: EdgeId,
    link: LinkConfig,
    shutdown: CancellationToken,
) -> Result<RunningEdge, ExitCode> {
    let websocket =
        net::tcp(plan.websocket).map_err(super::cannot_bind("edge.listen", plan.websocket))?;
    let admin =
        net::tcp(plan.admin).map_err(super::cannot_bind("edge.admin_listen", plan.admin))?;
    let running = herald_edge::start(
        plan.config(edge_id, link),
        EdgeListeners {
            websocket,
            websocket_tls: plan.tls.as_ref().map(CertFiles::server_config),
            admin,
            metrics: crate::metrics::render(herald_edge::metrics::describe),
        },
        shutdown,
    )
    .map_err(|e| fail(EXIT_OS, e))?;
    tracing::info!(
        message = "Edge listening.",
        %edge_id,
        websocket = %running.websocket_addr,
        wss = plan.tls.is_some(),
        admin = %running.admin_addr,
    );
    Ok(running)
}

/// Runs `herald edge` on its configuration (`raw`, loaded before the runtime) until a signal, then
/// drains.
pub async fn run(args: EdgeArgs, raw: RawConfig) -> ExitCode {
    let mut r = Resolver::default();
    // The runtime already runs with it (main, `super::worker_threads`); read for its problems.
    resolve::worker_threads(&raw, &mut r);
    let cluster_key = resolve::cluster_key(&raw, &mut r);
    let plan = resolve::edge(&raw, &mut r);
    let link = resolve::edge_link(&raw, &mut r, &plan, cluster_key);
    let (plan, link) = match super::resolved(r, (plan, link)) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    if args.common.check {
        return super::configuration_ok("edge");
    }
    if let Some(limit) = rlimit::raise_open_files()
        && limit < 1024
    {
        tracing::warn!(
            message = "The open-files limit caps this edge's connections.",
            limit
        );
    }
    let shutdown = match super::shutdown_token() {
        Ok(token) => token,
        Err(code) => return code,
    };
    let edge_id = new_edge_id();
    let mut running = match start(&plan, edge_id, link, shutdown.clone()) {
        Ok(running) => running,
        Err(code) => return code,
    };
    let reloader = super::watch_certificates([plan.tls.clone()], plan.tls_watch, &shutdown);
    if super::wait_linked(&mut running, &shutdown).await && args.common.ready_json {
        print_ready(json!({
            "role": "edge",
            "edge_id": edge_id.to_string(),
            "websocket": running.websocket_addr.to_string(),
            "admin": running.admin_addr.to_string(),
        }));
    }
    running.stopped().await;
    let _ = reloader.await;
    ExitCode::SUCCESS
}
