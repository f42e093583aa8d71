//! The sandbox: one shared store, a master key, a cluster secret and N nodes on loopback.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::try_join_all;
use rand::RngCore;
use tempfile::TempDir;

use crate::binary::locate_binary;
use crate::error::SandboxError;
use crate::eventually::eventually;
use crate::node::{Gossip, Launch, SandboxNode, SandboxTenant};
use crate::store::SharedStore;

/// Where the nodes of a sandbox keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxStorage {
    /// A fresh database on the PostgreSQL server this process shares between sandboxes
    /// (started on first use with initdb + pg_ctl in a temporary directory, stopped at exit).
    Postgres,
    /// A fresh PostgreSQL server of the sandbox's own, stopped when the sandbox drops.
    DedicatedPostgres,
    /// An existing PostgreSQL database (its URL), shared by the nodes.
    PostgresUrl(String),
    /// One embedded store per node: membership works, but nodes share no data.
    Embedded,
}

/// The URL the cluster is reached at, as if behind one load balancer. Tokens name it as their
/// issuer, so a token minted by one node verifies on every node; left empty, each node would
/// use its own HTTP address and accept only its own tokens. Nothing is ever sent to it
/// (`.localhost` names resolve to loopback anyway).
pub const DEFAULT_PUBLIC_URL: &str = "http://gatehouse.localhost";

/// Configures a [`ClusterSandbox`].
#[derive(Debug, Clone)]
pub struct ClusterSandboxBuilder {
    nodes: usize,
    storage: SandboxStorage,
    binary: Option<PathBuf>,
    log_filter: String,
    public_url: String,
    env: Vec<(String, String)>,
    ready_timeout: Duration,
    stop_timeout: Duration,
    convergence_timeout: Duration,
}

impl Default for ClusterSandboxBuilder {
    fn default() -> Self {
        ClusterSandboxBuilder {
            nodes: 3,
            storage: SandboxStorage::Postgres,
            binary: None,
            log_filter: "warn".to_owned(),
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            env: Vec::new(),
            ready_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(30),
            convergence_timeout: Duration::from_secs(30),
        }
    }
}

impl ClusterSandboxBuilder {
    /// How many nodes to start (default 3); ids are `a`, `b`, `c`, ….
    pub fn nodes(mut self, count: usize) -> Self {
        self.nodes = count.max(1);
        self
    }

    /// Where the nodes keep their data (default: a fresh database on the shared server).
    pub fn storage(mut self, storage: SandboxStorage) -> Self {
        self.storage = storage;
        self
    }

    /// The `gatehouse` binary to run (default: see [`crate::binary`]).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// The nodes' log filter, `GATEHOUSE_NODE_LOG` (default `warn`).
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = filter.into();
        self
    }

    /// The public URL every node shares, `GATEHOUSE_NODE_PUBLIC_URL` (default
    /// [`DEFAULT_PUBLIC_URL`]); it makes the token issuer, so it must be one for the cluster.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = url.into();
        self
    }

    /// An extra `GATEHOUSE_*` setting for every node.
    pub fn node_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// How long a node may take to become ready (default 30 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long a node may take to exit after SIGTERM (default 30 s).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// How long the nodes may take to agree on the membership (default 30 s).
    pub fn convergence_timeout(mut self, timeout: Duration) -> Self {
        self.convergence_timeout = timeout;
        self
    }

    /// Starts the store and the nodes, and waits until every node sees all of them serving.
    pub async fn build(self) -> Result<ClusterSandbox, SandboxError> {
        let binary = locate_binary(self.binary.clone())?;
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-cluster-")
            .tempdir()
            .map_err(SandboxError::io("create the sandbox directory"))?;
        let store = SharedStore::start(&self.storage).await?;

        let master_key_file = dir.path().join("master.key");
        write_private(&master_key_file, &hex::encode(random_bytes::<32>()))?;
        let mut env = vec![
            ("GATEHOUSE_NODE_LOG".to_owned(), self.log_filter.clone()),
            (
                "GATEHOUSE_NODE_PUBLIC_URL".to_owned(),
                self.public_url.clone(),
            ),
            (
                "GATEHOUSE_AUTH_MASTER_KEY_FILE".to_owned(),
                master_key_file.display().to_string(),
            ),
            (
                "GATEHOUSE_CLUSTER_CLUSTER_SECRET".to_owned(),
                hex::encode(random_bytes::<16>()),
            ),
        ];
        env.extend(store.node_env());
        env.extend(self.env.iter().cloned());
        let launch = Arc::new(Launch {
            binary,
            env,
            ready_timeout: self.ready_timeout,
            stop_timeout: self.stop_timeout,
            operator_key: OnceLock::new(),
        });

        let gossip_addrs = free_udp_addrs(self.nodes)?;
        let nodes = gossip_addrs
            .iter()
            .enumerate()
            .map(|(index, addr)| {
                let seeds = gossip_addrs
                    .iter()
                    .filter(|other| *other != addr)
                    .copied()
                    .collect();
                let gossip = Gossip { addr: *addr, seeds };
                SandboxNode::clustered(launch.clone(), node_id(index), dir.path(), gossip)
            })
            .collect();
        // Built before any node starts, so a failed start still kills the started nodes
        // before the store stops.
        let mut sandbox = ClusterSandbox {
            nodes,
            store,
            convergence_timeout: self.convergence_timeout,
            dir: Some(dir),
        };
        // The first node creates the operator key; the others then start side by side.
        if let Some((first, rest)) = sandbox.nodes.split_first_mut() {
            first.start().await?;
            try_join_all(rest.iter_mut().map(SandboxNode::start)).await?;
        }
        sandbox.wait_until_converged().await?;
        Ok(sandbox)
    }
}

