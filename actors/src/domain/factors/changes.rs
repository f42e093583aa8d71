//! What every factor change does, in the change's transaction: the user's other sessions
//! are revoked, the change is written to the audit ledger, `user.factor_added` or
//! `user.factor_removed` is emitted, and the user is mailed a notice.

use gatehouse_storage::Transaction;
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditOrigin;
use crate::domain::audit::AuditAction;
use crate::domain::change::record_change;
use crate::domain::email::EmailKind;
use crate::domain::email::flows::{self, Keys};
use crate::domain::outbox::EventType;
use crate::domain::sessions::{self, ClientInfo, RevocationReason};
use crate::domain::tenants::TenantState;
use crate::domain::users::UserRecord;
use crate::error::DomainResult;

/// Whether a factor came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Added (a confirmed TOTP app, a set of recovery codes, a passkey).
    Added,
    /// Removed.
    Removed,
}

/// One factor change.
#[derive(Debug, Clone)]
pub struct FactorChange<'a> {
    /// Added or removed.
    pub change: Change,
    /// `totp`, `recovery_codes` or `passkey`.
    pub factor: &'static str,
    /// How the notice names it (`authenticator app`, the passkey's name, …).
    pub label: &'a str,
    /// The passkey's id, for passkeys.
    pub passkey_id: Option<Uuid>,
    /// The session that made the change (it stays); `None` when an operator made it.
    pub keep_session: Option<Uuid>,
}

/// Applies the consequences of `change` to `user`; returns how many sessions were revoked.
pub async fn factor_changed(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    user: &UserRecord,
    change: &FactorChange<'_>,
    origin: &AuditOrigin,
    client: &ClientInfo,
) -> DomainResult<u32> {
    let tenant_id = tenant.tenant_id();
    let (reason, keep) = (RevocationReason::FactorChanged, change.keep_session);
    let revoked =
        sessions::revoke_user_sessions(tx, keys.context, tenant_id, user.user_id, reason, keep)
            .await?;
    // The session that enrolled a factor no longer needs to.
    if change.change == Change::Added
        && let Some(session_id) = keep
        && let Some(mut session) = sessions::find_session(tx, tenant_id, session_id).await?
        && session.mfa_enrolment_required
    {
        session.mfa_enrolment_required = false;
        session.version += 1;
        sessions::write_session(tx, tenant_id, &session)?;
    }
    let (action, event) = match change.change {
        Change::Added => (AuditAction::UserFactorAdd, EventType::UserFactorAdded),
        Change::Removed => (AuditAction::UserFactorRemove, EventType::UserFactorRemoved),
    };
    let data = json!({
        "user_id": user.user_id,
        "factor": change.factor,
        "passkey_id": change.passkey_id,
    });
    let mut details = data.clone();
    details["revoked_sessions"] = json!(revoked);
    let audit = origin.event(action, format!("user:{}", user.user_id), details);
    record_change(tx, keys.context, tenant_id, Some(audit), [(event, data)]).await?;
    let kind = match change.change {
        Change::Added => EmailKind::FactorAdded,
        Change::Removed => EmailKind::FactorRemoved,
    };
    let to = user.email.clone();
    let mut vars = flows::base_vars(tenant, Some(user), &to, client);
    vars.factor_name = change.label.to_owned();
    flows::compose(tx, keys, tenant, kind, &to, &vars).await?;
    Ok(revoked)
}
