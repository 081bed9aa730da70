//! `herald dev`: a hub and an edge in one process, linked by QUIC over loopback, with a default
//! app — the one-command start. Prints the app's credentials and ready-to-paste Laravel `.env`
//! and Echo snippets.

use std::process::ExitCode;
use std::time::Duration;

use herald_edge::{HubAddress, HubTrust, LinkConfig};
use herald_shared::app::App;
use serde_json::json;

use super::{edge, hub, local_region};
use crate::cli::DevArgs;
use crate::config::key::Meta;
use crate::config::keys;
use crate::config::raw::{Origin, RawConfig, Setting};
use crate::config::resolve::{self, Resolver};
use crate::process::print_ready;
use crate::rlimit;

use herald_shared::dev::{DEV_APP_ID, DEV_APP_KEY, DEV_APP_SECRET};

/// Loopback defaults: a dev server is not reachable from the network unless asked.
const DEV_DEFAULTS: &[(&Meta, &str)] = &[
    (&keys::EDGE_LISTEN.meta, "127.0.0.1:8080"),
    (&keys::EDGE_ADMIN_LISTEN.meta, "127.0.0.1:9080"),
    (&keys::HUB_HTTP_LISTEN.meta, "127.0.0.1:8081"),
    (&keys::HUB_LINK_LISTEN.meta, "127.0.0.1:0"),
];

/// The default app's credentials, used unless `[[apps]]` configures the apps: each one only
/// where it is not given, so any `app.*` setting (`HERALD_APP__ENABLED=false`) applies to the
/// default app.
const DEV_APP: &[(&Meta, &str)] = &[
    (&keys::APP_ID.meta, DEV_APP_ID),
    (&keys::APP_KEY.meta, DEV_APP_KEY),
    (&keys::APP_SECRET.meta, DEV_APP_SECRET),
];

fn apply_dev_defaults(raw: &mut RawConfig) {
    let origin = || Origin::CommandDefault("herald dev");
    for (key, value) in DEV_DEFAULTS {
        raw.settings
            .set_default(key, Setting::new(*value, origin()));
    }
    if raw.apps.is_empty() {
        for (key, value) in DEV_APP {
            raw.settings
                .set_default(key, Setting::new(*value, origin()));
        }
    }
    let mut bytes = [0u8; 16];
    // With no OS randomness the in-process link key is merely predictable; it never leaves
    // this process.
    let _ = getrandom::fill(&mut bytes);
    raw.settings.set_default(
        &keys::CLUSTER_KEY.meta,
        Setting::new(hex::encode(bytes), origin()),
    );
}

/// Runs `herald dev` on its configuration (`raw`, loaded before the runtime) until a signal.
pub async fn run(args: DevArgs, mut raw: RawConfig) -> ExitCode {
    apply_dev_defaults(&mut raw);
    let hub_plan = match hub::plan(&raw) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let mut r = Resolver::default();
    let edge_plan = resolve::edge(&raw, &mut r);
    // Valid by now (the hub's plan read it); a local region's processes get it too.
    let worker_threads = resolve::worker_threads(&raw, &mut r);
    let edge_plan = match super::resolved(r, edge_plan) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if args.common.check {
        return super::configuration_ok("dev");
    }
    let app: App = hub_plan
        .config
        .apps
        .current()
        .apps()
        .next()
        .cloned()
        .expect("herald dev always has an app: its default one, or the configured ones");
    let cluster_key = hub_plan.config.cluster_key.clone();
    // A local region keeps each port's role: its first hub's API is where the single process
    // serves it (8081, the README's REVERB_PORT), its first edge on the same WebSocket port.
    let hub_http = hub_plan.http_listen;
    rlimit::raise_open_files();
    let shutdown = match super::shutdown_token() {
        Ok(token) => token,
        Err(code) => return code,
    };
    if args.hubs > 1 || args.edges > 1 || args.redis.is_some() {
        let layout = local_region::Layout {
            hubs: args.hubs.max(1),
            edges: args.edges.max(1),
            redis: args.redis,
            http: hub_http,
            websocket: edge_plan.websocket,
            admin: edge_plan.admin,
            worker_threads,
        };
        let ready_json = args.common.ready_json;
        return local_region::run(layout, &app, &cluster_key, ready_json, shutdown).await;
    }
    let started = match hub::start(hub_plan, shutdown.clone()).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let pins = crate::config::parse::pins(&started.cert_sha256).unwrap_or_default();
    let link = LinkConfig {
        hubs: vec![HubAddress {
            address: started.running.link_addr.to_string(),
            zone: None,
        }],
        zone: None,
        server_name: None,
        trust: HubTrust::Pinned(pins),
        cluster_key,
        silence: edge_plan.link_silence,
        idle_timeout: edge_plan.link_idle_timeout,
        max_backoff: Duration::from_secs(1),
    };
    let mut running = match edge::start(&edge_plan, edge::new_edge_id(), link, shutdown.clone()) {
        Ok(running) => running,
        Err(code) => return code,
    };
    let reloader = super::watch_certificates(
        [edge_plan.tls.clone(), started.http_tls.clone()],
        edge_plan.tls_watch,
        &shutdown,
    );
    if super::wait_linked(&mut running, &shutdown).await {
        let websocket = running.websocket_addr;
        let http = started.running.http_addr;
        let banner = banner(&app, websocket, http, running.admin_addr);
        if args.common.ready_json {
            eprintln!("{banner}");
            print_ready(json!({
                "role": "dev",
                "websocket": websocket.to_string(),
                "admin": running.admin_addr.to_string(),
                "http": http.to_string(),
                "link": started.running.link_addr.to_string(),
                "app": {"id": app.id.as_str(), "key": app.key.as_str(), "secret": app.secret.expose()},
            }));
        } else {
            #[allow(clippy::print_stdout, reason = "the banner is what a developer reads")]
            {
                println!("{banner}");
            }
        }
    }
    running.stopped().await;
    started.running.stopped().await;
    let _ = reloader.await;
    if let Some(app_store) = started.app_store {
        let _ = app_store.await;
    }
    ExitCode::SUCCESS
}

