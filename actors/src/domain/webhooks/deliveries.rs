//! Deliveries as transaction functions: fan-out of outbox events, the due queue, claiming a
//! delivery with a lease before an attempt, recording the outcome after it, replay, and the
//! per-endpoint delivery log.

use std::time::Duration;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use uuid::Uuid;

use super::endpoints::{self, WebhookEndpoint, signing_secrets};
use super::signing::WebhookSecret;
use super::{DeliveryAttempt, DeliveryRecord, DeliveryStatus};
use crate::context::{Context, Timestamp};
use crate::domain::audit::{AuditAction, AuditEvent};
use crate::domain::change::record_change;
use crate::domain::crypto::MasterKey;
use crate::domain::keyspace;
use crate::domain::outbox::OutboxEvent;
use crate::domain::queue;
use crate::error::{DomainError, DomainResult};

/// Attempts kept per delivery; older ones are dropped from the record.
pub const MAX_ATTEMPTS_KEPT: usize = 64;

/// When failed attempts are retried: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Ceiling of the delay after the first failure; doubles with every failure.
    pub first_delay: Duration,
    /// Largest ceiling.
    pub max_delay: Duration,
    /// Smallest delay, so full jitter never retries at once.
    pub min_delay: Duration,
    /// No retry is scheduled later than this after the first attempt.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            min_delay: Duration::from_secs(1),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the delay after `failures` failed attempts (1 = after the first).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }

    /// The delay after `failures` failed attempts: uniform in `[min_delay, ceiling]`,
    /// drawn from `random`.
    pub fn delay(&self, failures: u32, random: u64) -> Duration {
        let ceiling = u64::try_from(self.ceiling(failures).as_millis()).unwrap_or(u64::MAX);
        let floor = u64::try_from(self.min_delay.as_millis())
            .unwrap_or(0)
            .min(ceiling);
        Duration::from_millis(floor + random % (ceiling - floor + 1))
    }
}

/// What one fan-out pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Outbox events consumed.
    pub events: usize,
    /// Deliveries created.
    pub deliveries: usize,
    /// Whether more events wait in the outbox.
    pub more: bool,
}

/// Moves up to `batch` outbox events into deliveries for every enabled endpoint whose filter
/// matches, removing them from the outbox in the same transaction. The outbox is read with
/// conflicts, so two nodes that both believe they own the tenant cannot fan an event out twice.
pub async fn fan_out(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    batch: usize,
) -> DomainResult<FanOut> {
    let (begin, end) = keyspace::outbox_subspace(tenant).range();
    let entries = tx
        .get_range(
            &begin,
            &end,
            RangeOptions {
                limit: Some(batch + 1),
                ..RangeOptions::default()
            },
        )
        .await?;
    let mut result = FanOut {
        more: entries.len() > batch,
        ..FanOut::default()
    };
    if entries.is_empty() {
        return Ok(result);
    }
    let endpoints = endpoints::list_endpoints(tx, tenant).await?;
    for (key, value) in entries.into_iter().take(batch) {
        tx.clear(&key)?;
        result.events += 1;
        let event: OutboxEvent = match codec::decode(&value) {
            Ok(event) => event,
            Err(error) => {
                // A record that cannot be read would wedge the queue; drop it loudly.
                tracing::error!(tenant, %error, "dropping an undecodable outbox event");
                continue;
            }
        };
        let targets: Vec<&WebhookEndpoint> = endpoints
            .iter()
            .filter(|endpoint| endpoint.wants(&event.event_type))
            .collect();
        if targets.is_empty() {
            continue;
        }
        tx.set(
            &keyspace::webhook_event(tenant, &event.event_id),
            &codec::encode(&event)?,
        )?;
        for endpoint in targets {
            enqueue(tx, context, tenant, endpoint.endpoint_id, &event, false)?;
            result.deliveries += 1;
        }
    }
    Ok(result)
}

