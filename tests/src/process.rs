//! Running `herald` (and `herald-bench floor`) processes: spawn, wait for the ready line, watch stderr, kill.
//!
//! Each process's stderr goes to `target/test-logs/<test>/<name>.log` and is printed when a test
//! fails while the process is alive.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::binary::{bench_binary, herald_binary, target_dir};
use crate::eventually::eventually;

/// How long a process may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    changed: Notify,
}

/// A running `herald` process.
pub struct HeraldProcess {
    name: String,
    child: Child,
    log: Arc<Log>,
    log_path: PathBuf,
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
    /// Reads what the process writes to stdout after its ready line, into nothing.
    stdout_drain: Option<tokio::task::JoinHandle<()>>,
    /// The ready line, when the process printed one.
    pub ready: Value,
}

/// What to start: the program (`herald` unless said otherwise), a launcher that execs it in its
/// place, its arguments and environment, and the test and name its log is filed under.
#[derive(Clone, Copy)]
pub struct Launch<'a> {
    program: &'a Path,
    launcher: &'a [&'a str],
    test: &'a str,
    name: &'a str,
    args: &'a [&'a str],
    env: &'a [(&'a str, &'a str)],
}

impl<'a> Launch<'a> {
    /// `herald ARGS`, logged as `name` in `test`'s log directory.
    pub fn herald(test: &'a str, name: &'a str, args: &'a [&'a str]) -> Self {
        Self {
            program: herald_binary(),
            launcher: &[],
            test,
            name,
            args,
            env: &[],
        }
    }

    /// `herald-bench ARGS` (the floor server), logged as `name` in `test`'s log directory.
    pub fn bench(test: &'a str, name: &'a str, args: &'a [&'a str]) -> Self {
        Self::herald(test, name, args).program(bench_binary())
    }

    /// Runs `program` instead, such as the image's `/usr/local/bin/herald`.
    pub fn program(self, program: &'a Path) -> Self {
        Self { program, ..self }
    }

    /// Runs the program through a launcher that execs it in its place (such as `ip netns exec
    /// NAME` or `chroot ROOTFS`), so the process and its pid are still the program's own.
    pub fn under(self, launcher: &'a [&'a str]) -> Self {
        Self { launcher, ..self }
    }

    /// Adds these environment variables.
    pub fn env(self, env: &'a [(&'a str, &'a str)]) -> Self {
        Self { env, ..self }
    }

    /// Starts the process and waits for its ready line (`--ready-json` must be among the args);
    /// panics with its stderr if none comes within [`READY_TIMEOUT`].
    pub async fn start(self) -> HeraldProcess {
        let mut process = self.spawn();
        let stdout = process.child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let read_ready = async {
            while let Some(line) = lines.next_line().await.ok().flatten() {
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && value["event"] == "ready"
                {
                    return Some(value);
                }
            }
            None
        };
        match tokio::time::timeout(READY_TIMEOUT, read_ready).await {
            Ok(Some(ready)) => process.ready = ready,
            outcome => {
                let status = process.child.try_wait().ok().flatten();
                panic!(
                    "{} did not print its ready line ({}; exit status {status:?}); stderr:\n{}",
                    self.name,
                    if outcome.is_err() {
                        "timed out"
                    } else {
                        "stdout closed"
                    },
                    process.stderr()
                );
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe: into a sink, so a
        // line without an end costs no memory; the task ends with the pipe and is aborted
        // when the process is dropped.
        let mut rest = lines.into_inner();
        process.stdout_drain = Some(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
        }));
        process
    }

    /// Starts the process without waiting for anything.
    pub fn spawn(self) -> HeraldProcess {
        let log_dir = target_dir().join("test-logs").join(self.test);
        std::fs::create_dir_all(&log_dir).expect("the log directory can be created");
        let log_path = log_dir.join(format!("{}.log", self.name));
        let mut command = match self.launcher.split_first() {
            Some((launcher, launcher_args)) => {
                let mut command = Command::new(launcher);
                command.args(launcher_args).arg(self.program);
                command
            }
            None => Command::new(self.program),
        };
        command
            .args(self.args)
            .env("HERALD_LOG", "info,herald_edge=debug,herald_hub=debug")
            .envs(self.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the process can be started");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Log::default());
        let sink = log.clone();
        let path = log_path.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut file = tokio::fs::File::create(&path).await.ok();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(file) = file.as_mut() {
                    let _ = file.write_all(format!("{line}\n").as_bytes()).await;
                }
                sink.lines.lock().expect("log lock").push(line);
                sink.changed.notify_waiters();
            }
        });
        HeraldProcess {
            name: self.name.to_string(),
            child,
            log,
            log_path,
            stderr_reader: Some(stderr_reader),
            stdout_drain: None,
            ready: Value::Null,
        }
    }
}

