//! Process plumbing shared by the long-running commands: logging, signals, the ready line,
//! exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::env::Env;

/// Exit code for invalid configuration (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;
/// Exit code for a service Herald needs that is not there, such as an unreachable app store
/// (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;
/// Exit code for an operating-system failure such as a port in use (EX_OSERR).
pub const EXIT_OS: u8 = 71;

/// Set by `herald dev --hubs` on the processes it starts: the parent's pid.
pub const PARENT_PID_VAR: &str = "HERALD_PARENT_PID";

/// A process started by `herald dev --hubs` gets SIGTERM (and drains) when its parent dies,
/// however it dies, so a killed local region leaves no orphans behind.
pub fn stop_with_parent(env: &dyn Env) {
    let Some(parent) = env
        .var(PARENT_PID_VAR)
        .and_then(|pid| pid.parse::<i32>().ok())
    else {
        return;
    };
    let armed =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
    let parent_alive =
        rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get()) == Some(parent);
    if armed.is_err() || !parent_alive {
        tracing::warn!(message = "The parent process is gone; stopping.");
        std::process::exit(1);
    }
}

/// Sets up logging to stderr: the filter from `HERALD_LOG` (or `RUST_LOG`), default `info`;
/// JSON lines when `HERALD_LOG_FORMAT=json`.
pub fn init_logging(env: &dyn Env) {
    let filter = env
        .var("HERALD_LOG")
        .or_else(|| env.var("RUST_LOG"))
        .unwrap_or_else(|| "info".to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // A log line that cannot be written is lost, nothing more: by default tracing-subscriber
    // reports it with `eprintln!`, which panics when stderr is gone (a closed pipe), and takes
    // down the task that logged — the signal task among them, so SIGTERM stopped nothing.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false);
    if env.var("HERALD_LOG_FORMAT").as_deref() == Some("json") {
        builder.json().init();
    } else {
        builder.compact().init();
    }
}

/// A token cancelled on the first SIGTERM or SIGINT; a second one exits at once.
pub fn shutdown_on_signal() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        for round in 0.. {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            if round == 0 {
                tracing::info!(message = "Shutting down; a second signal stops at once.");
                cancel.cancel();
            } else {
                tracing::warn!(message = "Second signal: stopping now.");
                std::process::exit(1);
            }
        }
    });
    Ok(token)
}

/// Prints the one-line JSON ready message scripts and tests wait for.
pub fn print_ready(fields: Value) {
    let mut line = serde_json::json!({"event": "ready"});
    if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
        line.extend(fields);
    }
    #[allow(
        clippy::print_stdout,
        reason = "the ready line goes to stdout by contract"
    )]
    {
        println!("{line}");
    }
}

/// Reports a failure and returns its exit code.
pub fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("herald: {message}");
    ExitCode::from(code)
}
