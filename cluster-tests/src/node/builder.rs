//! Configures and starts a standalone node: one process, no gossip, its own data.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{Launch, SandboxNode};
use crate::binary::locate_binary;
use crate::error::SandboxError;

/// Configures a standalone [`SandboxNode`] (see [`SandboxNode::builder`]).
///
/// By default the node runs in a fresh temporary directory (data in `data/`, stderr in
/// `node.stderr.log`) that is removed when the node drops, with embedded storage, the
/// node's own master key and operator key, and log filter `warn`.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    binary: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    label: String,
    log_filter: String,
    env: Vec<(String, String)>,
    ready_timeout: Duration,
    stop_timeout: Duration,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        NodeBuilder {
            binary: None,
            data_dir: None,
            label: "node".to_owned(),
            log_filter: "warn".to_owned(),
            env: Vec::new(),
            ready_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(30),
        }
    }
}

impl NodeBuilder {
    /// The `gatehouse` binary to run (default: see [`crate::binary`]).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Runs on an existing data directory, which outlives the node (its stderr goes to
    /// `<data_dir>.stderr.log` beside it).
    pub fn data_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(path.into());
        self
    }

    /// The name the kit uses for the node in its messages (default `node`).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// The node's log filter, `GATEHOUSE_NODE_LOG` (default `warn`).
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = filter.into();
        self
    }

    /// An extra `GATEHOUSE_*` setting; the caller's own `GATEHOUSE_*` variables never
    /// reach the node.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// How long the node may take to become ready (default 60 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long the node may take to exit after SIGTERM (default 30 s).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// The node, configured but not started.
    pub fn build(self) -> Result<SandboxNode, SandboxError> {
        let binary = locate_binary(self.binary)?;
        let mut env = vec![("GATEHOUSE_NODE_LOG".to_owned(), self.log_filter)];
        env.extend(self.env);
        let launch = Arc::new(Launch {
            binary,
            env,
            ready_timeout: self.ready_timeout,
            stop_timeout: self.stop_timeout,
            operator_key: OnceLock::new(),
        });
        let node = match self.data_dir {
            Some(data_dir) => {
                let mut log = data_dir.clone().into_os_string();
                log.push(".stderr.log");
                SandboxNode::new(launch, data_dir, log.into(), self.label, None, None)
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("gatehouse-node-")
                    .tempdir()
                    .map_err(SandboxError::io("create the node's directory"))?;
                SandboxNode::new(
                    launch,
                    dir.path().join("data"),
                    dir.path().join("node.stderr.log"),
                    self.label,
                    None,
                    Some(dir),
                )
            }
        };
        Ok(node)
    }

    /// Starts the node and waits until it prints its ready line and serves.
    pub async fn start(self) -> Result<SandboxNode, SandboxError> {
        let mut node = self.build()?;
        node.start().await?;
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Any existing file will do for a node that is never started.
    const SOME_FILE: &str = "/bin/sh";

    #[test]
    fn a_node_removes_its_own_directory_but_keeps_it_after_a_failure() {
        let node = NodeBuilder::default().binary(SOME_FILE).build().unwrap();
        let dir = node.data_dir().parent().unwrap().to_owned();
        assert!(dir.is_dir());
        drop(node);
        assert!(!dir.exists(), "removed on a normal drop");

        let node = NodeBuilder::default().binary(SOME_FILE).build().unwrap();
        let dir = node.data_dir().parent().unwrap().to_owned();
        let failed = std::panic::catch_unwind(move || {
            let _node = node;
            panic!("a failing test");
        });
        assert!(failed.is_err());
        assert!(dir.is_dir(), "kept after a failure");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_given_data_directory_outlives_the_node() {
        let parent = tempfile::tempdir().unwrap();
        let data_dir = parent.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let node = NodeBuilder::default()
            .binary(SOME_FILE)
            .data_dir(&data_dir)
            .build()
            .unwrap();
        assert_eq!(node.stderr_path(), parent.path().join("data.stderr.log"));
        drop(node);
        assert!(data_dir.is_dir());
    }
}
