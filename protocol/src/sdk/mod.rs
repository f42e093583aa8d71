//! The async Rust SDK: a [`Client`] for apps, tests and the CLI to talk to a node.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gatehouse_protocol::ApiError> {
//! use gatehouse_protocol::sdk::{Client, Credentials};
//!
//! let server = Client::builder("http://127.0.0.1:50051")
//!     .tenant("acme")
//!     .credentials(Credentials::Server { secret_key: "sk_…".into() })
//!     .build()
//!     .await?;
//! let user = server.get_user("usr_123").await?;
//! # let _ = user;
//! # Ok(())
//! # }
//! ```

mod api_keys;
mod calls;
mod client;
mod email;
mod factors;
mod impersonation;
mod metadata;
mod oauth;
mod oidc_clients;
mod session;
mod teams;
#[cfg(test)]
mod tests;
mod webhooks;

pub use client::{
    AuthedChannel, Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RETRIES, DEFAULT_TIMEOUT,
};
pub use email::EmailProof;
pub use factors::SecondFactor;
pub use metadata::{Credentials, RequestMetadata};
pub use session::{REFRESH_MARGIN, SPENT_REFRESH_TOKENS_REMEMBERED, SessionTokens, UserSession};
