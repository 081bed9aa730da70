//! A real `redis-server` per test, on a free loopback port, with nothing kept on disk.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long redis-server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running redis-server.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    args: Vec<String>,
}

/// A loopback port nobody listens on right now (another process may take it before we bind it:
/// callers retry).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Why a redis-server did not start.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// The executable could not be run.
    Exec(std::io::Error),
    /// It ran but never said it accepts connections (port taken, bad option: see its log).
    NotReady {
        /// The port it was given.
        port: u16,
    },
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exec(error) => write!(
                f,
                "cannot start redis-server (install it: apt-get install -y redis-server): {error}"
            ),
            Self::NotReady { port } => {
                write!(f, "redis-server on port {port} did not become ready")
            }
        }
    }
}

impl std::error::Error for SpawnError {}

/// Starts `redis-server` on `port` (loopback, no snapshots, no AOF) with `extra` arguments, and
/// returns once it accepts connections. Its output is kept in `log` when given.
pub(crate) async fn spawn(
    port: u16,
    extra: &[&str],
    log: Option<&Path>,
) -> Result<Child, SpawnError> {
    let port_text = port.to_string();
    let mut args = vec![
        "--port",
        &port_text,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new("redis-server")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(SpawnError::Exec)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut log = log.and_then(|path| std::fs::File::create(path).ok());
    let mut lines = BufReader::new(stdout).lines();
    let ready = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(log) = &mut log {
                // Best effort: the log is for reading after a failure.
                let _ = writeln!(log, "{line}");
            }
            if line.contains("Ready to accept connections") {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(START_TIMEOUT, ready).await {
        Ok(true) => {
            // Drains its output for its whole life so the pipe never fills.
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(log) = &mut log {
                        let _ = writeln!(log, "{line}");
                    }
                }
            });
            Ok(child)
        }
        _ => {
            let _ = child.kill().await;
            Err(SpawnError::NotReady { port })
        }
    }
}

impl RedisServer {
    /// Starts a redis-server on a free port (retrying if another process took the port first).
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`RedisServer::start`], listening on `also` as well as on 127.0.0.1 (for hubs in another
    /// network namespace, see [`crate::netns`]).
    pub async fn start_on(also: &[std::net::IpAddr]) -> Self {
        let also: Vec<String> = also.iter().map(ToString::to_string).collect();
        // A later `--bind` replaces the default one. Protected mode refuses every client from
        // outside loopback when there is no password; the only other addresses are a test's own
        // network namespaces.
        let mut extra = vec!["--bind", "127.0.0.1"];
        extra.extend(also.iter().map(String::as_str));
        extra.extend(["--protected-mode", "no"]);
        Self::start_with(&extra).await
    }

    /// Starts a redis-server with extra arguments (e.g. `--requirepass`), kept for restarts.
    pub async fn start_with(extra: &[&str]) -> Self {
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port();
            match spawn(port, extra, None).await {
                Ok(child) => {
                    return Self {
                        port,
                        child: Some(child),
                        args: extra.iter().map(ToString::to_string).collect(),
                    };
                }
                Err(error) => last_error = Some(error),
            }
        }
        panic!("{}", last_error.expect("five attempts were made"));
    }

    /// `redis://127.0.0.1:{port}/{db}`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// `redis://{host}:{port}/{db}`, for a client that reaches the server at `host`.
    pub fn url_at(&self, host: std::net::IpAddr, db: u32) -> String {
        format!("redis://{host}:{}/{db}", self.port)
    }

    /// Kills the server at once; it forgets everything.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill().await;
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let child = spawn(self.port, &args, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.child = Some(child);
    }

    /// A plain command connection, for looking inside.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url(0))
            .and_then(|client| client.get_connection())
            .expect("redis-server accepts a connection")
    }

    /// How many subscribers a pub/sub channel has (`PUBSUB NUMSUB`).
    pub fn subscribers(&self, channel: &str) -> u64 {
        let (_, count): (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(&mut self.connection())
            .expect("PUBSUB NUMSUB answers");
        count
    }
}
