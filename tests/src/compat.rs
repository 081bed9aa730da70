//! Real Pusher clients and SDKs as child processes: pusher-js 8 (Node build), Laravel Echo 2
//! over pusher-js, and the official `pusher` server SDKs from npm and PyPI, from the scripts in
//! `tests/compat/`.
//!
//! # Layout
//! - this file — installing the scripts' dependencies; where the SDKs send their calls.
//! - `script` — one client script as a child process speaking JSON lines.
//! - `pusher_js` — [`JsClient`], pusher-js (`client.mjs`).
//! - `echo` — [`EchoClient`], Laravel Echo (`echo.mjs`).
//! - `resume` — [`ResumeClients`], many pusher-js clients with or without the resume add-on
//!   (`resume.mjs`).
//! - `sdk` — [`node_sdk`] (`trigger.mjs`) and [`python_sdk`] (`trigger.py`).
//! - `webhooks` — [`WebhookReceiver`] (`webhook_receiver.mjs` + `webhook_verify.py`), an app's
//!   webhook endpoint verifying every request with the npm and PyPI SDKs.
//!
//! # Installation
//! Their dependencies install themselves on first use, once per machine state: `npm ci` in
//! `tests/compat` (from the committed `package-lock.json`) and a virtualenv in
//! `target/compat-venv` with `pip install -r tests/compat/requirements.txt`. A stamp file holding
//! the lock file's text marks a finished install, so an edited lock file reinstalls. Test
//! binaries run in parallel, so an exclusive file lock (`target/compat-npm.lock`,
//! `target/compat-venv.lock`) serialises each installer across processes, and a `OnceCell` makes
//! each test process check only once. A
//! failed install fails the test with the installer's output: nothing is skipped.
//!
//! # Scripts and their protocol
//! - `client.mjs` / `echo.mjs` — one pusher-js / Echo client: JSON-line commands on stdin, one
//!   JSON line per thing the library reported on stdout (`common.mjs` holds what they share).
//! - `trigger.mjs` / `trigger.py` — the npm / Python server SDK running a JSON list of operations;
//!   one JSON result line per operation.
//!
//! # Auth endpoints
//! No HTTP auth endpoint runs: each client script signs its own subscriptions and sign-ins with
//! the npm SDK (`authorizeChannel`, `authenticateUser`) through pusher-js's `customHandler`s, as
//! the app's endpoints would, with the app secret and the encryption master key
//! ([`MASTER_KEY_BASE64`]). Herald sees only the signatures and the `shared_secret`-free frames.
//!
//! # App id
//! The Python SDK only accepts numeric app ids (`\A[0-9]+\Z`), as Pusher issues them, so the
//! test app's id ([`APP_ID`](crate::topology::APP_ID)) is numeric.

mod echo;
mod pusher_js;
mod resume;
mod script;
mod sdk;
mod webhooks;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::{OnceCell, oneshot};

use crate::binary::{target_dir, workspace_root};
use crate::topology::{APP_ID, APP_KEY, APP_SECRET, Cluster, Hub};

pub use echo::{EchoClient, Kind};
pub use pusher_js::JsClient;
pub use resume::{ResumeClients, ResumeReport};
pub use script::{Launch, MASTER_KEY_BASE64, signer};
pub use sdk::{node_sdk, python_sdk};
pub use webhooks::WebhookReceiver;

/// How long one installer (`npm ci`, venv creation, `pip install`) may take.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a test waits for any single line from a client script.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server SDK script may take to run all its operations.
pub const SDK_TIMEOUT: Duration = Duration::from_secs(30);

/// `tests/compat`, where the scripts and their lock files live.
pub fn compat_dir() -> PathBuf {
    workspace_root().join("tests").join("compat")
}

/// Runs one installer step; `Err` carries everything a reader needs to see why it failed.
async fn run_installer(what: &str, command: &mut Command) -> Result<(), String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(INSTALL_TIMEOUT, command.output()).await {
        Err(_) => return Err(format!("{what} did not finish within {INSTALL_TIMEOUT:?}")),
        Ok(Err(error)) => return Err(format!("{what} could not be started: {error}")),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs `install` unless `stamp` already holds the text of `pins` (the lock file or requirements
/// it installs from), under the cross-process lock `target/<install_lock>`.
async fn install_once<F>(
    what: &str,
    pins: &Path,
    stamp: &Path,
    install_lock: &str,
    install: F,
) -> Result<(), String>
where
    F: AsyncFnOnce() -> Result<(), String>,
{
    let wanted = std::fs::read_to_string(pins)
        .map_err(|error| format!("{} cannot be read: {error}", pins.display()))?;
    let installed = || std::fs::read_to_string(stamp).is_ok_and(|text| text == wanted);
    if installed() {
        return Ok(());
    }
    let guard = lock_installs(install_lock).await?;
    // Another test process may have installed while this one waited for the lock.
    if !installed() {
        eprintln!("compat: installing {what} (first use)…");
        install().await?;
        std::fs::write(stamp, &wanted)
            .map_err(|error| format!("{} cannot be written: {error}", stamp.display()))?;
    }
    drop(guard);
    Ok(())
}

/// An exclusive lock on a file under `target/`, held by a thread of its own (an
/// `fd_lock` guard borrows its lock, so it cannot travel through `async` code); dropping this
/// value tells the thread to release it.
struct InstallLock {
    _release: oneshot::Sender<()>,
}

/// Takes the exclusive lock on `target/<name>`, waiting for other test processes.
async fn lock_installs(name: &str) -> Result<InstallLock, String> {
    let path = target_dir().join(name);
    let (acquired, on_acquired) = oneshot::channel();
    let (release, on_release) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let opened = std::fs::create_dir_all(path.parent().expect("the lock file has a parent"))
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
            });
        let mut lock = match opened {
            Ok(file) => fd_lock::RwLock::new(file),
            Err(error) => {
                let _ = acquired.send(Err(format!("{} cannot be opened: {error}", path.display())));
                return;
            }
        };
        match lock.write() {
            Ok(_guard) => {
                let _ = acquired.send(Ok(()));
                // Returns once the `InstallLock` is dropped; `_guard` unlocks after it.
                let _ = on_release.blocking_recv();
            }
            Err(error) => {
                let _ = acquired.send(Err(format!("{} cannot be locked: {error}", path.display())));
            }
        }
    });
    match tokio::time::timeout(INSTALL_TIMEOUT * 3, on_acquired).await {
        Ok(Ok(Ok(()))) => Ok(InstallLock { _release: release }),
        Ok(Ok(Err(error))) => Err(error),
        Ok(Err(_)) => Err("the install-lock thread ended without an answer".into()),
        Err(_) => Err("another test process held the install lock for too long".into()),
    }
}

