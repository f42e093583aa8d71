//! The node under load: one this tool starts in a temp dir, or one already running.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::ChaosError;

/// The prefix of the line a node prints on stdout once it serves.
pub const READY_PREFIX: &str = "gatehouse: ready ";

/// Where the load goes: a node's addresses, its operator key and, if known, its pid.
#[derive(Debug, Clone)]
pub struct Target {
    /// gRPC endpoint URL, such as `http://127.0.0.1:50051`.
    pub grpc_endpoint: String,
    /// Base URL of the HTTP endpoint, such as `http://127.0.0.1:8080`.
    pub http_base: String,
    /// The operator key, for creating the tenant under load.
    pub operator_key: String,
    /// Process id, for reading the node's memory use.
    pub pid: Option<u32>,
    /// The node's public URL when it differs from `http_base` (token issuers start with it).
    pub public_url: Option<String>,
}

impl Target {
    /// The issuer of `tenant`'s access tokens: `<public url>/t/<tenant>`.
    pub fn issuer(&self, tenant: &str) -> String {
        let base = self.public_url.as_deref().unwrap_or(&self.http_base);
        format!("{}/t/{tenant}", base.trim_end_matches('/'))
    }
}

impl Target {
    /// Refuses endpoints that are not on the loopback interface.
    pub fn ensure_loopback(&self) -> Result<(), ChaosError> {
        ensure_loopback(&self.grpc_endpoint)?;
        ensure_loopback(&self.http_base)
    }
}

/// How a node process ended.
#[derive(Debug, Clone, Copy)]
pub struct NodeExit {
    /// Its exit status.
    pub status: ExitStatus,
    /// Whether it had to be killed after ignoring SIGTERM for the grace period.
    pub killed: bool,
}

/// A `gatehouse start` process this tool started, with its temp data dir.
#[derive(Debug)]
pub struct SpawnedNode {
    child: Child,
    dir: TempDir,
    /// Addresses and operator key of the node.
    pub target: Target,
}

impl SpawnedNode {
    /// Starts `binary` on fresh loopback ports in a temp dir and waits for its ready line.
    pub async fn start(binary: &Path, ready_timeout: Duration) -> Result<Self, ChaosError> {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-load-")
            .tempdir()
            .map_err(|error| ChaosError::Node(format!("temp dir: {error}")))?;
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("node.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|error| ChaosError::Node(format!("{}: {error}", log_path.display())))?;
        let mut command = Command::new(binary);
        command
            .arg("start")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        if std::env::var_os("GATEHOUSE_NODE_LOG").is_none() {
            command.env("GATEHOUSE_NODE_LOG", "warn");
        }
        let mut child = command.spawn().map_err(|error| {
            ChaosError::Node(format!("cannot run {}: {error}", binary.display()))
        })?;
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ChaosError::Node("node stdout is not piped".to_owned()))?;
        let mut lines = BufReader::new(stdout).lines();
        let waited = tokio::time::timeout(ready_timeout, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addresses) = parse_ready_line(&line) {
                    return Some(addresses);
                }
            }
            None
        })
        .await;
        let (grpc, http) = match waited {
            Ok(Some(addresses)) => addresses,
            Ok(None) => {
                return Err(ChaosError::Node(format!(
                    "exited before its ready line; log: {}",
                    log_tail(&log_path)
                )));
            }
            Err(_) => {
                return Err(ChaosError::Node(format!(
                    "no ready line within {ready_timeout:?}; log: {}",
                    log_tail(&log_path)
                )));
            }
        };
        // Keep draining stdout so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let key_path = data_dir.join("operator.key");
        let operator_key = std::fs::read_to_string(&key_path)
            .map_err(|error| ChaosError::Node(format!("{}: {error}", key_path.display())))?
            .trim()
            .to_owned();
        Ok(SpawnedNode {
            child,
            dir,
            target: Target {
                grpc_endpoint: format!("http://{grpc}"),
                http_base: format!("http://{http}"),
                operator_key,
                pid,
                public_url: None,
            },
        })
    }

    /// The temp dir holding the node's data and its stderr log (`node.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends SIGTERM, waits up to `grace`, kills the node if needed and removes its dir.
    pub async fn stop(mut self, grace: Duration) -> Result<NodeExit, ChaosError> {
        if let Some(pid) = self.child.id() {
            // `kill` keeps this crate free of unsafe signal calls.
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .map_err(|error| ChaosError::Node(format!("kill -TERM {pid}: {error}")))?;
            if !sent.success() {
                return Err(ChaosError::Node(format!("kill -TERM {pid}: {sent}")));
            }
        }
        let exit = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => NodeExit {
                status: status.map_err(|error| ChaosError::Node(format!("wait: {error}")))?,
                killed: false,
            },
            Err(_) => {
                self.child
                    .kill()
                    .await
                    .map_err(|error| ChaosError::Node(format!("kill: {error}")))?;
                let status = self
                    .child
                    .wait()
                    .await
                    .map_err(|error| ChaosError::Node(format!("wait: {error}")))?;
                NodeExit {
                    status,
                    killed: true,
                }
            }
        };
        Ok(exit)
    }
}

/// The gRPC and HTTP addresses of a `gatehouse: ready grpc=… http=… …` line.
pub fn parse_ready_line(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let fields = line.strip_prefix(READY_PREFIX)?;
    let field = |name: &str| {
        fields
            .split_whitespace()
            .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
            .and_then(|address| address.parse().ok())
    };
    Some((field("grpc")?, field("http")?))
}

/// The binary to start: `GATEHOUSE_BIN`-style override first, then release, then debug.
pub fn default_binary() -> PathBuf {
    let release = PathBuf::from("target/release/gatehouse");
    if release.exists() {
        return release;
    }
    let debug = PathBuf::from("target/debug/gatehouse");
    if debug.exists() {
        return debug;
    }
    // Run from elsewhere: the node built beside this binary.
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("gatehouse")))
        .filter(|sibling| sibling.exists())
        .unwrap_or(debug)
}

/// Refuses a URL whose host is not a loopback address (or `localhost`).
pub fn ensure_loopback(url: &str) -> Result<(), ChaosError> {
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|error| ChaosError::Setting(format!("{url:?} is not a URL: {error}")))?;
    let host = uri
        .host()
        .ok_or_else(|| ChaosError::Setting(format!("{url:?} has no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(ChaosError::Setting(format!(
            "{url:?} is not on loopback; the load generator only sends traffic to 127.0.0.1"
        )))
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.is_empty() {
        format!("{} is empty", path.display())
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ready_line() {
        let line = "gatehouse: ready grpc=127.0.0.1:41234 http=127.0.0.1:41235 \
                    storage=embedded data_dir=/tmp/x";
        let (grpc, http) = parse_ready_line(line).unwrap_or_else(|| panic!("no addresses"));
        assert_eq!(grpc.port(), 41234);
        assert_eq!(http.port(), 41235);
        assert!(parse_ready_line("gatehouse: operator key is in /tmp/x").is_none());
        assert!(parse_ready_line("gatehouse: ready grpc=nope http=127.0.0.1:1").is_none());
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(ensure_loopback("http://127.0.0.1:50051").is_ok());
        assert!(ensure_loopback("127.0.0.1:50051").is_ok());
        assert!(ensure_loopback("http://localhost:8080").is_ok());
        assert!(ensure_loopback("http://[::1]:8080").is_ok());
        assert!(ensure_loopback("http://10.0.0.5:50051").is_err());
        assert!(ensure_loopback("https://auth.example.com").is_err());
    }
}