/// Creates a pending delivery of `event` to an endpoint, due now.
fn enqueue(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    endpoint_id: Uuid,
    event: &OutboxEvent,
    replay: bool,
) -> DomainResult<DeliveryRecord> {
    let now = context.now();
    let delivery_id = uuid::Builder::from_unix_timestamp_millis(
        u64::try_from(now.0).unwrap_or(0),
        &context.random::<10>(),
    )
    .into_uuid();
    let delivery = DeliveryRecord {
        delivery_id,
        endpoint_id,
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        created_at: now,
        status: DeliveryStatus::Pending,
        first_attempt_at: None,
        next_attempt_at: Some(now),
        attempts: Vec::new(),
        replay,
        version: 1,
    };
    write_delivery(tx, tenant, &delivery)?;
    tx.set(&keyspace::webhook_due(tenant, now, delivery_id), b"")?;
    tx.set(
        &keyspace::webhook_log(tenant, endpoint_id, delivery_id),
        b"",
    )?;
    tx.set(&keyspace::webhook_work(tenant), b"")?;
    Ok(delivery)
}

fn write_delivery(tx: &Transaction, tenant: &str, delivery: &DeliveryRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::webhook_delivery(tenant, delivery.delivery_id),
        &codec::encode(delivery)?,
    )?;
    Ok(())
}

async fn find_delivery(
    tx: &Transaction,
    tenant: &str,
    delivery_id: Uuid,
) -> DomainResult<Option<DeliveryRecord>> {
    match tx
        .get(&keyspace::webhook_delivery(tenant, delivery_id))
        .await?
    {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Due-queue entries at or before `now`, oldest first (a snapshot read; claiming re-reads).
pub async fn due_deliveries(
    tx: &Transaction,
    tenant: &str,
    now: Timestamp,
    limit: usize,
) -> DomainResult<Vec<(Timestamp, Uuid)>> {
    queue::due_entries(tx, &keyspace::webhook_due_subspace(tenant), now, limit).await
}

/// A delivery claimed for one attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The delivery after claiming.
    pub delivery: DeliveryRecord,
    /// Target URL.
    pub url: String,
    /// Secrets that sign the attempt.
    pub secrets: Vec<WebhookSecret>,
    /// The event.
    pub event: OutboxEvent,
    /// If the attempt's outcome is not recorded by then, any owner may attempt again.
    pub lease_until: Timestamp,
}

/// Claims a due delivery: moves its due entry to `now + lease` (so a node that dies
/// mid-attempt only delays it) and commits that before the attempt. Returns `None` when
/// someone else claimed it first, or when it no longer needs sending (endpoint deleted or
/// disabled: then it is cancelled here).
#[allow(clippy::too_many_arguments)]
pub async fn claim(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    due_at: Timestamp,
    delivery_id: Uuid,
    lease: Duration,
) -> DomainResult<Option<Claim>> {
    let due_key = keyspace::webhook_due(tenant, due_at, delivery_id);
    if tx.get(&due_key).await?.is_none() {
        return Ok(None);
    }
    tx.clear(&due_key)?;
    let Some(mut delivery) = find_delivery(tx, tenant, delivery_id).await? else {
        return Ok(None);
    };
    if delivery.status != DeliveryStatus::Pending {
        return Ok(None);
    }
    let now = context.now();
    let endpoint = match endpoints::find_endpoint(tx, tenant, delivery.endpoint_id).await? {
        None => {
            tx.clear(&keyspace::webhook_delivery(tenant, delivery_id))?;
            return Ok(None);
        }
        Some(endpoint) if !endpoint.enabled => {
            finish(tx, tenant, &mut delivery, DeliveryStatus::Cancelled)?;
            return Ok(None);
        }
        Some(endpoint) => endpoint,
    };
    let Some(event_bytes) = tx
        .get(&keyspace::webhook_event(tenant, &delivery.event_id))
        .await?
    else {
        tracing::error!(
            tenant,
            event_id = delivery.event_id,
            "webhook event missing"
        );
        finish(tx, tenant, &mut delivery, DeliveryStatus::Failed)?;
        return Ok(None);
    };
    let event: OutboxEvent = codec::decode(&event_bytes)?;
    let lease_until = now.plus(lease);
    tx.set(
        &keyspace::webhook_due(tenant, lease_until, delivery_id),
        b"",
    )?;
    delivery.first_attempt_at.get_or_insert(now);
    delivery.next_attempt_at = Some(lease_until);
    delivery.version += 1;
    write_delivery(tx, tenant, &delivery)?;
    Ok(Some(Claim {
        secrets: signing_secrets(master_key, tenant, &endpoint, now)?,
        url: endpoint.url,
        delivery,
        event,
        lease_until,
    }))
}

fn finish(
    tx: &Transaction,
    tenant: &str,
    delivery: &mut DeliveryRecord,
    status: DeliveryStatus,
) -> DomainResult<()> {
    delivery.status = status;
    delivery.next_attempt_at = None;
    delivery.version += 1;
    write_delivery(tx, tenant, delivery)
}

/// What one attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// When it started.
    pub at: Timestamp,
    /// The HTTP status, if an answer came.
    pub http_status: Option<u16>,
    /// Time to the answer or the error.
    pub latency_ms: u64,
    /// What went wrong, if anything.
    pub error: String,
    /// Whether the target was refused before sending (private address).
    pub refused: bool,
}

