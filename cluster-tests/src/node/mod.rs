//! One `gatehouse` process of a sandbox: start, signals, restart, clients.

mod process;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gatehouse_protocol::sdk::{Client, Credentials};
use gatehouse_protocol::v1;
use rustix::process::{Pid, Signal, kill_process};
use tokio::time::Instant;

use self::process::{Process, Spawned, reap, stderr_tail};
use crate::error::SandboxError;
use crate::eventually::{POLL_INTERVAL, eventually};

/// What every node of one sandbox is started with.
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

/// Printed by a node once it serves.
const READY_PREFIX: &str = "gatehouse: ready ";
/// The node writes the operator key it created here, inside its data directory.
const OPERATOR_KEY_FILE: &str = "operator.key";
/// Deadline of the sandbox's own requests.
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

/// One node of a [`crate::ClusterSandbox`]: a `gatehouse` process, running or not.
///
/// Node id, data directory and gossip address stay the same across restarts; gRPC and
/// HTTP ports are chosen anew by each process.
#[derive(Debug)]
pub struct SandboxNode {
    launch: Arc<Launch>,
    node_id: String,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    gossip_addr: SocketAddr,
    seeds: Vec<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    generation: u64,
    starts: u32,
    own_operator_key: Option<String>,
    process: Option<Process>,
}

impl SandboxNode {
    pub(crate) fn new(
        launch: Arc<Launch>,
        node_id: String,
        dir: &Path,
        gossip_addr: SocketAddr,
        seeds: Vec<SocketAddr>,
    ) -> SandboxNode {
        SandboxNode {
            launch,
            data_dir: dir.join(&node_id),
            stderr_path: dir.join(format!("{node_id}.stderr.log")),
            node_id,
            gossip_addr,
            seeds,
            grpc_addr: None,
            http_addr: None,
            generation: 0,
            starts: 0,
            own_operator_key: None,
            process: None,
        }
    }

    /// The node id (`a`, `b`, `c`, …).
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

    /// The UDP gossip address, kept across restarts.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// The gRPC address of the current (or last) process.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The HTTP address of the current (or last) process.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
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

    /// An SDK client builder for this node with the sandbox's deadlines, to customise.
    pub fn client_builder(&self) -> gatehouse_protocol::sdk::ClientBuilder {
        Client::builder(self.endpoint())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
    }

    /// The cluster as this node sees it.
    pub async fn cluster_status(&self) -> Result<v1::ClusterStatus, SandboxError> {
        Ok(self.operator()?.cluster_status().await?)
    }

