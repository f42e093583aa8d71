//! Permission-graph changes as run by the tenant's actor: validated against the whole graph,
//! audited, announced, and made visible to every node's cache through the tenant epoch.

use gatehouse_storage::Transaction;
use serde_json::json;

use crate::context::Context;
use crate::domain::audit::AuditAction;
use crate::domain::audit::{AuditEvent, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::keyspace;
use crate::domain::outbox::EventType;
use crate::domain::permissions::{self, PermissionDefinition, PermissionGraph};
use crate::error::{DomainError, DomainResult};
use crate::{teams, users};
use uuid::Uuid;

async fn record(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    actor: &str,
    action: AuditAction,
    permission_id: &str,
) -> DomainResult<()> {
    let event = AuditEvent {
        actor: actor.to_owned(),
        action: action.as_str().to_owned(),
        target: format!("permission:{permission_id}"),
        source_ip: String::new(),
        details: json!({}),
    };
    let data = json!({ "permission_id": permission_id, "action": action.as_str() });
    let events = [(EventType::PermissionDefinitionChanged, data)];
    record_change(tx, context, tenant, Some(event), events).await?;
    // Every node polls the epoch and reloads the tenant's graph.
    tx.atomic_add(&keyspace::tenant_epoch(), 1)?;
    Ok(())
}

/// Adds or replaces a definition.
pub async fn define(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    definition: &PermissionDefinition,
    create_only: bool,
    actor: &str,
) -> DomainResult<PermissionDefinition> {
    let definitions = permissions::read_definitions(tx, tenant).await?;
    if create_only
        && definitions
            .iter()
            .any(|existing| existing.permission_id == definition.permission_id)
    {
        return Err(DomainError::PermissionAlreadyExists);
    }
    PermissionGraph::new(definitions)?.with(definition.clone())?;
    permissions::write_definition(tx, tenant, definition)?;
    record(
        tx,
        context,
        tenant,
        actor,
        AuditAction::PermissionDefine,
        &definition.permission_id,
    )
    .await?;
    Ok(definition.clone())
}

/// Deletes a definition with its grants.
pub async fn delete(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    permission_id: &str,
    actor: &str,
) -> DomainResult<()> {
    permissions::delete_definition(tx, tenant, permission_id).await?;
    record(
        tx,
        context,
        tenant,
        actor,
        AuditAction::PermissionDelete,
        permission_id,
    )
    .await
}

/// A direct grant to add or take away.
#[derive(Debug, Clone, Copy)]
pub struct GrantChange<'a> {
    /// The team scope, or tenant-wide.
    pub team_id: Option<Uuid>,
    /// The user.
    pub user_id: Uuid,
    /// The permission.
    pub permission_id: &'a str,
    /// Grant (`true`) or revoke.
    pub grant: bool,
}

/// Grants or revokes a direct permission of a user (a team member, for a team scope);
/// returns whether anything changed. Audited and announced when it did.
pub async fn change_grant(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    change: GrantChange<'_>,
    origin: &AuditOrigin,
) -> DomainResult<bool> {
    let GrantChange {
        team_id,
        user_id,
        permission_id,
        grant,
    } = change;
    users::read_user(tx, tenant, user_id).await?;
    if let Some(team_id) = team_id
        && !teams::is_member(tx, tenant, team_id, user_id).await?
    {
        return Err(DomainError::TeamMembershipNotFound);
    }
    let changed = if grant {
        permissions::grant(tx, tenant, team_id, user_id, permission_id).await?
    } else {
        permissions::revoke(tx, tenant, team_id, user_id, permission_id).await?
    };
    if changed {
        let (event, action) = if grant {
            (EventType::PermissionGranted, AuditAction::PermissionGrant)
        } else {
            (EventType::PermissionRevoked, AuditAction::PermissionRevoke)
        };
        let details = json!({
            "user_id": user_id,
            "permission_id": permission_id,
            "team_id": team_id,
        });
        let audit = origin.event(action, format!("user:{user_id}"), details.clone());
        record_change(tx, context, tenant, Some(audit), [(event, details)]).await?;
    }
    Ok(changed)
}

/// A user's direct grants in a scope (none in a team the user is not a member of); an
/// unknown user or team is an error.
pub async fn grants_in_scope(
    tx: &Transaction,
    tenant: &str,
    team_id: Option<Uuid>,
    user_id: Uuid,
) -> DomainResult<Vec<String>> {
    users::read_user(tx, tenant, user_id).await?;
    if let Some(team_id) = team_id {
        teams::read_team(tx, tenant, team_id).await?;
        if !teams::is_member(tx, tenant, team_id, user_id).await? {
            return Ok(Vec::new());
        }
    }
    permissions::direct_grants(tx, tenant, team_id, user_id).await
}
