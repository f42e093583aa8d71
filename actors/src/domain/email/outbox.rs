//! The email outbox and delivery log as transaction functions: enqueueing a rendered message
//! with the change that causes it, the due queue, claiming a message with a lease before an
//! attempt, recording the SMTP outcome after it, and the tenant's delivery log.
//!
//! The rendered message is sealed at rest (it carries codes and links) and dropped once the
//! message is sent or has failed for good; the delivery record stays as the log.

use std::time::Duration;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::EmailKind;
use super::sending::{OutgoingEmail, SmtpOutcome};
use super::templates::RenderedEmail;
use crate::context::{Context, Timestamp};
use crate::domain::crypto::MasterKey;
use crate::domain::keyspace;
use crate::domain::queue;
use crate::domain::tenants::TenantState;
use crate::domain::webhooks::RetryPolicy;
use crate::error::{DomainError, DomainResult};

/// Attempts kept per message.
pub const MAX_ATTEMPTS_KEPT: usize = 32;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmailStatus {
    /// Waiting for its next attempt (or being attempted).
    Pending,
    /// The SMTP server accepted it.
    Sent,
    /// The server refused it for good (5xx), or retries ran out.
    Failed,
}

impl EmailStatus {
    /// Lower-case name for the wire and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Pending => "pending",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
        }
    }
}

/// One SMTP attempt, as kept in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAttempt {
    /// When it started.
    pub at: Timestamp,
    /// `sent`, `rejected` (5xx) or `deferred` (transient).
    pub outcome: String,
    /// SMTP reply code; 0 when there was none.
    pub smtp_code: u16,
    /// Time to the outcome.
    pub latency_ms: u64,
    /// The server's text or the error; empty on success.
    pub error: String,
}

/// One message's delivery record (no body: the log shows what was sent to whom, not the
/// codes in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailDelivery {
    /// Time-ordered id; the `Message-ID` is `<id>@<sender domain>`.
    pub message_id: Uuid,
    /// What kind of message.
    pub kind: EmailKind,
    /// Recipient.
    pub to: String,
    /// When it was enqueued (when its change committed).
    pub created_at: Timestamp,
    /// Where it stands.
    pub status: EmailStatus,
    /// When the first attempt started.
    pub first_attempt_at: Option<Timestamp>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// When the server accepted it.
    pub sent_at: Option<Timestamp>,
    /// Attempts so far, oldest first.
    pub attempts: Vec<EmailAttempt>,
    /// Bumped on every change.
    pub version: u64,
}

impl EmailDelivery {
    /// The `Message-ID` header value, without angle brackets.
    pub fn header_message_id(&self, from_address: &str) -> String {
        let domain = from_address
            .rsplit_once('@')
            .map_or("localhost", |(_, domain)| domain);
        format!("{}@{domain}", self.message_id)
    }
}

/// What is sealed: the sender and the rendered message.
#[derive(Clone, Serialize, Deserialize)]
struct StoredBody {
    from_address: String,
    from_name: String,
    reply_to: String,
    subject: String,
    html: String,
    text: String,
}

fn seal_label(tenant: &str, message_id: Uuid) -> Vec<u8> {
    format!("email_body\u{0}{tenant}\u{0}{message_id}").into_bytes()
}

/// A message sealed for the outbox, not yet written.
#[derive(Debug)]
pub struct SealedEmail {
    delivery: EmailDelivery,
    sealed: Vec<u8>,
}

/// Writes a rendered message for `to` into the tenant's outbox, due now, sealed with the
/// master key; it is sent if and only if `tx` commits.
pub fn enqueue(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &TenantState,
    kind: EmailKind,
    to: &str,
    rendered: RenderedEmail,
) -> DomainResult<EmailDelivery> {
    let SealedEmail { delivery, sealed } = seal(context, master_key, tenant, kind, to, rendered)?;
    let (tenant_id, message_id, now) =
        (tenant.tenant_id(), delivery.message_id, delivery.created_at);
    tx.set(&keyspace::email_body(tenant_id, message_id), &sealed)?;
    write_delivery(tx, tenant_id, &delivery)?;
    tx.set(&keyspace::email_due(tenant_id, now, message_id), b"")?;
    tx.set(&keyspace::email_work(tenant_id), b"")?;
    metrics::counter!("gatehouse_email_enqueued_total", "kind" => kind.as_str()).increment(1);
    Ok(delivery)
}

