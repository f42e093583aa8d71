//! The email dispatcher: on every node with an SMTP sender, a loop finds tenants with
//! messages waiting and, for each tenant this node owns, claims the due messages, sends them
//! through the node's [`EmailSender`](crate::domain::email::EmailSender) and records the
//! outcome. A claimed message whose outcome was never recorded (the node died mid-send) is
//! due again when its lease runs out, on whichever node owns the tenant then.

use std::sync::{Arc, Weak};
use std::time::Instant;

use uuid::Uuid;

use crate::context::Timestamp;
use crate::domain::email::outbox::{self, EmailStatus};
use crate::domain::email::{EmailSettings, SmtpOutcome};
use crate::error::{DomainError, DomainResult};
use crate::runtime::cluster::MembershipView;
use crate::runtime::services::NodeServices;
use crate::runtime::tenant_queue::{self, QueueBase, SCAN_LIMIT, TenantQueue};

/// The email queue: the shared loop plus the delivery settings.
#[derive(Debug)]
struct EmailQueue {
    base: QueueBase,
    settings: EmailSettings,
}

/// Starts the dispatcher loop when a sender is configured; it runs while `alive` does.
pub(crate) fn spawn(
    services: Arc<NodeServices>,
    settings: EmailSettings,
    membership: Option<MembershipView>,
    alive: Weak<()>,
) {
    if settings.sender.is_none() {
        return;
    }
    let every = settings.poll_interval;
    let base = QueueBase::new(services, membership, settings.concurrency, alive);
    tenant_queue::spawn(Arc::new(EmailQueue { base, settings }), every);
}

impl TenantQueue for EmailQueue {
    const NAME: &'static str = "email";

    fn base(&self) -> &QueueBase {
        &self.base
    }

    async fn marked(&self) -> DomainResult<Vec<String>> {
        let db = &self.base.services.db;
        db.run(|tx| async move { outbox::work_tenants(&tx, SCAN_LIMIT).await })
            .await
    }

    async fn due(
        &self,
        tenant: &str,
        now: Timestamp,
        limit: usize,
    ) -> DomainResult<Vec<(Timestamp, Uuid)>> {
        let db = &self.base.services.db;
        db.run(|tx| async move { outbox::due_messages(&tx, tenant, now, limit).await })
            .await
    }

    async fn retire(&self, tenant: &str) -> DomainResult<bool> {
        let db = &self.base.services.db;
        db.run(|tx| async move { outbox::retire_work_mark_if_idle(&tx, tenant).await })
            .await
    }

    async fn attempt(
        self: Arc<Self>,
        tenant: String,
        due_at: Timestamp,
        id: Uuid,
    ) -> DomainResult<()> {
        attempt(&self, &tenant, due_at, id).await
    }
}

/// Claims, sends and records one message.
// The attempt's latency is measured on the monotonic clock, like any metrics timer.
#[allow(clippy::disallowed_methods)]
async fn attempt(
    queue: &EmailQueue,
    tenant: &str,
    due_at: Timestamp,
    message_id: Uuid,
) -> DomainResult<()> {
    let services = &queue.base.services;
    let settings = &queue.settings;
    let Some(sender) = &settings.sender else {
        return Err(DomainError::Internal("no email sender".to_owned()));
    };
    let lease = settings.attempt_timeout + settings.lease_margin;
    let claim = services
        .db
        .run(|tx| async move {
            outbox::claim(
                &tx,
                &services.context,
                &services.master_key,
                tenant,
                due_at,
                message_id,
                lease,
            )
            .await
        })
        .await?;
    let Some(claim) = claim else {
        return Ok(());
    };
    let started = services.context.now();
    let clock = Instant::now();
    let outcome =
        match tokio::time::timeout(settings.attempt_timeout, sender.send(&claim.email)).await {
            Ok(outcome) => outcome,
            Err(_) => SmtpOutcome::Deferred {
                code: 0,
                message: format!("no answer within {:?}", settings.attempt_timeout),
            },
        };
    let latency_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    metrics::histogram!("gatehouse_email_send_seconds").record(clock.elapsed().as_secs_f64());
    let policy = settings.retry;
    let (claim, outcome_ref) = (&claim, &outcome);
    let recorded = services
        .db
        .run(|tx| async move {
            outbox::record_attempt(
                &tx,
                &services.context,
                tenant,
                claim,
                outcome_ref,
                started,
                latency_ms,
                &policy,
            )
            .await
        })
        .await?;
    let outcome_name = match outcome {
        SmtpOutcome::Accepted => "sent",
        SmtpOutcome::Rejected { .. } => "rejected",
        SmtpOutcome::Deferred { .. } => "deferred",
    };
    metrics::counter!("gatehouse_email_attempts_total", "outcome" => outcome_name).increment(1);
    if let Some(delivery) = recorded {
        tracing::info!(tenant, %message_id, kind = delivery.kind.as_str(), outcome = outcome_name, status = delivery.status.as_str(), "email attempt");
        if delivery.status != EmailStatus::Pending {
            metrics::counter!("gatehouse_email_deliveries_total", "outcome" => delivery.status.as_str())
                .increment(1);
            if let Some(sent_at) = delivery.sent_at {
                let seconds = sent_at.millis_since(delivery.created_at) as f64 / 1000.0;
                metrics::histogram!("gatehouse_email_delivery_latency_seconds").record(seconds);
            }
        }
    }
    Ok(())
}