/// Several real `gatehouse` processes on 127.0.0.1 sharing one store; kills them on drop.
#[derive(Debug)]
pub struct ClusterSandbox {
    // Fields drop in order: the nodes go before the store they use.
    nodes: Vec<SandboxNode>,
    store: SharedStore,
    convergence_timeout: Duration,
    // Always `Some` until drop, which keeps it after a failure.
    dir: Option<TempDir>,
}

impl ClusterSandbox {
    /// Starts configuring a sandbox (by default 3 nodes on a fresh PostgreSQL database).
    pub fn builder() -> ClusterSandboxBuilder {
        ClusterSandboxBuilder::default()
    }

    /// Every node, in id order.
    pub fn nodes(&self) -> &[SandboxNode] {
        &self.nodes
    }

    /// The node at `index` (0 is `a`); panics when out of range, like slice indexing.
    pub fn node(&self, index: usize) -> &SandboxNode {
        &self.nodes[index]
    }

    /// The node at `index`, to kill, pause, stop or restart it.
    pub fn node_mut(&mut self, index: usize) -> &mut SandboxNode {
        &mut self.nodes[index]
    }

    /// The index of the node called `node_id`.
    pub fn index_of(&self, node_id: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.id() == node_id)
    }

    /// Indices of the nodes that run and are not paused.
    pub fn live_indices(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&index| self.nodes[index].is_live())
            .collect()
    }

    /// The sandbox's directory: data directories, stderr logs, the master key.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), TempDir::path)
    }

    /// The URL of the shared PostgreSQL database, when the nodes use one.
    pub fn postgres_url(&self) -> Option<&str> {
        self.store.postgres_url()
    }

    /// The operator key of the cluster.
    pub fn operator_key(&self) -> Result<String, SandboxError> {
        self.any_live_node()?.operator_key()
    }

    /// Creates a tenant through the first live node.
    pub async fn create_tenant(&self, display_name: &str) -> Result<SandboxTenant, SandboxError> {
        self.any_live_node()?.create_tenant(display_name).await
    }

    /// Waits until every live node sees exactly the live nodes as serving members, each
    /// with the generation of its current process.
    pub async fn wait_until_converged(&self) -> Result<(), SandboxError> {
        self.wait_until_converged_within(self.convergence_timeout)
            .await
    }

    /// [`ClusterSandbox::wait_until_converged`] with its own timeout.
    pub async fn wait_until_converged_within(&self, timeout: Duration) -> Result<(), SandboxError> {
        let expected: BTreeMap<String, u64> = self
            .nodes
            .iter()
            .filter(|node| node.is_live())
            .map(|node| (node.id().to_owned(), node.generation()))
            .collect();
        let observers = self
            .nodes
            .iter()
            .filter(|node| node.is_live())
            .map(|node| Ok((node.id().to_owned(), node.operator()?)))
            .collect::<Result<Vec<_>, SandboxError>>()?;
        eventually(timeout, || async {
            for (observer, client) in &observers {
                let status = client
                    .cluster_status()
                    .await
                    .map_err(|error| format!("node {observer}: {error}"))?;
                let serving: BTreeMap<String, u64> = status
                    .members
                    .iter()
                    .filter(|member| member.status == "serving")
                    .map(|member| (member.node_id.clone(), member.generation))
                    .collect();
                if serving != expected {
                    return Err(format!(
                        "node {observer} sees serving {serving:?}, expected {expected:?}"
                    ));
                }
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Restarts node `index` (SIGTERM, then a new process) and waits for convergence.
    pub async fn restart(&mut self, index: usize) -> Result<(), SandboxError> {
        self.nodes[index].restart().await?;
        self.wait_until_converged().await
    }

    fn any_live_node(&self) -> Result<&SandboxNode, SandboxError> {
        self.nodes
            .iter()
            .find(|node| node.is_live())
            .ok_or_else(|| SandboxError::NotRunning("any".to_owned()))
    }
}

impl Drop for ClusterSandbox {
    fn drop(&mut self) {
        // A failing test keeps every node's data and stderr log to be read afterwards.
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "gatehouse cluster sandbox: kept {} (data, stderr logs) after a failure",
                dir.keep().display()
            );
        }
    }
}

/// `a`, `b`, … `z`, then `n27`, `n28`, ….
fn node_id(index: usize) -> String {
    match u8::try_from(index) {
        Ok(small) if small < 26 => char::from(b'a' + small).to_string(),
        _ => format!("n{}", index + 1),
    }
}

/// Distinct free UDP ports on 127.0.0.1, all bound at once so they differ, then released
/// for the nodes to bind.
fn free_udp_addrs(count: usize) -> Result<Vec<SocketAddr>, SandboxError> {
    let sockets = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(SandboxError::io("reserve gossip ports"))?;
    sockets
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<Result<Vec<_>, _>>()
        .map_err(SandboxError::io("read gossip ports"))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

fn write_private(path: &Path, contents: &str) -> Result<(), SandboxError> {
    std::fs::write(path, contents)
        .map_err(SandboxError::io(format!("write {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(SandboxError::io(format!("restrict {}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn node_ids_are_letters_then_numbers() {
        assert_eq!(node_id(0), "a");
        assert_eq!(node_id(2), "c");
        assert_eq!(node_id(25), "z");
        assert_eq!(node_id(26), "n27");
    }

    #[test]
    fn reserved_gossip_ports_are_distinct_loopback_ports() {
        let addrs = free_udp_addrs(5).unwrap();
        let ports: std::collections::BTreeSet<u16> = addrs.iter().map(SocketAddr::port).collect();
        assert_eq!(ports.len(), 5);
        assert!(addrs.iter().all(|addr| addr.ip().is_loopback()));
    }
}