/// The delivery after recording an attempt, and the endpoint if the attempt disabled it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The delivery.
    pub delivery: DeliveryRecord,
    /// Set when a 410 Gone disabled the endpoint in this transaction.
    pub disabled_endpoint: Option<WebhookEndpoint>,
}

/// Records an attempt's outcome and decides what comes next: 2xx delivers, 410 fails the
/// delivery and disables the endpoint, anything else retries with backoff until
/// `give_up_after` past the first attempt.
pub async fn record_attempt_audited(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    claim: &Claim,
    result: AttemptResult,
    policy: &RetryPolicy,
) -> DomainResult<Option<Recorded>> {
    let recorded = record_attempt(tx, context, tenant, claim, result, policy).await?;
    if let Some(Recorded {
        disabled_endpoint: Some(endpoint),
        ..
    }) = &recorded
    {
        let event = AuditEvent {
            actor: "system".to_owned(),
            action: AuditAction::WebhookEndpointDisable.as_str().to_owned(),
            target: format!("webhook_endpoint:{}", endpoint.endpoint_id),
            source_ip: String::new(),
            details: serde_json::json!({ "reason": "target answered 410 Gone" }),
        };
        record_change(tx, context, tenant, Some(event), []).await?;
    }
    Ok(recorded)
}

/// Records the outcome of an attempt (without the audit entry of a disabled endpoint).
pub async fn record_attempt(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    claim: &Claim,
    result: AttemptResult,
    policy: &RetryPolicy,
) -> DomainResult<Option<Recorded>> {
    let delivery_id = claim.delivery.delivery_id;
    tx.clear(&keyspace::webhook_due(
        tenant,
        claim.lease_until,
        delivery_id,
    ))?;
    let Some(mut delivery) = find_delivery(tx, tenant, delivery_id).await? else {
        return Ok(None);
    };
    let outcome = match result.http_status {
        _ if result.refused => "refused",
        Some(200..=299) => "delivered",
        Some(410) => "gone",
        _ => "failed",
    };
    delivery.attempts.push(DeliveryAttempt {
        at: result.at,
        outcome: outcome.to_owned(),
        http_status: result.http_status.unwrap_or(0),
        latency_ms: result.latency_ms,
        error: result.error.chars().take(500).collect(),
    });
    let overflow = delivery.attempts.len().saturating_sub(MAX_ATTEMPTS_KEPT);
    delivery.attempts.drain(..overflow);
    let mut disabled_endpoint = None;
    if delivery.status == DeliveryStatus::Pending {
        let now = context.now();
        match outcome {
            "delivered" => {
                delivery.status = DeliveryStatus::Delivered;
                delivery.next_attempt_at = None;
            }
            "gone" => {
                delivery.status = DeliveryStatus::Failed;
                delivery.next_attempt_at = None;
                disabled_endpoint =
                    endpoints::disable_gone_endpoint(tx, context, tenant, delivery.endpoint_id)
                        .await?;
            }
            _ => {
                let first = delivery.first_attempt_at.unwrap_or(result.at);
                let deadline = first.plus(policy.give_up_after);
                if now >= deadline {
                    delivery.status = DeliveryStatus::Failed;
                    delivery.next_attempt_at = None;
                } else {
                    let failures = u32::try_from(
                        delivery
                            .attempts
                            .iter()
                            .rev()
                            .take_while(|attempt| attempt.outcome != "delivered")
                            .count(),
                    )
                    .unwrap_or(u32::MAX);
                    let random = u64::from_le_bytes(context.random::<8>());
                    let next = now.plus(policy.delay(failures, random)).min(deadline);
                    tx.set(&keyspace::webhook_due(tenant, next, delivery_id), b"")?;
                    delivery.next_attempt_at = Some(next);
                }
            }
        }
    }
    delivery.version += 1;
    write_delivery(tx, tenant, &delivery)?;
    Ok(Some(Recorded {
        delivery,
        disabled_endpoint,
    }))
}

