//! The browser flow of upstream sign-in: its start and callback (no caller: the node's HTTP
//! endpoints pass the tenant and provider from the path), the exchange of the single-use code
//! for a session, and the link flow's start.

use gatehouse_protocol::error_code::ErrorCode;
use url::Url;

use super::{LinkStart, OAUTH_CODE_TTL, OAUTH_FLOW_TTL, OAuthCallback, OAuthRedirect, OAuthStart};
use crate::access::Caller;
use crate::api::SignedIn;
use crate::domain::email::flows;
use crate::domain::sessions::{AuthMethod, ClientInfo};
use crate::domain::sign_in;
use crate::domain::tenants::TenantState;
use crate::domain::tenants::redirects::check_redirect;
use crate::domain::upstream::callback::{self, Callback, Completion};
use crate::domain::upstream::flow::{self, FlowSecrets, FlowTarget, TicketRecord};
use crate::domain::upstream::providers::{self, ProviderRecord};
use crate::domain::upstream::{AuthorizeRequest, CodeExchange};
use crate::domain::users;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// Abandoned flows cleared by each start (at the rate new flows come in).
const SWEEP_PER_START: usize = 8;

impl Gatehouse {
    /// Begins a browser flow: stores the state and answers where to send the browser.
    pub async fn start_oauth(
        &self,
        tenant_id: &str,
        provider_id: &str,
        start: OAuthStart,
    ) -> DomainResult<OAuthRedirect> {
        let tenant = self.services.tenant(tenant_id).await?;
        let source_key = format!("{tenant_id}\u{0}{}", start.client.ip_address);
        if !self
            .oauth_starts_by_source
            .spend(&source_key, self.services.context.now())
        {
            metrics::counter!("gatehouse_oauth_starts_rate_limited_total").increment(1);
            return Err(DomainError::RateLimited);
        }
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
                )?;
                flow::sweep_expired_flows(&tx, tenant_id, context.now(), SWEEP_PER_START).await
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
        let user_id = crate::api::parse_id("sub", &claims.sub)?;
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
}
