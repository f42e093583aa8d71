//! The node's HTTP client to upstream OAuth 2 / OpenID providers: [`OidcUpstream`] implements
//! the domain's [`UpstreamClient`] with `openidconnect` (OIDC kinds: discovery cached per
//! issuer with its JWKS, PKCE S256, ID-token validation) and `oauth2` (GitHub and its API).

mod discovery;
mod errors;
mod github;
#[cfg(test)]
mod github_tests;
mod http;
mod oidc;
#[cfg(test)]
mod provider_tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_actors::DomainResult;
use gatehouse_actors::context::Timestamp;
use gatehouse_actors::domain::upstream::{
    AuthorizeRequest, CodeExchange, ProviderEndpoint, ProviderKind, RefreshFailure, TokenSet,
    UpstreamClient, UpstreamIdentity,
};
use openidconnect::core::CoreProviderMetadata;

/// HTTP to providers for the domain (see the module docs).
#[derive(Debug)]
pub struct OidcUpstream {
    http: http::ProviderHttp,
    discovery: discovery::Discovery,
}

impl OidcUpstream {
    /// A client with its own connection pool and an empty discovery cache; providers on
    /// private, loopback or link-local addresses only when `allow_private`.
    pub fn new(allow_private: bool) -> Result<OidcUpstream, reqwest::Error> {
        Ok(OidcUpstream {
            http: http::ProviderHttp::new(allow_private)?,
            discovery: discovery::Discovery::default(),
        })
    }

    async fn discover(
        &self,
        provider: &ProviderEndpoint,
        refresh: bool,
    ) -> DomainResult<Arc<CoreProviderMetadata>> {
        self.discovery
            .metadata(
                &self.http,
                &provider.issuer,
                oidc::allows_tenant_template(provider),
                refresh,
            )
            .await
    }
}

/// When a token that lives `lifetime` from now expires.
fn expires_at(lifetime: Duration) -> Timestamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let at = now.saturating_add(lifetime).as_millis();
    Timestamp(i64::try_from(at).unwrap_or(i64::MAX))
}

/// The provider's granted scopes, or the requested ones when it does not say.
fn granted_scopes(granted: Option<Vec<String>>, requested: &[String]) -> Vec<String> {
    granted.unwrap_or_else(|| requested.to_vec())
}

#[async_trait::async_trait]
impl UpstreamClient for OidcUpstream {
    async fn authorization_url(
        &self,
        provider: &ProviderEndpoint,
        request: &AuthorizeRequest,
    ) -> DomainResult<String> {
        match provider.kind {
            ProviderKind::Github => self.github_authorization_url(provider, request),
            ProviderKind::Oidc | ProviderKind::Google | ProviderKind::Microsoft => {
                self.oidc_authorization_url(provider, request).await
            }
        }
    }

    async fn exchange_code(
        &self,
        provider: &ProviderEndpoint,
        exchange: &CodeExchange,
    ) -> DomainResult<UpstreamIdentity> {
        match provider.kind {
            ProviderKind::Github => self.github_exchange_code(provider, exchange).await,
            ProviderKind::Oidc | ProviderKind::Google | ProviderKind::Microsoft => {
                self.oidc_exchange_code(provider, exchange).await
            }
        }
    }

    async fn refresh(
        &self,
        provider: &ProviderEndpoint,
        refresh_token: &str,
        scopes: &[String],
    ) -> Result<TokenSet, RefreshFailure> {
        match provider.kind {
            ProviderKind::Github => self.github_refresh(provider, refresh_token, scopes).await,
            ProviderKind::Oidc | ProviderKind::Google | ProviderKind::Microsoft => {
                self.oidc_refresh(provider, refresh_token, scopes).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn github(issuer: &str) -> ProviderEndpoint {
        ProviderEndpoint {
            kind: ProviderKind::Github,
            issuer: issuer.to_owned(),
            client_id: "client-1".to_owned(),
            client_secret: "very-secret".to_owned(),
        }
    }

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            redirect_uri: "http://127.0.0.1:8080/t/acme/oauth/gh/callback".to_owned(),
            state: "state-123".to_owned(),
            nonce: "nonce-456".to_owned(),
            // RFC 7636, appendix B.
            pkce_verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
            scopes: vec!["read:user".to_owned(), "user:email".to_owned()],
        }
    }

    #[tokio::test]
    async fn the_github_authorization_url_carries_state_scopes_and_an_s256_challenge() {
        let upstream = OidcUpstream::new(true).unwrap();
        let url = upstream
            .authorization_url(&github("https://github.com"), &request())
            .await
            .unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert_eq!(url.host_str(), Some("github.com"));
        assert_eq!(url.path(), "/login/oauth/authorize");
        let query: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["state"], "state-123");
        assert_eq!(query["scope"], "read:user user:email");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(
            query["code_challenge"],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(
            query["redirect_uri"],
            "http://127.0.0.1:8080/t/acme/oauth/gh/callback"
        );
        assert!(!url.as_str().contains("very-secret"));
    }

    #[test]
    fn provider_tokens_expire_after_their_lifetime() {
        let before = expires_at(Duration::ZERO).0;
        let later = expires_at(Duration::from_secs(3600)).0;
        assert!(later - before >= 3_600_000);
    }

    #[test]
    fn the_request_scopes_stand_in_when_the_provider_says_none() {
        let requested = vec!["openid".to_owned()];
        assert_eq!(granted_scopes(None, &requested), requested);
        assert_eq!(
            granted_scopes(Some(vec!["email".into()]), &requested),
            vec!["email".to_owned()]
        );
    }
}