/// Enqueues a stored event again for one endpoint, due now.
pub async fn replay(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    endpoint_id: Uuid,
    event_id: &str,
) -> DomainResult<DeliveryRecord> {
    let endpoint = endpoints::read_endpoint(tx, tenant, endpoint_id).await?;
    if !endpoint.enabled {
        return Err(DomainError::invalid(
            "endpoint_id",
            "the endpoint is disabled; enable it before replaying",
        ));
    }
    let bytes = tx
        .get(&keyspace::webhook_event(tenant, event_id))
        .await?
        .ok_or(DomainError::WebhookEventNotFound)?;
    let event: OutboxEvent = codec::decode(&bytes)?;
    enqueue(tx, context, tenant, endpoint_id, &event, true)
}

/// An endpoint's deliveries, newest first, before `before`; returns the page and whether
/// more follow.
pub async fn list_for_endpoint(
    tx: &Transaction,
    tenant: &str,
    endpoint_id: Uuid,
    before: Option<Uuid>,
    limit: usize,
) -> DomainResult<(Vec<DeliveryRecord>, bool)> {
    endpoints::read_endpoint(tx, tenant, endpoint_id).await?;
    list_deliveries(tx, tenant, endpoint_id, before, limit).await
}

/// An endpoint's delivery log, newest first, without checking the endpoint exists.
pub async fn list_deliveries(
    tx: &Transaction,
    tenant: &str,
    endpoint_id: Uuid,
    before: Option<Uuid>,
    limit: usize,
) -> DomainResult<(Vec<DeliveryRecord>, bool)> {
    let subspace = keyspace::webhook_log_subspace(tenant, endpoint_id);
    let (begin, mut end) = subspace.range();
    if let Some(before) = before {
        end = keyspace::webhook_log(tenant, endpoint_id, before);
    }
    let entries = tx
        .get_range(
            &begin,
            &end,
            RangeOptions {
                limit: Some(limit + 1),
                reverse: true,
                snapshot: true,
            },
        )
        .await?;
    let more = entries.len() > limit;
    let mut deliveries = Vec::new();
    for (key, _) in entries.into_iter().take(limit) {
        let (delivery_id,): (Uuid,) = subspace
            .unpack(&key)
            .map_err(|error| DomainError::Internal(format!("webhook log key: {error}")))?;
        if let Some(bytes) = tx
            .snapshot_get(&keyspace::webhook_delivery(tenant, delivery_id))
            .await?
        {
            deliveries.push(codec::decode(&bytes)?);
        }
    }
    Ok((deliveries, more))
}

/// Tenants marked as having webhook work (a snapshot read).
pub async fn work_tenants(tx: &Transaction, limit: usize) -> DomainResult<Vec<String>> {
    queue::marked_tenants(tx, &keyspace::webhook_work_subspace(), limit).await
}

/// Clears the tenant's work mark when its outbox and due queue are both empty. Both are
/// read with conflicts, so an event emitted concurrently makes this retry instead of
/// leaving an unmarked event behind.
pub async fn retire_work_mark_if_idle(tx: &Transaction, tenant: &str) -> DomainResult<bool> {
    let first = RangeOptions {
        limit: Some(1),
        ..RangeOptions::default()
    };
    let (begin, end) = keyspace::outbox_subspace(tenant).range();
    if !tx.get_range(&begin, &end, first).await?.is_empty() {
        return Ok(false);
    }
    let (begin, end) = keyspace::webhook_due_subspace(tenant).range();
    if !tx.get_range(&begin, &end, first).await?.is_empty() {
        return Ok(false);
    }
    tx.clear(&keyspace::webhook_work(tenant))?;
    Ok(true)
}
