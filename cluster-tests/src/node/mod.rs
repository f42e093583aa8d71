//! One `gatehouse` process, standalone or in a sandbox: start, signals, restart, clients.
//!
//! [`SandboxNode::builder`] starts a standalone node (the node's e2e tests, the load
//! generator); [`crate::ClusterSandbox`] builds several with gossip settings on one store.

mod builder;
mod lifecycle;
mod process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gatehouse_protocol::sdk::{Client, Credentials};
use gatehouse_protocol::v1;
use tempfile::TempDir;

use self::process::{Process, stderr_tail};
use crate::error::SandboxError;

pub use builder::NodeBuilder;
pub use lifecycle::NodeExit;
pub use process::{READY_PREFIX, ReadyLine};

/// What every node of one sandbox (or one standalone node) is started with.
#[derive(Debug)]
pub(crate) struct Launch {
    /// The `gatehouse` binary.
    pub binary: PathBuf,
    /// `GATEHOUSE_*` variables shared by all nodes (storage, keys, secret, log filter).
    pub env: Vec<(String, String)>,
    /// How long a node may take to print its ready line.
    pub ready_timeout: Duration,
    /// How long a node may take to exit after SIGTERM.
    pub stop_timeout: Duration,
    /// The operator key, known once the first node has written it.
    pub operator_key: OnceLock<String>,
}

/// A clustered node's gossip settings, kept across restarts.
#[derive(Debug, Clone)]
pub(crate) struct Gossip {
    /// The UDP address it gossips on.
    pub addr: SocketAddr,
    /// The other members' gossip addresses.
    pub seeds: Vec<SocketAddr>,
}

/// The node writes the operator key it created here, inside its data directory.
const OPERATOR_KEY_FILE: &str = "operator.key";
/// Deadline of the kit's own requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for opening a connection to a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A tenant created in the sandbox, with its keys.
#[derive(Clone)]
pub struct SandboxTenant {
    /// Tenant id.
    pub id: String,
    /// Publishable client key.
    pub publishable_key: String,
    /// Secret server key.
    pub secret_key: String,
}

// The secret key must not reach test output through `{:?}`.
impl std::fmt::Debug for SandboxTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxTenant")
            .field("id", &self.id)
            .field("publishable_key", &self.publishable_key)
            .finish_non_exhaustive()
    }
}

/// One real `gatehouse` process, running or not: standalone ([`SandboxNode::builder`]) or
/// a member of a [`crate::ClusterSandbox`].
///
/// Node id, data directory and gossip address stay the same across restarts; gRPC and
/// HTTP ports are chosen anew by each process (it binds port 0 and says which in its ready
/// line). The node's stderr (its logs) goes to [`SandboxNode::stderr_path`] and is quoted
/// in start failures.
#[derive(Debug)]
pub struct SandboxNode {
    launch: Arc<Launch>,
    node_id: String,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    gossip: Option<Gossip>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    generation: u64,
    starts: u32,
    own_operator_key: Option<String>,
    process: Option<Process>,
    /// `GATEHOUSE_*` settings of this node's next starts, over the launch's.
    own_env: Vec<(String, String)>,
    // Declared after `process`: the directory goes only once the process is gone.
    _owned_dir: Option<TempDir>,
}

impl SandboxNode {
    /// A member of a sandbox: data in `dir/<node_id>`, logs in `dir/<node_id>.stderr.log`.
    pub(crate) fn clustered(
        launch: Arc<Launch>,
        node_id: String,
        dir: &Path,
        gossip: Gossip,
    ) -> SandboxNode {
        SandboxNode::new(
            launch,
            dir.join(&node_id),
            dir.join(format!("{node_id}.stderr.log")),
            node_id,
            Some(gossip),
            None,
        )
    }

    fn new(
        launch: Arc<Launch>,
        data_dir: PathBuf,
        stderr_path: PathBuf,
        node_id: String,
        gossip: Option<Gossip>,
        owned_dir: Option<TempDir>,
    ) -> SandboxNode {
        SandboxNode {
            launch,
            node_id,
            data_dir,
            stderr_path,
            gossip,
            grpc_addr: None,
            http_addr: None,
            metrics_addr: None,
            generation: 0,
            starts: 0,
            own_operator_key: None,
            process: None,
            own_env: Vec::new(),
            _owned_dir: owned_dir,
        }
    }

    /// Starts configuring a standalone node (no gossip, embedded storage by default).
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// Sets `GATEHOUSE_<name>` style environment for this node's next starts (over what the
    /// node was built with), e.g. to restart it with another setting.
    pub fn set_env(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.own_env.retain(|(existing, _)| *existing != name);
        self.own_env.push((name, value.into()));
    }

    /// The node id (`a`, `b`, `c`, … in a sandbox; a label for a standalone node).
    pub fn id(&self) -> &str {
        &self.node_id
    }

