//! Databases for app store tests: a fresh database per test on the machine's PostgreSQL
//! (127.0.0.1:5432, user postgres, trust) or MariaDB (127.0.0.1:3306, root, no password),
//! created and dropped through their command-line clients, and a TCP relay in front of either
//! that a test can cut to make the database unreachable without touching the shared server.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL on 127.0.0.1:5432.
    Postgres,
    /// MariaDB on 127.0.0.1:3306.
    MariaDb,
}

impl Kind {
    /// The server's address.
    pub fn address(self) -> SocketAddr {
        match self {
            Self::Postgres => "127.0.0.1:5432",
            Self::MariaDb => "127.0.0.1:3306",
        }
        .parse()
        .expect("a socket address")
    }

    /// Runs one SQL text on `database` (or the server's default) through the command-line
    /// client; panics with its output when it fails.
    pub fn sql(self, database: Option<&str>, sql: &str) -> String {
        let mut command = match self {
            Self::Postgres => {
                let mut command = Command::new("psql");
                command.args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    "5432",
                    "-U",
                    "postgres",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-tA",
                    "-c",
                    sql,
                ]);
                command.arg(database.unwrap_or("postgres"));
                command
            }
            Self::MariaDb => {
                let mut command = Command::new("mysql");
                command.args([
                    "-h",
                    "127.0.0.1",
                    "-P",
                    "3306",
                    "-u",
                    "root",
                    "-N",
                    "-e",
                    sql,
                ]);
                if let Some(database) = database {
                    command.arg(database);
                }
                command
            }
        };
        let output = command.output().unwrap_or_else(|error| {
            panic!("{self:?} client cannot run (is it installed?): {error}")
        });
        assert!(
            output.status.success(),
            "{self:?}: {sql}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

/// A database created for one test (`herald_test_<random>`), dropped when this value is.
pub struct TestDatabase {
    /// The server.
    pub kind: Kind,
    /// The database's name.
    pub name: String,
}

impl TestDatabase {
    /// Creates a fresh database.
    pub fn create(kind: Kind) -> Self {
        let name = format!("herald_test_{:016x}", fastrand::u64(..));
        kind.sql(None, &format!("CREATE DATABASE {name}"));
        Self { kind, name }
    }

    /// Its URL through `address` (the server, or a relay in front of it), with `password` in it
    /// (trust authentication ignores it; MariaDB's root has none, so it is left out there).
    pub fn url_via(&self, address: SocketAddr, password: Option<&str>) -> String {
        match self.kind {
            Kind::Postgres => {
                let credentials = match password {
                    Some(password) => format!("postgres:{password}"),
                    None => "postgres".to_string(),
                };
                format!("postgres://{credentials}@{address}/{}", self.name)
            }
            Kind::MariaDb => format!("mysql://root@{address}/{}", self.name),
        }
    }

    /// Its URL on the server itself.
    pub fn url(&self) -> String {
        self.url_via(self.kind.address(), None)
    }

    /// Runs SQL in this database.
    pub fn sql(&self, sql: &str) -> String {
        self.kind.sql(Some(&self.name), sql)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = match self.kind {
            Kind::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Kind::MariaDb => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        // Best effort: a failing test must not hide its own message behind this one.
        let _ = std::panic::catch_unwind(|| self.kind.sql(None, &sql));
    }
}

/// A TCP relay on a free loopback port to `target`: open, it forwards every connection; cut, it
/// resets the connections it carries and every new one (the database looks down).
pub struct TcpRelay {
    /// Where clients connect.
    pub address: SocketAddr,
    open: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpRelay {
    /// Starts an open relay.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let open = Arc::new(watch::channel(true).0);
        let task = tokio::spawn(relay(listener, target, open.clone()));
        Self {
            address,
            open,
            task,
        }
    }

    /// Cuts every connection, now and until [`TcpRelay::restore`].
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(listener: TcpListener, target: SocketAddr, open: Arc<watch::Sender<bool>>) {
    let mut carried = JoinSet::new();
    let mut state = open.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                if !*state.borrow() {
                    drop(client);
                    continue;
                }
                let mut cut = open.subscribe();
                carried.spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else { return };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|open| !*open) => {}
                    }
                });
            }
            Ok(()) = state.changed() => {}
            Some(_) = carried.join_next(), if !carried.is_empty() => {}
        }
    }
}