/// Seals a rendered message and makes its delivery record, without writing either. The
/// flows also seal a message they then drop, for an address that gets none, so that asking
/// for a code costs the same whether or not the address has a user.
pub fn seal(
    context: &Context,
    master_key: &MasterKey,
    tenant: &TenantState,
    kind: EmailKind,
    to: &str,
    rendered: RenderedEmail,
) -> DomainResult<SealedEmail> {
    let tenant_id = tenant.tenant_id();
    let now = context.now();
    let message_id = uuid::Builder::from_unix_timestamp_millis(
        u64::try_from(now.0).unwrap_or(0),
        &context.random::<10>(),
    )
    .into_uuid();
    let email = &tenant.record.settings.email;
    let from_name = if email.from_name.is_empty() {
        tenant.record.display_name.clone()
    } else {
        email.from_name.clone()
    };
    let body = StoredBody {
        from_address: email.from_address.clone(),
        from_name,
        reply_to: email.reply_to.clone(),
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
    };
    let sealed = master_key.seal(
        context,
        &seal_label(tenant_id, message_id),
        &codec::encode(&body)?,
    )?;
    let delivery = EmailDelivery {
        message_id,
        kind,
        to: to.to_owned(),
        created_at: now,
        status: EmailStatus::Pending,
        first_attempt_at: None,
        next_attempt_at: Some(now),
        sent_at: None,
        attempts: Vec::new(),
        version: 1,
    };
    Ok(SealedEmail { delivery, sealed })
}

fn write_delivery(tx: &Transaction, tenant: &str, delivery: &EmailDelivery) -> DomainResult<()> {
    tx.set(
        &keyspace::email_delivery(tenant, delivery.message_id),
        &codec::encode(delivery)?,
    )?;
    Ok(())
}

