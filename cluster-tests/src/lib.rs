//! Multi-node tests for Gatehouse: a [`ClusterSandbox`] runs several real `gatehouse`
//! processes on 127.0.0.1 sharing one PostgreSQL database, and hands out SDK clients per
//! node.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gatehouse_cluster_tests::SandboxError> {
//! use gatehouse_cluster_tests::ClusterSandbox;
//!
//! let mut cluster = ClusterSandbox::builder().nodes(3).build().await?;
//! let tenant = cluster.create_tenant("Acme").await?;
//! let client = cluster.node(0).client(&tenant)?;
//! client.sign_up_with_password("ada@example.com", "correct horse battery staple").await?;
//! cluster.node_mut(2).kill().await?;
//! cluster.wait_until_converged().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The sandbox runs the `gatehouse` binary that is already built (`GATEHOUSE_BIN`, else
//! `gatehouse` beside the test executable, else `target/debug/gatehouse`). Cargo cannot
//! depend on a binary-only package, so `cargo test -p gatehouse-cluster-tests` alone does
//! not build it; `cargo test --workspace` and `cargo test -p gatehouse -p
//! gatehouse-cluster-tests` do (testing a package builds its binaries first), as does
//! `cargo build -p gatehouse`.

mod error;
mod eventually;
mod node;
mod sandbox;
mod store;

pub use error::SandboxError;
pub use eventually::{POLL_INTERVAL, StillFailing, eventually};
pub use node::{SandboxNode, SandboxTenant};
pub use sandbox::{ClusterSandbox, ClusterSandboxBuilder, DEFAULT_PUBLIC_URL, SandboxStorage};
