//! TOTP, recovery codes, completing a sign-in with a second factor, and what operators do
//! with a user's factors (list, remove, unlock).

use gatehouse_storage::Transaction;
use uuid::Uuid;

use crate::access::Caller;
use crate::domain::attempts;
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::factors::changes::{self, Change, FactorChange};
use crate::domain::factors::mfa::{self, Completion, SecondProof};
use crate::domain::factors::passkeys::{self, PasskeyRecord};
use crate::domain::factors::recovery::RecoveryCodes;
use crate::domain::factors::totp::{TotpEnrolment, TotpFactor};
use crate::domain::factors::{self, FactorsRecord};
use crate::domain::sessions::ClientInfo;
use crate::domain::tenants::TenantState;
use crate::domain::users::{self, UserRecord};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

use super::SignedIn;

/// A user's factors as operators and the user see them (never a secret).
#[derive(Debug, Clone)]
pub struct FactorSummary {
    /// The TOTP app, if enrolment began.
    pub totp: Option<TotpFactor>,
    /// Unused recovery codes.
    pub recovery_codes_remaining: usize,
    /// Passkeys.
    pub passkeys: Vec<PasskeyRecord>,
    /// Failed second-factor tries in the current window.
    pub recent_failures: usize,
    /// Until when unknown sources may not try the user's password (the account-wide ceiling
    /// of `domain::attempts` is empty), if they may not now.
    pub password_locked_until: Option<crate::context::Timestamp>,
}

/// What an unlock cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlocked {
    /// Failed second-factor tries forgotten.
    pub cleared_failures: usize,
    /// Password-attempt buckets of the account reset.
    pub cleared_password_limits: usize,
}

/// Which factor an operator removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorRef {
    /// The TOTP app (and with it the recovery codes).
    Totp,
    /// One passkey.
    Passkey(Uuid),
}

/// A client user acting on their own factors: the tenant, the user and the session.
struct Me {
    tenant: std::sync::Arc<TenantState>,
    user_id: Uuid,
    session_id: Uuid,
}

impl Gatehouse {
    /// The signed-in client user, with a sign-in recent enough for a factor change.
    fn me_for_factor_change(&self, caller: &Caller) -> DomainResult<Me> {
        let (tenant, claims) = caller.require_recent_user(self.services.context.now(), true)?;
        Ok(Me {
            tenant: tenant.clone(),
            user_id: super::parse_id("sub", &claims.sub)?,
            session_id: super::parse_id("sid", &claims.sid)?,
        })
    }

