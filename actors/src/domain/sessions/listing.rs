//! A user's sessions as a set: listing them, revoking them all, deleting them with the user.

use gatehouse_storage::{RangeOptions, Transaction};
use uuid::Uuid;

use super::{RevocationReason, SessionRecord, find_session, revoke_session};
use crate::audit;
use crate::context::Context;
use crate::domain::audit::AuditAction;
use crate::domain::change::record_change;
use crate::domain::keyspace;
use crate::domain::users;
use crate::error::{DomainError, DomainResult};

/// The ids of every session of a user, live or not.
pub async fn user_session_ids(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<Vec<Uuid>> {
    let subspace = keyspace::user_sessions_subspace(tenant, user_id);
    let (begin, end) = subspace.range();
    let entries = tx.get_range(&begin, &end, RangeOptions::default()).await?;
    entries
        .into_iter()
        .map(|(key, _)| {
            subspace
                .unpack::<(Uuid,)>(&key)
                .map(|(session_id,)| session_id)
                .map_err(|error| DomainError::Internal(format!("session index key: {error}")))
        })
        .collect()
}

/// Revokes every live session of a user but `except` (the one making a change); returns
/// how many were revoked.
pub async fn revoke_user_sessions(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    reason: RevocationReason,
    except: Option<Uuid>,
) -> DomainResult<u32> {
    let mut revoked = 0;
    for session_id in user_session_ids(tx, tenant, user_id).await? {
        if Some(session_id) == except {
            continue;
        }
        match revoke_session(tx, context, tenant, session_id, reason).await {
            Ok(true) => revoked += 1,
            Ok(false) | Err(DomainError::SessionNotFound) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(revoked)
}

/// A user's sessions, newest first; an unknown user is `USER_NOT_FOUND`.
pub async fn list_for_user(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    include_inactive: bool,
) -> DomainResult<Vec<SessionRecord>> {
    users::read_user(tx, tenant, user_id).await?;
    list_user_sessions(tx, context, tenant, user_id, include_inactive).await
}

/// Revokes every live session of a user for an admin, audited; returns how many were live.
pub async fn revoke_all_audited(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    origin: &audit::AuditOrigin,
) -> DomainResult<u32> {
    users::read_user(tx, tenant, user_id).await?;
    let revoked =
        revoke_user_sessions(tx, context, tenant, user_id, RevocationReason::Admin, None).await?;
    let details = serde_json::json!({ "revoked": revoked });
    let event = origin.event(
        AuditAction::UserRevokeSessions,
        format!("user:{user_id}"),
        details,
    );
    record_change(tx, context, tenant, Some(event), []).await?;
    Ok(revoked)
}

/// Deletes every session of a user (when the user is deleted).
pub async fn delete_user_sessions(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<()> {
    for session_id in user_session_ids(tx, tenant, user_id).await? {
        tx.clear(&keyspace::session(tenant, session_id))?;
    }
    let (begin, end) = keyspace::user_sessions_subspace(tenant, user_id).range();
    tx.clear_range(&begin, &end)?;
    Ok(())
}

/// Lists a user's sessions, newest first; inactive ones only when asked.
pub async fn list_user_sessions(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    include_inactive: bool,
) -> DomainResult<Vec<SessionRecord>> {
    let now = context.now();
    let mut sessions = Vec::new();
    for session_id in user_session_ids(tx, tenant, user_id).await? {
        if let Some(session) = find_session(tx, tenant, session_id).await?
            && (include_inactive || session.is_active(now))
        {
            sessions.push(session);
        }
    }
    sessions.sort_by_key(|session| std::cmp::Reverse(session.created_at));
    Ok(sessions)
}
