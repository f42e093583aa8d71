//! The e2e tests' view of the test kit (`gatehouse-cluster-tests`), which starts the real
//! `gatehouse` process: this file only turns its results into panics and keeps the tests'
//! short names. The binary is the one cargo builds for these tests
//! (`CARGO_BIN_EXE_gatehouse`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;

use gatehouse_cluster_tests::{NodeBuilder, SandboxNode};
use gatehouse_protocol::sdk::{Client, Credentials};

/// A running node on loopback with its own data directory.
pub struct TestNode {
    node: SandboxNode,
    /// gRPC address.
    pub grpc: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    /// Data directory (kept across restarts, removed when the node drops).
    pub data_dir: PathBuf,
    /// The operator key the node wrote on first start.
    pub operator_key: String,
    /// Lines the node printed on stdout up to its ready line.
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

/// A standalone node of this build's `gatehouse` binary.
fn builder() -> NodeBuilder {
    SandboxNode::builder()
        .binary(env!("CARGO_BIN_EXE_gatehouse"))
        .label("e2e")
}

impl TestNode {
    /// Starts a node in a fresh directory.
    pub async fn start() -> TestNode {
        TestNode::started(builder()).await
    }

    /// Starts a node in a fresh directory with extra `GATEHOUSE_*` environment settings.
    pub async fn start_with_env(env: &[(&str, &str)]) -> TestNode {
        let builder = env.iter().fold(builder(), |builder, (name, value)| {
            builder.env(*name, *value)
        });
        TestNode::started(builder).await
    }

    async fn started(builder: NodeBuilder) -> TestNode {
        let node = builder
            .start()
            .await
            .unwrap_or_else(|error| panic!("cannot start a node: {error}"));
        TestNode::wrap(node)
    }

    fn wrap(node: SandboxNode) -> TestNode {
        TestNode {
            grpc: node.grpc_addr().expect("grpc address"),
            http: node.http_addr().expect("http address"),
            data_dir: node.data_dir().to_owned(),
            operator_key: node.operator_key().expect("operator key file"),
            stdout: node.stdout_lines(),
            node,
        }
    }

    /// The kit's node, for what this view does not cover.
    pub fn kit(&self) -> &SandboxNode {
        &self.node
    }

    /// The gRPC endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Base URL of the HTTP endpoint.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// URL of `/metrics` on the node's metrics listener.
    pub fn metrics_url(&self) -> String {
        self.node.metrics_url()
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

    /// Sends SIGTERM and waits (up to 30 s) for the process to exit.
    pub async fn stop(&mut self) -> ExitStatus {
        self.node
            .stop()
            .await
            .unwrap_or_else(|error| panic!("stop the node: {error}"))
    }

    /// Runs `gatehouse admin <args>` against this node with its operator key; returns
    /// whether it succeeded, its stdout and its stderr.
    pub fn admin(&self, args: &[&str]) -> (bool, String, String) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .arg("admin")
            .arg("--endpoint")
            .arg(self.endpoint())
            .arg("--operator-key-file")
            .arg(self.data_dir.join("operator.key"))
            .args(args)
            .env_remove("GATEHOUSE_OPERATOR_KEY")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Sends SIGKILL: the process dies at once, mid-whatever it was doing.
    pub async fn kill(&mut self) {
        self.node
            .kill()
            .await
            .unwrap_or_else(|error| panic!("kill the node: {error}"));
    }

    /// Sets a `GATEHOUSE_*` variable for the next start.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.node.set_env(name, value);
    }

    /// Starts a new process on the same data directory after [`TestNode::stop`].
    pub async fn start_again(mut self) -> TestNode {
        self.node
            .start()
            .await
            .unwrap_or_else(|error| panic!("start the node again: {error}"));
        TestNode::wrap(self.node)
    }

    /// Stops the node (requiring a clean exit) and starts a new process on the same data
    /// directory.
    pub async fn restart(mut self) -> TestNode {
        let status = self.stop().await;
        assert!(status.success(), "node exited with {status}");
        self.start_again().await
    }
}

/// A unique email for a test.
pub fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";
