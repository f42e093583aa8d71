//! Linked accounts and connected-account tokens through the facade.

use super::{ConnectedToken, LinkedAccountView, own_user};
use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::upstream::providers;
use crate::domain::upstream::tokens::Account;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::connected_account_actor::RefreshConnectedAccount;

impl Gatehouse {
    /// A user's links: the caller's own, or a named user's for servers and operators.
    pub async fn list_linked_accounts(
        &self,
        caller: &Caller,
        user_id: Option<&str>,
    ) -> DomainResult<Vec<LinkedAccountView>> {
        let tenant_id = caller.tenant()?.tenant_id();
        let user_id = match caller.acting_user()? {
            Some(me) => own_user(me, user_id)?,
            None => crate::api::parse_id("user_id", user_id.unwrap_or_default())?,
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
            crate::api::parse_id("user_id", user_id.unwrap_or_default())?
        } else {
            let (_, claims) = caller.require_recent_user(self.services.context.now(), false)?;
            own_user(crate::api::parse_id("sub", &claims.sub)?, user_id)?
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
        let user_id = crate::api::parse_id("user_id", user_id)?;
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
}