    /// Runs a factor change of the signed-in user: `change` edits the factor record and
    /// says what changed, then the change's consequences follow in the same transaction.
    async fn change_my_factors<T, F>(
        &self,
        caller: &Caller,
        client: &ClientInfo,
        change: F,
    ) -> DomainResult<T>
    where
        T: Send,
        F: Fn(&mut FactorsRecord, &UserRecord) -> DomainResult<(T, Option<FactorChange<'static>>)>
            + Sync,
    {
        let me = self.me_for_factor_change(caller)?;
        let (keys, me_ref, change) = (self.email_keys(), &me, &change);
        let origin = &AuditOrigin::of(caller);
        self.services
            .db
            .run(|tx| async move {
                let tenant_id = me_ref.tenant.tenant_id();
                let user = users::read_user(&tx, tenant_id, me_ref.user_id).await?;
                let mut record = factors::read_factors(&tx, tenant_id, me_ref.user_id).await?;
                let (result, factor_change) = change(&mut record, &user)?;
                record.version += 1;
                factors::write_factors(&tx, tenant_id, me_ref.user_id, &record)?;
                if let Some(mut factor_change) = factor_change {
                    factor_change.keep_session = Some(me_ref.session_id);
                    let tenant = &me_ref.tenant;
                    changes::factor_changed(
                        &tx,
                        keys,
                        tenant,
                        &user,
                        &factor_change,
                        origin,
                        client,
                    )
                    .await?;
                }
                Ok(result)
            })
            .await
    }

    /// Begins TOTP enrolment: the secret, its `otpauth://` URI and a QR code, shown once.
    /// The app is a factor once `confirm_totp` accepts a first code.
    pub async fn enroll_totp(
        &self,
        caller: &Caller,
        client: &ClientInfo,
    ) -> DomainResult<TotpEnrolment> {
        let services = &self.services;
        self.change_my_factors(caller, client, |record, user| {
            if record.has_totp() {
                return Err(DomainError::FactorAlreadyEnrolled);
            }
            let tenant_name = caller.tenant()?.record.display_name.clone();
            let (factor, enrolment) = TotpFactor::enrol(
                &services.context,
                &services.master_key,
                caller.tenant()?.tenant_id(),
                user.user_id,
                &tenant_name,
                &user.email,
            )?;
            record.totp = Some(factor);
            Ok((enrolment, None))
        })
        .await
    }

    /// Confirms TOTP enrolment with a first code. Returns the ten recovery codes, shown once.
    pub async fn confirm_totp(
        &self,
        caller: &Caller,
        code: &str,
        client: &ClientInfo,
    ) -> DomainResult<Vec<String>> {
        let services = &self.services;
        let now = services.context.now();
        self.change_my_factors(caller, client, |record, user| {
            let tenant_id = caller.tenant()?.tenant_id();
            record.check_not_locked(now)?;
            let Some(factor) = record.totp.as_mut() else {
                return Err(DomainError::FactorNotFound);
            };
            if factor.confirmed_at.is_some() {
                return Err(DomainError::FactorAlreadyEnrolled);
            }
            if !factor.verify(&services.master_key, tenant_id, user.user_id, code, now)? {
                return Err(DomainError::InvalidCode);
            }
            factor.confirmed_at = Some(now);
            let (set, codes) = RecoveryCodes::generate(
                &services.context,
                &services.master_key,
                tenant_id,
                user.user_id,
            );
            record.recovery = Some(set);
            let change = FactorChange {
                change: Change::Added,
                factor: "totp",
                label: "authenticator app",
                passkey_id: None,
                keep_session: None,
            };
            Ok((codes, Some(change)))
        })
        .await
    }

    /// Removes the user's TOTP app and recovery codes (a recent sign-in required).
    pub async fn disable_totp(&self, caller: &Caller, client: &ClientInfo) -> DomainResult<()> {
        self.change_my_factors(caller, client, |record, _| {
            if record.totp.take().is_none() {
                return Err(DomainError::FactorNotFound);
            }
            record.recovery = None;
            let change = FactorChange {
                change: Change::Removed,
                factor: "totp",
                label: "authenticator app",
                passkey_id: None,
                keep_session: None,
            };
            Ok(((), Some(change)))
        })
        .await
    }

    /// Replaces the user's recovery codes with ten new ones, shown once.
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Caller,
        client: &ClientInfo,
    ) -> DomainResult<Vec<String>> {
        let services = &self.services;
        self.change_my_factors(caller, client, |record, user| {
            if !record.has_totp() {
                return Err(DomainError::FactorNotFound);
            }
            let (set, codes) = RecoveryCodes::generate(
                &services.context,
                &services.master_key,
                caller.tenant()?.tenant_id(),
                user.user_id,
            );
            record.recovery = Some(set);
            let change = FactorChange {
                change: Change::Added,
                factor: "recovery_codes",
                label: "recovery codes",
                passkey_id: None,
                keep_session: None,
            };
            Ok((codes, Some(change)))
        })
        .await
    }

    /// Completes a sign-in that answered `MFA_REQUIRED`: the session, when the second
    /// factor is right. A wrong one counts against the ticket (five tries) and the user's
    /// failed-try window, which holds across the cluster.
    pub async fn complete_mfa(
        &self,
        caller: &Caller,
        ticket: &str,
        proof: SecondProof<'_>,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = caller.tenant()?.clone();
        if ticket.is_empty() {
            return Err(DomainError::invalid("ticket", "must not be empty"));
        }
        let services = &self.services;
        let tenant_ref = &tenant;
        let completion = services
            .db
            .run(|tx| async move {
                let (context, master_key) = (&services.context, &services.master_key);
                mfa::complete(&tx, context, master_key, tenant_ref, ticket, proof, client).await
            })
            .await?;
        match completion {
            Completion::Session(session) => {
                metrics::counter!("gatehouse_sign_ins_total", "method" => "mfa").increment(1);
                let mut signed_in = self.signed_in(&tenant, *session)?;
                let user_id = signed_in.user.user_id;
                signed_in.device_token = Some(self.new_device_token(tenant.tenant_id(), user_id));
                Ok(signed_in)
            }
            Completion::Failed(error) => Err(error),
        }
    }

