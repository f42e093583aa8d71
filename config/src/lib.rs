//! Typed node configuration: a TOML file, then `GATEHOUSE_<SECTION>_<KEY>` environment
//! overrides, then validation. Unknown keys in either place are errors that name the key.
//!
//! Every key, its default and its environment variable are documented in
//! `config/gatehouse.example.toml`.
#![warn(missing_docs)]

mod email;
mod env;
mod listeners;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use email::{EmailPasswordSource, EmailSection, EmailTls};
pub use env::ENV_PREFIX;
pub use listeners::{ConnectionsSection, MetricsSection};

/// The whole user-facing configuration of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Addresses, data directory and logging.
    pub node: NodeSection,
    /// Which storage backend holds the data.
    pub storage: StorageSection,
    /// Password hashing, token lifetimes and the node's secrets.
    pub auth: AuthSection,
    /// Cluster membership (gossip) settings.
    pub cluster: ClusterSection,
    /// Outgoing webhook deliveries.
    pub webhooks: WebhooksSection,
    /// Outgoing email over SMTP.
    pub email: EmailSection,
    /// Upstream sign-in (OAuth / OpenID providers).
    pub oauth: OAuthSection,
    /// Timeouts and per-source limits of the gRPC and HTTP listeners.
    pub connections: ConnectionsSection,
    /// Where `/metrics` is served.
    pub metrics: MetricsSection,
}

/// `[node]`: where the node listens and keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// Directory for the embedded store, the operator key and the master key.
    pub data_dir: PathBuf,
    /// gRPC listen address (public API and the internal node-to-node service).
    pub grpc_addr: String,
    /// HTTP listen address (JWKS, OIDC discovery, upstream sign-in, health).
    pub http_addr: String,
    /// Base URL under which clients reach the HTTP address; issuers are `<public_url>/t/<tenant>`.
    /// Empty means `http://<http_addr>`.
    pub public_url: String,
    /// Log filter in `tracing` env-filter syntax, e.g. `info,gatehouse=debug`.
    pub log: String,
    /// Log format: `text` or `json`.
    pub log_format: String,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            data_dir: PathBuf::from("./gatehouse-data"),
            grpc_addr: "127.0.0.1:50051".to_owned(),
            http_addr: "127.0.0.1:8080".to_owned(),
            public_url: String::new(),
            log: "info".to_owned(),
            log_format: "text".to_owned(),
        }
    }
}

/// `[storage]`: the transactional key-value store behind the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// `embedded` (default, under `node.data_dir`), `memory` (tests only; lost on exit),
    /// `postgres` (shared by a cluster) or `fdb` (FoundationDB, needs the `fdb` build feature).
    pub backend: String,
    /// PostgreSQL connection string for `backend = "postgres"`.
    pub postgres_url: String,
    /// FoundationDB cluster file for `backend = "fdb"`; empty means the client default.
    pub fdb_cluster_file: String,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            backend: "embedded".to_owned(),
            postgres_url: String::new(),
            fdb_cluster_file: String::new(),
        }
    }
}

/// `[auth]`: password hashing capacity and default token lifetimes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Threads that hash passwords; 0 means one per core.
    pub password_hash_threads: u32,
    /// Password hashes that may wait for a thread before callers are told to back off.
    pub password_hash_queue: u32,
    /// Of those, how many one source (tenant and client address) may have waiting; more
    /// are answered `RATE_LIMITED`.
    pub password_hash_queue_per_source: u32,
    /// Of those, how many one tenant may have waiting; more are answered `RATE_LIMITED`.
    pub password_hash_queue_per_tenant: u32,
    /// File holding the 32-byte master key (hex) that seals secrets at rest.
    /// Empty means `<data_dir>/master.key`, created on first start. Every node of a
    /// cluster must use the same key.
    pub master_key_file: String,
    /// Where the operator key is written on first start. Empty means `<data_dir>/operator.key`.
    pub operator_key_file: String,
    /// Argon2id memory per password hash, in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id passes over that memory.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            password_hash_threads: 0,
            password_hash_queue: 4096,
            password_hash_queue_per_source: 32,
            password_hash_queue_per_tenant: 2048,
            master_key_file: String::new(),
            operator_key_file: String::new(),
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

