//! Impersonation sessions: an operator or a tenant's server starts a session as a user, with
//! a reason and a hard end. The session's absolute expiry is that end (refreshes work until
//! then, access tokens never outlive it), its tokens carry an RFC 8693 `act` claim naming
//! the impersonator, and it is an operator power: no MFA, no new-sign-in email, and step-up
//! operations are refused while impersonating (`Caller::require_recent_user`). Start and
//! end (sign-out or revocation) are audited and sent as webhook events.

use std::time::Duration;

use gatehouse_storage::Transaction;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ClientInfo, RevocationReason, SessionRecord, create_session, write_session};
use crate::context::{Context, Timestamp};
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::outbox::EventType;
use crate::domain::sign_in::{NewSession, token_permissions};
use crate::domain::tenants::TenantState;
use crate::domain::users;
use crate::error::{DomainError, DomainResult};

/// Length of an impersonation session unless the caller asks otherwise.
pub const DEFAULT_IMPERSONATION_SECONDS: u32 = 30 * 60;
/// The shortest impersonation session (short ones are harmless, and testable).
pub const MIN_IMPERSONATION_SECONDS: u32 = 10;
/// The longest impersonation session.
pub const MAX_IMPERSONATION_SECONDS: u32 = 12 * 3600;
/// Longest accepted reason.
pub const MAX_REASON_CHARS: usize = 500;

/// Who impersonates the session's user, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impersonation {
    /// `operator` or `server`: the `act.sub` of the session's tokens.
    pub impersonator: String,
    /// Why (required).
    pub reason: String,
}

/// Checks the reason and the requested length (0 = the default).
pub fn validate_request(reason: &str, duration_seconds: u32) -> DomainResult<(String, u32)> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DomainError::invalid("reason", "must not be empty"));
    }
    if reason.chars().count() > MAX_REASON_CHARS
        || reason.chars().any(crate::domain::text::is_hidden)
    {
        return Err(DomainError::invalid(
            "reason",
            format!(
                "must be at most {MAX_REASON_CHARS} characters without control, invisible or bidi formatting characters"
            ),
        ));
    }
    let seconds = match duration_seconds {
        0 => DEFAULT_IMPERSONATION_SECONDS,
        seconds if (MIN_IMPERSONATION_SECONDS..=MAX_IMPERSONATION_SECONDS).contains(&seconds) => {
            seconds
        }
        _ => {
            return Err(DomainError::invalid(
                "duration_seconds",
                format!(
                    "must be between {MIN_IMPERSONATION_SECONDS} and {MAX_IMPERSONATION_SECONDS}"
                ),
            ));
        }
    };
    Ok((reason.to_owned(), seconds))
}

/// Starts an impersonation session for `user_id` lasting `seconds`: refused for suspended
/// and banned users; audited as `session.impersonation_start` and sent as
/// `session.impersonation_started`.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    user_id: Uuid,
    origin: &AuditOrigin,
    reason: &str,
    seconds: u32,
    client: &ClientInfo,
) -> DomainResult<NewSession> {
    let tenant_id = tenant.tenant_id();
    let user = users::read_user(tx, tenant_id, user_id).await?;
    user.ensure_may_sign_in()?;
    // The session's lifetimes are the impersonation's: absolute and idle end together.
    let mut settings = tenant.record.settings.clone();
    settings.session_absolute_ttl_seconds = seconds;
    settings.session_idle_ttl_seconds = seconds;
    let (mut session, refresh_token) = create_session(
        tx,
        context,
        tenant_id,
        &settings,
        user_id,
        client,
        &[],
        false,
    )?;
    session.anonymous = user.is_anonymous;
    session.impersonation = Some(Impersonation {
        impersonator: origin.actor.clone(),
        reason: reason.to_owned(),
    });
    write_session(tx, tenant_id, &session)?;
    let data = session.impersonation_event_data(None);
    let event = origin.event(
        AuditAction::SessionImpersonationStart,
        format!("session:{}", session.session_id),
        data.clone(),
    );
    let events = [(EventType::SessionImpersonationStarted, data)];
    record_change(tx, context, tenant_id, Some(event), events).await?;
    let permissions = token_permissions(tx, tenant, user_id).await?;
    Ok(NewSession {
        user,
        session,
        refresh_token,
        permissions,
    })
}

/// Audits the end of an impersonation session that was just revoked (a no-op for other
/// sessions): `session.impersonation_end` and `session.impersonation_ended`.
pub async fn record_end(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    session: &SessionRecord,
    reason: RevocationReason,
) -> DomainResult<()> {
    let Some(impersonation) = &session.impersonation else {
        return Ok(());
    };
    // Signing out with the session's own token is the impersonator's doing.
    let origin = if reason == RevocationReason::SignOut {
        AuditOrigin {
            actor: impersonation.impersonator.clone(),
            source_ip: crate::domain::audit::current_source_ip(),
        }
    } else {
        AuditOrigin::system()
    };
    let data = session.impersonation_event_data(Some(reason));
    let event = origin.event(
        AuditAction::SessionImpersonationEnd,
        format!("session:{}", session.session_id),
        data.clone(),
    );
    let events = [(EventType::SessionImpersonationEnded, data)];
    record_change(tx, context, tenant, Some(event), events).await
}

/// The expiry of an access token issued at `now` with lifetime `ttl` for `session`: an
/// impersonation session's tokens never outlive the session.
pub fn access_token_expiry(session: &SessionRecord, now: Timestamp, ttl: Duration) -> Timestamp {
    let expiry = now.plus(ttl);
    if session.impersonation.is_some() && session.expires_at < expiry {
        session.expires_at
    } else {
        expiry
    }
}

impl SessionRecord {
    /// `data` of the impersonation events and audit entries.
    pub fn impersonation_event_data(&self, ended: Option<RevocationReason>) -> serde_json::Value {
        let impersonation = self.impersonation.as_ref();
        let mut data = serde_json::json!({
            "session_id": self.session_id,
            "user_id": self.user_id,
            "impersonator": impersonation.map(|i| i.impersonator.as_str()),
            "reason": impersonation.map(|i| i.reason.as_str()),
            "expires_at": self.expires_at.rfc3339(),
        });
        if let (Some(ended), Some(object)) = (ended, data.as_object_mut()) {
            object.insert("ended_by".to_owned(), ended.as_str().into());
        }
        data
    }
}
