//! The binary's one error type: every way `gatehouse start` or `gatehouse admin` can fail,
//! each printed to the operator as `error: <message>` with a non-zero exit status.

use std::io;
use std::path::PathBuf;

use gatehouse_actors::DomainError;
use gatehouse_config::ConfigError;
use gatehouse_protocol::ApiError;
use gatehouse_storage::StorageError;

/// Why the node or the operator CLI stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The config file, the environment or the flags are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An address setting that passed validation still does not parse.
    #[error("invalid {setting}: {source}")]
    InvalidAddress {
        /// The config key, e.g. `cluster.gossip_addr`.
        setting: &'static str,
        /// Why it does not parse.
        #[source]
        source: std::net::AddrParseError,
    },
    /// A listen address cannot be bound.
    #[error("cannot listen on {addr} ({setting}): {source}")]
    Bind {
        /// The address as configured.
        addr: String,
        /// The config key it came from.
        setting: &'static str,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A file or directory cannot be created, read, written or restricted.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `create data directory`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The process cannot set up something it needs from the operating system.
    #[error("cannot {action}: {source}")]
    System {
        /// What was being set up, e.g. `watch SIGTERM`.
        action: &'static str,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A storage backend cannot be opened or started.
    #[error("cannot {action}: {source}")]
    Storage {
        /// What was being opened, naming the config key that selects it.
        action: &'static str,
        /// The backend's reason.
        #[source]
        source: StorageError,
    },
    /// `storage.backend = "fdb"` in a binary built without FoundationDB.
    #[cfg(not(feature = "fdb"))]
    #[error("storage.backend = \"fdb\" needs a build with `--features fdb`")]
    FdbNotBuilt,
    /// The master key file does not hold a valid key.
    #[error("invalid master key in {}: {source}", path.display())]
    MasterKey {
        /// The key file.
        path: PathBuf,
        /// Why it was refused.
        #[source]
        source: DomainError,
    },
    /// The domain failed while the node was starting.
    #[error("cannot {action}: {source}")]
    Domain {
        /// What the node was doing, e.g. `create the operator key`.
        action: &'static str,
        /// The domain's reason.
        #[source]
        source: DomainError,
    },
    /// `cluster.cluster_secret` cannot be sent as gRPC metadata.
    #[error("cluster.cluster_secret must be printable ascii")]
    ClusterSecret,
    /// Gossip cannot start on its address.
    #[error("cannot start gossip on {addr}: {reason}")]
    Gossip {
        /// `cluster.gossip_addr`.
        addr: std::net::SocketAddr,
        /// Chitchat's reason (its error type is not public).
        reason: String,
    },
    /// `email.password_env` names a variable that is not set (or not UTF-8).
    #[error("cannot read the SMTP password from ${variable} (email.password_env): {source}")]
    EmailPasswordEnv {
        /// The variable's name.
        variable: String,
        /// Why it could not be read.
        #[source]
        source: std::env::VarError,
    },
    /// `email.password_file` cannot be read.
    #[error("cannot read the SMTP password file {} (email.password_file): {source}", path.display())]
    EmailPasswordFile {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The SMTP transport cannot be set up for `email.host` (e.g. no TLS name for it).
    #[error("cannot set up SMTP to {host} (email.host): {source}")]
    EmailTransport {
        /// The host as configured.
        host: String,
        /// lettre's reason.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The webhook delivery client cannot be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    WebhookSender(#[source] reqwest::Error),
    /// The HTTP client to upstream OAuth providers cannot be built.
    #[error("cannot build the upstream OAuth HTTP client: {0}")]
    UpstreamClient(#[source] reqwest::Error),
    /// The Prometheus recorder cannot be installed.
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The reflection service cannot read the embedded descriptors.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server stopped with an error.
    #[error("gRPC server failed: {0}")]
    GrpcServer(#[from] tonic::transport::Error),
    /// A server task panicked or was cancelled.
    #[error("{server} server task: {source}")]
    ServerTask {
        /// `gRPC` or `HTTP`.
        server: &'static str,
        /// How the task ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The node answered an admin command with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The admin CLI cannot reach the node.
    #[error("cannot reach {endpoint}: {source}")]
    Connect {
        /// The endpoint as given.
        endpoint: String,
        /// Why the connection failed.
        #[source]
        source: ApiError,
    },
    /// The admin CLI has no operator key.
    #[error(
        "cannot read the operator key from {}: {source} (use --operator-key-file or GATEHOUSE_OPERATOR_KEY)",
        path.display()
    )]
    OperatorKey {
        /// The key file looked at.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// A password could not be read from standard input.
    #[error("cannot read the password from standard input: {0}")]
    PasswordInput(#[source] io::Error),
    /// An audit export could not be written.
    #[error("cannot write the export: {0}")]
    AuditExport(#[source] io::Error),
    /// `audit verify` found a broken ledger.
    #[error("the audit ledger of {tenant} is broken at seq {seq} ({problem})")]
    BrokenLedger {
        /// The tenant whose ledger was checked.
        tenant: String,
        /// The first entry that does not verify.
        seq: u64,
        /// What is wrong with it.
        problem: String,
    },
}

/// Result of the binary's fallible steps.
pub type NodeResult<T> = Result<T, NodeError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_and_the_setting() {
        let error = NodeError::Io {
            action: "create data directory",
            path: PathBuf::from("/nope/data"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            error.to_string(),
            "cannot create data directory /nope/data: permission denied"
        );
        let error = NodeError::Bind {
            addr: "127.0.0.1:1".to_owned(),
            setting: "node.grpc_addr",
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        assert_eq!(
            error.to_string(),
            "cannot listen on 127.0.0.1:1 (node.grpc_addr): address in use"
        );
        let error = NodeError::EmailPasswordEnv {
            variable: "SMTP_PASSWORD".to_owned(),
            source: std::env::VarError::NotPresent,
        };
        assert_eq!(
            error.to_string(),
            "cannot read the SMTP password from $SMTP_PASSWORD (email.password_env): \
             environment variable not found"
        );
        assert_eq!(
            NodeError::FdbNotBuilt.to_string(),
            "storage.backend = \"fdb\" needs a build with `--features fdb`"
        );
    }
}
