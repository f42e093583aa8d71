//! Permission-graph changes as run by the tenant's actor: validated against the whole graph,
//! audited, announced, and made visible to every node's cache through the tenant epoch.

use gatehouse_storage::Transaction;
use serde_json::json;

use crate::audit::{self, AuditEvent};
use crate::context::Context;
use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::outbox;
use crate::permissions::{self, PermissionDefinition, PermissionGraph};

async fn record(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    actor: &str,
    action: &str,
    permission_id: &str,
) -> DomainResult<()> {
    audit::append(
        tx,
        context,
        tenant,
        AuditEvent {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: format!("permission:{permission_id}"),
            source_ip: String::new(),
            details: json!({}),
        },
    )
    .await?;
    outbox::emit(
        tx,
        context,
        tenant,
        "permission_definition.changed",
        json!({ "permission_id": permission_id, "action": action }),
    )?;
    // Every node polls the epoch and reloads the tenant's graph.
    tx.atomic_add(&keys::tenant_epoch(), 1)?;
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
        "permission.define",
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
        "permission.delete",
        permission_id,
    )
    .await
}