/// `[cluster]`: how this node finds and talks to the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Stable node name; empty means derived from the gRPC address.
    pub node_id: String,
    /// UDP address for gossip; empty means gossip is off (single node).
    pub gossip_addr: String,
    /// Gossip addresses of other nodes to join through.
    pub seeds: Vec<String>,
    /// Nodes with another cluster id ignore each other.
    pub cluster_id: String,
    /// Shared secret every node-to-node call carries; required when gossip is on.
    pub cluster_secret: String,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            node_id: String::new(),
            gossip_addr: String::new(),
            seeds: Vec::new(),
            cluster_id: "gatehouse".to_owned(),
            cluster_secret: String::new(),
        }
    }
}

/// `[webhooks]`: where and how this node delivers webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksSection {
    /// Whether endpoints may target private, loopback and link-local addresses (for tests
    /// and private networks; off by default so tenants cannot probe the node's network).
    pub allow_private_targets: bool,
    /// Seconds one delivery attempt waits for the target's answer.
    pub attempt_timeout_seconds: u32,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        WebhooksSection {
            allow_private_targets: false,
            attempt_timeout_seconds: 15,
        }
    }
}

/// `[oauth]`: how this node reaches upstream OAuth / OpenID providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthSection {
    /// Whether providers may be on private, loopback and link-local addresses (for tests and
    /// private identity providers; off by default, so a tenant's server key cannot make the
    /// node fetch from its own network).
    pub allow_private_providers: bool,
}

/// Why a configuration could not be loaded; each variant names the key or variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        message: String,
    },
    /// The file is not valid TOML for this schema (unknown key, wrong type, ...).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with the key and position.
        message: String,
    },
    /// An environment override is unknown or has the wrong type.
    #[error("invalid environment variable {variable}: {message}")]
    Env {
        /// The variable, e.g. `GATEHOUSE_NODE_GRPC_ADDR`.
        variable: String,
        /// Why it was refused.
        message: String,
    },
    /// A value has the right type but is not acceptable.
    #[error("invalid value for {key}: {message}")]
    Invalid {
        /// The key, e.g. `node.grpc_addr`.
        key: String,
        /// Why the value was refused.
        message: String,
    },
}

/// Largest accepted `auth.argon2_memory_kib`: 4 GiB.
pub const ARGON2_MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// The storage backend a node runs on, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackendKind {
    /// Durable embedded store under the data directory.
    Embedded,
    /// Volatile in-memory store.
    Memory,
    /// Shared PostgreSQL store.
    Postgres,
    /// FoundationDB.
    Fdb,
}

