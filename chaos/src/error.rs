//! The error type of the chaos crate: everything that stops a run before or after its load.

use gatehouse_protocol::ApiError;

/// Why a load or chaos run could not proceed (request errors during load are counted instead).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// Starting, reading or stopping the node process failed.
    #[error("node process: {0}")]
    Node(String),
    /// A setup call to the node (tenant creation, first sign-ups) failed.
    #[error("{context}: {source}")]
    Api {
        /// What the call was for.
        context: String,
        /// The node's answer.
        source: ApiError,
    },
    /// Fetching the JWKS or another HTTP resource failed.
    #[error("http: {0}")]
    Http(String),
    /// The command line or a setting is unusable.
    #[error("invalid setting: {0}")]
    Setting(String),
    /// Local work (key parsing, hashing, threads) failed.
    #[error("{0}")]
    Local(String),
}

impl ChaosError {
    /// Wraps an API error with what the call was for.
    pub fn api(context: impl Into<String>, source: ApiError) -> Self {
        ChaosError::Api {
            context: context.into(),
            source,
        }
    }
}
