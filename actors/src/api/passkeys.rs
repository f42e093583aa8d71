//! Passkeys: register (a signed-in user with a recent sign-in), sign in (anyone, with or
//! without an email), list, rename, remove. Ceremonies are stored, so any node finishes a
//! ceremony another began.

use uuid::Uuid;

use crate::access::Caller;
use crate::domain::attempts::{self, Reservation};
use crate::domain::audit::AuditOrigin;
use crate::domain::factors::changes::{self, Change, FactorChange};
use crate::domain::factors::passkeys::{self, Ceremony, PasskeyRecord};
use crate::domain::sessions::{AuthMethod, ClientInfo};
use crate::domain::sign_in::{self, SignInOutcome};
use crate::domain::users;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

use super::SignedIn;

/// What finishing a passkey sign-in did: the session, a failure to report after the spent
/// ceremony and the failure's slot are committed, or a refusal by the source's limit.
enum Finished {
    Session(SignInOutcome),
    Failed(DomainError),
    Limited(u64),
}

impl Gatehouse {
    /// Begins registering a passkey for the signed-in user (a recent sign-in required; a
    /// user who must enrol a second factor may).
    pub async fn begin_passkey_registration(&self, caller: &Caller) -> DomainResult<Ceremony> {
        let (tenant, claims) = caller.require_recent_user(self.services.context.now(), true)?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let (services, tenant) = (&self.services, tenant.as_ref());
        services
            .db
            .run(|tx| async move {
                let user = users::read_user(&tx, tenant.tenant_id(), user_id).await?;
                passkeys::begin_registration(&tx, &services.context, tenant, &user).await
            })
            .await
    }

    /// Finishes a registration: the new passkey. The user's other sessions are revoked, the
    /// change audited, `user.factor_added` emitted and a notice mailed.
    pub async fn finish_passkey_registration(
        &self,
        caller: &Caller,
        ceremony_id: &str,
        credential_json: &str,
        name: &str,
        client: &ClientInfo,
    ) -> DomainResult<PasskeyRecord> {
        let (tenant, claims) = caller.require_recent_user(self.services.context.now(), true)?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let session_id = super::parse_id("sid", &claims.sid)?;
        let ceremony_id = passkeys::parse_ceremony_id(ceremony_id)?;
        let (keys, tenant) = (self.email_keys(), tenant.as_ref());
        let origin = &AuditOrigin::of(caller);
        self.services
            .db
            .run(|tx| async move {
                let registered = passkeys::finish_registration(
                    &tx,
                    keys.context,
                    tenant,
                    user_id,
                    ceremony_id,
                    credential_json,
                    name,
                )
                .await?;
                let Ok(passkey) = registered else {
                    return Ok(registered);
                };
                let user = users::read_user(&tx, tenant.tenant_id(), user_id).await?;
                let change = FactorChange {
                    change: Change::Added,
                    factor: "passkey",
                    label: &passkey.name,
                    passkey_id: Some(passkey.passkey_id),
                    keep_session: Some(session_id),
                };
                changes::factor_changed(&tx, keys, tenant, &user, &change, origin, client).await?;
                Ok::<_, DomainError>(Ok(passkey))
            })
            .await?
    }

    /// Begins a passkey sign-in, for the user of `email` or (empty) any discoverable
    /// credential. The answer has the same shape whether or not the address has passkeys.
    pub async fn begin_passkey_sign_in(
        &self,
        caller: &Caller,
        email: &str,
    ) -> DomainResult<Ceremony> {
        let tenant = caller.tenant()?.clone();
        let email = Some(email.trim()).filter(|email| !email.is_empty());
        let (services, tenant) = (&self.services, tenant.as_ref());
        services
            .db
            .run(|tx| async move {
                let (context, master_key) = (&services.context, &services.master_key);
                passkeys::begin_sign_in(&tx, context, master_key, tenant, email).await
            })
            .await
    }

