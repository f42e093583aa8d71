//! GitHub (OAuth apps and GitHub Enterprise Server): OAuth 2 through `oauth2`, then the user
//! and emails API. GitHub issues no ID token.

use gatehouse_actors::DomainResult;
use gatehouse_actors::domain::upstream::{
    AuthorizeRequest, CodeExchange, ProviderEndpoint, RefreshFailure, TokenSet, UpstreamIdentity,
};
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::http::{Method, StatusCode, header};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    TokenResponse, TokenUrl,
};
use serde::Deserialize;

use super::errors::{code_exchange_error, http_error, refresh_failure, rejected};
use super::{OidcUpstream, expires_at, granted_scopes};

type GithubClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The REST API's base for a GitHub issuer: `https://github.com` → `https://api.github.com`;
/// GitHub Enterprise Server (any other host) → `{issuer}/api/v3`.
pub fn api_base(issuer: &str) -> String {
    let issuer = issuer.trim_end_matches('/');
    let is_github_com = url::Url::parse(issuer).is_ok_and(|url| {
        url.scheme() == "https"
            && matches!(url.host_str(), Some("github.com" | "www.github.com"))
            && url.path().trim_end_matches('/').is_empty()
    });
    if is_github_com {
        "https://api.github.com".to_owned()
    } else {
        format!("{issuer}/api/v3")
    }
}

