//! Cluster wiring of a node: chitchat gossip membership, the internal node-to-node gRPC
//! service, and the forwarder that calls it.

mod forwarder;
mod internal;
mod membership;

pub use forwarder::GrpcForwarder;
pub use internal::InternalService;
pub use membership::{Gossip, GossipSettings};

/// Metadata key carrying the cluster secret on node-to-node calls.
pub const CLUSTER_SECRET_HEADER: &str = "x-gatehouse-cluster-secret";
