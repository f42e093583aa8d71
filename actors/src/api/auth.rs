//! Password sign-up and sign-in, refresh and sign-out.

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::email::flows::{self, Keys};
use crate::domain::passwords::{HashSource, validate_new_password, validate_password_input};
use crate::domain::sessions::{
    AuthMethod, ClientInfo, RefreshToken, Refreshed, RevocationReason, SessionRecord,
};
use crate::domain::sign_in::{self, NewSession, SignInOutcome};
use crate::domain::tenants::TenantState;
use crate::domain::users::{
    self, NewUser, UserRecord, anonymous, parse_email, validate_user_display_name,
};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::services::AccessToken;
use crate::runtime::session_actor::{RefreshSession, RevokeSession};

/// A new session with its tokens (`Debug` leaves the tokens out).
#[derive(Clone)]
pub struct SignedIn {
    /// The signed-in user.
    pub user: UserRecord,
    /// The new session.
    pub session: SessionRecord,
    /// Access token.
    pub access_token: AccessToken,
    /// First refresh token of the session.
    pub refresh_token: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("user_id", &self.user.user_id)
            .field("session_id", &self.session.session_id)
            .finish_non_exhaustive()
    }
}

impl Gatehouse {
    /// Creates a user with a password and signs it in.
    pub async fn sign_up_with_password(
        &self,
        caller: &Caller,
        email: &str,
        password: &str,
        display_name: &str,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = caller.tenant()?.clone();
        if matches!(caller, Caller::Client { .. })
            && !tenant.record.settings.password_sign_up_enabled
        {
            return Err(DomainError::PermissionDenied(
                "password sign-up is disabled for this tenant",
            ));
        }
        let email = parse_email(email)?;
        validate_new_password(password)?;
        validate_user_display_name(display_name)?;
        let source = HashSource::new(tenant.tenant_id(), &client.ip_address);
        let password_hash = self.services.hasher.hash(source, password).await?;
        let services = &self.services;
        let tenant_ref = &tenant;
        if let Some(user_id) = self.anonymous_caller(caller)? {
            // Signed in as an anonymous user: that user becomes this one, in place.
            let upgrade = anonymous::Upgrade {
                email,
                email_verified: false,
                password_hash: Some(password_hash),
                display_name: Some(display_name.trim().to_owned()),
            };
            let upgrade = &upgrade;
            let upgraded = services
                .db
                .run(|tx| async move {
                    let context = &services.context;
                    let upgrade = upgrade.clone();
                    anonymous::sign_up_in_place(&tx, context, tenant_ref, user_id, upgrade, client)
                        .await
                })
                .await?;
            metrics::counter!("gatehouse_sign_ups_total", "method" => "anonymous_upgrade")
                .increment(1);
            return self.signed_in(&tenant, upgraded);
        }
        let signed_up = services
            .db
            .run(|tx| {
                let new_user = NewUser {
                    email: email.clone(),
                    display_name: display_name.trim().to_owned(),
                    password_hash: Some(password_hash.clone()),
                    email_verified: false,
                };
                async move {
                    sign_in::sign_up(
                        &tx,
                        &services.context,
                        tenant_ref,
                        new_user,
                        client,
                        AuthMethod::Password,
                    )
                    .await
                }
            })
            .await?;
        metrics::counter!("gatehouse_sign_ups_total", "method" => "password").increment(1);
        self.signed_in(&tenant, signed_up)
    }