/// Reads a message's delivery record.
pub async fn find_delivery(
    tx: &Transaction,
    tenant: &str,
    message_id: Uuid,
) -> DomainResult<Option<EmailDelivery>> {
    match tx
        .get(&keyspace::email_delivery(tenant, message_id))
        .await?
    {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Due-queue entries at or before `now`, oldest first (a snapshot read; claiming re-reads).
pub async fn due_messages(
    tx: &Transaction,
    tenant: &str,
    now: Timestamp,
    limit: usize,
) -> DomainResult<Vec<(Timestamp, Uuid)>> {
    queue::due_entries(tx, &keyspace::email_due_subspace(tenant), now, limit).await
}

/// A message claimed for one attempt.
#[derive(Debug, Clone)]
pub struct EmailClaim {
    /// The delivery record after claiming.
    pub delivery: EmailDelivery,
    /// The message to send.
    pub email: OutgoingEmail,
    /// If the outcome is not recorded by then, any owner may attempt again.
    pub lease_until: Timestamp,
}

/// Claims a due message: moves its due entry to `now + lease` and commits that before the
/// attempt, so a node that dies mid-send only delays the message. `None` when someone else
/// claimed it first or it is no longer pending.
pub async fn claim(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    due_at: Timestamp,
    message_id: Uuid,
    lease: Duration,
) -> DomainResult<Option<EmailClaim>> {
    let due_key = keyspace::email_due(tenant, due_at, message_id);
    if tx.get(&due_key).await?.is_none() {
        return Ok(None);
    }
    tx.clear(&due_key)?;
    let Some(mut delivery) = find_delivery(tx, tenant, message_id).await? else {
        return Ok(None);
    };
    if delivery.status != EmailStatus::Pending {
        return Ok(None);
    }
    let body_key = keyspace::email_body(tenant, message_id);
    let Some(sealed) = tx.get(&body_key).await? else {
        tracing::error!(tenant, %message_id, "email body missing");
        delivery.status = EmailStatus::Failed;
        delivery.next_attempt_at = None;
        delivery.version += 1;
        write_delivery(tx, tenant, &delivery)?;
        return Ok(None);
    };
    let body: StoredBody =
        codec::decode(&master_key.open(&seal_label(tenant, message_id), &sealed)?)?;
    let now = context.now();
    let lease_until = now.plus(lease);
    tx.set(&keyspace::email_due(tenant, lease_until, message_id), b"")?;
    delivery.first_attempt_at.get_or_insert(now);
    delivery.next_attempt_at = Some(lease_until);
    delivery.version += 1;
    write_delivery(tx, tenant, &delivery)?;
    let email = OutgoingEmail {
        message_id: delivery.header_message_id(&body.from_address),
        from_address: body.from_address,
        from_name: body.from_name,
        reply_to: body.reply_to,
        to: delivery.to.clone(),
        subject: body.subject,
        html: body.html,
        text: body.text,
    };
    Ok(Some(EmailClaim {
        delivery,
        email,
        lease_until,
    }))
}

/// Records an attempt's outcome: accepted sends, a 5xx fails for good, anything else retries
/// with backoff until `give_up_after` past the first attempt. The sealed body is dropped once
/// the message is sent or failed.
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    claim: &EmailClaim,
    outcome: &SmtpOutcome,
    at: Timestamp,
    latency_ms: u64,
    policy: &RetryPolicy,
) -> DomainResult<Option<EmailDelivery>> {
    let message_id = claim.delivery.message_id;
    tx.clear(&keyspace::email_due(tenant, claim.lease_until, message_id))?;
    let Some(mut delivery) = find_delivery(tx, tenant, message_id).await? else {
        return Ok(None);
    };
    let (name, code, error) = match outcome {
        SmtpOutcome::Accepted => ("sent", 250, String::new()),
        SmtpOutcome::Rejected { code, message } => ("rejected", *code, message.clone()),
        SmtpOutcome::Deferred { code, message } => ("deferred", *code, message.clone()),
    };
    delivery.attempts.push(EmailAttempt {
        at,
        outcome: name.to_owned(),
        smtp_code: code,
        latency_ms,
        error: error.chars().take(500).collect(),
    });
    let overflow = delivery.attempts.len().saturating_sub(MAX_ATTEMPTS_KEPT);
    delivery.attempts.drain(..overflow);
    if delivery.status == EmailStatus::Pending {
        let now = context.now();
        match outcome {
            SmtpOutcome::Accepted => {
                delivery.status = EmailStatus::Sent;
                delivery.sent_at = Some(now);
                delivery.next_attempt_at = None;
            }
            SmtpOutcome::Rejected { .. } => {
                delivery.status = EmailStatus::Failed;
                delivery.next_attempt_at = None;
            }
            SmtpOutcome::Deferred { .. } => {
                let first = delivery.first_attempt_at.unwrap_or(at);
                let deadline = first.plus(policy.give_up_after);
                if now >= deadline {
                    delivery.status = EmailStatus::Failed;
                    delivery.next_attempt_at = None;
                } else {
                    let failures = u32::try_from(delivery.attempts.len()).unwrap_or(u32::MAX);
                    let random = u64::from_le_bytes(context.random::<8>());
                    let next = now.plus(policy.delay(failures, random)).min(deadline);
                    tx.set(&keyspace::email_due(tenant, next, message_id), b"")?;
                    delivery.next_attempt_at = Some(next);
                }
            }
        }
        if delivery.status != EmailStatus::Pending {
            tx.clear(&keyspace::email_body(tenant, message_id))?;
        }
    }
    delivery.version += 1;
    write_delivery(tx, tenant, &delivery)?;
    Ok(Some(delivery))
}

/// The tenant's delivery log, newest first, before `before`; the page and whether more follow.
pub async fn list_deliveries(
    tx: &Transaction,
    tenant: &str,
    before: Option<Uuid>,
    limit: usize,
) -> DomainResult<(Vec<EmailDelivery>, bool)> {
    let (begin, mut end) = keyspace::email_deliveries_subspace(tenant).range();
    if let Some(before) = before {
        end = keyspace::email_delivery(tenant, before);
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
    let deliveries = entries
        .into_iter()
        .take(limit)
        .map(|(_, value)| codec::decode(&value).map_err(DomainError::from))
        .collect::<DomainResult<Vec<EmailDelivery>>>()?;
    Ok((deliveries, more))
}

/// Tenants marked as having email work (a snapshot read).
pub async fn work_tenants(tx: &Transaction, limit: usize) -> DomainResult<Vec<String>> {
    queue::marked_tenants(tx, &keyspace::email_work_subspace(), limit).await
}

/// Clears the tenant's work mark when its due queue is empty (read with conflicts, so a
/// message enqueued concurrently makes this retry instead of leaving it unmarked).
pub async fn retire_work_mark_if_idle(tx: &Transaction, tenant: &str) -> DomainResult<bool> {
    let (begin, end) = keyspace::email_due_subspace(tenant).range();
    let first = RangeOptions {
        limit: Some(1),
        ..RangeOptions::default()
    };
    if !tx.get_range(&begin, &end, first).await?.is_empty() {
        return Ok(false);
    }
    tx.clear(&keyspace::email_work(tenant))?;
    Ok(true)
}
