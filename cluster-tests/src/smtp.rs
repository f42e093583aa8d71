//! A real SMTP server for tests: `cluster-tests/smtp/smtp_server.py` (aiosmtpd) on a free
//! loopback port, recording every accepted message as a JSON file that tests read back as
//! [`ReceivedEmail`].
//!
//! Recipients whose local part starts with `reject` are refused at RCPT with
//! `550 5.1.1 mailbox unavailable`, those starting with `tempfail` with
//! `451 4.3.0 try again later`.
//!
//! The interpreter is `GATEHOUSE_TEST_PYTHON` when set, else `.venv-test/bin/python` under
//! the workspace root when it exists, else `python3`; it needs `aiosmtpd`:
//! `python3 -m venv .venv-test && .venv-test/bin/pip install -r cluster-tests/smtp/requirements.txt`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;
use tempfile::TempDir;

use crate::error::SandboxError;
use crate::eventually::eventually;

/// What the server prints once it listens: `SMTP READY <port>`.
pub const SMTP_READY_PREFIX: &str = "SMTP READY ";

/// Exit status of the server script when `aiosmtpd` cannot be imported.
const AIOSMTPD_MISSING_STATUS: i32 = 3;
/// How long the server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// One message the server accepted, as the test SMTP server parsed it (Python's `email`
/// package, `policy=default`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReceivedEmail {
    /// Envelope sender (`MAIL FROM`).
    pub envelope_from: String,
    /// Envelope recipients that were accepted (`RCPT TO`).
    pub envelope_recipients: Vec<String>,
    /// The `Message-ID` header as sent, angle brackets included.
    pub message_id: String,
    /// The `From` header, decoded (`Name <address>`).
    pub from: String,
    /// The display name of the `From` mailbox.
    pub from_name: String,
    /// The address of the `From` mailbox.
    pub from_address: String,
    /// The `To` header, decoded.
    pub to: String,
    /// The `Reply-To` header, decoded; empty when there is none.
    pub reply_to: String,
    /// The `Subject` header, decoded.
    pub subject: String,
    /// The text/plain part, decoded, with CRLF line ends turned into LF.
    pub text: String,
    /// The text/html part, decoded, with CRLF line ends turned into LF.
    pub html: String,
    /// Every top-level header as (name, decoded value), in order.
    pub headers: Vec<(String, String)>,
    /// The whole message as received (after DATA).
    pub raw: String,
    /// When it arrived, in seconds since the Unix epoch.
    pub received_at: f64,
}

