//! The Gatehouse domain: tenants, users, sessions and tokens as functions over a storage
//! transaction, wrapped by supervised ractor actors that serialise work per entity.
//!
//! Nothing here knows about gRPC or HTTP; the node maps these types onto the wire.

pub mod access;
pub mod api;
pub mod audit;
pub mod change;
pub mod context;
pub mod core;
pub mod crypto;
pub mod error;
pub mod gatehouse;
pub mod keys;
pub mod outbox;
pub mod passwords;
pub mod permissions;
pub mod permissions_change;
pub mod ratelimit;
pub mod runtime;
pub mod sessions;
pub mod shares;
pub mod signing;
pub mod teams;
pub mod tenants;
pub mod users;
pub mod webhooks;

pub use access::{Caller, Credentials};
pub use api::users::UserUpdate;
pub use error::{DomainError, DomainResult};
pub use gatehouse::{Gatehouse, GatehouseOptions};
pub use runtime::{cluster, routing};
