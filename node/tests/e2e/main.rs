//! End-to-end tests: real `gatehouse` processes driven through the SDK, HTTP and the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mail;
mod testkit;

mod anonymous;
mod api_keys;
mod audit;
mod auth;
mod brute_force;
mod email;
mod email_addresses;
mod email_delivery;
mod email_shares;
mod factors;
mod factors_cli;
mod http;
mod identity;
mod impersonation;
mod isolation;
mod listeners;
mod malformed;
mod node;
mod oauth;
mod oidc_clients;
mod oidc_provider;
mod oidc_rp;
mod owner;
mod pages;
mod passkeys;
mod reflection;
mod revocation;
mod shares;
mod teams;
mod users;
mod webhooks;