fn client(provider: &ProviderEndpoint) -> DomainResult<GithubClient> {
    let issuer = provider.issuer.trim_end_matches('/');
    let invalid = |_| rejected("the provider's issuer is not a valid URL");
    Ok(BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_client_secret(ClientSecret::new(provider.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(format!("{issuer}/login/oauth/authorize")).map_err(invalid)?)
        .set_token_uri(
            TokenUrl::new(format!("{issuer}/login/oauth/access_token")).map_err(invalid)?,
        )
        // GitHub documents the secret as a form parameter.
        .set_auth_type(AuthType::RequestBody))
}

/// GitHub answers `scope` comma separated.
fn scopes_of(tokens: &BasicTokenResponse) -> Option<Vec<String>> {
    tokens.scopes().map(|scopes| {
        scopes
            .iter()
            .flat_map(|scope| scope.split(','))
            .map(str::trim)
            .filter(|scope| !scope.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn token_set(tokens: &BasicTokenResponse, requested: &[String]) -> TokenSet {
    TokenSet {
        access_token: tokens.access_token().secret().clone(),
        refresh_token: tokens.refresh_token().map(|token| token.secret().clone()),
        expires_at: tokens.expires_in().map(expires_at),
        scopes: granted_scopes(scopes_of(tokens), requested),
    }
}

/// `GET /user`.
#[derive(Debug, Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// One entry of `GET /user/emails`.
#[derive(Debug, Clone, Deserialize)]
pub struct GithubEmail {
    /// The address.
    pub email: String,
    /// The account's primary address.
    #[serde(default)]
    pub primary: bool,
    /// Verified by GitHub.
    #[serde(default)]
    pub verified: bool,
}

/// The account's primary address and whether GitHub verified it.
pub fn primary_email(emails: &[GithubEmail]) -> Option<(String, bool)> {
    emails
        .iter()
        .find(|email| email.primary)
        .map(|email| (email.email.clone(), email.verified))
}

impl OidcUpstream {
    pub(super) fn github_authorization_url(
        &self,
        provider: &ProviderEndpoint,
        request: &AuthorizeRequest,
    ) -> DomainResult<String> {
        let redirect = RedirectUrl::new(request.redirect_uri.clone())
            .map_err(|_| rejected("the callback URL is not a valid URL"))?;
        let state = request.state.clone();
        let verifier = PkceCodeVerifier::new(request.pkce_verifier.clone());
        let (url, _) = client(provider)?
            .set_redirect_uri(redirect)
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(request.scopes.iter().map(|scope| Scope::new(scope.clone())))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier))
            .url();
        Ok(url.into())
    }

    pub(super) async fn github_exchange_code(
        &self,
        provider: &ProviderEndpoint,
        exchange: &CodeExchange,
    ) -> DomainResult<UpstreamIdentity> {
        let redirect = RedirectUrl::new(exchange.redirect_uri.clone())
            .map_err(|_| rejected("the callback URL is not a valid URL"))?;
        let tokens = client(provider)?
            .set_redirect_uri(redirect)
            .exchange_code(AuthorizationCode::new(exchange.code.clone()))
            .set_pkce_verifier(PkceCodeVerifier::new(exchange.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|error| code_exchange_error(&error))?;
        let access_token = tokens.access_token().secret();
        let api = api_base(&provider.issuer);
        let user: GithubUser = match self
            .github_get(&format!("{api}/user"), access_token)
            .await?
        {
            Some(body) => serde_json::from_slice(&body)
                .map_err(|_| rejected("GitHub's user answer is malformed"))?,
            None => return Err(rejected("GitHub refused to show the user")),
        };
        let (email, email_verified) = match self
            .github_get(&format!("{api}/user/emails"), access_token)
            .await?
        {
            Some(body) => {
                let emails: Vec<GithubEmail> = serde_json::from_slice(&body)
                    .map_err(|_| rejected("GitHub's emails answer is malformed"))?;
                match primary_email(&emails) {
                    Some((email, verified)) => (Some(email), verified),
                    None => (None, false),
                }
            }
            // Without the `user:email` scope: the public address, not known to be verified.
            None => (user.email.clone(), false),
        };
        Ok(UpstreamIdentity {
            subject: user.id.to_string(),
            email,
            email_verified,
            display_name: Some(user.name.clone().unwrap_or_else(|| user.login.clone())),
            tokens: token_set(&tokens, &[]),
        })
    }

    pub(super) async fn github_refresh(
        &self,
        provider: &ProviderEndpoint,
        refresh_token: &str,
        scopes: &[String],
    ) -> Result<TokenSet, RefreshFailure> {
        let client = client(provider).map_err(|error| {
            RefreshFailure::Rejected(match error {
                gatehouse_actors::DomainError::OAuthUpstreamRejected(message) => message,
                other => other.public_message(),
            })
        })?;
        let refresh_token = RefreshToken::new(refresh_token.to_owned());
        let tokens = client
            .exchange_refresh_token(&refresh_token)
            .request_async(&self.http)
            .await
            .map_err(|error| refresh_failure(&error))?;
        Ok(token_set(&tokens, scopes))
    }

    /// A GET of GitHub's API: the body on 200, `None` on 403 or 404 (a scope not granted),
    /// `OAUTH_UPSTREAM_REJECTED` for a refused token or another status.
    async fn github_get(&self, url: &str, access_token: &str) -> DomainResult<Option<Vec<u8>>> {
        let request = oauth2::http::Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .body(Vec::new())
            .map_err(|_| rejected("the GitHub API URL is not valid"))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|error| http_error("GitHub API", &error))?;
        match response.status() {
            StatusCode::OK => Ok(Some(response.into_body())),
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Ok(None),
            StatusCode::UNAUTHORIZED => Err(rejected("GitHub refused the access token")),
            status => Err(rejected(format!("the GitHub API answered HTTP {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_com_uses_the_api_host_and_enterprise_the_api_path() {
        assert_eq!(api_base("https://github.com"), "https://api.github.com");
        assert_eq!(api_base("https://github.com/"), "https://api.github.com");
        assert_eq!(
            api_base("https://github.example.com"),
            "https://github.example.com/api/v3"
        );
        assert_eq!(
            api_base("http://127.0.0.1:4000"),
            "http://127.0.0.1:4000/api/v3"
        );
        // Only https://github.com itself is github.com.
        assert_eq!(api_base("http://github.com"), "http://github.com/api/v3");
    }

    #[test]
    fn the_primary_address_is_chosen_with_its_verification() {
        let emails: Vec<GithubEmail> = serde_json::from_str(
            r#"[
                {"email":"old@example.com","primary":false,"verified":true},
                {"email":"me@example.com","primary":true,"verified":true,"visibility":"private"}
            ]"#,
        )
        .unwrap_or_default();
        assert_eq!(
            primary_email(&emails),
            Some(("me@example.com".to_owned(), true))
        );
        let unverified = vec![GithubEmail {
            email: "new@example.com".into(),
            primary: true,
            verified: false,
        }];
        assert_eq!(
            primary_email(&unverified),
            Some(("new@example.com".to_owned(), false))
        );
        assert_eq!(primary_email(&[]), None);
    }
}
