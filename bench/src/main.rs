//! `herald-bench`: fan-out and idle-socket benchmarks against any Pusher-compatible server, and
//! the floor server they are compared with. The flags become plans here; the runs live in the
//! [`herald_bench`] library.
//!
//! Exit codes: 0 for a clean run, 1 when subscribers failed to connect, triggers failed,
//! deliveries were lost or duplicated, or sockets were dropped (the report is printed either
//! way), 64 for bad flags, 69 when the servers are unreachable, 71 for an operating-system
//! failure (a port in use, too few open files).

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use herald_bench::clients::ConnectPlan;
use herald_bench::report::{Report, Setup};
use herald_bench::session::{BenchError, SessionPlan};
use herald_bench::trigger::{self, TriggerPlan};
use herald_bench::{fanout, floor};
use herald_shared::dev::{DEV_APP_ID, DEV_APP_KEY, DEV_APP_SECRET};
use herald_wire::WsTarget;
use tracing_subscriber::EnvFilter;

/// Exit code for an operating-system failure such as a port in use (EX_OSERR).
const EXIT_OS: u8 = 71;

/// Benchmark any Pusher-compatible server (fan-out latency and loss, idle socket memory), or
/// serve as the do-nothing floor server they are compared with.
#[derive(Debug, Parser)]
#[command(name = "herald-bench", version)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Subscribers on one channel (or --channels N), events triggered at a fixed rate through the HTTP API:
    /// end-to-end latency, loss, duplicates, throughput, server CPU per delivery.
    Fanout(FanoutArgs),
    /// Subscribed sockets held idle: connect rate, handshake time, server memory per socket.
    Idle(IdleArgs),
    /// Serve as the do-nothing WebSocket writer, the floor Herald's figures are compared with
    /// (BENCHMARKS.md): upgrade, subscribe, write each triggered event to every socket; no
    /// checks, no queues.
    Floor(FloorArgs),
}

/// Flags of `herald-bench floor`.
#[derive(Debug, Args)]
pub struct FloorArgs {
    /// WebSocket and HTTP API address (one port for both); port 0 picks a free port. The
    /// ready line (`{"event":"ready","websocket":…,"http":…}`) names it.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}

/// Flags of every benchmark: who connects where.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// A server's WebSocket URL: a base URL or a client URL with /app/KEY (whose key is used);
    /// repeat for several (subscribers go round-robin).
    #[arg(long = "ws", value_name = "URL", default_value = "ws://127.0.0.1:8080")]
    pub ws: Vec<String>,
    /// App key (default: the key in the --ws URLs, else herald dev's).
    #[arg(long)]
    pub app_key: Option<String>,
    /// How many subscribers.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub subscribers: usize,
    /// The public channel every subscriber joins (with --channels, the names' base).
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// Spread the events over this many channels, CHANNEL-0 … CHANNEL-(N-1) (1: CHANNEL
    /// alone): event i goes to channel i mod N and every subscriber joins all N, so each still
    /// receives every event — the same delivery load, with the events spread over channels
    /// (and a Redis Cluster's shards). Order is checked per channel.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub channels: usize,
    /// Subscribe as clients that opted in to Herald's resume extension (`"herald": {}` in
    /// `pusher:subscribe`, docs/resume.md): each event frame they get carries its position.
    /// A run with and one without it measure what the extension costs the servers.
    #[arg(long)]
    pub positions: bool,
    /// Local addresses to connect from, comma-separated (e.g. 127.0.0.1,127.0.0.2): each has
    /// its own ~28k ephemeral ports per server port. Default: the OS's choice.
    #[arg(long, value_delimiter = ',', value_name = "IP,...")]
    pub source_ips: Vec<IpAddr>,
    /// New connections per second at most (default: as fast as --connect-concurrency allows).
    #[arg(long, value_name = "PER_SECOND")]
    pub connect_rate: Option<f64>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Seconds one subscriber may take from TCP connect to subscription_succeeded.
    #[arg(long, default_value_t = 15.0, value_name = "SECS")]
    pub connect_timeout: f64,
    /// A server process on this machine to measure (CPU, RSS from /proc); repeat for several.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// Seconds to wait after connecting before sampling memory.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub settle: f64,
    /// Print the result as JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `herald-bench fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Who connects where.
    #[command(flatten)]
    pub client: ClientArgs,
    /// An HTTP API base URL to trigger on; repeat for several (taken round-robin).
    #[arg(
        long = "api",
        value_name = "URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub api: Vec<String>,
    /// App id.
    #[arg(long, default_value = DEV_APP_ID)]
    pub app_id: String,
    /// App secret.
    #[arg(long, default_value = DEV_APP_SECRET)]
    pub app_secret: String,
    /// Events per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of triggering (rate × duration events).
    #[arg(
        long,
        default_value_t = 30.0,
        value_name = "SECS",
        conflicts_with = "messages"
    )]
    pub duration: f64,
    /// Exactly this many events, instead of --duration.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Bytes of data per event (sequence number and send time, padded).
    #[arg(long, default_value_t = 200, value_name = "BYTES")]
    pub payload: usize,
    /// The event name.
    #[arg(long, default_value = "bench-event")]
    pub event: String,
    /// Seconds to wait for the last deliveries after the last trigger was answered.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub drain_timeout: f64,
    /// Trigger requests in flight at most.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Seconds one trigger request may take.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub http_timeout: f64,
}

