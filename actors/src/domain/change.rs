//! The one place a change's side records are written: its audit entry and its webhook events
//! go into the change's own transaction, so they exist if and only if the change committed.

use gatehouse_storage::Transaction;
use serde_json::Value;

use crate::context::Context;
use crate::domain::audit::{self, AuditEvent};
use crate::domain::outbox::{self, EventType};
use crate::error::DomainResult;

/// Appends `audit` (when the change is audited) and emits `events` inside `tx`.
pub async fn record_change(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    audit: Option<AuditEvent>,
    events: impl IntoIterator<Item = (EventType, Value)>,
) -> DomainResult<()> {
    if let Some(event) = audit {
        audit::append(tx, context, tenant, event).await?;
    }
    record_events(tx, context, tenant, events)
}

/// Emits the webhook events of a change that is not audited (the user's own business, or
/// audited by its caller), inside `tx`.
pub fn record_events(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    events: impl IntoIterator<Item = (EventType, Value)>,
) -> DomainResult<()> {
    for (event_type, data) in events {
        outbox::emit(tx, context, tenant, event_type, data)?;
    }
    Ok(())
}
