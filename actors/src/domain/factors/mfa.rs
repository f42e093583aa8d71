//! MFA tickets: a first factor that succeeded for a user who must also give a second one.
//! A ticket is random, stored as its SHA-256, lives five minutes, allows a few wrong second
//! factors, and is spent by the sign-in it completes.

use std::time::Duration;

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{passkeys, read_factors, recovery, write_factors};
use crate::context::{Context, Timestamp};
use crate::domain::crypto::{MasterKey, base64url, sha256};
use crate::domain::keyspace;
use crate::domain::sessions::{AuthMethod, ClientInfo};
use crate::domain::sign_in::{self, NewSession};
use crate::domain::tenants::TenantState;
use crate::domain::users;
use crate::error::{DomainError, DomainResult, MfaChallenge};

/// Prefix of MFA tickets.
pub const TICKET_PREFIX: &str = "gmt_";
/// How long a ticket lives.
pub const TICKET_TTL: Duration = Duration::from_secs(300);
/// Wrong second factors one ticket allows before it is spent.
pub const TICKET_MAX_ATTEMPTS: u32 = 5;

/// A stored ticket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketRecord {
    /// Whose sign-in it is.
    pub user_id: Uuid,
    /// The first factor.
    pub first: AuthMethod,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Wrong second factors so far.
    pub attempts: u32,
}

/// Writes a ticket for `user_id` after its first factor `first`.
pub fn create_ticket(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    first: AuthMethod,
    factors: Vec<&'static str>,
) -> DomainResult<MfaChallenge> {
    let ticket = format!("{TICKET_PREFIX}{}", base64url(&context.random::<32>()));
    let record = TicketRecord {
        user_id,
        first,
        expires_at: context.now().plus(TICKET_TTL),
        attempts: 0,
    };
    tx.set(
        &keyspace::mfa_ticket(tenant, &sha256(ticket.as_bytes())),
        &codec::encode(&record)?,
    )?;
    metrics::counter!("gatehouse_mfa_tickets_total").increment(1);
    Ok(MfaChallenge { ticket, factors })
}

/// The second factor offered to complete a ticket.
#[derive(Debug, Clone, Copy)]
pub enum SecondProof<'a> {
    /// A TOTP code.
    Totp(&'a str),
    /// A recovery code.
    RecoveryCode(&'a str),
    /// A passkey assertion for a ceremony begun with `Passkeys.BeginSignIn`.
    Passkey {
        /// The ceremony.
        ceremony_id: Uuid,
        /// The assertion (`PublicKeyCredential` JSON).
        assertion: &'a str,
    },
}

/// What a completion did; a failure is committed (its try counted) before it is reported.
#[derive(Debug)]
pub enum Completion {
    /// The session.
    Session(Box<NewSession>),
    /// The second factor was wrong: report this after committing.
    Failed(DomainError),
}

/// Completes the sign-in of `ticket` with `proof`: the session, with both factors in its
/// `amr`. A wrong factor counts against the ticket and against the user's failed-try window.
pub async fn complete(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &TenantState,
    ticket: &str,
    proof: SecondProof<'_>,
    client: &ClientInfo,
) -> DomainResult<Completion> {
    let tenant_id = tenant.tenant_id();
    let now = context.now();
    if !ticket.starts_with(TICKET_PREFIX) || ticket.len() > 128 {
        return Err(DomainError::MfaTicketInvalid);
    }
    let key = keyspace::mfa_ticket(tenant_id, &sha256(ticket.as_bytes()));
    let Some(bytes) = tx.get(&key).await? else {
        return Err(DomainError::MfaTicketInvalid);
    };
    let mut record: TicketRecord = codec::decode(&bytes)?;
    if now >= record.expires_at {
        tx.clear(&key)?;
        return Ok(Completion::Failed(DomainError::MfaTicketInvalid));
    }
    let user = users::read_user(tx, tenant_id, record.user_id).await?;
    user.ensure_may_sign_in()?;
    let mut factors = read_factors(tx, tenant_id, user.user_id).await?;
    factors.check_not_locked(now)?;
    // The try is counted before the factor is checked, in the transaction that read the
    // counts (concurrent tries conflict on them); a right factor takes it back below.
    factors.record_failure(now);
    record.attempts += 1;
    let (method, valid) = match proof {
        SecondProof::Totp(code) => {
            let valid = match factors.totp.as_mut() {
                Some(factor) if factor.confirmed_at.is_some() => {
                    factor.verify(master_key, tenant_id, user.user_id, code, now)?
                }
                _ => false,
            };
            (AuthMethod::Totp, valid)
        }
        SecondProof::RecoveryCode(code) => {
            let valid = factors.has_totp()
                && factors
                    .recovery
                    .as_mut()
                    .is_some_and(|codes| codes.spend(master_key, tenant_id, user.user_id, code));
            (AuthMethod::RecoveryCode, valid)
        }
        SecondProof::Passkey {
            ceremony_id,
            assertion,
        } => {
            let verified =
                match passkeys::finish_sign_in(tx, context, tenant, ceremony_id, assertion).await {
                    Ok(used) => used.user_id == user.user_id,
                    // A conflict is retried by the caller's transaction loop, not counted.
                    Err(error @ DomainError::Storage(_)) => return Err(error),
                    Err(_) => false,
                };
            (AuthMethod::Passkey, verified)
        }
    };
    if !valid {
        write_factors(tx, tenant_id, user.user_id, &factors)?;
        if record.attempts >= TICKET_MAX_ATTEMPTS {
            tx.clear(&key)?;
        } else {
            tx.set(&key, &codec::encode(&record)?)?;
        }
        metrics::counter!("gatehouse_mfa_failures_total").increment(1);
        return Ok(Completion::Failed(match method {
            AuthMethod::Passkey => DomainError::InvalidCredentials,
            _ => DomainError::InvalidCode,
        }));
    }
    factors.failures.pop();
    write_factors(tx, tenant_id, user.user_id, &factors)?;
    tx.clear(&key)?;
    if method == AuthMethod::RecoveryCode {
        recovery::record_use(tx, context, tenant_id, &user, &factors).await?;
    }
    let methods = [record.first, method];
    let session =
        sign_in::start_session(tx, context, tenant, user, client, &methods, false).await?;
    Ok(Completion::Session(Box::new(session)))
}
