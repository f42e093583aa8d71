//! Starts real `gatehouse` processes for the tests and hands out SDK clients.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gatehouse_protocol::sdk::{Client, Credentials};

/// A running node on loopback with its own data directory.
pub struct TestNode {
    child: Option<Child>,
    /// gRPC address.
    pub grpc: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    /// Data directory (kept across restarts).
    pub data_dir: PathBuf,
    /// The operator key the node wrote on first start.
    pub operator_key: String,
    /// Lines the node printed on stdout.
    pub stdout: Vec<String>,
}

/// A tenant made for one test.
pub struct TestTenant {
    /// Tenant id.
    pub id: String,
    /// Publishable client key.
    pub client_key: String,
    /// Secret server key.
    pub server_key: String,
}

impl TestNode {
    /// Starts a node in a fresh directory.
    pub async fn start() -> TestNode {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-e2e-")
            .tempdir()
            .expect("temp dir")
            .keep();
        TestNode::start_in(&dir).await
    }

    /// Starts a node in a fresh directory with extra `GATEHOUSE_*` environment settings.
    pub async fn start_with_env(env: &[(&str, &str)]) -> TestNode {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-e2e-")
            .tempdir()
            .expect("temp dir")
            .keep();
        TestNode::start_in_with_env(&dir, env).await
    }

    /// Starts a node on an existing data directory.
    pub async fn start_in(data_dir: &Path) -> TestNode {
        TestNode::start_in_with_env(data_dir, &[]).await
    }

    /// Starts a node on an existing data directory with extra environment settings.
    pub async fn start_in_with_env(data_dir: &Path, env: &[(&str, &str)]) -> TestNode {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "start",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("GATEHOUSE_NODE_LOG", "warn")
            .env_remove("GATEHOUSE_CONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gatehouse");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        let ready = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("node printed its ready line within 60 s");
            printed.push(line.clone());
            if line.starts_with("gatehouse: ready ") {
                break line;
            }
        };
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        let field = |name: &str| -> SocketAddr {
            ready
                .split_whitespace()
                .find_map(|part| part.strip_prefix(&format!("{name}=")))
                .and_then(|addr| addr.parse().ok())
                .unwrap_or_else(|| panic!("no {name}= in {ready}"))
        };
        let operator_key = std::fs::read_to_string(data_dir.join("operator.key"))
            .expect("operator key file")
            .trim()
            .to_owned();
        TestNode {
            child: Some(child),
            grpc: field("grpc"),
            http: field("http"),
            data_dir: data_dir.to_owned(),
            operator_key,
            stdout: printed,
        }
    }

    /// The gRPC endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Base URL of the HTTP endpoint.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// A client with the operator key and no tenant.
    pub async fn operator(&self) -> Client {
        Client::builder(self.endpoint())
            .credentials(Credentials::Operator {
                operator_key: self.operator_key.clone(),
            })
            .build()
            .await
            .expect("operator client")
    }

    /// A client with no credentials at all.
    pub async fn anonymous(&self) -> Client {
        Client::builder(self.endpoint())
            .build()
            .await
            .expect("client")
    }

    /// Creates a tenant.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        let reply = self
            .operator()
            .await
            .create_tenant(name, None)
            .await
            .expect("create tenant");
        TestTenant {
            id: reply.tenant.expect("tenant").tenant_id,
            client_key: reply.publishable_client_key,
            server_key: reply.secret_server_key,
        }
    }

    /// A client of `tenant` with its publishable key.
    pub async fn client(&self, tenant: &TestTenant) -> Client {
        self.anonymous()
            .await
            .with_tenant(&tenant.id)
            .with_credentials(Credentials::Client {
                publishable_key: tenant.client_key.clone(),
            })
    }

    /// A client of `tenant` with its secret server key.
    pub async fn server(&self, tenant: &TestTenant) -> Client {
        self.anonymous()
            .await
            .with_tenant(&tenant.id)
            .with_credentials(Credentials::Server {
                secret_key: tenant.server_key.clone(),
            })
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("node is running");
        let pid = i32::try_from(child.id()).expect("pid");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        for _ in 0..300 {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("node did not exit within 30 s of SIGTERM");
    }

    /// Stops the node and starts a new process on the same data directory.
    pub async fn restart(mut self) -> TestNode {
        let status = self.stop();
        assert!(status.success(), "node exited with {status}");
        TestNode::start_in(&self.data_dir).await
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A unique email for a test.
pub fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";
