//! Upstream sign-in, linked accounts and connected accounts through the domain facade.
//!
//! Providers are managed by servers and operators. The browser flow has no caller: the node's
//! HTTP endpoints pass the tenant and provider from the path ([`Gatehouse::start_oauth`],
//! [`Gatehouse::finish_oauth`]); the flow ends in a single-use code that the app exchanges
//! over gRPC with its client key ([`Gatehouse::exchange_oauth_code`]).

use std::time::Duration;

use crate::access::Caller;
use crate::api::SignedIn;
use crate::context::Timestamp;
use crate::domain::sessions::ClientInfo;
use crate::domain::upstream::ProviderKind;
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;

/// Name of the cookie that binds a flow to the browser that began it (HttpOnly,
/// SameSite=Lax, Path=/t/{tenant}/oauth).
pub const OAUTH_STATE_COOKIE: &str = "gatehouse_oauth_state";
/// How long a flow (state, nonce, PKCE verifier, link ticket) may take.
pub const OAUTH_FLOW_TTL: Duration = Duration::from_secs(600);
/// How long the code handed to the app lives.
pub const OAUTH_CODE_TTL: Duration = Duration::from_secs(120);

/// A provider to create.
#[derive(Clone)]
pub struct ProviderSpec {
    /// Id in URLs: 1 to 40 of `a-z`, `0-9`, `-`.
    pub provider_id: String,
    /// Protocol and defaults.
    pub kind: ProviderKind,
    /// Shown on sign-in pages; defaults from the kind.
    pub display_name: String,
    /// Required for OIDC; preset for Google, GitHub and Microsoft (`common`) when empty.
    pub issuer: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret; sealed at rest, never returned.
    pub client_secret: String,
    /// Scopes to ask for; the kind's defaults when empty.
    pub scopes: Vec<String>,
    /// May a verified upstream email link to an existing user (off by default).
    pub allow_email_linking: bool,
    /// May the provider create users (on when `None`).
    pub allow_sign_up: Option<bool>,
}

impl std::fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("provider_id", &self.provider_id)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Changes to a provider; `None` keeps the value.
#[derive(Clone, Default)]
pub struct ProviderUpdate {
    /// New display name.
    pub display_name: Option<String>,
    /// New issuer.
    pub issuer: Option<String>,
    /// New client id.
    pub client_id: Option<String>,
    /// New client secret.
    pub client_secret: Option<String>,
    /// New scopes.
    pub scopes: Option<Vec<String>>,
    /// New email-linking rule.
    pub allow_email_linking: Option<bool>,
    /// New sign-up rule.
    pub allow_sign_up: Option<bool>,
}

impl std::fmt::Debug for ProviderUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderUpdate")
            .field("issuer", &self.issuer)
            .field("client_secret_changed", &self.client_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// A provider as shown: never its secret.
#[derive(Debug, Clone)]
pub struct ProviderView {
    /// Id in URLs.
    pub provider_id: String,
    /// Protocol.
    pub kind: ProviderKind,
    /// Display name.
    pub display_name: String,
    /// Issuer.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Scopes asked for at sign-in.
    pub scopes: Vec<String>,
    /// Email-linking rule.
    pub allow_email_linking: bool,
    /// Sign-up rule.
    pub allow_sign_up: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// The callback URL to register with the provider.
    pub redirect_uri: String,
}

/// `GET /t/{tenant}/oauth/{provider}/start`.
#[derive(Debug, Clone)]
pub struct OAuthStart {
    /// Where the browser returns at the end; checked against the trusted domains.
    pub redirect_url: String,
    /// A link ticket from [`Gatehouse::begin_oauth_link`] (`?link=`), if linking.
    pub link_ticket: Option<String>,
    /// Scopes beyond the provider's (`?scope=`, space separated).
    pub extra_scopes: Vec<String>,
    /// The browser.
    pub client: ClientInfo,
}

/// Where to send the browser, and the cookie that binds the flow to it.
#[derive(Clone)]
pub struct OAuthRedirect {
    /// The provider's authorization URL.
    pub authorize_url: String,
    /// Value of [`OAUTH_STATE_COOKIE`].
    pub state_cookie: String,
    /// The cookie's lifetime ([`OAUTH_FLOW_TTL`]).
    pub cookie_max_age: Duration,
}

impl std::fmt::Debug for OAuthRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthRedirect").finish_non_exhaustive()
    }
}

/// `GET /t/{tenant}/oauth/{provider}/callback`.
#[derive(Clone)]
pub struct OAuthCallback {
    /// `state`.
    pub state: String,
    /// `code`, when the provider granted.
    pub code: Option<String>,
    /// `error`, when it did not.
    pub error: Option<String>,
    /// The [`OAUTH_STATE_COOKIE`] the browser sent, if any.
    pub state_cookie: Option<String>,
    /// The browser.
    pub client: ClientInfo,
}

