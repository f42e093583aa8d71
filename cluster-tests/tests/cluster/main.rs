//! Multi-node tests: three real `gatehouse` processes on 127.0.0.1 sharing one PostgreSQL,
//! driven through the SDK and HTTP. Needs the node binary: `cargo build -p gatehouse`, or
//! run `cargo test -p gatehouse -p gatehouse-cluster-tests` (or `--workspace`), which
//! builds it first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod access_tokens;
mod api_keys;
mod brute_force;
mod connected;
mod email;
mod factors;
mod failover;
mod keys;
mod owner;
mod rejoin;
mod revocation;
mod routing;
mod status;
mod webhooks;