impl ReceivedEmail {
    /// Values of every top-level header called `name` (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// A running test SMTP server; dropping it kills the process and removes its files.
#[derive(Debug)]
pub struct SmtpServer {
    port: u16,
    python: PathBuf,
    dir: TempDir,
    process: Option<ServerProcess>,
}

#[derive(Debug)]
struct ServerProcess {
    child: Child,
    /// The server exits when this closes, so it never outlives the test process.
    _stdin: ChildStdin,
}

impl SmtpServer {
    /// Starts a server on a free loopback port; panics with the reason if it cannot.
    pub fn start() -> SmtpServer {
        SmtpServer::try_start().unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts a server on a free loopback port.
    pub fn try_start() -> Result<SmtpServer, SandboxError> {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-smtp-")
            .tempdir()
            .map_err(SandboxError::io("create the SMTP server's directory"))?;
        fs::create_dir_all(dir.path().join("messages"))
            .map_err(SandboxError::io("create the SMTP message directory"))?;
        let mut server = SmtpServer {
            port: free_tcp_port()?,
            python: python_interpreter(),
            dir,
            process: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message accepted so far, in order of arrival.
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        self.try_messages()
            .unwrap_or_else(|error| panic!("cannot read the received messages: {error}"))
    }

    /// Every message accepted so far, in order of arrival.
    pub fn try_messages(&self) -> Result<Vec<ReceivedEmail>, SandboxError> {
        let mut names = self.message_files()?;
        // Names start with the arrival time in nanoseconds, zero-padded.
        names.sort();
        names
            .iter()
            .map(|path| {
                let text = fs::read_to_string(path)
                    .map_err(SandboxError::io(format!("read {}", path.display())))?;
                serde_json::from_str(&text).map_err(|error| SandboxError::Io {
                    context: format!("parse {}", path.display()),
                    source: std::io::Error::other(error),
                })
            })
            .collect()
    }

    /// How many messages were accepted so far, without reading them (cheap enough to poll
    /// while thousands arrive).
    pub fn try_message_count(&self) -> Result<usize, SandboxError> {
        self.message_files().map(|files| files.len())
    }

    /// The files of the messages accepted so far, unordered.
    fn message_files(&self) -> Result<Vec<PathBuf>, SandboxError> {
        let dir = self.messages_dir();
        let names = fs::read_dir(&dir)
            .map_err(SandboxError::io(format!("list {}", dir.display())))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .filter(|path| {
                // Files still being written start with a dot.
                !path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with('.'))
            })
            .collect();
        Ok(names)
    }

    /// Polls until at least `count` messages have arrived and returns them all; panics
    /// with what did arrive when `timeout` passes first.
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<ReceivedEmail> {
        let outcome = eventually(timeout, || async {
            let messages = self.try_messages()?;
            if messages.len() >= count {
                Ok(messages)
            } else {
                Err(SandboxError::Io {
                    context: format!("waiting for {count} messages"),
                    source: std::io::Error::other(format!("{} arrived", messages.len())),
                })
            }
        })
        .await;
        outcome.unwrap_or_else(|failure| {
            panic!(
                "the SMTP server did not receive {count} messages: {failure}; stderr:\n{}",
                self.stderr_tail()
            )
        })
    }

    /// Stops the server (SIGTERM, then SIGKILL after a few seconds); the port is then
    /// closed and connections to it are refused. Messages already received stay readable.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&process.child),
                rustix::process::Signal::TERM,
            );
            let deadline = std::time::Instant::now() + STOP_TIMEOUT;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = process.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if it runs).
    pub fn restart(&mut self) -> Result<(), SandboxError> {
        self.stop();
        self.spawn()
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    fn messages_dir(&self) -> PathBuf {
        self.dir.path().join("messages")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    fn stderr_tail(&self) -> String {
        let text = fs::read_to_string(self.stderr_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn spawn(&mut self) -> Result<(), SandboxError> {
        let stderr_path = self.stderr_path();
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(SandboxError::io(format!("open {}", stderr_path.display())))?;
        let mut child = Command::new(&self.python)
            .arg(script_path())
            .arg(self.port.to_string())
            .arg(self.messages_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(SandboxError::io(format!(
                "run the test SMTP server with {} (set GATEHOUSE_TEST_PYTHON)",
                self.python.display()
            )))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(self.failed("no stdin or stdout pipe"));
        };
        let process = ServerProcess {
            child,
            _stdin: stdin,
        };
        self.process = Some(process);
        match wait_for_ready(stdout, READY_TIMEOUT) {
            Some(port) if port == self.port => Ok(()),
            Some(port) => {
                self.stop();
                Err(self.failed(&format!("it announced port {port}, not {}", self.port)))
            }
            None => {
                let status = self.process.as_mut().and_then(|process| {
                    // Its stdout has closed; give the exit a moment to be reaped.
                    let deadline = std::time::Instant::now() + Duration::from_secs(2);
                    loop {
                        match process.child.try_wait() {
                            Ok(Some(status)) => break Some(status),
                            Ok(None) if std::time::Instant::now() < deadline => {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            _ => break None,
                        }
                    }
                });
                self.stop();
                if status.and_then(|status| status.code()) == Some(AIOSMTPD_MISSING_STATUS) {
                    return Err(SandboxError::AiosmtpdMissing {
                        python: self.python.clone(),
                    });
                }
                Err(self.failed("it printed no ready line"))
            }
        }
    }

    fn failed(&self, reason: &str) -> SandboxError {
        SandboxError::SmtpServer {
            reason: reason.to_owned(),
            stderr: self.stderr_tail(),
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

/// The ready line's port, read on a thread so a silent process cannot hang the caller; the
/// thread then keeps draining stdout so the server never blocks on a full pipe.
fn wait_for_ready(stdout: std::process::ChildStdout, timeout: Duration) -> Option<u16> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("gatehouse-smtp-stdout".to_owned())
        .spawn(move || {
            let mut announced = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !announced && let Some(port) = line.strip_prefix(SMTP_READY_PREFIX) {
                    announced = true;
                    let _ = sender.send(port.trim().parse::<u16>().ok());
                }
            }
        })
        .ok()?;
    receiver.recv_timeout(timeout).ok().flatten()
}

/// A free TCP port on 127.0.0.1: bound, read back and released for the server to bind.
fn free_tcp_port() -> Result<u16, SandboxError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(SandboxError::io("reserve an SMTP port"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(SandboxError::io("read the SMTP port"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("smtp")
        .join("smtp_server.py")
}

/// `GATEHOUSE_TEST_PYTHON`, else the workspace's `.venv-test`, else `python3`.
fn python_interpreter() -> PathBuf {
    if let Some(python) = std::env::var_os("GATEHOUSE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = workspace_root()
        .join(".venv-test")
        .join("bin")
        .join("python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn free_ports_are_loopback_ports_nobody_holds() {
        let port = free_tcp_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn the_script_ships_with_the_kit() {
        assert!(script_path().is_file(), "{}", script_path().display());
        let requirements = workspace_root().join("cluster-tests/smtp/requirements.txt");
        let text = fs::read_to_string(requirements).unwrap();
        assert!(text.lines().any(|line| line.starts_with("aiosmtpd==")));
    }

    fn banner(port: u16) -> std::io::Result<String> {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line)
    }

    #[test]
    fn serves_smtp_stops_and_restarts_on_the_same_port() {
        let mut server = SmtpServer::start();
        let port = server.port();
        assert!(banner(port).unwrap().starts_with("220 "));
        assert!(server.messages().is_empty());
        assert_eq!(server.try_message_count().unwrap(), 0);
        server.stop();
        assert!(!server.is_running());
        assert!(banner(port).is_err(), "nothing listens once stopped");
        server.restart().unwrap();
        assert_eq!(server.port(), port);
        assert!(banner(port).unwrap().starts_with("220 "));
    }

    #[test]
    fn a_missing_aiosmtpd_is_reported_with_how_to_install_it() {
        let error = SandboxError::AiosmtpdMissing {
            python: PathBuf::from("python3"),
        };
        let message = error.to_string();
        assert!(message.contains("pip install -r cluster-tests/smtp/requirements.txt"));
        assert!(message.contains("GATEHOUSE_TEST_PYTHON"));
    }
}
