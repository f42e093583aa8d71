//! Audited user changes as the API runs them: each makes the change and, in the same
//! transaction, writes its audit entry and webhook events through [`record_change`].

use gatehouse_storage::Transaction;
use serde_json::json;
use uuid::Uuid;

use crate::context::Context;
use crate::domain::api_keys;
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::outbox::EventType;
use crate::domain::users::{self, NewUser, UserChanges, UserRecord, UserState};
use crate::error::DomainResult;

/// Creates a user, audited for `origin`.
pub async fn create(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    new_user: NewUser,
    origin: &AuditOrigin,
) -> DomainResult<UserRecord> {
    let user = users::create_user(tx, context, tenant, new_user).await?;
    let audit = origin.event(
        AuditAction::UserCreate,
        format!("user:{}", user.user_id),
        json!({ "email": user.email }),
    );
    record_change(tx, context, tenant, Some(audit), []).await?;
    Ok(user)
}

/// Changes a user; audited (naming the changed fields, never their values) when `audited`
/// is given.
pub async fn update(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    changes: UserChanges,
    audited: Option<(&AuditOrigin, &[&'static str])>,
) -> DomainResult<UserRecord> {
    let user = users::update_user(tx, context, tenant, user_id, changes).await?;
    let audit = audited.map(|(origin, fields)| {
        let details = json!({ "fields": fields });
        origin.event(AuditAction::UserUpdate, format!("user:{user_id}"), details)
    });
    record_change(tx, context, tenant, audit, []).await?;
    Ok(user)
}

/// Deletes a user with its email index entry and sessions (their access tokens stop on every
/// node), audited for `origin`.
pub async fn delete(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    origin: &AuditOrigin,
) -> DomainResult<()> {
    let user = users::read_user(tx, tenant, user_id).await?;
    users::delete_user(tx, tenant, user_id).await?;
    crate::domain::sessions::liveness::note_revocation(tx, context, user_id)?;
    api_keys::delete_owner_keys(tx, tenant, api_keys::KeyOwner::User(user_id)).await?;
    let data = user.deleted_event_data();
    let audit = origin.event(
        AuditAction::UserDelete,
        format!("user:{user_id}"),
        data.clone(),
    );
    record_change(
        tx,
        context,
        tenant,
        Some(audit),
        [(EventType::UserDeleted, data)],
    )
    .await
}

/// Suspends or bans (revoking its sessions) or reactivates a user, audited for `origin`.
pub async fn set_state(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    state: UserState,
    ban_reason: Option<&str>,
    origin: &AuditOrigin,
) -> DomainResult<UserRecord> {
    let user = users::set_user_state(tx, context, tenant, user_id, state, ban_reason).await?;
    let (action, details) = match state {
        UserState::Suspended => (AuditAction::UserSuspend, serde_json::Value::Null),
        UserState::Active => (AuditAction::UserReactivate, serde_json::Value::Null),
        UserState::Banned => (
            AuditAction::UserBan,
            serde_json::json!({ "reason": ban_reason.unwrap_or("") }),
        ),
    };
    let audit = origin.event(action, format!("user:{user_id}"), details);
    record_change(tx, context, tenant, Some(audit), []).await?;
    Ok(user)
}
