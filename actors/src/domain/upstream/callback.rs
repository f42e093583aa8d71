//! What a callback whose code the provider redeemed leads to, in one transaction: sign in
//! the user linked to the upstream account, link it to the flow's user, upgrade an
//! anonymous user in place, link by a verified email where the provider allows it, or sign
//! up a new user. A sign-in ends in a single-use code for the app; the connected account's
//! tokens and the link's last sign-in are stored either way.

use std::time::Duration;

use gatehouse_storage::Transaction;
use uuid::Uuid;

use super::UpstreamIdentity;
use super::flow::{self, CodeRecord, FlowRecord};
use super::links::{self, LinkRecord};
use super::providers::ProviderRecord;
use super::tokens::Account;
use crate::context::Context;
use crate::domain::audit::AuditOrigin;
use crate::domain::crypto::MasterKey;
use crate::domain::sessions::ClientInfo;
use crate::domain::tenants::TenantState;
use crate::domain::users::emails::AddressOf;
use crate::domain::users::{
    self, Email, NewUser, UserRecord, anonymous, validate_user_display_name,
};
use crate::error::{DomainError, DomainResult};

/// How a callback ended.
#[derive(Clone, PartialEq, Eq)]
pub enum Completion {
    /// A sign-in: the single-use code for the app (`?code=`).
    SignIn(String),
    /// The upstream account was linked to the flow's user (`?linked=`).
    Linked,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Completion::SignIn(_) => "SignIn(..)",
            Completion::Linked => "Linked",
        })
    }
}

/// Everything a callback's transaction works with.
#[derive(Debug, Clone, Copy)]
pub struct Callback<'a> {
    /// Clock and randomness.
    pub context: &'a Context,
    /// Seals the tokens.
    pub master_key: &'a MasterKey,
    /// The tenant.
    pub tenant: &'a TenantState,
    /// The provider.
    pub provider: &'a ProviderRecord,
    /// The spent flow.
    pub flow: &'a FlowRecord,
    /// The account the provider vouched for.
    pub identity: &'a UpstreamIdentity,
    /// The browser.
    pub client: &'a ClientInfo,
    /// Lifetime of the sign-in code.
    pub code_ttl: Duration,
}

