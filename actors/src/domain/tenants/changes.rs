//! Audited tenant changes as run by the tenant's actor: each is one transaction that makes the
//! change and writes its audit entry.

use gatehouse_storage::Transaction;
use serde_json::json;

use crate::context::Context;
use crate::domain::audit::AuditAction;
use crate::domain::audit::AuditOrigin;
use crate::domain::change::record_change;
use crate::domain::crypto::MasterKey;
use crate::domain::permissions::PermissionGraph;
use crate::domain::signing::SigningKeyRecord;
use crate::domain::tenants::{self, CreatedTenant, SettingsChanges, TenantRecord};
use crate::error::DomainResult;

/// Creates the tenant and audits it for `origin`.
pub async fn create(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    display_name: &str,
    origin: &AuditOrigin,
) -> DomainResult<CreatedTenant> {
    let created = tenants::create_tenant(tx, context, master_key, tenant, display_name).await?;
    let details = json!({ "display_name": display_name });
    let event = origin.event(
        AuditAction::TenantCreate,
        format!("tenant:{tenant}"),
        details,
    );
    record_change(tx, context, tenant, Some(event), []).await?;
    Ok(created)
}

/// Rotates the tenant's signing key and audits it; returns the new key.
pub async fn rotate_key(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    origin: &AuditOrigin,
) -> DomainResult<SigningKeyRecord> {
    let (_, key) = tenants::rotate_signing_key(tx, context, master_key, tenant).await?;
    let details = json!({ "kid": key.kid });
    let event = origin.event(AuditAction::KeyRotate, format!("tenant:{tenant}"), details);
    record_change(tx, context, tenant, Some(event), []).await?;
    Ok(key)
}

/// Changes the tenant's settings (validated against `graph`) and audits the change.
pub async fn update_settings(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    graph: &PermissionGraph,
    changes: &SettingsChanges,
    origin: &AuditOrigin,
) -> DomainResult<TenantRecord> {
    let record = tenants::settings::update_settings(
        tx,
        tenant,
        graph,
        changes,
        context.now().as_unix_seconds(),
    )
    .await?;
    let details = serde_json::to_value(changes).unwrap_or_default();
    let event = origin.event(
        AuditAction::TenantConfig,
        format!("tenant:{tenant}"),
        details,
    );
    record_change(tx, context, tenant, Some(event), []).await?;
    Ok(record)
}
