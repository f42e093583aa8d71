//! Second factors of a user: a TOTP app (`totp`), recovery codes (`recovery`), passkeys
//! (`passkeys`), the MFA tickets that join a first factor to a second (`mfa`), and what a
//! factor change does (`changes`).
//!
//! TOTP and recovery codes live in one record per user, with the window of failed tries that
//! limits guessing on every node at once (it is read and written in the transaction of each
//! try, so concurrent tries conflict instead of racing past the limit).

pub mod changes;
pub mod mfa;
pub mod passkeys;
pub mod recovery;
pub mod totp;

#[cfg(test)]
mod tests;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::Timestamp;
use crate::domain::keyspace;
use crate::domain::tenants::TenantSettings;
use crate::domain::users::UserRecord;
use crate::error::{DomainError, DomainResult};

/// Failed second-factor tries a user may make per window, across the cluster.
pub const MAX_FAILURES: usize = 10;
/// Length of the failed-try window.
pub const FAILURE_WINDOW_SECONDS: i64 = 15 * 60;

/// A user's TOTP and recovery codes, and their recent failed tries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FactorsRecord {
    /// The TOTP app, once enrolment began.
    pub totp: Option<totp::TotpFactor>,
    /// Recovery codes, once generated.
    pub recovery: Option<recovery::RecoveryCodes>,
    /// When second-factor tries failed (unix seconds), oldest first, within the window.
    pub failures: Vec<i64>,
    /// Bumped on every change.
    pub version: u64,
}

impl FactorsRecord {
    /// Whether a confirmed TOTP app exists.
    pub fn has_totp(&self) -> bool {
        self.totp
            .as_ref()
            .is_some_and(|totp| totp.confirmed_at.is_some())
    }

    /// Whether unused recovery codes exist.
    pub fn has_recovery_codes(&self) -> bool {
        self.recovery
            .as_ref()
            .is_some_and(|codes| codes.remaining() > 0)
    }

    /// Refuses a try while the user has [`MAX_FAILURES`] failures in the window.
    pub fn check_not_locked(&self, now: Timestamp) -> DomainResult<()> {
        let since = now.as_unix_seconds() - FAILURE_WINDOW_SECONDS;
        let recent = self.failures.iter().filter(|at| **at > since).count();
        if recent >= MAX_FAILURES {
            metrics::counter!("gatehouse_mfa_rate_limited_total").increment(1);
            return Err(DomainError::RateLimited);
        }
        Ok(())
    }

    /// Records a failed try, forgetting those outside the window.
    pub fn record_failure(&mut self, now: Timestamp) {
        let now = now.as_unix_seconds();
        self.failures
            .retain(|at| *at > now - FAILURE_WINDOW_SECONDS);
        self.failures.push(now);
        self.version += 1;
    }
}

/// Reads a user's factor record (empty when the user has none).
pub async fn read_factors(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<FactorsRecord> {
    match tx.get(&keyspace::user_factors(tenant, user_id)).await? {
        Some(bytes) => Ok(codec::decode(&bytes)?),
        None => Ok(FactorsRecord::default()),
    }
}

/// Writes a user's factor record.
pub fn write_factors(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    record: &FactorsRecord,
) -> DomainResult<()> {
    tx.set(
        &keyspace::user_factors(tenant, user_id),
        &codec::encode(record)?,
    )?;
    Ok(())
}

/// Deletes every factor of a user (with the user).
pub async fn delete_user_factors(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<()> {
    tx.clear(&keyspace::user_factors(tenant, user_id))?;
    passkeys::remove_all(tx, tenant, user_id).await
}

/// Whether the user has at least one passkey.
pub async fn has_passkey(tx: &Transaction, tenant: &str, user_id: Uuid) -> DomainResult<bool> {
    let (begin, end) = keyspace::passkeys_subspace(tenant, user_id).range();
    let options = RangeOptions {
        limit: Some(1),
        ..RangeOptions::default()
    };
    Ok(!tx.get_range(&begin, &end, options).await?.is_empty())
}

/// The second factors a user can complete a sign-in with, in the order `mfa_factors` lists
/// them: `totp`, `recovery_code`, `passkey`.
pub async fn available(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<Vec<&'static str>> {
    let record = read_factors(tx, tenant, user_id).await?;
    let mut factors = Vec::new();
    if record.has_totp() {
        factors.push("totp");
    }
    if record.has_totp() && record.has_recovery_codes() {
        factors.push("recovery_code");
    }
    if has_passkey(tx, tenant, user_id).await? {
        factors.push("passkey");
    }
    Ok(factors)
}

/// What a first factor that succeeded leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactor {
    /// No second factor is needed: a session.
    NotNeeded,
    /// A second factor is needed; the user can give one of these.
    Needed(Vec<&'static str>),
    /// The tenant requires MFA, the user has no second factor and the grace period is over:
    /// a restricted session that may only enrol one.
    EnrolmentRequired,
}

/// Whether a user who passed a first factor needs a second: always when they have one;
/// for a tenant that requires MFA, also when they have none and the grace period to enrol
/// (counted from the later of the requirement and the user's sign-up) is over — then the
/// session is restricted to enrolling one.
pub async fn second_factor(
    tx: &Transaction,
    settings: &TenantSettings,
    tenant: &str,
    user: &UserRecord,
    now: Timestamp,
) -> DomainResult<SecondFactor> {
    let factors = available(tx, tenant, user.user_id).await?;
    if !factors.is_empty() {
        return Ok(SecondFactor::Needed(factors));
    }
    Ok(if enrolment_due(settings, user, now) {
        SecondFactor::EnrolmentRequired
    } else {
        SecondFactor::NotNeeded
    })
}

/// Whether the tenant requires MFA and `user`'s grace period to enrol is over (whatever
/// factors the user has).
pub fn enrolment_due(settings: &TenantSettings, user: &UserRecord, now: Timestamp) -> bool {
    let mfa = &settings.mfa;
    let since = mfa
        .required_since
        .unwrap_or(0)
        .max(user.created_at.as_unix_seconds());
    mfa.required && now.as_unix_seconds() >= since + i64::from(mfa.grace_period_seconds)
}
