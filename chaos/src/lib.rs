//! Load generation and fault injection against real `gatehouse` nodes.
//!
//! The library holds what the `gatehouse-load` and `chaos` binaries share: starting a node
//! process, bounded load loops, latency summaries, the load phases (among them sign-in
//! codes sent through a real SMTP server, [`email`], and passkey and TOTP sign-ins,
//! [`factors`]), the forwarded vs local refresh benchmark on a sandbox cluster
//! ([`cluster_refresh`]) and the chaos run ([`chaos`]). Nodes are started through the test kit (`gatehouse-cluster-tests`); what
//! the tool knows about the cluster comes from the built binary, the SDK and the public
//! API only.
#![warn(missing_docs)]

pub mod authz;
pub mod budget;
pub mod chaos;
pub mod cluster_refresh;
pub mod email;
pub mod error;
pub mod factors;
pub mod hashing;
pub mod load;
pub mod node;
pub mod oidc_flows;
pub mod procfs;
pub mod report;
pub mod stats;
pub mod threads;
pub mod verify;
pub mod workload;

pub use budget::Budget;
pub use error::ChaosError;
pub use load::{LoadSettings, Phase, run_load};
pub use node::{SpawnedNode, Target};
pub use report::LoadReport;
pub use stats::{PhaseSummary, Tally};