/// The URL a WebSocket client opens: Pusher clients add `protocol` (required: without it the
/// edge closes with 4008), `client` and `version` to `/app/{key}`; `herald probe` accepts it as
/// it is.
pub fn client_url(websocket: std::net::SocketAddr, key: &str) -> String {
    format!(
        "ws://{websocket}/app/{key}?protocol=7&client=herald-dev&version={}",
        env!("CARGO_PKG_VERSION")
    )
}

fn banner(
    app: &App,
    websocket: std::net::SocketAddr,
    http: std::net::SocketAddr,
    admin: std::net::SocketAddr,
) -> String {
    let (id, key, secret) = (app.id.as_str(), app.key.as_str(), app.secret.expose());
    let (ws_host, ws_port) = (websocket.ip(), websocket.port());
    let (api_host, api_port) = (http.ip(), http.port());
    let client_url = client_url(websocket, key);
    format!(
        r#"Herald dev server is ready (hub and edge in one process, linked over QUIC).

  WebSocket URL (any client)           {client_url}
  pusher-js / Laravel Echo             key {key}, wsHost {ws_host}, wsPort {ws_port}, forceTLS false
  Pusher HTTP API (Laravel, SDKs)      http://{http}
  Health                               http://{admin}/up
  Metrics (Prometheus)                 http://{admin}/metrics  http://{http}/metrics
  Debug console                        http://{http}/console  (sign in with the key and secret)

  app id {id}   key {key}   secret {secret}

Laravel .env (Reverb broadcaster; the Pusher one works too):
  BROADCAST_CONNECTION=reverb
  REVERB_APP_ID={id}
  REVERB_APP_KEY={key}
  REVERB_APP_SECRET={secret}
  REVERB_HOST={api_host}
  REVERB_PORT={api_port}
  REVERB_SCHEME=http
  VITE_REVERB_APP_KEY="${{REVERB_APP_KEY}}"
  VITE_REVERB_HOST={ws_host}
  VITE_REVERB_PORT={ws_port}
  VITE_REVERB_SCHEME=http

Echo (resources/js/echo.js):
  window.Echo = new Echo({{
    broadcaster: 'reverb',
    key: import.meta.env.VITE_REVERB_APP_KEY,
    wsHost: import.meta.env.VITE_REVERB_HOST,
    wsPort: import.meta.env.VITE_REVERB_PORT,
    forceTLS: false,
    enabledTransports: ['ws'],
  }});

Trigger an event:
  herald sign --url http://{http} --app-id {id} --app-key {key} --app-secret {secret} \
    POST events '{{"name":"hello","channel":"test","data":"{{\"message\":\"hi\"}}"}}' | sh
"#
    )
}
