//! Upstream sign-in: a tenant's OAuth 2 / OpenID providers, the browser flow's state, the
//! links between upstream accounts and users, and connected accounts (the provider's tokens,
//! sealed, refreshed on demand).
//!
//! The domain never speaks HTTP: the node implements [`UpstreamClient`] (discovery, the
//! authorization URL with PKCE S256, the code exchange with ID-token validation, GitHub's user
//! and emails API, refresh) and the domain decides everything else in its transactions.

pub mod callback;
pub mod flow;
pub mod links;
pub mod providers;
pub mod tokens;

#[cfg(test)]
mod links_tests;
#[cfg(test)]
mod providers_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tokens_tests;

use serde::{Deserialize, Serialize};

use crate::context::Timestamp;
use crate::error::DomainResult;

/// Which protocol and defaults a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Any OpenID provider, by issuer (discovery, JWKS, ID token).
    Oidc,
    /// GitHub: OAuth 2 plus the user and emails API (no ID token).
    Github,
    /// Google: OIDC with issuer `https://accounts.google.com`.
    Google,
    /// Microsoft identity platform: OIDC, issuer per tenant (default `common`).
    Microsoft,
}

impl ProviderKind {
    /// Stable spelling (`oidc`, `github`, `google`, `microsoft`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oidc",
            ProviderKind::Github => "github",
            ProviderKind::Google => "google",
            ProviderKind::Microsoft => "microsoft",
        }
    }
}

/// Everything the node's client needs to talk to one provider, secret opened.
#[derive(Clone)]
pub struct ProviderEndpoint {
    /// The protocol.
    pub kind: ProviderKind,
    /// The issuer (OIDC kinds); GitHub's is its fixed base URL.
    pub issuer: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret (opened from its sealed form for this call only).
    pub client_secret: String,
}

impl std::fmt::Debug for ProviderEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderEndpoint")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The authorization request the browser is sent with.
#[derive(Clone)]
pub struct AuthorizeRequest {
    /// This node's callback URL, `{public_url}/t/{tenant}/oauth/{provider}/callback`.
    pub redirect_uri: String,
    /// The `state` parameter (random, single use; only its hash is stored).
    pub state: String,
    /// The `nonce` the ID token must carry (OIDC kinds).
    pub nonce: String,
    /// The PKCE verifier; the client sends its S256 challenge.
    pub pkce_verifier: String,
    /// Scopes to ask for.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for AuthorizeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeRequest")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The callback's code, redeemed.
#[derive(Clone)]
pub struct CodeExchange {
    /// The `code` the provider returned.
    pub code: String,
    /// The same redirect URI as the authorization request.
    pub redirect_uri: String,
    /// The PKCE verifier of the authorization request.
    pub pkce_verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
}

impl std::fmt::Debug for CodeExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeExchange")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// An upstream account as the provider vouched for it.
#[derive(Debug, Clone)]
pub struct UpstreamIdentity {
    /// The provider's stable subject (`sub`; GitHub's numeric user id).
    pub subject: String,
    /// The account's email, if the provider gave one (GitHub: the primary address).
    pub email: Option<String>,
    /// Whether the provider asserts the email verified.
    pub email_verified: bool,
    /// A display name, if any.
    pub display_name: Option<String>,
    /// The tokens the exchange returned.
    pub tokens: TokenSet,
}

/// Upstream tokens.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token.
    pub access_token: String,
    /// The refresh token, if the provider issued one.
    pub refresh_token: Option<String>,
    /// When the access token expires, if the provider said.
    pub expires_at: Option<Timestamp>,
    /// Scopes granted (the provider's answer, or the request's when it does not say).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why a refresh failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshFailure {
    /// The provider answered `invalid_grant`: the refresh token is dead.
    Revoked,
    /// Timeout, connection failure or 5xx: try again later, keep the token.
    Unavailable(String),
    /// Any other refusal (a 4xx other than `invalid_grant`, a malformed answer).
    Rejected(String),
}

/// HTTP to providers; the node implements it (openidconnect / oauth2 over reqwest), unit tests
/// use a fake. Errors: `OAuthUpstreamUnavailable` for timeouts, connection failures and 5xx;
/// `OAuthUpstreamRejected` for refusals and answers that fail validation.
#[async_trait::async_trait]
pub trait UpstreamClient: Send + Sync + std::fmt::Debug {
    /// The URL to send the browser to (authorization code flow, PKCE S256 challenge of
    /// `request.pkce_verifier`, `state`, and `nonce` for OIDC kinds).
    async fn authorization_url(
        &self,
        provider: &ProviderEndpoint,
        request: &AuthorizeRequest,
    ) -> DomainResult<String>;

    /// Redeems the callback's code and returns the account: for OIDC kinds the ID token is
    /// validated (signature against the provider's JWKS, issuer, audience, expiry, nonce,
    /// `at_hash` when present) and the email and its verification come from its claims;
    /// for GitHub from the user and emails API.
    async fn exchange_code(
        &self,
        provider: &ProviderEndpoint,
        exchange: &CodeExchange,
    ) -> DomainResult<UpstreamIdentity>;

    /// Spends a refresh token for new tokens. A provider that does not rotate refresh tokens
    /// returns `refresh_token: None`; the caller keeps the old one.
    async fn refresh(
        &self,
        provider: &ProviderEndpoint,
        refresh_token: &str,
        scopes: &[String],
    ) -> Result<TokenSet, RefreshFailure>;
}
