//! A local ElastiCache API: moto's server, installed from PyPI into `target/venvs/moto` the first
//! time a test process needs it, started on a free loopback port.
//!
//! moto binds port 0 itself and prints ` * Running on http://127.0.0.1:PORT` once it listens:
//! that line is the ready signal (no port reservation race, no startup sleep). Its output is kept
//! in `target/test-logs/<test>/moto.log`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use crate::binary::target_dir;

/// The moto release the tests are written against.
const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";

/// How long moto may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one API call to moto may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The region the tests use.
pub const REGION: &str = "us-east-1";

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it listens; `test` names the log
    /// directory.
    pub fn start(test: &str) -> Moto {
        let python = python();
        let log_dir = target_dir().join("test-logs").join(test);
        fs::create_dir_all(&log_dir).expect("the test log directory can be created");
        let mut log =
            fs::File::create(log_dir.join("moto.log")).expect("the moto log can be created");
        let mut child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto's server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ready, port) = mpsc::channel();
        // Reads moto's output for its whole life: the first "Running on" line gives the port,
        // everything goes to the log (and the pipe never fills up).
        std::thread::spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Best effort: a failing log write must not stop the pipe from draining.
                let _ = writeln!(log, "{line}");
                if let Some(port) = running_port(&line)
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(port);
                }
            }
        });
        match port.recv_timeout(START_TIMEOUT) {
            Ok(port) => Moto { child, port },
            Err(error) => {
                let _ = child.kill();
                panic!(
                    "moto did not report its port within {START_TIMEOUT:?} ({error}); see {}",
                    log_dir.join("moto.log").display()
                );
            }
        }
    }

    /// The endpoint URL to give the AWS SDK (`--endpoint-url`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Calls an ElastiCache action (query protocol) and returns the XML body; panics on a
    /// non-200 answer, with the body.
    pub fn elasticache(&self, action: &str, params: &[(&str, &str)]) -> String {
        let mut body = format!("Action={action}&Version=2015-02-02");
        for (key, value) in params {
            body.push('&');
            body.push_str(&form_encode(key));
            body.push('=');
            body.push_str(&form_encode(value));
        }
        // moto routes by the service in the credential scope; it does not check signatures.
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/elasticache/aws4_request, SignedHeaders=host, Signature=0"
        );
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: {authorization}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}",
            port = self.port,
            length = body.len(),
        );
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("moto accepts connections");
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .expect("a read timeout can be set");
        stream
            .write_all(request.as_bytes())
            .expect("the request is sent to moto");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|error| {
                panic!("moto answered {action} within {CALL_TIMEOUT:?}: {error}")
            });
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "moto refused {action}:\n{response}"
        );
        body.to_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // The process may already be gone; either way it must not outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in werkzeug's ` * Running on http://127.0.0.1:PORT` line (colour codes around it
/// are ignored).
fn running_port(line: &str) -> Option<u16> {
    let rest = line.split("Running on http://127.0.0.1:").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|port| *port != 0)
}

/// `application/x-www-form-urlencoded` for a value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The venv's python, installing moto into `target/venvs/moto` first if it is not there.
///
/// The venv is built under a temporary name and renamed into place, so an interrupted install
/// never looks complete; it is run as `python -m moto.server`, which keeps working after the
/// rename (console scripts would carry the temporary path).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venvs = target_dir().join("venvs");
        let venv = venvs.join("moto");
        let python = venv.join("bin/python");
        if python.exists() {
            return python;
        }
        fs::create_dir_all(&venvs).expect("target/venvs can be created");
        let staging = venvs.join(format!("moto.installing-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&staging),
            "python3 -m venv",
        );
        run(
            Command::new(staging.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                MOTO_REQUIREMENT,
            ]),
            "pip install moto[server]",
        );
        if let Err(error) = fs::rename(&staging, &venv) {
            // Another test process may have finished first; use its venv if it is complete.
            assert!(
                python.exists(),
                "moving the moto venv into place failed: {error}"
            );
            let _ = fs::remove_dir_all(&staging);
        }
        python
    })
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what} cannot start: {error}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_port_from_werkzeug() {
        assert_eq!(
            running_port(" * Running on http://127.0.0.1:41981"),
            Some(41981)
        );
        assert_eq!(
            running_port("\u{1b}[33m * Running on http://127.0.0.1:5000\u{1b}[0m"),
            Some(5000)
        );
        assert_eq!(running_port("Press CTRL+C to quit"), None);
    }

    #[test]
    fn form_encoding_escapes_reserved_bytes() {
        assert_eq!(form_encode("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(form_encode("herald-prod_1.x~"), "herald-prod_1.x~");
    }
}