    /// The data directory, kept across restarts.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The file that collects the node's stderr (its logs) across restarts.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// The UDP gossip address, kept across restarts (none for a standalone node).
    pub fn gossip_addr(&self) -> Option<SocketAddr> {
        self.gossip.as_ref().map(|gossip| gossip.addr)
    }

    /// The gRPC address of the current (or last) process.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The HTTP address of the current (or last) process.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The metrics listener's address of the current (or last) process, when it has one
    /// (the test kit starts every node with `GATEHOUSE_METRICS_LISTEN=127.0.0.1:0`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The URL of `/metrics` on the current (or last) process's metrics listener.
    pub fn metrics_url(&self) -> String {
        match self.metrics_addr {
            Some(addr) => format!("http://{addr}/metrics"),
            None => "http://127.0.0.1:0/metrics".to_owned(),
        }
    }

    /// The gRPC endpoint URL of the current (or last) process.
    pub fn endpoint(&self) -> String {
        match self.grpc_addr {
            Some(addr) => format!("http://{addr}"),
            None => "http://127.0.0.1:0".to_owned(),
        }
    }

    /// Base URL of the HTTP endpoint of the current (or last) process.
    pub fn http_url(&self) -> String {
        match self.http_addr {
            Some(addr) => format!("http://{addr}"),
            None => "http://127.0.0.1:0".to_owned(),
        }
    }

    /// The generation the current (or last) process gossips about itself.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many processes this node has started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The process id, while a process runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|process| process.child.id())
    }

    /// Whether a process runs (paused or not).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Whether the process is stopped by SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.process.as_ref().is_some_and(|process| process.paused)
    }

    /// Whether the process runs and is not paused, so it can answer.
    pub fn is_live(&self) -> bool {
        self.process.as_ref().is_some_and(|process| !process.paused)
    }

    /// The lines the current (or last) process printed on stdout.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.process
            .as_ref()
            .and_then(|process| process.stdout.lock().ok().map(|lines| lines.clone()))
            .unwrap_or_default()
    }

    /// The last lines of the node's stderr, for failure messages.
    pub fn stderr_tail(&self) -> String {
        stderr_tail(&self.stderr_path)
    }

    /// The operator key this node accepts: the one it wrote itself, else the cluster's.
    pub fn operator_key(&self) -> Result<String, SandboxError> {
        self.own_operator_key
            .clone()
            .or_else(|| self.launch.operator_key.get().cloned())
            .ok_or_else(|| SandboxError::NoOperatorKey(self.node_id.clone()))
    }

    /// A client of this node with the operator key and no tenant.
    pub fn operator(&self) -> Result<Client, SandboxError> {
        let operator_key = self.operator_key()?;
        Ok(self
            .client_builder()
            .credentials(Credentials::Operator { operator_key })
            .build_lazy()?)
    }

    /// A client of this node for `tenant` with its publishable client key.
    pub fn client(&self, tenant: &SandboxTenant) -> Result<Client, SandboxError> {
        Ok(self
            .client_builder()
            .tenant(&tenant.id)
            .credentials(Credentials::Client {
                publishable_key: tenant.publishable_key.clone(),
            })
            .build_lazy()?)
    }

    /// A client of this node for `tenant` with its secret server key.
    pub fn server(&self, tenant: &SandboxTenant) -> Result<Client, SandboxError> {
        Ok(self
            .client_builder()
            .tenant(&tenant.id)
            .credentials(Credentials::Server {
                secret_key: tenant.secret_key.clone(),
            })
            .build_lazy()?)
    }

    /// An SDK client builder for this node with the kit's deadlines, to customise.
    pub fn client_builder(&self) -> gatehouse_protocol::sdk::ClientBuilder {
        Client::builder(self.endpoint())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
    }

    /// Creates a tenant through this node.
    pub async fn create_tenant(&self, display_name: &str) -> Result<SandboxTenant, SandboxError> {
        let reply = self.operator()?.create_tenant(display_name, None).await?;
        let id = reply
            .tenant
            .map(|tenant| tenant.tenant_id)
            .unwrap_or_default();
        Ok(SandboxTenant {
            id,
            publishable_key: reply.publishable_client_key,
            secret_key: reply.secret_server_key,
        })
    }

    /// The cluster as this node sees it.
    pub async fn cluster_status(&self) -> Result<v1::ClusterStatus, SandboxError> {
        Ok(self.operator()?.cluster_status().await?)
    }

    /// The owner of an actor as this node sees it (`Cluster.GetOwner`); `entity_id` is the
    /// session or share id, empty for a tenant's actor.
    pub async fn owner(
        &self,
        kind: v1::ActorKind,
        tenant_id: &str,
        entity_id: &str,
    ) -> Result<v1::ActorOwner, SandboxError> {
        Ok(self
            .operator()?
            .get_owner(kind, tenant_id, entity_id)
            .await?)
    }
}
