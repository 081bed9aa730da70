//! A real `redis-server` per test, on a free loopback port, with nothing kept on disk.

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
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

async fn spawn(port: u16) -> Result<Child, String> {
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot start redis-server (install it: apt-get install -y redis-server): {e}")
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let ready = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Ready to accept connections") {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(START_TIMEOUT, ready).await {
        Ok(true) => {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok(child)
        }
        _ => {
            let _ = child.kill().await;
            Err(format!("redis-server on port {port} did not become ready"))
        }
    }
}

impl RedisServer {
    /// Starts a redis-server on a free port (retrying if another process took the port first).
    pub async fn start() -> Self {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn(port).await {
                Ok(child) => {
                    return Self {
                        port,
                        child: Some(child),
                    };
                }
                Err(error) => last_error = error,
            }
        }
        panic!("{last_error}");
    }

    /// `redis://127.0.0.1:{port}/{db}`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
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
        let child = spawn(self.port).await.unwrap_or_else(|e| panic!("{e}"));
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