    /// Signs in with email and password. Unknown email and wrong password give the same
    /// error after the same work; repeated failures per account and per source are limited.
    pub async fn sign_in_with_password(
        &self,
        caller: &Caller,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = caller.tenant()?.clone();
        let email = parse_email(email)?;
        validate_password_input(password)?;
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let now = services.context.now();
        let account_key = format!("{tenant_id}\u{0}{}", email.normalized);
        let source_key = format!("{tenant_id}\u{0}{}", client.ip_address);
        if !self.failures_by_account.check(&account_key, now)
            || !self.failures_by_source.check(&source_key, now)
        {
            metrics::counter!("gatehouse_sign_in_rate_limited_total").increment(1);
            return Err(DomainError::RateLimited);
        }
        let normalized = email.normalized.as_str();
        let user = services
            .db
            .run(|tx| async move { users::find_user_by_email(&tx, tenant_id, normalized).await })
            .await?;
        let stored_hash = user.as_ref().and_then(|user| user.password_hash.as_deref());
        let source = HashSource::new(tenant_id, &client.ip_address);
        let verification = services
            .hasher
            .verify(source, password, stored_hash)
            .await?;
        let user = match user {
            // A secondary address is not a sign-in name.
            Some(user) if verification.matches && user.email_normalized == normalized => user,
            _ => {
                self.failures_by_account.spend(&account_key, now);
                self.failures_by_source.spend(&source_key, now);
                metrics::counter!("gatehouse_sign_in_failures_total").increment(1);
                return Err(DomainError::InvalidCredentials);
            }
        };
        user.ensure_may_sign_in()?;
        let new_hash = if verification.needs_rehash {
            metrics::counter!("gatehouse_password_rehashes_total").increment(1);
            Some(services.hasher.hash(source, password).await?)
        } else {
            None
        };
        let user_id = user.user_id;
        let new_hash = new_hash.as_deref();
        let tenant_ref = &tenant;
        let keys = Keys {
            context: &services.context,
            master_key: &services.master_key,
        };
        let user_ref = &user;
        let signed_in = services
            .db
            .run(|tx| async move {
                flows::notify_new_sign_in(&tx, keys, tenant_ref, user_ref, client).await?;
                let method = AuthMethod::Password;
                sign_in::sign_in(
                    &tx,
                    keys.context,
                    tenant_ref,
                    user_id,
                    new_hash,
                    client,
                    method,
                )
                .await
            })
            .await?;
        self.signed_in_or_mfa(&tenant, signed_in, "password")
    }

    /// The session of a first factor that succeeded, or `MFA_REQUIRED` with its ticket.
    pub(crate) fn signed_in_or_mfa(
        &self,
        tenant: &TenantState,
        outcome: SignInOutcome,
        method: &'static str,
    ) -> DomainResult<SignedIn> {
        match outcome {
            SignInOutcome::Session(session) => {
                metrics::counter!("gatehouse_sign_ins_total", "method" => method).increment(1);
                self.signed_in(tenant, *session)
            }
            SignInOutcome::MfaRequired(challenge) => Err(DomainError::MfaRequired(challenge)),
        }
    }

    /// Signs the first access token of a new session.
    pub(crate) fn signed_in(
        &self,
        tenant: &TenantState,
        new: NewSession,
    ) -> DomainResult<SignedIn> {
        let NewSession {
            user,
            session,
            refresh_token,
            permissions,
        } = new;
        let access_token =
            self.services
                .issue_access_token(tenant, &session, permissions, user.email_verified)?;
        Ok(SignedIn {
            user,
            session,
            access_token,
            refresh_token,
        })
    }

    /// Spends a refresh token for a new pair, through the session's actor.
    pub async fn refresh_session(
        &self,
        caller: &Caller,
        refresh_token: &str,
    ) -> DomainResult<Refreshed> {
        let tenant = caller.tenant()?;
        let token = RefreshToken::parse(refresh_token)?;
        let result = self
            .route(RefreshSession {
                tenant: tenant.tenant_id().to_owned(),
                token,
            })
            .await;
        let outcome = match &result {
            Ok(_) => "rotated",
            Err(error) => error.code().as_str(),
        };
        metrics::counter!("gatehouse_refreshes_total", "outcome" => outcome).increment(1);
        result
    }

    /// Ends a session, named by its refresh token or by the caller's access token.
    pub async fn sign_out(&self, caller: &Caller, refresh_token: Option<&str>) -> DomainResult<()> {
        let (tenant, token, session_id) = match refresh_token.filter(|token| !token.is_empty()) {
            Some(text) => {
                let token = RefreshToken::parse(text)?;
                let session_id = token.session_id;
                (caller.tenant()?, Some(token), session_id)
            }
            None => {
                let (tenant, claims) = caller.require_user_even_restricted()?;
                (tenant, None, super::parse_id("sid", &claims.sid)?)
            }
        };
        self.route(RevokeSession {
            tenant: tenant.tenant_id().to_owned(),
            session_id,
            reason: RevocationReason::SignOut,
            token,
            origin: AuditOrigin::of(caller),
        })
        .await
        .map(|_| ())
    }
}
