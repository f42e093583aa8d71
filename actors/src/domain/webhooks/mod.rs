//! Webhooks: per-tenant endpoints, the fan-out of outbox events into persisted deliveries,
//! Standard Webhooks signing, and what the dispatcher (`runtime::webhook_dispatch`, on the
//! node that owns the tenant) needs to send them.
//!
//! Delivery is at least once: a delivery's state is committed before each attempt (claimed
//! with a lease) and after it (outcome, next attempt), so when the sending node dies the
//! lease runs out and the tenant's next owner sends it again.

pub mod changes;
pub mod deliveries;
#[cfg(test)]
mod dispatch_tests;
pub mod endpoints;
#[cfg(test)]
mod failover_tests;
pub mod sending;
pub mod signing;
pub mod targets;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::Timestamp;
use crate::domain::outbox::EVENT_TYPES;
use crate::error::{DomainError, DomainResult};

pub use deliveries::RetryPolicy;
pub use endpoints::{CreatedEndpoint, EndpointChanges, WebhookEndpoint};
pub use sending::{SendOutcome, WebhookRequest, WebhookSender, WebhookSettings};

/// Most endpoints one tenant may have.
pub const MAX_ENDPOINTS_PER_TENANT: usize = 50;
/// Most event-type filters one endpoint may have.
pub const MAX_FILTERS_PER_ENDPOINT: usize = 64;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Retries ran out, or the endpoint answered 410 Gone.
    Failed,
    /// The endpoint was deleted or disabled before the event got through.
    Cancelled,
}

impl DeliveryStatus {
    /// Lower-case name for the wire and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }
}

/// One attempt to deliver, as kept in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// When the attempt started.
    pub at: Timestamp,
    /// `delivered`, `failed`, `gone` (410) or `refused` (target not allowed).
    pub outcome: String,
    /// HTTP status of the answer; 0 when there was none.
    pub http_status: u16,
    /// Time from sending to the answer (or the error).
    pub latency_ms: u64,
    /// What went wrong, empty on success.
    pub error: String,
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Time-ordered id.
    pub delivery_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The event (`webhook-id`).
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// When the delivery was enqueued.
    pub created_at: Timestamp,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When the first attempt started; retries stop a day after it.
    pub first_attempt_at: Option<Timestamp>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    /// Whether an operator or server asked for this delivery by replay.
    pub replay: bool,
    /// Bumped on every change.
    pub version: u64,
}

/// Checks an endpoint's event filter: known event types, or `prefix.*` covering some.
pub fn validate_event_filter(event_types: &[String]) -> DomainResult<Vec<String>> {
    if event_types.len() > MAX_FILTERS_PER_ENDPOINT {
        return Err(DomainError::invalid(
            "event_types",
            format!("must have at most {MAX_FILTERS_PER_ENDPOINT} entries"),
        ));
    }
    let mut filter: Vec<String> = Vec::new();
    for event_type in event_types {
        let event_type = event_type.trim();
        let known = match event_type.strip_suffix(".*") {
            Some(prefix) => EVENT_TYPES
                .iter()
                .any(|known| known.starts_with(&format!("{prefix}."))),
            None => EVENT_TYPES.contains(&event_type),
        };
        if !known {
            return Err(DomainError::invalid(
                "event_types",
                format!("unknown event type {event_type:?}"),
            ));
        }
        if !filter.iter().any(|existing| existing == event_type) {
            filter.push(event_type.to_owned());
        }
    }
    Ok(filter)
}

/// Whether `filter` (empty = every event) selects `event_type`.
pub fn filter_matches(filter: &[String], event_type: &str) -> bool {
    filter.is_empty()
        || filter.iter().any(|entry| match entry.strip_suffix(".*") {
            Some(prefix) => event_type
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.')),
            None => entry == event_type,
        })
}
