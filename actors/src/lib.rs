//! The Gatehouse domain and its runtime.
//!
//! - [`domain`]: records and the functions over one storage transaction that change them,
//!   each writing its audit entry and webhook events through one helper.
//! - [`runtime`]: supervised ractor actors per entity, placement over the cluster membership,
//!   and the routing of owner-only operations to the node that owns them.
//! - [`api`]: the operations a node serves, with caller policy and input parsing.
//!
//! Nothing here knows about gRPC or HTTP; the node maps these types onto the wire.

#![warn(missing_docs)]

pub mod access;
pub mod api;
pub mod context;
pub mod domain;
pub mod error;
pub mod gatehouse;
pub mod ratelimit;
pub mod runtime;

pub use access::{Caller, Credentials};
pub use api::users::UserUpdate;
pub use domain::{
    audit, change, crypto, factors, keyspace, oidc, oidc_clients, outbox, passwords, permissions,
    permissions_change, sessions, shares, signing, teams, tenants, users, webhooks,
};
pub use error::{DomainError, DomainResult};
pub use gatehouse::{Gatehouse, GatehouseOptions};
pub use runtime::services::NodeServices;
pub use runtime::{cluster, routing};
