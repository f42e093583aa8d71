//! The process behind a node: spawning it with its settings, reading its stdout, the
//! ready line it prints, and a watchdog that ends it if the test process dies without
//! cleaning up.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::SandboxNode;
use crate::error::SandboxError;
use crate::eventually::POLL_INTERVAL;

/// Printed by a node once it serves: `gatehouse: ready grpc=<addr> http=<addr> …`.
pub const READY_PREFIX: &str = "gatehouse: ready ";

/// The addresses a node announces in its ready line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyLine {
    /// Where its gRPC API listens.
    pub grpc: SocketAddr,
    /// Where its HTTP endpoint listens.
    pub http: SocketAddr,
    /// Where its metrics listener listens, when it has one.
    pub metrics: Option<SocketAddr>,
}

impl ReadyLine {
    /// The addresses of a ready line; `None` for any other line or a malformed one.
    pub fn parse(line: &str) -> Option<ReadyLine> {
        let fields = line.strip_prefix(READY_PREFIX)?;
        let field = |name: &str| {
            fields
                .split_whitespace()
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
                .and_then(|addr| addr.parse().ok())
        };
        Some(ReadyLine {
            grpc: field("grpc")?,
            http: field("http")?,
            metrics: field("metrics"),
        })
    }
}

/// How long a killed process may take to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of stderr quoted in errors.
const STDERR_TAIL_LINES: usize = 40;

/// A running process and what it printed.
#[derive(Debug)]
pub(super) struct Process {
    pub(super) child: Child,
    pub(super) paused: bool,
    pub(super) stdout: Arc<Mutex<Vec<String>>>,
    pub(super) _watchdog: Watchdog,
}

/// Kills the node if this process dies without cleaning up (SIGKILL, abort): a `sh` blocked
/// reading a pipe from us, which reaches end of file only once we are gone. Dropping it
/// disarms it (it is killed, never closed), so it can never hit a reused pid.
#[derive(Debug)]
pub(super) struct Watchdog(Child);

/// The watchdog's script; `$1` is the node's pid.
const WATCHDOG_SCRIPT: &str = r#"trap '' INT TERM HUP
read -r _ignored
kill -KILL "$1" 2>/dev/null"#;

impl Watchdog {
    fn arm(node_pid: u32) -> std::io::Result<Watchdog> {
        Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("gatehouse-node-watchdog")
            .arg(node_pid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Outside our process group, so a Ctrl-C meant for us does not end it first.
            .process_group(0)
            .spawn()
            .map(Watchdog)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process just spawned: its stdout lines as they come, and all of them so far.
pub(super) struct Spawned {
    pub(super) child: Child,
    pub(super) watchdog: Watchdog,
    pub(super) lines: mpsc::UnboundedReceiver<String>,
    pub(super) stdout: Arc<Mutex<Vec<String>>>,
}

impl SandboxNode {
    /// Spawns the node's process with its settings; stdout goes to a reader thread.
    pub(super) fn spawn(&self) -> Result<Spawned, SandboxError> {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .map_err(SandboxError::io(format!(
                "open {}",
                self.stderr_path.display()
            )))?;
        let mut command = Command::new(&self.launch.binary);
        command
            .arg("start")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]);
        // The node rejects unknown GATEHOUSE_* variables, and the caller's own settings
        // (GATEHOUSE_BIN, a developer's GATEHOUSE_CONFIG) must not leak into the cluster.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GATEHOUSE_") {
                command.env_remove(name);
            }
        }
        // Metrics on their own listener (said in the ready line), as in production.
        command.env("GATEHOUSE_METRICS_LISTEN", "127.0.0.1:0");
        command.envs(self.launch.env.iter().map(|(key, value)| (key, value)));
        command.envs(self.own_env.iter().map(|(key, value)| (key, value)));
        if let Some(gossip) = &self.gossip {
            let seeds = gossip
                .seeds
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(",");
            command
                .env("GATEHOUSE_CLUSTER_NODE_ID", &self.node_id)
                .env("GATEHOUSE_CLUSTER_GOSSIP_ADDR", gossip.addr.to_string())
                .env("GATEHOUSE_CLUSTER_SEEDS", seeds);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().map_err(SandboxError::io(format!(
            "spawn {}",
            self.launch.binary.display()
        )))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(SandboxError::Io {
                context: "capture the node's stdout".to_owned(),
                source: std::io::Error::other("no stdout pipe"),
            });
        };
        let watchdog = match Watchdog::arm(child.id()) {
            Ok(watchdog) => watchdog,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SandboxError::Io {
                    context: "spawn the node's watchdog (sh)".to_owned(),
                    source: error,
                });
            }
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        let printed = Arc::new(Mutex::new(Vec::new()));
        let collected = printed.clone();
        // A thread, not a task: it must keep draining the pipe whatever the runtime does,
        // so a node never blocks on a full stdout.
        std::thread::Builder::new()
            .name(format!("gatehouse-{}-stdout", self.node_id))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut lines) = collected.lock() {
                        lines.push(line.clone());
                    }
                    let _ = sender.send(line);
                }
            })
            .map_err(SandboxError::io("spawn the stdout reader"))?;
        Ok(Spawned {
            child,
            watchdog,
            lines: receiver,
            stdout: printed,
        })
    }
}

/// Waits (bounded) for a killed or exiting child to be reaped.
pub(super) async fn reap(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + REAP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL_INTERVAL).await,
            _ => return None,
        }
    }
}

/// The last lines of a node's stderr log, for failure messages.
pub(super) fn stderr_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ready_line() {
        let line = "gatehouse: ready grpc=127.0.0.1:41234 http=127.0.0.1:41235 \
                    storage=embedded data_dir=/tmp/x";
        let ready = ReadyLine::parse(line);
        assert_eq!(ready.map(|ready| ready.grpc.port()), Some(41234));
        assert_eq!(ready.map(|ready| ready.http.port()), Some(41235));
        assert_eq!(ready.and_then(|ready| ready.metrics), None);
        let with_metrics = ReadyLine::parse(
            "gatehouse: ready grpc=127.0.0.1:1 http=127.0.0.1:2 metrics=127.0.0.1:3 storage=memory",
        );
        assert_eq!(
            with_metrics
                .and_then(|ready| ready.metrics)
                .map(|addr| addr.port()),
            Some(3)
        );
        assert!(ReadyLine::parse("gatehouse: operator key is in /tmp/x").is_none());
        assert!(ReadyLine::parse("gatehouse: ready grpc=nope http=127.0.0.1:1").is_none());
        assert!(ReadyLine::parse("gatehouse: ready grpc=127.0.0.1:1").is_none());
    }
}