    /// Starts a process and waits until it prints its ready line and gossips itself serving.
    pub async fn start(&mut self) -> Result<(), SandboxError> {
        if self.process.is_some() {
            return Err(SandboxError::AlreadyRunning(self.node_id.clone()));
        }
        let Spawned {
            mut child,
            watchdog,
            mut lines,
            stdout,
        } = self.spawn()?;
        let deadline = Instant::now() + self.launch.ready_timeout;
        let ready = loop {
            match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) if line.starts_with(READY_PREFIX) => break line,
                Ok(Some(_)) => {}
                Ok(None) => {
                    // Stdout closed: the process is exiting.
                    let status = reap(&mut child).await;
                    return Err(SandboxError::ExitedEarly {
                        node_id: self.node_id.clone(),
                        status: status
                            .map_or_else(|| "still running".to_owned(), |s| s.to_string()),
                        stderr: self.stderr_tail(),
                    });
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = reap(&mut child).await;
                    return Err(SandboxError::NotReady {
                        node_id: self.node_id.clone(),
                        timeout: self.launch.ready_timeout,
                        stderr: self.stderr_tail(),
                    });
                }
            }
        };
        self.starts += 1;
        self.process = Some(Process {
            child,
            paused: false,
            stdout,
            _watchdog: watchdog,
        });
        let field = |name: &str| -> Option<SocketAddr> {
            ready
                .split_whitespace()
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
                .and_then(|addr| addr.parse().ok())
        };
        let (Some(grpc_addr), Some(http_addr)) = (field("grpc"), field("http")) else {
            return Err(SandboxError::BadReadyLine {
                node_id: self.node_id.clone(),
                line: ready,
            });
        };
        self.grpc_addr = Some(grpc_addr);
        self.http_addr = Some(http_addr);
        let key_path = self.data_dir.join(OPERATOR_KEY_FILE);
        if key_path.exists() {
            let key = fs::read_to_string(&key_path)
                .map_err(SandboxError::io(format!("read {}", key_path.display())))?;
            let key = key.trim().to_owned();
            // The first node to start creates the key in shared storage; later ones find it.
            let _ = self.launch.operator_key.set(key.clone());
            self.own_operator_key = Some(key);
        }
        self.generation = self.wait_until_self_serving().await?;
        Ok(())
    }

    /// Polls this node's own cluster status until it lists itself as serving.
    async fn wait_until_self_serving(&self) -> Result<u64, SandboxError> {
        let operator = self.operator()?;
        let node_id = self.node_id.clone();
        let generation = eventually(self.launch.ready_timeout, || {
            let operator = operator.clone();
            let node_id = node_id.clone();
            async move {
                let status = operator
                    .cluster_status()
                    .await
                    .map_err(|error| error.to_string())?;
                status
                    .members
                    .iter()
                    .find(|member| member.is_self && member.status == "serving")
                    .map(|member| member.generation)
                    .ok_or_else(|| format!("node {node_id} does not list itself as serving yet"))
            }
        })
        .await?;
        Ok(generation)
    }

    fn signal(&self, signal: Signal) -> Result<(), SandboxError> {
        let process = self
            .process
            .as_ref()
            .ok_or_else(|| SandboxError::NotRunning(self.node_id.clone()))?;
        kill_process(Pid::from_child(&process.child), signal).map_err(|errno| SandboxError::Io {
            context: format!("signal node {}", self.node_id),
            source: errno.into(),
        })
    }

    /// SIGKILL: the process dies at once, without leaving the cluster.
    pub async fn kill(&mut self) -> Result<(), SandboxError> {
        let mut process = self
            .process
            .take()
            .ok_or_else(|| SandboxError::NotRunning(self.node_id.clone()))?;
        process
            .child
            .kill()
            .map_err(SandboxError::io(format!("kill node {}", self.node_id)))?;
        reap(&mut process.child).await;
        Ok(())
    }

    /// SIGSTOP: the process freezes; peers see it go silent.
    pub fn pause(&mut self) -> Result<(), SandboxError> {
        self.signal(Signal::STOP)?;
        if let Some(process) = &mut self.process {
            process.paused = true;
        }
        Ok(())
    }

    /// SIGCONT: a paused process carries on where it stopped.
    pub fn resume(&mut self) -> Result<(), SandboxError> {
        self.signal(Signal::CONT)?;
        if let Some(process) = &mut self.process {
            process.paused = false;
        }
        Ok(())
    }

    /// SIGTERM and wait for the exit: the node gossips `leaving`, drains and exits.
    pub async fn stop(&mut self) -> Result<ExitStatus, SandboxError> {
        if self.is_paused() {
            self.resume()?;
        }
        self.signal(Signal::TERM)?;
        let mut process = self
            .process
            .take()
            .ok_or_else(|| SandboxError::NotRunning(self.node_id.clone()))?;
        let deadline = Instant::now() + self.launch.stop_timeout;
        loop {
            if let Some(status) = process
                .child
                .try_wait()
                .map_err(SandboxError::io(format!("wait for node {}", self.node_id)))?
            {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = process.child.kill();
                reap(&mut process.child).await;
                return Err(SandboxError::StopTimedOut {
                    node_id: self.node_id.clone(),
                    timeout: self.launch.stop_timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Stops the process if one runs (requiring a clean exit), then starts a new one with
    /// the same node id, data directory and gossip address; it gossips a new generation.
    pub async fn restart(&mut self) -> Result<(), SandboxError> {
        if self.process.is_some() {
            let status = self.stop().await?;
            if !status.success() {
                return Err(SandboxError::UncleanExit {
                    node_id: self.node_id.clone(),
                    status,
                    stderr: self.stderr_tail(),
                });
            }
        }
        self.start().await
    }
}

impl Drop for SandboxNode {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // SIGKILL also ends a paused process.
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}