    /// Finishes a passkey sign-in: a session exactly like a password sign-in's (a
    /// user-verified passkey is two factors, so no MFA ticket). Every failure is
    /// `INVALID_CREDENTIALS`; failures count against the source address in storage, so the
    /// limit holds over every node (`RATE_LIMITED` with a retry time once it is used up).
    pub async fn finish_passkey_sign_in(
        &self,
        caller: &Caller,
        ceremony_id: &str,
        assertion_json: &str,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = caller.tenant()?.clone();
        let ceremony_id = passkeys::parse_ceremony_id(ceremony_id)?;
        let now = self.services.context.now();
        let slots = [attempts::passkey_source_slot(
            tenant.tenant_id(),
            &client.ip_address,
            now,
        )];
        let (services, tenant_ref, slots) = (&self.services, &tenant, &slots);
        let finished = services
            .db
            .run(|tx| async move {
                let context = &services.context;
                let tenant_id = tenant_ref.tenant_id();
                let source = client.ip_address.as_str();
                if let Reservation::Refused {
                    retry_after_seconds,
                } = attempts::reserve(&tx, context, tenant_id, slots, None, source).await?
                {
                    return Ok(Finished::Limited(retry_after_seconds));
                }
                let used =
                    passkeys::finish_sign_in(&tx, context, tenant_ref, ceremony_id, assertion_json)
                        .await;
                let used = match used {
                    Ok(used) => used,
                    Err(error @ DomainError::Storage(_)) => return Err(error),
                    Err(error) => return Ok(Finished::Failed(error)),
                };
                attempts::release(&tx, context, slots).await?;
                let method = AuthMethod::Passkey;
                let outcome =
                    sign_in::sign_in(&tx, context, tenant_ref, used.user_id, None, client, method)
                        .await?;
                Ok(Finished::Session(outcome))
            })
            .await?;
        match finished {
            Finished::Session(outcome) => self.signed_in_or_mfa(&tenant, outcome, "passkey"),
            Finished::Limited(retry_after_seconds) => {
                Err(DomainError::RateLimitedFor(retry_after_seconds))
            }
            Finished::Failed(error) => {
                metrics::counter!("gatehouse_sign_in_failures_total").increment(1);
                Err(error)
            }
        }
    }

    /// The signed-in user's passkeys; servers and operators name the user.
    pub async fn list_passkeys(
        &self,
        caller: &Caller,
        user_id: &str,
    ) -> DomainResult<Vec<PasskeyRecord>> {
        let tenant = caller.tenant()?;
        let user_id = self.passkey_owner(caller, user_id)?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move {
                users::read_user(&tx, tenant_id, user_id).await?;
                passkeys::list(&tx, tenant_id, user_id).await
            })
            .await
    }

    /// Renames one of the signed-in user's passkeys.
    pub async fn rename_passkey(
        &self,
        caller: &Caller,
        passkey_id: &str,
        name: &str,
    ) -> DomainResult<PasskeyRecord> {
        let (tenant, claims) = caller.require_user()?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let passkey_id = super::parse_id("passkey_id", passkey_id)?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move {
                passkeys::rename(&tx, tenant_id, user_id, passkey_id, name).await
            })
            .await
    }

    /// Removes one of the signed-in user's passkeys (a recent sign-in required): the other
    /// sessions are revoked, the change audited, emitted and mailed.
    pub async fn remove_passkey(
        &self,
        caller: &Caller,
        passkey_id: &str,
        client: &ClientInfo,
    ) -> DomainResult<()> {
        let (tenant, claims) = caller.require_recent_user(self.services.context.now(), false)?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let session_id = super::parse_id("sid", &claims.sid)?;
        let passkey_id = super::parse_id("passkey_id", passkey_id)?;
        let (keys, tenant) = (self.email_keys(), tenant.as_ref());
        let origin = &AuditOrigin::of(caller);
        self.services
            .db
            .run(|tx| async move {
                let tenant_id = tenant.tenant_id();
                let removed = passkeys::remove(&tx, tenant_id, user_id, passkey_id).await?;
                let user = users::read_user(&tx, tenant_id, user_id).await?;
                let change = FactorChange {
                    change: Change::Removed,
                    factor: "passkey",
                    label: &removed.name,
                    passkey_id: Some(passkey_id),
                    keep_session: Some(session_id),
                };
                changes::factor_changed(&tx, keys, tenant, &user, &change, origin, client).await
            })
            .await
            .map(drop)
    }

    fn passkey_owner(&self, caller: &Caller, user_id: &str) -> DomainResult<Uuid> {
        match caller.acting_user()? {
            Some(me) if user_id.is_empty() || user_id == me.to_string() => Ok(me),
            Some(_) => Err(DomainError::PermissionDenied(
                "clients see only their own passkeys",
            )),
            None => super::parse_id("user_id", user_id),
        }
    }
}
