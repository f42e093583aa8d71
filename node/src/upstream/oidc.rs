//! OpenID Connect kinds (any issuer, Google, Microsoft): the authorization URL, the code
//! exchange with ID-token validation, and refresh, all through `openidconnect`.

use gatehouse_actors::DomainResult;
use gatehouse_actors::domain::upstream::{
    AuthorizeRequest, CodeExchange, ProviderEndpoint, ProviderKind, RefreshFailure, TokenSet,
    UpstreamIdentity,
};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdToken, CoreIdTokenClaims,
    CoreIdTokenVerifier, CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    SignatureVerificationError, TokenResponse,
};

use super::discovery::fills_template;
use super::errors::{
    claims_error, code_exchange_error, refresh_failure, refresh_failure_of, rejected,
    user_info_error,
};
use super::{OidcUpstream, expires_at, granted_scopes};

/// A client built from discovered metadata.
type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Microsoft's multi-tenant endpoints accept accounts of any tenant: their metadata names the
/// issuer as a template and each ID token carries its own tenant's issuer.
pub fn allows_tenant_template(provider: &ProviderEndpoint) -> bool {
    provider.kind == ProviderKind::Microsoft
}

/// `client_secret_basic` unless the provider lists `client_secret_post` and not basic.
pub fn auth_type(methods: Option<&Vec<CoreClientAuthMethod>>) -> AuthType {
    match methods {
        Some(methods)
            if methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

fn client(provider: &ProviderEndpoint, metadata: &CoreProviderMetadata) -> OidcClient {
    CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(provider.client_id.clone()),
        Some(ClientSecret::new(provider.client_secret.clone())),
    )
    .set_auth_type(auth_type(metadata.token_endpoint_auth_methods_supported()))
}

fn with_redirect(client: OidcClient, redirect_uri: &str) -> DomainResult<OidcClient> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|_| rejected("the callback URL is not a valid URL"))?;
    Ok(client.set_redirect_uri(redirect))
}

/// How the ID token's `iss` is checked.
#[derive(Debug, Clone)]
enum IssuerCheck {
    /// Equal to the metadata's issuer (by `openidconnect`).
    Exact,
    /// Fills the multi-tenant metadata's template (Microsoft's `common` and the like).
    Template(String),
    /// Google: `https://accounts.google.com`, or the same without the scheme (OpenID
    /// Connect on Google documents both).
    Google,
}

/// Google's ID tokens may name the issuer without its scheme.
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

impl IssuerCheck {
    fn of(provider: &ProviderEndpoint, metadata: &CoreProviderMetadata) -> IssuerCheck {
        match provider.kind {
            ProviderKind::Microsoft => IssuerCheck::Template(metadata.issuer().as_str().to_owned()),
            ProviderKind::Google
                if GOOGLE_ISSUERS.contains(&metadata.issuer().as_str().trim_end_matches('/')) =>
            {
                IssuerCheck::Google
            }
            _ => IssuerCheck::Exact,
        }
    }

    /// Whether `openidconnect` compares the issuer itself.
    fn by_verifier(&self) -> bool {
        matches!(self, IssuerCheck::Exact)
    }

    fn accepts(&self, issuer: &str) -> bool {
        match self {
            IssuerCheck::Exact => true,
            IssuerCheck::Template(template) => {
                // Metadata that names one tenant's issuer is compared exactly.
                if template.contains(super::discovery::TENANT_PLACEHOLDER) {
                    fills_template(template, issuer)
                } else {
                    template.trim_end_matches('/') == issuer.trim_end_matches('/')
                }
            }
            IssuerCheck::Google => GOOGLE_ISSUERS.contains(&issuer),
        }
    }
}

/// Why an ID token was not accepted; a key the JWKS lacks is worth one fresh discovery.
enum Refusal {
    UnknownKey,
    Invalid(gatehouse_actors::DomainError),
}

