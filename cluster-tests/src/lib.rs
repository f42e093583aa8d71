//! The Gatehouse test kit: the one place that launches real `gatehouse` processes for
//! tests and tools — the node's e2e tests, these multi-node tests and `gatehouse-chaos`.
//!
//! - [`SandboxNode`] is one process: it spawns the binary on free loopback ports (port 0,
//!   read back from the ready line, [`ReadyLine`]), sends its stderr to a log file quoted in
//!   failures, keeps a watchdog that kills it if the test process dies without cleaning up,
//!   waits until it serves, and kills, pauses, resumes, stops and restarts it.
//!   [`SandboxNode::builder`] starts a standalone one.
//! - [`ClusterSandbox`] runs several of them on 127.0.0.1 sharing one PostgreSQL database,
//!   with gossip between them, and hands out SDK clients per node.
//! - [`SmtpServer`] is a real SMTP server (aiosmtpd) on a free loopback port that records
//!   what it accepts as [`ReceivedEmail`]s, and refuses `reject…@` and `tempfail…@`
//!   recipients with 550 and 451.
//! - [`passkey::SoftPasskey`] is a software WebAuthn authenticator that answers the
//!   server's passkey options as a browser would, and [`totp`] computes RFC 6238 codes;
//!   both are written independently of the server's own implementations.
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
//! The kit runs the `gatehouse` binary that is already built; [`binary`] says where it
//! looks (`GATEHOUSE_BIN`, else `gatehouse` beside the test executable, else
//! `target/debug/gatehouse`) and which cargo commands build it first. The kit depends only
//! on the SDK (and storage's PostgreSQL harness), never on the node or its domain crates:
//! what tests need to know about placement comes from the `Cluster.GetOwner` RPC.
#![warn(missing_docs)]

pub mod binary;
mod error;
mod eventually;
mod node;
pub mod oidc;
pub mod passkey;
mod sandbox;
mod smtp;
mod store;
pub mod totp;

pub use binary::locate_binary;
pub use error::SandboxError;
pub use eventually::{POLL_INTERVAL, StillFailing, eventually};
pub use node::{NodeBuilder, NodeExit, READY_PREFIX, ReadyLine, SandboxNode, SandboxTenant};
pub use sandbox::{ClusterSandbox, ClusterSandboxBuilder, DEFAULT_PUBLIC_URL, SandboxStorage};
pub use smtp::{ReceivedEmail, SMTP_READY_PREFIX, SmtpServer};
