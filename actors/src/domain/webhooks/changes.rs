//! Audited endpoint changes as the API runs them: each makes the change and, in the same
//! transaction, writes its audit entry through [`record_change`].

use gatehouse_storage::Transaction;
use serde_json::json;
use uuid::Uuid;

use super::deliveries;
use super::endpoints::{self, NewEndpoint};
use super::{CreatedEndpoint, DeliveryRecord, EndpointChanges, WebhookEndpoint};
use crate::context::Context;
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::crypto::MasterKey;
use crate::error::DomainResult;

/// The audit target of an endpoint.
fn target(endpoint_id: Uuid) -> String {
    format!("webhook_endpoint:{endpoint_id}")
}

async fn audited(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    origin: &AuditOrigin,
    action: AuditAction,
    endpoint_id: Uuid,
    details: serde_json::Value,
) -> DomainResult<()> {
    let event = origin.event(action, target(endpoint_id), details);
    record_change(tx, context, tenant, Some(event), []).await
}

/// Creates an endpoint; returns it with its secret (shown once).
pub async fn create(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    new_endpoint: NewEndpoint,
    origin: &AuditOrigin,
) -> DomainResult<CreatedEndpoint> {
    let details = json!({ "url": new_endpoint.url, "event_types": new_endpoint.event_types });
    let created = endpoints::create_endpoint(tx, context, master_key, tenant, new_endpoint).await?;
    let endpoint_id = created.endpoint.endpoint_id;
    let action = AuditAction::WebhookEndpointCreate;
    audited(tx, context, tenant, origin, action, endpoint_id, details).await?;
    Ok(created)
}

/// Changes an endpoint; `details` says what changed, for the ledger.
pub async fn update(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    endpoint_id: Uuid,
    changes: EndpointChanges,
    details: serde_json::Value,
    origin: &AuditOrigin,
) -> DomainResult<WebhookEndpoint> {
    let endpoint = endpoints::update_endpoint(tx, context, tenant, endpoint_id, changes).await?;
    let action = AuditAction::WebhookEndpointUpdate;
    audited(tx, context, tenant, origin, action, endpoint_id, details).await?;
    Ok(endpoint)
}

/// Deletes an endpoint.
pub async fn delete(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    endpoint_id: Uuid,
    origin: &AuditOrigin,
) -> DomainResult<()> {
    let endpoint = endpoints::delete_endpoint(tx, tenant, endpoint_id).await?;
    let details = json!({ "url": endpoint.url });
    let action = AuditAction::WebhookEndpointDelete;
    audited(tx, context, tenant, origin, action, endpoint_id, details).await
}

/// Replaces an endpoint's secret; the previous one keeps signing for a day.
pub async fn rotate_secret(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    endpoint_id: Uuid,
    origin: &AuditOrigin,
) -> DomainResult<CreatedEndpoint> {
    let rotated = endpoints::rotate_secret(tx, context, master_key, tenant, endpoint_id).await?;
    let (action, details) = (
        AuditAction::WebhookEndpointRotateSecret,
        serde_json::Value::Null,
    );
    audited(tx, context, tenant, origin, action, endpoint_id, details).await?;
    Ok(rotated)
}

/// Queues a stored event for an endpoint again.
pub async fn replay(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    endpoint_id: Uuid,
    event_id: &str,
    origin: &AuditOrigin,
) -> DomainResult<DeliveryRecord> {
    let delivery = deliveries::replay(tx, context, tenant, endpoint_id, event_id).await?;
    let details = json!({ "event_id": event_id });
    let action = AuditAction::WebhookEndpointReplay;
    audited(tx, context, tenant, origin, action, endpoint_id, details).await?;
    Ok(delivery)
}