impl OidcUpstream {
    pub(super) async fn oidc_authorization_url(
        &self,
        provider: &ProviderEndpoint,
        request: &AuthorizeRequest,
    ) -> DomainResult<String> {
        let metadata = self.discover(provider, false).await?;
        let client = with_redirect(client(provider, &metadata), &request.redirect_uri)?;
        let state = request.state.clone();
        let nonce = request.nonce.clone();
        let verifier = PkceCodeVerifier::new(request.pkce_verifier.clone());
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            // `openid` is always sent first.
            .add_scopes(
                request
                    .scopes
                    .iter()
                    .filter(|scope| scope.as_str() != "openid")
                    .map(|scope| Scope::new(scope.clone())),
            )
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier))
            .url();
        Ok(url.into())
    }

    pub(super) async fn oidc_exchange_code(
        &self,
        provider: &ProviderEndpoint,
        exchange: &CodeExchange,
    ) -> DomainResult<UpstreamIdentity> {
        let metadata = self.discover(provider, false).await?;
        let oidc = with_redirect(client(provider, &metadata), &exchange.redirect_uri)?;
        let tokens: CoreTokenResponse = oidc
            .exchange_code(AuthorizationCode::new(exchange.code.clone()))
            .map_err(|_| rejected("the provider has no token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(exchange.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|error| code_exchange_error(&error))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| rejected("the token endpoint returned no ID token"))?;
        let nonce = Nonce::new(exchange.nonce.clone());
        let issuer_check = IssuerCheck::of(provider, &metadata);
        let (claims, oidc) = match verify(&oidc, &issuer_check, id_token, &nonce, &tokens) {
            Ok(claims) => (claims, oidc),
            Err(Refusal::UnknownKey) => {
                // The provider may have rotated its keys since the JWKS was cached.
                let metadata = self.discover(provider, true).await?;
                let oidc = with_redirect(client(provider, &metadata), &exchange.redirect_uri)?;
                match verify(&oidc, &issuer_check, id_token, &nonce, &tokens) {
                    Ok(claims) => (claims, oidc),
                    Err(Refusal::UnknownKey) => {
                        return Err(rejected("the ID token is signed with an unknown key"));
                    }
                    Err(Refusal::Invalid(error)) => return Err(error),
                }
            }
            Err(Refusal::Invalid(error)) => return Err(error),
        };
        let mut email = claims.email().map(|email| email.as_str().to_owned());
        let mut email_verified = claims.email_verified().unwrap_or(false);
        let mut display_name = claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned());
        if email.is_none() && oidc.user_info_url().is_some() {
            let info: CoreUserInfoClaims = oidc
                .user_info(
                    tokens.access_token().clone(),
                    Some(claims.subject().clone()),
                )
                .map_err(|_| rejected("the provider has no user info endpoint"))?
                .require_issuer_match(issuer_check.by_verifier())
                .request_async(&self.http)
                .await
                .map_err(|error| user_info_error(&error))?;
            email = info.email().map(|email| email.as_str().to_owned());
            email_verified = email.is_some() && info.email_verified().unwrap_or(false);
            if display_name.is_none() {
                display_name = info
                    .name()
                    .and_then(|name| name.get(None))
                    .map(|name| name.as_str().to_owned());
            }
        }
        Ok(UpstreamIdentity {
            subject: claims.subject().as_str().to_owned(),
            email,
            email_verified,
            display_name,
            tokens: token_set(&tokens, &[]),
        })
    }

    pub(super) async fn oidc_refresh(
        &self,
        provider: &ProviderEndpoint,
        refresh_token: &str,
        scopes: &[String],
    ) -> Result<TokenSet, RefreshFailure> {
        let metadata = self
            .discover(provider, false)
            .await
            .map_err(refresh_failure_of)?;
        let oidc = client(provider, &metadata);
        let refresh_token = RefreshToken::new(refresh_token.to_owned());
        let tokens: CoreTokenResponse = oidc
            .exchange_refresh_token(&refresh_token)
            .map_err(|_| RefreshFailure::Rejected("the provider has no token endpoint".into()))?
            .add_scopes(scopes.iter().map(|scope| Scope::new(scope.clone())))
            .request_async(&self.http)
            .await
            .map_err(|error| refresh_failure(&error))?;
        Ok(token_set(&tokens, scopes))
    }
}

