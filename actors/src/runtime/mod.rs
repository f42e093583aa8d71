//! The runtime: supervised ractor actors per entity, their registry, the cluster membership
//! view and placement, and the routing of owner-only operations to the node that owns them.

pub mod cluster;
pub mod connected_account_actor;
pub mod email_dispatch;
pub mod entity;
pub mod owner_call;
pub mod registry;
pub(crate) mod revocation_feed;
pub mod routing;
pub mod services;
pub mod session_actor;
pub mod share_actor;
pub mod tenant_actor;
pub(crate) mod tenant_queue;
pub mod webhook_dispatch;

#[cfg(test)]
mod tests;
