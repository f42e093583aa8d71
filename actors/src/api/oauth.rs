//! Upstream sign-in, linked accounts and connected accounts through the domain facade.
//!
//! Providers are managed by servers and operators. The browser flow has no caller: the node's
//! HTTP endpoints pass the tenant and provider from the path ([`Gatehouse::start_oauth`],
//! [`Gatehouse::finish_oauth`]); the flow ends in a single-use code that the app exchanges
//! over gRPC with its client key ([`Gatehouse::exchange_oauth_code`]).

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::access::Caller;
use crate::api::SignedIn;
use crate::context::Timestamp;
use crate::domain::audit::AuditOrigin;
use crate::domain::email::flows;
use crate::domain::sessions::{AuthMethod, ClientInfo};
use crate::domain::sign_in;
use crate::domain::tenants::TenantState;
use crate::domain::tenants::redirects::check_redirect;
use crate::domain::upstream::callback::{self, Callback, Completion};
use crate::domain::upstream::flow::{self, FlowSecrets, FlowTarget, TicketRecord};
use crate::domain::upstream::providers::{self, NewProvider, ProviderChanges, ProviderRecord};
use crate::domain::upstream::tokens::Account;
use crate::domain::upstream::{AuthorizeRequest, CodeExchange, ProviderKind, UpstreamClient};
use crate::domain::users;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::connected_account_actor::RefreshConnectedAccount;
use gatehouse_protocol::error_code::ErrorCode;

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
        let changes = ProviderChanges {
            display_name: update.display_name,
            issuer: update.issuer,
            client_id: update.client_id,
            client_secret: update.client_secret,
            scopes: update.scopes,
            allow_email_linking: update.allow_email_linking,
            allow_sign_up: update.allow_sign_up,
        };
        let (services, origin, changes) = (&self.services, &AuditOrigin::of(caller), &changes);
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

    /// Begins a browser flow: stores the state and answers where to send the browser.
    pub async fn start_oauth(
        &self,
        tenant_id: &str,
        provider_id: &str,
        start: OAuthStart,
    ) -> DomainResult<OAuthRedirect> {
        let tenant = self.services.tenant(tenant_id).await?;
        let upstream = self.upstream_client()?;
        let settings = &tenant.record.settings;
        let redirect = check_redirect(settings, "redirect_url", &start.redirect_url)?.to_string();
        let extra_scopes = providers::clean_scopes(&start.extra_scopes)?;
        let services = &self.services;
        let provider = services
            .db
            .run(|tx| async move { providers::read(&tx, tenant_id, provider_id).await })
            .await?;
        let mut scopes = provider.scopes.clone();
        for scope in extra_scopes {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        let secrets = FlowSecrets::draw(&services.context);
        let request = AuthorizeRequest {
            redirect_uri: providers::redirect_uri(&services.public_url, tenant_id, provider_id),
            state: secrets.state.clone(),
            nonce: secrets.nonce.clone(),
            pkce_verifier: secrets.verifier.clone(),
            scopes: scopes.clone(),
        };
        let endpoint = provider.endpoint(&services.master_key, tenant_id)?;
        let authorize_url = upstream.authorization_url(&endpoint, &request).await?;
        let (secrets_ref, redirect_ref, scopes_ref) = (&secrets, &redirect, &scopes);
        let ticket = start
            .link_ticket
            .as_deref()
            .filter(|ticket| !ticket.is_empty());
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                let link = match ticket {
                    Some(ticket) => {
                        let record = flow::spend_ticket(
                            &tx,
                            context,
                            tenant_id,
                            provider_id,
                            redirect_ref,
                            ticket,
                        )
                        .await?;
                        Some((record.user_id, record.anonymous))
                    }
                    None => None,
                };
                let target = FlowTarget {
                    provider_id: provider_id.to_owned(),
                    redirect_url: redirect_ref.clone(),
                    link,
                    scopes: scopes_ref.clone(),
                };
                let master_key = &services.master_key;
                flow::store_flow(
                    &tx,
                    context,
                    master_key,
                    tenant_id,
                    secrets_ref,
                    target,
                    OAUTH_FLOW_TTL,
                )
            })
            .await?;
        metrics::counter!("gatehouse_oauth_flows_started_total").increment(1);
        Ok(OAuthRedirect {
            authorize_url,
            state_cookie: secrets.binding,
            cookie_max_age: OAUTH_FLOW_TTL,
        })
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
        let tenant = self.services.tenant(tenant_id).await?;
        let services = &self.services;
        let (state, cookie) = (callback.state.as_str(), callback.state_cookie.as_deref());
        let (spent, provider) = services
            .db
            .run(|tx| async move {
                let (context, master_key) = (&services.context, &services.master_key);
                let spent = flow::spend_flow(
                    &tx,
                    context,
                    master_key,
                    tenant_id,
                    provider_id,
                    state,
                    cookie,
                )
                .await?;
                let provider = match providers::read(&tx, tenant_id, provider_id).await {
                    Ok(provider) => Ok(provider),
                    Err(DomainError::OAuthProviderNotFound) => {
                        Err(DomainError::OAuthProviderNotFound)
                    }
                    Err(error) => return Err(error),
                };
                Ok::<_, DomainError>((spent, provider))
            })
            .await?;
        let redirect = Url::parse(&spent.record.redirect_url)
            .map_err(|error| DomainError::Internal(format!("stored redirect URL: {error}")))?;
        let outcome = self
            .redeem_callback(&tenant, provider, &spent, &callback)
            .await;
        let (key, value) = match outcome {
            Ok(Completion::SignIn(code)) => ("code", code),
            Ok(Completion::Linked) => ("linked", provider_id.to_owned()),
            Err(error) if matches!(error.code(), ErrorCode::Internal | ErrorCode::Conflict) => {
                return Err(error);
            }
            Err(error) => {
                tracing::info!(%error, provider_id, "upstream sign-in refused");
                ("error", error.code().as_str().to_owned())
            }
        };
        let outcome = if key == "error" { value.as_str() } else { key };
        metrics::counter!("gatehouse_oauth_callbacks_total", "outcome" => outcome.to_owned())
            .increment(1);
        let mut url = redirect;
        url.query_pairs_mut().append_pair(key, &value);
        Ok(url.to_string())
    }

    /// The provider's answer to a spent flow, then the link and sign-in rules.
    async fn redeem_callback(
        &self,
        tenant: &TenantState,
        provider: DomainResult<ProviderRecord>,
        spent: &flow::SpentFlow,
        callback: &OAuthCallback,
    ) -> DomainResult<Completion> {
        let provider = provider?;
        let code = match (&callback.error, &callback.code) {
            (None, Some(code)) if !code.is_empty() => code.clone(),
            (error, _) => {
                return Err(DomainError::OAuthUpstreamRejected(
                    error.clone().unwrap_or_else(|| "no code".to_owned()),
                ));
            }
        };
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let exchange = CodeExchange {
            code,
            redirect_uri: providers::redirect_uri(
                &services.public_url,
                tenant_id,
                &provider.provider_id,
            ),
            pkce_verifier: spent.verifier.clone(),
            nonce: spent.nonce.clone(),
        };
        let endpoint = provider.endpoint(&services.master_key, tenant_id)?;
        let mut identity = self
            .upstream_client()?
            .exchange_code(&endpoint, &exchange)
            .await?;
        if identity.tokens.scopes.is_empty() {
            identity.tokens.scopes = spent.record.scopes.clone();
        }
        let callback = Callback {
            context: &services.context,
            master_key: &services.master_key,
            tenant,
            provider: &provider,
            flow: &spent.record,
            identity: &identity,
            client: &callback.client,
            code_ttl: OAUTH_CODE_TTL,
        };
        services
            .db
            .run(|tx| async move { callback::complete(&tx, callback).await })
            .await
    }

    /// Spends a flow's single-use code for a session.
    pub async fn exchange_oauth_code(
        &self,
        caller: &Caller,
        code: &str,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = match caller {
            Caller::Client { tenant, .. } | Caller::Server { tenant } => tenant.clone(),
            Caller::Operator { .. } => {
                return Err(DomainError::PermissionDenied(
                    "a client or server key of the tenant is required",
                ));
            }
        };
        let (keys, tenant_ref) = (self.email_keys(), &tenant);
        let outcome = self
            .services
            .db
            .run(|tx| async move {
                let tenant_id = tenant_ref.tenant_id();
                let record = flow::spend_code(&tx, keys.context, tenant_id, code).await?;
                if !record.signed_up {
                    let user = users::read_user(&tx, tenant_id, record.user_id).await?;
                    flows::notify_new_sign_in(&tx, keys, tenant_ref, &user, client).await?;
                }
                let method = AuthMethod::Upstream;
                sign_in::sign_in(
                    &tx,
                    keys.context,
                    tenant_ref,
                    record.user_id,
                    None,
                    client,
                    method,
                )
                .await
            })
            .await?;
        self.signed_in_or_mfa(&tenant, outcome, "upstream")
    }

    /// A signed-in user's link flow (or an anonymous user's upgrade): the start URL.
    pub async fn begin_oauth_link(
        &self,
        caller: &Caller,
        provider_id: &str,
        redirect_url: &str,
        scopes: Vec<String>,
    ) -> DomainResult<LinkStart> {
        let now = self.services.context.now();
        let anonymous = caller.is_anonymous();
        let (tenant, claims) = if anonymous {
            caller.require_user()?
        } else {
            caller.require_recent_user(now, false)?
        };
        let user_id = super::parse_id("sub", &claims.sub)?;
        let tenant_id = tenant.tenant_id();
        let redirect = check_redirect(&tenant.record.settings, "redirect_url", redirect_url)?;
        let scopes = providers::clean_scopes(&scopes)?;
        let record = TicketRecord {
            user_id,
            anonymous,
            provider_id: provider_id.to_owned(),
            redirect_url: redirect.to_string(),
            expires_at: now.plus(OAUTH_FLOW_TTL),
        };
        let (services, record_ref) = (&self.services, &record);
        let ticket = services
            .db
            .run(|tx| async move {
                providers::read(&tx, tenant_id, provider_id).await?;
                flow::issue_ticket(&tx, &services.context, tenant_id, record_ref)
            })
            .await?;
        let start = format!(
            "{}/t/{tenant_id}/oauth/{provider_id}/start",
            services.public_url
        );
        let mut start_url = Url::parse(&start)
            .map_err(|error| DomainError::Internal(format!("public URL: {error}")))?;
        {
            let mut query = start_url.query_pairs_mut();
            query.append_pair("redirect_url", &record.redirect_url);
            query.append_pair("link", &ticket);
            if !scopes.is_empty() {
                query.append_pair("scope", &scopes.join(" "));
            }
        }
        Ok(LinkStart {
            start_url: start_url.to_string(),
            expires_at: record.expires_at,
        })
    }

    /// A user's links: the caller's own, or a named user's for servers and operators.
    pub async fn list_linked_accounts(
        &self,
        caller: &Caller,
        user_id: Option<&str>,
    ) -> DomainResult<Vec<LinkedAccountView>> {
        let tenant_id = caller.tenant()?.tenant_id();
        let user_id = match caller.acting_user()? {
            Some(me) => own_user(me, user_id)?,
            None => super::parse_id("user_id", user_id.unwrap_or_default())?,
        };
        let links =
            self.services
                .db
                .run(|tx| async move {
                    crate::domain::upstream::links::list(&tx, tenant_id, user_id).await
                })
                .await?;
        Ok(links
            .into_iter()
            .map(|view| LinkedAccountView {
                provider_id: view.link.provider_id,
                subject: view.link.subject,
                email: view.link.email,
                scopes: view.scopes,
                linked_at: view.link.linked_at,
                last_sign_in_at: view.link.last_sign_in_at,
                has_refresh_token: view.has_refresh_token,
            })
            .collect())
    }

    /// Removes a link, unless it is the user's last way to sign in.
    pub async fn unlink_oauth_account(
        &self,
        caller: &Caller,
        user_id: Option<&str>,
        provider_id: &str,
    ) -> DomainResult<()> {
        let tenant_id = caller.tenant()?.tenant_id();
        let user_id = if caller.is_trusted() {
            super::parse_id("user_id", user_id.unwrap_or_default())?
        } else {
            let (_, claims) = caller.require_recent_user(self.services.context.now(), false)?;
            own_user(super::parse_id("sub", &claims.sub)?, user_id)?
        };
        let (services, origin) = (&self.services, &AuditOrigin::of(caller));
        services
            .db
            .run(|tx| async move {
                crate::domain::upstream::links::unlink(
                    &tx,
                    &services.context,
                    tenant_id,
                    user_id,
                    provider_id,
                    origin,
                )
                .await
            })
            .await
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
        let tenant_id = caller.require_server()?.tenant_id();
        let user_id = super::parse_id("user_id", user_id)?;
        let scopes = providers::clean_scopes(&scopes)?;
        let account = Account {
            tenant: tenant_id,
            user_id,
            provider_id,
        };
        let record = self
            .services
            .db
            .run(|tx| async move { account.read(&tx).await })
            .await?
            .ok_or(DomainError::OAuthAccountNotLinked)?;
        let missing = record.missing_scopes(&scopes);
        if !missing.is_empty() {
            return Err(DomainError::OAuthScopesMissing(missing));
        }
        if record.revoked {
            return Err(DomainError::OAuthRefreshRevoked);
        }
        let grant = if !force_refresh && record.is_fresh(self.services.context.now()) {
            account.grant(&self.services.master_key, &record)?
        } else {
            self.route(RefreshConnectedAccount {
                tenant: tenant_id.to_owned(),
                user_id,
                provider_id: provider_id.to_owned(),
                force_refresh,
                seen_version: record.version,
            })
            .await?
        };
        let missing: Vec<&String> = scopes
            .iter()
            .filter(|scope| !grant.scopes.contains(scope))
            .collect();
        if !missing.is_empty() {
            let missing: Vec<&str> = missing.into_iter().map(String::as_str).collect();
            return Err(DomainError::OAuthScopesMissing(missing.join(" ")));
        }
        Ok(ConnectedToken {
            access_token: grant.access_token,
            expires_at: grant.expires_at,
            scopes: grant.scopes,
        })
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