/// Flags of `herald-bench idle`.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Who connects where.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Seconds to hold the sockets after connecting (past the server's activity timeout shows
    /// that pings are answered).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub hold: f64,
}

fn seconds(flag: &'static str, value: f64) -> Result<Duration, BenchError> {
    Duration::try_from_secs_f64(value).map_err(|_| BenchError::Flag {
        flag,
        expected: "a non-negative number of seconds",
    })
}

fn positive(flag: &'static str, ok: bool) -> Result<(), BenchError> {
    if ok {
        Ok(())
    } else {
        Err(BenchError::Flag {
            flag,
            expected: "positive",
        })
    }
}

impl ClientArgs {
    async fn plan(&self) -> Result<(SessionPlan, Setup), BenchError> {
        positive("--subscribers", self.subscribers > 0)?;
        positive("--connect-concurrency", self.connect_concurrency > 0)?;
        positive("--channels", self.channels > 0)?;
        if let Some(rate) = self.connect_rate {
            positive("--connect-rate", rate.is_finite() && rate > 0.0)?;
        }
        let mut targets = Vec::new();
        for url in &self.ws {
            targets.push(WsTarget::resolve(url).await.map_err(BenchError::WsUrl)?);
        }
        let mut app_key = self.app_key.clone();
        for target in &targets {
            app_key = Some(target.key(app_key.as_deref(), DEV_APP_KEY)?.to_string());
        }
        let connect = ConnectPlan {
            targets,
            sources: self.source_ips.clone(),
            app_key: app_key.unwrap_or_else(|| DEV_APP_KEY.to_string()),
            channels: herald_bench::channel_names(&self.channel, self.channels),
            positions: self.positions,
            count: self.subscribers,
            concurrency: self.connect_concurrency,
            rate: self.connect_rate,
            timeout: seconds("--connect-timeout", self.connect_timeout)?,
        };
        let setup = Setup {
            ws: self.ws.clone(),
            source_ips: self.source_ips.iter().map(IpAddr::to_string).collect(),
            channel: self.channel.clone(),
            channels: self.channels as u64,
            subscribers: self.subscribers as u64,
            ..Setup::default()
        };
        let session = SessionPlan {
            connect,
            server_pids: self.server_pids.clone(),
            settle: seconds("--settle", self.settle)?,
        };
        Ok((session, setup))
    }
}

async fn fanout_run(args: FanoutArgs) -> Result<Report, BenchError> {
    let (session, mut setup) = args.client.plan().await?;
    positive("--rate", args.rate.is_finite() && args.rate > 0.0)?;
    positive("--max-in-flight", args.max_in_flight > 0)?;
    let count = match args.messages {
        Some(messages) => messages,
        None => (args.rate * seconds("--duration", args.duration)?.as_secs_f64()).round() as u64,
    };
    positive("--messages (or rate × duration)", count > 0)?;
    let apis = args
        .api
        .iter()
        .map(|url| trigger::check_url(url))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BenchError::ApiUrl)?;
    setup.api = args.api.clone();
    setup.rate = args.rate;
    setup.messages = count;
    setup.payload_bytes = args.payload;
    let plan = TriggerPlan {
        apis,
        app_id: args.app_id,
        app_key: session.connect.app_key.clone(),
        app_secret: args.app_secret,
        channels: session.connect.channels.clone(),
        event: args.event,
        rate: args.rate,
        count,
        payload: args.payload,
        max_in_flight: args.max_in_flight,
        timeout: seconds("--http-timeout", args.http_timeout)?,
    };
    let drain = seconds("--drain-timeout", args.drain_timeout)?;
    fanout::fanout(session, plan, drain, setup).await
}

async fn idle_run(args: IdleArgs) -> Result<Report, BenchError> {
    let (session, setup) = args.client.plan().await?;
    let hold = seconds("--hold", args.hold)?;
    fanout::idle(session, hold, setup).await
}

async fn floor_run(args: FloorArgs) -> ExitCode {
    herald_bench::raise_open_files();
    let listener = match floor::listen(args.listen) {
        Ok(listener) => listener,
        Err(error) => return fail(EXIT_OS, format!("floor: {}: {error}", args.listen)),
    };
    match floor::run(listener).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(EXIT_OS, format!("floor: {error}")),
    }
}

/// Reports a failure and returns its exit code.
fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("herald-bench: {message}");
    ExitCode::from(code)
}

/// Runs a benchmark and prints its report (exit codes: the module's).
async fn run(args: BenchArgs) -> ExitCode {
    let (json, result) = match args.command {
        BenchCommand::Fanout(args) => (args.client.json, fanout_run(args).await),
        BenchCommand::Idle(args) => (args.client.json, idle_run(args).await),
        BenchCommand::Floor(args) => return floor_run(args).await,
    };
    match result {
        Ok(report) => {
            report.print(json);
            if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => fail(error.exit_code(), error),
    }
}

fn main() -> ExitCode {
    let args = BenchArgs::parse();
    // Logs to stderr (the report and the floor's ready line go to stdout): `HERALD_LOG`, else
    // `RUST_LOG`, default `info`.
    let filter = std::env::var("HERALD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .compact()
        .init();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(error) => fail(EXIT_OS, format!("cannot start the runtime: {error}")),
    }
}