impl std::fmt::Debug for OAuthCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthCallback")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A link flow's start.
#[derive(Debug, Clone)]
pub struct LinkStart {
    /// `{public_url}/t/{tenant}/oauth/{provider}/start?redirect_url=…&link=…`.
    pub start_url: String,
    /// When the ticket in it expires.
    pub expires_at: Timestamp,
}

/// A user's link with a provider.
#[derive(Debug, Clone)]
pub struct LinkedAccountView {
    /// The provider.
    pub provider_id: String,
    /// The provider's subject.
    pub subject: String,
    /// The upstream email at the last sign-in, if any.
    pub email: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// When linked.
    pub linked_at: Timestamp,
    /// Last sign-in through it.
    pub last_sign_in_at: Option<Timestamp>,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
}

/// An upstream access token of a connected account.
#[derive(Clone)]
pub struct ConnectedToken {
    /// The token.
    pub access_token: String,
    /// Its expiry, if the provider said.
    pub expires_at: Option<Timestamp>,
    /// Scopes granted.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ConnectedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedToken")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Gatehouse {
    /// Creates a provider (servers and operators).
    pub async fn create_oauth_provider(
        &self,
        caller: &Caller,
        spec: ProviderSpec,
    ) -> DomainResult<ProviderView> {
        let _ = (caller, spec);
        todo!("create_oauth_provider")
    }

    /// Lists the tenant's providers (servers and operators).
    pub async fn list_oauth_providers(&self, caller: &Caller) -> DomainResult<Vec<ProviderView>> {
        let _ = caller;
        todo!("list_oauth_providers")
    }

    /// One provider (servers and operators).
    pub async fn get_oauth_provider(
        &self,
        caller: &Caller,
        provider_id: &str,
    ) -> DomainResult<ProviderView> {
        let _ = (caller, provider_id);
        todo!("get_oauth_provider")
    }

    /// Changes a provider (servers and operators).
    pub async fn update_oauth_provider(
        &self,
        caller: &Caller,
        provider_id: &str,
        update: ProviderUpdate,
    ) -> DomainResult<ProviderView> {
        let _ = (caller, provider_id, update);
        todo!("update_oauth_provider")
    }

    /// Deletes a provider (servers and operators).
    pub async fn delete_oauth_provider(
        &self,
        caller: &Caller,
        provider_id: &str,
    ) -> DomainResult<()> {
        let _ = (caller, provider_id);
        todo!("delete_oauth_provider")
    }

    /// Begins a browser flow: stores the state and answers where to send the browser.
    pub async fn start_oauth(
        &self,
        tenant_id: &str,
        provider_id: &str,
        start: OAuthStart,
    ) -> DomainResult<OAuthRedirect> {
        let _ = (tenant_id, provider_id, start);
        todo!("start_oauth")
    }

    /// Ends a browser flow: the URL to send the browser back to (`?code=`, `?linked=` or
    /// `?error=` on the app's redirect URL). `Err(OAuthStateInvalid)` when the state is
    /// unknown, spent, expired or another browser's: there is no trusted URL to go back to.
    pub async fn finish_oauth(
        &self,
        tenant_id: &str,
        provider_id: &str,
        callback: OAuthCallback,
    ) -> DomainResult<String> {
        let _ = (tenant_id, provider_id, callback);
        todo!("finish_oauth")
    }

    /// Spends a flow's single-use code for a session.
    pub async fn exchange_oauth_code(
        &self,
        caller: &Caller,
        code: &str,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let _ = (caller, code, client);
        todo!("exchange_oauth_code")
    }

    /// A signed-in user's link flow (or an anonymous user's upgrade): the start URL.
    pub async fn begin_oauth_link(
        &self,
        caller: &Caller,
        provider_id: &str,
        redirect_url: &str,
        scopes: Vec<String>,
    ) -> DomainResult<LinkStart> {
        let _ = (caller, provider_id, redirect_url, scopes);
        todo!("begin_oauth_link")
    }

    /// A user's links: the caller's own, or a named user's for servers and operators.
    pub async fn list_linked_accounts(
        &self,
        caller: &Caller,
        user_id: Option<&str>,
    ) -> DomainResult<Vec<LinkedAccountView>> {
        let _ = (caller, user_id);
        todo!("list_linked_accounts")
    }

    /// Removes a link, unless it is the user's last way to sign in.
    pub async fn unlink_oauth_account(
        &self,
        caller: &Caller,
        user_id: Option<&str>,
        provider_id: &str,
    ) -> DomainResult<()> {
        let _ = (caller, user_id, provider_id);
        todo!("unlink_oauth_account")
    }

    /// A valid upstream access token of a user's connected account (servers and operators).
    pub async fn connected_account_token(
        &self,
        caller: &Caller,
        user_id: &str,
        provider_id: &str,
        scopes: Vec<String>,
        force_refresh: bool,
    ) -> DomainResult<ConnectedToken> {
        let _ = (caller, user_id, provider_id, scopes, force_refresh);
        todo!("connected_account_token")
    }
}
