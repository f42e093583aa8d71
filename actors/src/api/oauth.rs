//! Upstream sign-in, linked accounts and connected accounts through the domain facade.
//!
//! Providers are managed by servers and operators. The browser flow has no caller: the node's
//! HTTP endpoints pass the tenant and provider from the path ([`Gatehouse::start_oauth`],
//! [`Gatehouse::finish_oauth`]); the flow ends in a single-use code that the app exchanges
//! over gRPC with its client key ([`Gatehouse::exchange_oauth_code`]).

mod accounts;
mod browser;

use std::sync::Arc;
use std::time::Duration;

use crate::access::Caller;
use crate::context::Timestamp;
use crate::domain::audit::AuditOrigin;
use crate::domain::sessions::ClientInfo;
use crate::domain::upstream::providers::{self, NewProvider, ProviderRecord};
use crate::domain::upstream::{ProviderKind, UpstreamClient};
use crate::error::{DomainError, DomainResult};
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

/// Changes to a provider; `None` keeps the value (the domain's own type).
pub use crate::domain::upstream::providers::ProviderChanges as ProviderUpdate;

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
        let tenant = caller.require_server()?.clone();
        let new = NewProvider {
            provider_id: spec.provider_id,
            kind: spec.kind,
            display_name: spec.display_name,
            issuer: spec.issuer,
            client_id: spec.client_id,
            client_secret: spec.client_secret,
            scopes: spec.scopes,
            allow_email_linking: spec.allow_email_linking,
            allow_sign_up: spec.allow_sign_up.unwrap_or(true),
        };
        let (services, tenant_id, origin) =
            (&self.services, tenant.tenant_id(), &AuditOrigin::of(caller));
        let new = &new;
        let record = services
            .db
            .run(|tx| async move {
                let (context, master_key) = (&services.context, &services.master_key);
                providers::create(&tx, context, master_key, tenant_id, new.clone(), origin).await
            })
            .await?;
        Ok(self.provider_view(tenant_id, record))
    }

    /// Lists the tenant's providers (servers and operators).
    pub async fn list_oauth_providers(&self, caller: &Caller) -> DomainResult<Vec<ProviderView>> {
        let tenant_id = caller.require_server()?.tenant_id();
        let records = self
            .services
            .db
            .run(|tx| async move { providers::list(&tx, tenant_id).await })
            .await?;
        Ok(records
            .into_iter()
            .map(|record| self.provider_view(tenant_id, record))
            .collect())
    }

    /// One provider (servers and operators).
    pub async fn get_oauth_provider(
        &self,
        caller: &Caller,
        provider_id: &str,
    ) -> DomainResult<ProviderView> {
        let tenant_id = caller.require_server()?.tenant_id();
        let record = self
            .services
            .db
            .run(|tx| async move { providers::read(&tx, tenant_id, provider_id).await })
            .await?;
        Ok(self.provider_view(tenant_id, record))
    }

    /// Changes a provider (servers and operators).
    pub async fn update_oauth_provider(
        &self,
        caller: &Caller,
        provider_id: &str,
        update: ProviderUpdate,
    ) -> DomainResult<ProviderView> {
        let tenant_id = caller.require_server()?.tenant_id();
        let (services, origin, changes) = (&self.services, &AuditOrigin::of(caller), &update);
        let record = services
            .db
            .run(|tx| async move {
                let (context, master_key) = (&services.context, &services.master_key);
                let changes = changes.clone();
                providers::update(
                    &tx,
                    context,
                    master_key,
                    tenant_id,
                    provider_id,
                    changes,
                    origin,
                )
                .await
            })
            .await?;
        Ok(self.provider_view(tenant_id, record))
    }

    /// Deletes a provider (servers and operators).
    pub async fn delete_oauth_provider(
        &self,
        caller: &Caller,
        provider_id: &str,
    ) -> DomainResult<()> {
        let tenant_id = caller.require_server()?.tenant_id();
        let (services, origin) = (&self.services, &AuditOrigin::of(caller));
        services
            .db
            .run(|tx| async move {
                providers::delete(&tx, &services.context, tenant_id, provider_id, origin).await
            })
            .await
    }

    fn upstream_client(&self) -> DomainResult<&Arc<dyn UpstreamClient>> {
        self.upstream.as_ref().ok_or_else(|| {
            DomainError::OAuthUpstreamUnavailable("no upstream client on this node".to_owned())
        })
    }

    fn provider_view(&self, tenant_id: &str, record: ProviderRecord) -> ProviderView {
        ProviderView {
            redirect_uri: providers::redirect_uri(
                &self.services.public_url,
                tenant_id,
                &record.provider_id,
            ),
            provider_id: record.provider_id,
            kind: record.kind,
            display_name: record.display_name,
            issuer: record.issuer,
            client_id: record.client_id,
            scopes: record.scopes,
            allow_email_linking: record.allow_email_linking,
            allow_sign_up: record.allow_sign_up,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// A signed-in user names no user, or themselves.
fn own_user(me: uuid::Uuid, named: Option<&str>) -> DomainResult<uuid::Uuid> {
    match named.filter(|named| !named.is_empty()) {
        None => Ok(me),
        Some(named) if named == me.to_string() => Ok(me),
        Some(_) => Err(DomainError::PermissionDenied(
            "a user sees and changes only their own linked accounts",
        )),
    }
}