/// Installs `tests/compat/node_modules` on first use; returns the compat directory.
pub async fn node_modules() -> &'static Path {
    static INSTALLED: OnceCell<Result<PathBuf, String>> = OnceCell::const_new();
    let result = INSTALLED
        .get_or_init(async || {
            let dir = compat_dir();
            let stamp = dir.join("node_modules").join(".herald-installed");
            install_once(
                "npm packages",
                &dir.join("package-lock.json"),
                &stamp,
                "compat-npm.lock",
                async || {
                    run_installer(
                        "npm ci in tests/compat (needs node and npm on PATH)",
                        Command::new("npm")
                            .args(["ci", "--no-audit", "--no-fund"])
                            .current_dir(&dir),
                    )
                    .await
                },
            )
            .await
            .map(|()| dir)
        })
        .await;
    match result {
        Ok(dir) => dir,
        Err(error) => panic!("installing the compat npm packages failed: {error}"),
    }
}

/// Creates `target/compat-venv` with the pinned Python SDK on first use; returns its python.
pub async fn python_venv() -> &'static Path {
    static INSTALLED: OnceCell<Result<PathBuf, String>> = OnceCell::const_new();
    let result = INSTALLED
        .get_or_init(async || {
            let venv = target_dir().join("compat-venv");
            let python = venv.join("bin").join("python");
            let requirements = compat_dir().join("requirements.txt");
            let stamp = venv.join(".herald-installed");
            install_once(
                "the Python SDK",
                &requirements,
                &stamp,
                "compat-venv.lock",
                async || {
                    run_installer(
                        "python3 -m venv (needs python3 with venv on PATH)",
                        Command::new("python3")
                            .args(["-m", "venv", "--clear"])
                            .arg(&venv),
                    )
                    .await?;
                    run_installer(
                        "pip install -r tests/compat/requirements.txt",
                        Command::new(&python)
                            .args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
                            .arg(&requirements),
                    )
                    .await
                },
            )
            .await
            .map(|()| python)
        })
        .await;
    match result {
        Ok(python) => python,
        Err(error) => panic!("installing the compat Python SDK failed: {error}"),
    }
}

/// Where the SDK scripts send their API calls on a cluster.
pub fn server(cluster: &Cluster) -> Server {
    server_on(&cluster.hub)
}

/// Where the SDK scripts send their API calls on one hub (e.g. a
/// [`Topology::other_hub`](crate::topology::Topology::other_hub)).
pub fn server_on(hub: &Hub) -> Server {
    Server::for_app(&hub.http, APP_ID, APP_KEY, APP_SECRET)
}

/// Splits `host:port`.
fn split_address(address: &str) -> (String, u16) {
    let (host, port) = address
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{address:?} is not host:port"));
    let port = port
        .parse()
        .unwrap_or_else(|_| panic!("{address:?} has no numeric port"));
    (host.to_string(), port)
}

/// Where a server SDK sends its API calls.
#[derive(Debug, Clone)]
pub struct Server {
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The app the SDK calls as: id, key, secret.
    pub app: (String, String, String),
    /// Call over HTTPS, trusting this CA certificate (PEM file); plain HTTP when `None`.
    pub tls_ca: Option<PathBuf>,
}

impl Server {
    /// The HTTP API at `host:port`, called as the app `id`/`key`/`secret`.
    pub fn for_app(address: &str, id: &str, key: &str, secret: &str) -> Self {
        let (host, port) = split_address(address);
        Self {
            host,
            port,
            app: (id.to_string(), key.to_string(), secret.to_string()),
            tls_ca: None,
        }
    }
}

/// `target/test-logs/<test>/<name>.log`, its directory created.
fn log_path(test: &str, name: &str) -> PathBuf {
    let dir = target_dir().join("test-logs").join(test);
    std::fs::create_dir_all(&dir).expect("the log directory can be created");
    dir.join(format!("{name}.log"))
}

/// Appends `text` to a log file (a test may run the same script several times).
fn append_log(path: &Path, text: &str) {
    use std::io::Write;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut file) = file {
        let _ = file.write_all(text.as_bytes());
    }
}
