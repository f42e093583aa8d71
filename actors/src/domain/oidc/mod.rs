//! Gatehouse as an OpenID provider per tenant: the checks of an authorization request
//! ([`authorize`]), authorization codes bound to client, redirect URI and PKCE ([`codes`]),
//! and ID tokens ([`id_token`]). The clients themselves are `domain::oidc_clients`.

pub mod authorize;
#[cfg(test)]
mod authorize_tests;
pub mod codes;
#[cfg(test)]
mod codes_tests;
pub mod consent;
pub mod id_token;
pub mod token;
#[cfg(test)]
mod token_tests;

use serde::{Deserialize, Serialize};

/// What an OpenID client holds a session for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcGrant {
    /// The client its tokens were issued to; only it may refresh or introspect them.
    pub client_id: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
}

impl crate::domain::sessions::SessionRecord {
    /// Whether this is `client_id`'s session (only it may refresh, revoke or introspect it).
    pub fn is_held_by(&self, client_id: &str) -> bool {
        self.oidc
            .as_ref()
            .is_some_and(|grant| grant.client_id == client_id)
    }
}

/// An error of the token, revocation or introspection endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type` or `invalid_scope`.
    pub error: &'static str,
    /// What is wrong, for developers.
    pub description: String,
}

impl OAuthError {
    /// An error with its description.
    pub fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            description: description.into(),
        }
    }

    /// `invalid_client`: unknown client, wrong secret or the wrong way to authenticate.
    pub fn invalid_client() -> OAuthError {
        OAuthError::new("invalid_client", "client authentication failed")
    }

    /// `invalid_grant`, with one description for every reason, so the answer tells an
    /// attacker nothing about the code or token.
    pub fn invalid_grant() -> OAuthError {
        OAuthError::new(
            "invalid_grant",
            "the code or refresh token is invalid, expired, spent or not this client's",
        )
    }
}