fn token_set(tokens: &CoreTokenResponse, requested: &[String]) -> TokenSet {
    TokenSet {
        access_token: tokens.access_token().secret().clone(),
        refresh_token: tokens.refresh_token().map(|token| token.secret().clone()),
        expires_at: tokens.expires_in().map(expires_at),
        scopes: granted_scopes(
            tokens
                .scopes()
                .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect()),
            requested,
        ),
    }
}

/// Validates the ID token (signature against the JWKS, issuer, audience, expiry, nonce) and
/// its `at_hash` when present; the issuer as `issuer_check` says.
fn verify(
    client: &OidcClient,
    issuer_check: &IssuerCheck,
    id_token: &CoreIdToken,
    nonce: &Nonce,
    tokens: &CoreTokenResponse,
) -> Result<CoreIdTokenClaims, Refusal> {
    let verifier: CoreIdTokenVerifier<'_> = client
        .id_token_verifier()
        .require_issuer_match(issuer_check.by_verifier());
    let claims = match id_token.claims(&verifier, nonce) {
        Ok(claims) => claims.clone(),
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => return Err(Refusal::UnknownKey),
        Err(error) => return Err(Refusal::Invalid(claims_error(&error))),
    };
    if !issuer_check.accepts(claims.issuer().as_str()) {
        return Err(Refusal::Invalid(rejected(
            "the ID token is from another issuer",
        )));
    }
    if let Some(expected) = claims.access_token_hash() {
        check_at_hash(id_token, &verifier, tokens.access_token(), expected)
            .map_err(Refusal::Invalid)?;
    }
    Ok(claims)
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the access token's hash with the
/// ID token's algorithm, computed by `openidconnect`.
fn check_at_hash(
    id_token: &CoreIdToken,
    verifier: &CoreIdTokenVerifier<'_>,
    access_token: &AccessToken,
    expected: &AccessTokenHash,
) -> DomainResult<()> {
    let unusable = |_| rejected("the ID token's at_hash cannot be checked");
    let algorithm = id_token.signing_alg().map_err(unusable)?;
    let key = id_token.signing_key(verifier).map_err(unusable)?;
    let actual = AccessTokenHash::from_token(access_token, algorithm, key)
        .map_err(|_| rejected("the ID token's at_hash cannot be checked"))?;
    if actual != *expected {
        return Err(rejected(
            "the ID token's at_hash does not match the access token",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_checked_per_kind() {
        let template =
            IssuerCheck::Template("https://login.microsoftonline.com/{tenantid}/v2.0".into());
        assert!(template.accepts(
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
        ));
        assert!(!template.accepts("https://login.evil.example/9188040d/v2.0"));
        let one_tenant = IssuerCheck::Template("https://login.microsoftonline.com/abc/v2.0".into());
        assert!(one_tenant.accepts("https://login.microsoftonline.com/abc/v2.0"));
        assert!(!one_tenant.accepts("https://login.microsoftonline.com/def/v2.0"));
        assert!(IssuerCheck::Google.accepts("accounts.google.com"));
        assert!(IssuerCheck::Google.accepts("https://accounts.google.com"));
        assert!(!IssuerCheck::Google.accepts("https://accounts.google.com.evil.example"));
        assert!(!IssuerCheck::Google.by_verifier());
        assert!(IssuerCheck::Exact.by_verifier());
    }

    #[test]
    fn basic_auth_unless_only_post_is_listed() {
        assert!(matches!(auth_type(None), AuthType::BasicAuth));
        let post = vec![CoreClientAuthMethod::ClientSecretPost];
        assert!(matches!(auth_type(Some(&post)), AuthType::RequestBody));
        let both = vec![
            CoreClientAuthMethod::ClientSecretPost,
            CoreClientAuthMethod::ClientSecretBasic,
        ];
        assert!(matches!(auth_type(Some(&both)), AuthType::BasicAuth));
    }
}