    /// A user's factors: a client sees its own, servers and operators name the user.
    pub async fn list_factors(
        &self,
        caller: &Caller,
        user_id: &str,
    ) -> DomainResult<FactorSummary> {
        let tenant = caller.tenant()?;
        let user_id = match caller.acting_user()? {
            Some(me) if user_id.is_empty() || user_id == me.to_string() => me,
            Some(_) => {
                return Err(DomainError::PermissionDenied(
                    "clients see only their own factors",
                ));
            }
            None => super::parse_id("user_id", user_id)?,
        };
        let tenant_id = tenant.tenant_id();
        let now = self.services.context.now();
        self.services
            .db
            .run(|tx| async move { summary(&tx, tenant_id, user_id, now).await })
            .await
    }

    /// Removes a factor of a user for a server or operator (a user who lost their device).
    pub async fn remove_user_factor(
        &self,
        caller: &Caller,
        user_id: &str,
        factor: FactorRef,
    ) -> DomainResult<u32> {
        let tenant = caller.require_server()?.clone();
        let user_id = super::parse_id("user_id", user_id)?;
        let (keys, tenant_ref) = (self.email_keys(), &tenant);
        let origin = &AuditOrigin::of(caller);
        let client = &ClientInfo::default();
        self.services
            .db
            .run(|tx| async move {
                let tenant_id = tenant_ref.tenant_id();
                let user = users::read_user(&tx, tenant_id, user_id).await?;
                let (label, passkey_id, kind) = match factor {
                    FactorRef::Totp => {
                        let mut record = factors::read_factors(&tx, tenant_id, user_id).await?;
                        if record.totp.take().is_none() {
                            return Err(DomainError::FactorNotFound);
                        }
                        record.recovery = None;
                        record.version += 1;
                        factors::write_factors(&tx, tenant_id, user_id, &record)?;
                        ("authenticator app".to_owned(), None, "totp")
                    }
                    FactorRef::Passkey(passkey_id) => {
                        let removed = passkeys::remove(&tx, tenant_id, user_id, passkey_id).await?;
                        (removed.name, Some(passkey_id), "passkey")
                    }
                };
                let change = FactorChange {
                    change: Change::Removed,
                    factor: kind,
                    label: &label,
                    passkey_id,
                    keep_session: None,
                };
                changes::factor_changed(&tx, keys, tenant_ref, &user, &change, origin, client).await
            })
            .await
    }

    /// Clears a user's failed-try lockouts across the cluster: second factors and the
    /// password-attempt limits of the account (per source, per device, unknown sources),
    /// audited.
    pub async fn unlock_user(&self, caller: &Caller, user_id: &str) -> DomainResult<Unlocked> {
        let tenant = caller.require_server()?;
        let user_id = super::parse_id("user_id", user_id)?;
        let tenant_id = tenant.tenant_id();
        let (context, origin) = (&self.services.context, &AuditOrigin::of(caller));
        self.services
            .db
            .run(|tx| async move {
                let user = users::read_user(&tx, tenant_id, user_id).await?;
                let mut record = factors::read_factors(&tx, tenant_id, user_id).await?;
                let cleared_failures = record.failures.len();
                record.failures.clear();
                record.version += 1;
                factors::write_factors(&tx, tenant_id, user_id, &record)?;
                let account = &user.email_normalized;
                let cleared_password_limits =
                    attempts::clear_account(&tx, tenant_id, account).await?;
                let audit = origin.event(
                    AuditAction::UserUnlock,
                    format!("user:{user_id}"),
                    serde_json::json!({
                        "cleared_failures": cleared_failures,
                        "cleared_password_limits": cleared_password_limits,
                    }),
                );
                record_change(&tx, context, tenant_id, Some(audit), []).await?;
                Ok::<_, DomainError>(Unlocked {
                    cleared_failures,
                    cleared_password_limits,
                })
            })
            .await
    }
}

async fn summary(
    tx: &Transaction,
    tenant_id: &str,
    user_id: Uuid,
    now: crate::context::Timestamp,
) -> DomainResult<FactorSummary> {
    let user = users::read_user(tx, tenant_id, user_id).await?;
    let record = factors::read_factors(tx, tenant_id, user_id).await?;
    let account = &user.email_normalized;
    let password_locked_until =
        attempts::unknown_sources_locked_until(tx, now, tenant_id, account).await?;
    let since = now.as_unix_seconds() - factors::FAILURE_WINDOW_SECONDS;
    Ok(FactorSummary {
        recovery_codes_remaining: record.recovery.as_ref().map_or(0, RecoveryCodes::remaining),
        recent_failures: record.failures.iter().filter(|at| **at > since).count(),
        totp: record.totp,
        passkeys: passkeys::list(tx, tenant_id, user_id).await?,
        password_locked_until,
    })
}
