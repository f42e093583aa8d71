//! The transactional outbox: webhook events are written in the same storage transaction as
//! the change they describe, so an event exists if and only if its change committed.
//!
//! Dispatching the outbox to endpoints is the tenant's webhook dispatcher's job.

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::error::DomainResult;
use crate::keys;

/// Every event type Gatehouse emits, for endpoint filters.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "session.created",
    "session.revoked",
    "team.created",
    "team.updated",
    "team.deleted",
    "team_membership.created",
    "team_membership.deleted",
    "team_invitation.created",
    "team_invitation.accepted",
    "permission.granted",
    "permission.revoked",
    "permission_definition.changed",
    "share.created",
    "share.used",
    "share.revoked",
    "share.proposal.created",
    "share.proposal.decided",
];

/// One event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Unique id, sent as `webhook-id` (`msg_…`); receivers deduplicate on it.
    pub event_id: String,
    /// E.g. `user.created`.
    pub event_type: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// When the change committed (approximately: the transaction's clock).
    pub occurred_at: Timestamp,
    /// The event payload (`data` of the webhook body).
    pub data: serde_json::Value,
}

/// Writes an event into the outbox as part of `tx`.
pub fn emit(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    event_type: &str,
    data: serde_json::Value,
) -> DomainResult<OutboxEvent> {
    let event_id = Uuid::from_bytes(context.random::<16>());
    let event = OutboxEvent {
        event_id: format!("msg_{}", event_id.simple()),
        event_type: event_type.to_owned(),
        tenant: tenant.to_owned(),
        occurred_at: context.now(),
        data,
    };
    tx.set(
        &keys::outbox(tenant, event.occurred_at, event_id),
        &codec::encode(&event)?,
    )?;
    // A blind write (no read, so no conflict between concurrent emitters) that tells every
    // node's dispatcher this tenant has work.
    tx.set(&keys::webhook_work(tenant), b"")?;
    Ok(event)
}
