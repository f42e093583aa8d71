//! The ractor actors that serialise work on one entity, and their registry.

pub mod registry;
pub mod session_actor;
pub mod tenant_actor;