impl Config {
    /// Loads `path` (when given) and applies environment overrides from `vars`.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file_text = match path {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                        path: path.to_owned(),
                        message: error.to_string(),
                    })?,
                )
            }
            None => None,
        };
        let config = Config::from_parts(file_text.as_deref(), path, vars)?;
        config.validate()?;
        Ok(config)
    }

    /// Loads from the process environment.
    pub fn load_from_env(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load(path, std::env::vars())
    }

    fn from_parts(
        file_text: Option<&str>,
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let display_path = path.map(Path::to_owned).unwrap_or_default();
        let config: Config = match file_text {
            Some(text) => toml::from_str(text).map_err(|error| ConfigError::Parse {
                path: display_path,
                message: error.to_string().trim_end().replace('\n', " "),
            })?,
            None => Config::default(),
        };
        let mut overrides: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        // The variable that holds the SMTP password is not a config key, even when its
        // name has the prefix.
        let password_env = overrides
            .get("GATEHOUSE_EMAIL_PASSWORD_ENV")
            .unwrap_or(&config.email.password_env)
            .clone();
        overrides.remove(&password_env);
        env::apply_overrides(config, &overrides)
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_socket_addr("node.grpc_addr", &self.node.grpc_addr)?;
        parse_socket_addr("node.http_addr", &self.node.http_addr)?;
        if self.node.data_dir.as_os_str().is_empty() {
            return Err(invalid("node.data_dir", "must not be empty"));
        }
        if !matches!(self.node.log_format.as_str(), "text" | "json") {
            return Err(invalid("node.log_format", "must be `text` or `json`"));
        }
        let public_url = &self.node.public_url;
        if !public_url.is_empty()
            && !public_url.starts_with("http://")
            && !public_url.starts_with("https://")
        {
            return Err(invalid(
                "node.public_url",
                "must start with http:// or https://",
            ));
        }
        match self.storage_backend()? {
            StorageBackendKind::Postgres if self.storage.postgres_url.is_empty() => {
                return Err(invalid(
                    "storage.postgres_url",
                    "is required when storage.backend is postgres",
                ));
            }
            _ => {}
        }
        if self.auth.password_hash_threads > 256 {
            return Err(invalid("auth.password_hash_threads", "must be at most 256"));
        }
        if self.auth.password_hash_queue == 0 {
            return Err(invalid("auth.password_hash_queue", "must be at least 1"));
        }
        if self.auth.password_hash_queue_per_source == 0 {
            return Err(invalid(
                "auth.password_hash_queue_per_source",
                "must be at least 1",
            ));
        }
        if self.auth.password_hash_queue_per_tenant == 0 {
            return Err(invalid(
                "auth.password_hash_queue_per_tenant",
                "must be at least 1",
            ));
        }
        self.validate_argon2()?;
        if !self.cluster.gossip_addr.is_empty() {
            parse_socket_addr("cluster.gossip_addr", &self.cluster.gossip_addr)?;
            if self.node.public_url.is_empty() {
                // Tokens name their issuer; every node must name the same one.
                return Err(invalid(
                    "node.public_url",
                    "is required when gossip is on, so every node issues tokens under one issuer",
                ));
            }
            if self.cluster.cluster_secret.len() < 16 {
                return Err(invalid(
                    "cluster.cluster_secret",
                    "must be at least 16 characters when gossip is on",
                ));
            }
        }
        for seed in &self.cluster.seeds {
            parse_socket_addr("cluster.seeds", seed)?;
        }
        if !(1..=300).contains(&self.webhooks.attempt_timeout_seconds) {
            return Err(invalid(
                "webhooks.attempt_timeout_seconds",
                "must be between 1 and 300",
            ));
        }
        self.email.validate()?;
        self.connections.validate()?;
        self.metrics.validate()?;
        Ok(())
    }

    fn validate_argon2(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        if !(1..=16).contains(&auth.argon2_parallelism) {
            return Err(invalid(
                "auth.argon2_parallelism",
                "must be between 1 and 16",
            ));
        }
        if !(1..=10).contains(&auth.argon2_iterations) {
            return Err(invalid(
                "auth.argon2_iterations",
                "must be between 1 and 10",
            ));
        }
        // Argon2 needs 8 KiB per lane; 4 GiB is far beyond any sane per-hash cost.
        let least = 8 * auth.argon2_parallelism;
        if !(least..=ARGON2_MAX_MEMORY_KIB).contains(&auth.argon2_memory_kib) {
            return Err(invalid(
                "auth.argon2_memory_kib",
                &format!(
                    "must be between {least} (8 per lane) and {ARGON2_MAX_MEMORY_KIB} (4 GiB)"
                ),
            ));
        }
        Ok(())
    }

    /// The validated storage backend.
    pub fn storage_backend(&self) -> Result<StorageBackendKind, ConfigError> {
        match self.storage.backend.as_str() {
            "embedded" => Ok(StorageBackendKind::Embedded),
            "memory" => Ok(StorageBackendKind::Memory),
            "postgres" => Ok(StorageBackendKind::Postgres),
            "fdb" => Ok(StorageBackendKind::Fdb),
            _ => Err(invalid(
                "storage.backend",
                "must be one of embedded, memory, postgres, fdb",
            )),
        }
    }

    /// The gRPC listen address.
    pub fn grpc_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_socket_addr("node.grpc_addr", &self.node.grpc_addr)
    }

    /// The HTTP listen address.
    pub fn http_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_socket_addr("node.http_addr", &self.node.http_addr)
    }

    /// The metrics listener's address, when one is configured.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.metrics.listen.is_empty() {
            return Ok(None);
        }
        parse_socket_addr("metrics.listen", &self.metrics.listen).map(Some)
    }

    /// Where the master key lives.
    pub fn master_key_path(&self) -> PathBuf {
        path_or_default(
            &self.auth.master_key_file,
            &self.node.data_dir,
            "master.key",
        )
    }

    /// Where the operator key is written.
    pub fn operator_key_path(&self) -> PathBuf {
        path_or_default(
            &self.auth.operator_key_file,
            &self.node.data_dir,
            "operator.key",
        )
    }
}

fn path_or_default(configured: &str, data_dir: &Path, file: &str) -> PathBuf {
    if configured.is_empty() {
        data_dir.join(file)
    } else {
        PathBuf::from(configured)
    }
}

fn parse_socket_addr(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse()
        .map_err(|_| invalid(key, &format!("`{text}` is not an ip:port address")))
}

pub(crate) fn invalid(key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