impl Callback<'_> {
    fn tenant_id(&self) -> &str {
        self.tenant.tenant_id()
    }

    fn origin(&self, user_id: Uuid) -> AuditOrigin {
        AuditOrigin {
            actor: format!("user:{user_id}"),
            source_ip: self.client.ip_address.clone(),
        }
    }

    fn email_text(&self) -> String {
        self.identity.email.clone().unwrap_or_default()
    }

    /// The upstream email, parsed; an account without one cannot create or upgrade a user.
    fn email(&self) -> DomainResult<Option<Email>> {
        match self
            .identity
            .email
            .as_deref()
            .filter(|email| !email.is_empty())
        {
            Some(email) => users::parse_email(email).map(Some).map_err(|_| {
                DomainError::OAuthUpstreamRejected("the provider sent an invalid email".to_owned())
            }),
            None => Ok(None),
        }
    }

    fn display_name(&self) -> Option<String> {
        self.identity
            .display_name
            .as_ref()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty() && validate_user_display_name(name).is_ok())
    }

    async fn link(&self, tx: &Transaction, user_id: Uuid) -> DomainResult<LinkRecord> {
        let subject = &self.identity.subject;
        links::link(
            tx,
            self.context,
            self.tenant_id(),
            user_id,
            &self.provider.provider_id,
            &self.provider.issuer,
            subject,
            &self.email_text(),
            &self.origin(user_id),
        )
        .await
    }

    async fn store_tokens(&self, tx: &Transaction, user_id: Uuid) -> DomainResult<()> {
        let account = Account {
            tenant: self.tenant_id(),
            user_id,
            provider_id: &self.provider.provider_id,
        };
        let previous = account.read(tx).await?;
        let tokens = &self.identity.tokens;
        account.store(tx, self.context, self.master_key, previous.as_ref(), tokens)?;
        Ok(())
    }

    /// Records the sign-in on the link, stores the tokens and issues the app's code.
    async fn sign_in(
        &self,
        tx: &Transaction,
        user_id: Uuid,
        signed_up: bool,
    ) -> DomainResult<Completion> {
        let tenant_id = self.tenant_id();
        let provider_id = &self.provider.provider_id;
        let mut link = links::read_link(tx, tenant_id, user_id, provider_id)
            .await?
            .ok_or_else(|| DomainError::Internal("a sign-in without its link".to_owned()))?;
        link.last_sign_in_at = Some(self.context.now());
        link.email = self.email_text();
        links::write_link(tx, tenant_id, user_id, &link)?;
        self.store_tokens(tx, user_id).await?;
        let record = CodeRecord {
            user_id,
            provider_id: provider_id.clone(),
            subject: self.identity.subject.clone(),
            signed_up,
            expires_at: self.context.now().plus(self.code_ttl),
        };
        let code = flow::issue_code(tx, self.context, tenant_id, &record)?;
        Ok(Completion::SignIn(code))
    }

    /// A user who already has the upstream email: linked only when the provider says the
    /// address is verified, allows email linking, and the user has verified the address
    /// here too. Without the last check, whoever registered the address first with a
    /// password (never proving they own it) would share the account of its real owner.
    async fn link_by_email(
        &self,
        tx: &Transaction,
        user: &UserRecord,
        normalized: &str,
    ) -> DomainResult<Completion> {
        let verified_here = matches!(
            user.address(normalized),
            AddressOf::Primary { verified: true } | AddressOf::Secondary { verified: true }
        );
        if !(self.identity.email_verified && self.provider.allow_email_linking && verified_here) {
            return Err(DomainError::OAuthAccountExists);
        }
        self.link(tx, user.user_id).await?;
        self.sign_in(tx, user.user_id, false).await
    }

    async fn upgrade(&self, tx: &Transaction, user_id: Uuid) -> DomainResult<Completion> {
        let tenant_id = self.tenant_id();
        let email = self.email()?.ok_or_else(no_email)?;
        if let Some(user) = users::find_user_by_email(tx, tenant_id, &email.normalized).await? {
            // As with code sign-in: the address's user signs in; the anonymous one expires.
            return self.link_by_email(tx, &user, &email.normalized).await;
        }
        let upgrade = anonymous::Upgrade {
            email,
            email_verified: self.identity.email_verified,
            password_hash: None,
            display_name: self.display_name(),
        };
        let settings = &self.tenant.record.settings;
        let origin = self.origin(user_id);
        anonymous::upgrade_anonymous(
            tx,
            self.context,
            tenant_id,
            settings,
            user_id,
            upgrade,
            &origin,
        )
        .await?;
        self.link(tx, user_id).await?;
        self.sign_in(tx, user_id, true).await
    }

    async fn sign_up(&self, tx: &Transaction) -> DomainResult<Completion> {
        let email = self.email()?.ok_or_else(no_email)?;
        if let Some(user) =
            users::find_user_by_email(tx, self.tenant_id(), &email.normalized).await?
        {
            return self.link_by_email(tx, &user, &email.normalized).await;
        }
        if !self.provider.allow_sign_up {
            return Err(DomainError::OAuthSignUpDisabled);
        }
        let new_user = NewUser {
            email,
            display_name: self.display_name().unwrap_or_default(),
            password_hash: None,
            email_verified: self.identity.email_verified,
        };
        let user = users::create_user(tx, self.context, self.tenant_id(), new_user).await?;
        self.link(tx, user.user_id).await?;
        self.sign_in(tx, user.user_id, true).await
    }
}

fn no_email() -> DomainError {
    DomainError::OAuthUpstreamRejected("the provider sent no email address".to_owned())
}

/// Applies the link and sign-in rules to a redeemed callback, in `tx`.
pub async fn complete(tx: &Transaction, callback: Callback<'_>) -> DomainResult<Completion> {
    let identity = callback.identity;
    if identity.subject.is_empty() || identity.subject.len() > 255 {
        return Err(DomainError::OAuthUpstreamRejected(
            "the provider sent no usable subject".to_owned(),
        ));
    }
    let tenant_id = callback.tenant_id();
    let provider_id = &callback.provider.provider_id;
    let issuer = &callback.provider.issuer;
    let linked = links::linked_user(tx, tenant_id, provider_id, issuer, &identity.subject).await?;
    match (
        callback.flow.link_user,
        callback.flow.link_anonymous,
        linked,
    ) {
        // An anonymous user whose upstream account belongs to someone: that one signs in.
        (Some(_), true, Some(user_id)) => callback.sign_in(tx, user_id, false).await,
        (Some(user_id), true, None) => callback.upgrade(tx, user_id).await,
        (Some(user_id), false, _) => {
            users::read_user(tx, tenant_id, user_id).await?;
            callback.link(tx, user_id).await?;
            callback.store_tokens(tx, user_id).await?;
            Ok(Completion::Linked)
        }
        (None, _, Some(user_id)) => callback.sign_in(tx, user_id, false).await,
        (None, _, None) => callback.sign_up(tx).await,
    }
}
