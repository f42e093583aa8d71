//! The domain: a module per noun with its records and the functions over one storage
//! transaction that read and change them. Time and randomness come from [`crate::context`].

pub mod addresses;
pub mod api_keys;
pub mod attempts;
pub mod audit;
pub mod change;
pub mod crypto;
pub mod email;
pub mod factors;
pub mod keyspace;
pub mod oidc;
pub mod oidc_clients;
pub mod outbox;
pub mod passwords;
pub mod permissions;
pub mod permissions_change;
pub mod queue;
pub mod sessions;
pub mod shares;
pub mod sign_in;
pub mod sign_up;
pub mod signing;
pub mod teams;
pub mod tenants;
pub mod text;
pub mod upstream;
pub mod users;
pub mod webhooks;

#[cfg(test)]
pub(crate) mod test_world;