impl HeraldProcess {
    /// Starts `herald ARGS` and waits for its ready line (`--ready-json` must be among the args);
    /// [`Launch`] for another program or a launcher.
    pub async fn start(test: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Launch::herald(test, name, args).env(env).start().await
    }

    /// Starts `herald ARGS` without waiting for anything.
    pub fn spawn(test: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Launch::herald(test, name, args).env(env).spawn()
    }

    /// The name the process was started as (its log file's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A field of the ready line, as a string.
    pub fn ready_field(&self, field: &str) -> String {
        self.ready[field]
            .as_str()
            .unwrap_or_else(|| panic!("{} ready line has no {field}: {}", self.name, self.ready))
            .to_string()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lines.lock().expect("log lock").join("\n")
    }

    /// Waits until a stderr line contains `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let found = async {
            loop {
                let changed = self.log.changed.notified();
                if self
                    .log
                    .lines
                    .lock()
                    .expect("log lock")
                    .iter()
                    .any(|l| l.contains(needle))
                {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(timeout, found).await.is_err() {
            panic!(
                "{} never logged {needle:?} within {timeout:?}; stderr ({}):\n{}",
                self.name,
                self.log_path.display(),
                self.stderr()
            );
        }
    }

    /// Kills the process at once (SIGKILL) and waits for it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops the process in its tracks (SIGSTOP) and returns once every thread of it stands
    /// still: it holds its sockets and answers nothing.
    ///
    /// `kill` returning is not enough. The kernel hands SIGSTOP to one thread, and only when that
    /// thread runs does it stop the others; on a loaded machine it may wait milliseconds for a
    /// CPU while the process's other threads go on serving (a hub "stopped" this way once relayed
    /// an event 4 ms after `kill -STOP` returned).
    pub async fn pause(&self) {
        self.signal("STOP");
        let pid = self.pid();
        eventually(
            &format!("every thread of {} to stop", self.name),
            READY_TIMEOUT,
            async || thread_states(pid),
            |states| {
                !states.is_empty()
                    && states
                        .iter()
                        .all(|state| matches!(state, 'T' | 't' | 'Z' | 'X'))
            },
        )
        .await
        .unwrap_or_else(|unmet| panic!("SIGSTOP did not stop {}: {unmet}", self.name));
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Sends SIGHUP (reload the certificates).
    pub fn hangup(&self) {
        self.signal("HUP");
    }

    /// Sends SIGTERM (the graceful stop).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill can be run");
        assert!(
            status.success(),
            "SIG{name} could not be sent to {}",
            self.name
        );
    }

    /// Waits for the process to exit on its own; returns its exit code.
    pub async fn exit_code(&mut self, timeout: Duration) -> Option<i32> {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status,
            _ => panic!(
                "{} did not exit within {timeout:?}:\n{}",
                self.name,
                self.stderr()
            ),
        };
        // Everything the process wrote is read before anyone looks at it.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(timeout, reader).await;
        }
        status.code()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }
}

/// The state letter (`R`, `S`, `T` …) of each thread of process `pid`, from `/proc`; empty when
/// the process is gone.
fn thread_states(pid: u32) -> Vec<char> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        // `pid (comm) S ...`: the state follows the last `)`, as comm may hold one itself.
        .filter_map(|stat| stat.rsplit_once(')')?.1.trim_start().chars().next())
        .collect()
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        if let Some(drain) = self.stdout_drain.take() {
            drain.abort();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- {} stderr ({}) -----\n{}\n-----",
                self.name,
                self.log_path.display(),
                self.stderr()
            );
        }
    }
}
