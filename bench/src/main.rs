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
use herald_bench::fanout::{self, IdlePlan};
use herald_bench::floor;
use herald_bench::report::{Report, Setup};
use herald_bench::session::{BenchError, SessionPlan};
use herald_bench::trigger::{self, Fired, TriggerPlan};
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
    /// Subscribed sockets held idle: connect rate, handshake time, server memory per socket;
    /// with --await-event, then one event's fan-out to them.
    Idle(IdleArgs),
    /// Send one event (sequence number 0, stamped with its send time) through the HTTP API and
    /// print the stamp: the event `idle --await-event` runs wait for.
    Trigger(TriggerArgs),
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
    /// What each event is and how it is sent.
    #[command(flatten)]
    pub events: EventArgs,
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
    /// Seconds to wait for the last deliveries after the last trigger was answered.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub drain_timeout: f64,
    /// Trigger requests in flight at most.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
}

/// Flags of every command that triggers: the app's credentials and the events sent.
#[derive(Debug, Args)]
pub struct EventArgs {
    /// App id.
    #[arg(long, default_value = DEV_APP_ID)]
    pub app_id: String,
    /// App secret.
    #[arg(long, default_value = DEV_APP_SECRET)]
    pub app_secret: String,
    /// Bytes of data per event (sequence number and send time, padded).
    #[arg(long, default_value_t = 200, value_name = "BYTES")]
    pub payload: usize,
    /// The event name.
    #[arg(long, default_value = "bench-event")]
    pub event: String,
    /// Seconds one trigger request may take.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub http_timeout: f64,
}

/// Flags of `herald-bench trigger`.
#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The HTTP API base URL.
    #[arg(
        long = "api",
        value_name = "URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub api: String,
    /// App key.
    #[arg(long, default_value = DEV_APP_KEY)]
    pub app_key: String,
    /// The public channel.
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// What the event is and how it is sent.
    #[command(flatten)]
    pub events: EventArgs,
    /// Print the stamp as one JSON line (`{"channel":…,"event":…,"seq":0,"sent_us":…,"http_ms":…}`)
    /// instead of a sentence.
    #[arg(long)]
    pub json: bool,
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
    /// After the hold, wait up to SECS for one event on every socket still open — named
    /// --event, on CHANNEL (CHANNEL-0 with --channels), carrying the bench payload of sequence
    /// number 0: what `herald-bench trigger` sends — and report how many received it and its
    /// first and last arrival, as wall-clock µs and as latency from the send stamp in its data.
    /// The event counts whenever it comes (in the hold too) and the wait ends once every open
    /// socket has it. Several idle processes awaiting one trigger time its fan-out to more
    /// sockets than one process may open (scripts/bench-100k.sh).
    #[arg(long, value_name = "SECS")]
    pub await_event: Option<f64>,
    /// The event name --await-event waits for.
    #[arg(long, default_value = "bench-event")]
    pub event: String,
    /// Once every subscriber connected (or failed) and the settle passed, print one line
    /// `{"event":"ready","subscribers":N,"requested":M}` on stdout, before the hold (the report
    /// follows it at the end): how a script running several idle processes knows that all of
    /// them hold their sockets.
    #[arg(long)]
    pub ready_json: bool,
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
    setup.payload_bytes = args.events.payload;
    let plan = args.events.plan(
        apis,
        session.connect.app_key.clone(),
        session.connect.channels.clone(),
        args.rate,
        count,
        args.max_in_flight,
    )?;
    let drain = seconds("--drain-timeout", args.drain_timeout)?;
    fanout::fanout(session, plan, drain, setup).await
}

impl EventArgs {
    /// The trigger plan of these events: `count` at `rate`, round robin over `apis` and
    /// `channels`.
    fn plan(
        &self,
        apis: Vec<reqwest::Url>,
        app_key: String,
        channels: Vec<String>,
        rate: f64,
        count: u64,
        max_in_flight: usize,
    ) -> Result<TriggerPlan, BenchError> {
        Ok(TriggerPlan {
            apis,
            app_id: self.app_id.clone(),
            app_key,
            app_secret: self.app_secret.clone(),
            channels,
            event: self.event.clone(),
            rate,
            count,
            payload: self.payload,
            max_in_flight,
            timeout: seconds("--http-timeout", self.http_timeout)?,
        })
    }
}

