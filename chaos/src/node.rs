//! The node under load: one this tool starts in a temp dir, or one already running.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use gatehouse_cluster_tests::NodeExit;
use gatehouse_cluster_tests::SandboxNode;

use crate::error::ChaosError;

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

/// A `gatehouse start` process this tool started through the test kit, in a temp dir.
#[derive(Debug)]
pub struct SpawnedNode {
    node: SandboxNode,
    /// Addresses and operator key of the node.
    pub target: Target,
}

impl SpawnedNode {
    /// Starts `binary` with the settings `env` adds, on fresh loopback ports in a temp dir,
    /// and waits until it serves. The node logs at `GATEHOUSE_NODE_LOG` if that is set, else
    /// `warn`.
    pub async fn start(
        binary: &Path,
        ready_timeout: Duration,
        env: &[(String, String)],
    ) -> Result<Self, ChaosError> {
        let log_filter = std::env::var("GATEHOUSE_NODE_LOG").unwrap_or_else(|_| "warn".to_owned());
        let mut builder = SandboxNode::builder()
            .binary(binary)
            .label("load")
            .log_filter(log_filter)
            .ready_timeout(ready_timeout);
        for (name, value) in env {
            builder = builder.env(name, value);
        }
        let node = builder
            .start()
            .await
            .map_err(|error| ChaosError::Node(error.to_string()))?;
        let operator_key = node
            .operator_key()
            .map_err(|error| ChaosError::Node(error.to_string()))?;
        let target = Target {
            grpc_endpoint: node.endpoint(),
            http_base: node.http_url(),
            operator_key,
            pid: node.pid(),
            public_url: None,
        };
        Ok(SpawnedNode { node, target })
    }

    /// The node's data directory (its stderr log is beside it, see [`SpawnedNode::log`]).
    pub fn dir(&self) -> &Path {
        self.node.data_dir()
    }

    /// The file holding the node's stderr.
    pub fn log(&self) -> &Path {
        self.node.stderr_path()
    }

    /// Sends SIGTERM, waits up to `grace`, kills the node if needed and removes its dir.
    pub async fn stop(mut self, grace: Duration) -> Result<NodeExit, ChaosError> {
        self.node
            .terminate_within(grace)
            .await
            .map_err(|error| ChaosError::Node(error.to_string()))
    }
}

/// The binary to start: a release build under `./target` first (benchmarks need one),
/// else the test kit's lookup (`GATEHOUSE_BIN`, beside this binary, `target/debug`).
pub fn default_binary() -> PathBuf {
    let release = PathBuf::from("target/release/gatehouse");
    if release.exists() {
        return release;
    }
    gatehouse_cluster_tests::locate_binary(None)
        .unwrap_or_else(|_| PathBuf::from("target/debug/gatehouse"))
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

#[cfg(test)]
mod tests {
    use super::*;

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