impl IdleArgs {
    /// The hold and what follows it.
    fn plan(&self) -> Result<IdlePlan, BenchError> {
        Ok(IdlePlan {
            hold: seconds("--hold", self.hold)?,
            await_event: self
                .await_event
                .map(|secs| seconds("--await-event", secs))
                .transpose()?,
            event: self.event.clone(),
            ready_json: self.ready_json,
        })
    }
}

impl TriggerArgs {
    /// One event, to the channel through the API URL.
    fn plan(&self) -> Result<TriggerPlan, BenchError> {
        let api = trigger::check_url(&self.api).map_err(BenchError::ApiUrl)?;
        (self.events).plan(
            vec![api],
            self.app_key.clone(),
            vec![self.channel.clone()],
            1.0,
            1,
            1,
        )
    }
}

async fn idle_run(args: IdleArgs) -> Result<Report, BenchError> {
    let plan = args.plan()?;
    let (session, setup) = args.client.plan().await?;
    fanout::idle(session, plan, setup).await
}

async fn trigger_run(args: TriggerArgs) -> Result<Fired, BenchError> {
    let plan = args.plan()?;
    let client = trigger::client(plan.timeout).map_err(BenchError::HttpClient)?;
    trigger::once(&plan, &client)
        .await
        .map_err(BenchError::Trigger)
}

/// Prints what `herald-bench trigger` sent.
fn print_fired(fired: &Fired, json: bool) {
    let text = if json {
        serde_json::to_string(fired).expect("a stamp always serialises")
    } else {
        format!(
            "sent {} on {} (seq {}): sent_us {}, answered in {:.2} ms",
            fired.event, fired.channel, fired.seq, fired.sent_us, fired.http_ms
        )
    };
    #[allow(clippy::print_stdout, reason = "the stamp is this command's output")]
    {
        println!("{text}");
    }
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
        BenchCommand::Trigger(args) => {
            let json = args.json;
            return match trigger_run(args).await {
                Ok(fired) => {
                    print_fired(&fired, json);
                    ExitCode::SUCCESS
                }
                Err(error) => fail(error.exit_code(), error),
            };
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> BenchCommand {
        let mut argv = vec!["herald-bench"];
        argv.extend_from_slice(args);
        BenchArgs::try_parse_from(argv)
            .expect("the flags parse")
            .command
    }

    fn flag_error(result: Result<impl std::fmt::Debug, BenchError>) -> &'static str {
        match result {
            Err(BenchError::Flag { flag, .. }) => flag,
            other => panic!("expected a flag error, got {other:?}"),
        }
    }

    #[test]
    fn idle_awaits_an_event_only_when_asked() {
        let BenchCommand::Idle(args) = parse(&["idle", "--hold", "300"]) else {
            panic!("idle")
        };
        let plan = args.plan().expect("a plan");
        assert_eq!(plan.hold, Duration::from_secs(300));
        assert_eq!(plan.await_event, None);
        assert!(!plan.ready_json);
        let BenchCommand::Idle(args) = parse(&[
            "idle",
            "--await-event",
            "60",
            "--event",
            "e",
            "--ready-json",
        ]) else {
            panic!("idle")
        };
        let plan = args.plan().expect("a plan");
        assert_eq!(plan.await_event, Some(Duration::from_secs(60)));
        assert_eq!(plan.event, "e");
        assert!(plan.ready_json);
        let BenchCommand::Idle(args) = parse(&["idle", "--await-event=-1"]) else {
            panic!("idle")
        };
        assert_eq!(flag_error(args.plan()), "--await-event");
    }

    #[test]
    fn trigger_sends_one_event_to_one_channel() {
        let BenchCommand::Trigger(args) = parse(&[
            "trigger",
            "--api",
            "http://127.0.0.1:9/",
            "--channel",
            "all",
            "--payload",
            "50",
        ]) else {
            panic!("trigger")
        };
        let plan = args.plan().expect("a plan");
        assert_eq!(plan.channels, ["all"]);
        assert_eq!((plan.count, plan.payload), (1, 50));
        assert_eq!(plan.event, "bench-event");
        let BenchCommand::Trigger(args) = parse(&["trigger", "--http-timeout=-1"]) else {
            panic!("trigger")
        };
        assert_eq!(flag_error(args.plan()), "--http-timeout");
        let BenchCommand::Trigger(args) = parse(&["trigger", "--api", "https://h"]) else {
            panic!("trigger")
        };
        assert!(matches!(args.plan(), Err(BenchError::ApiUrl(_))));
    }
}
