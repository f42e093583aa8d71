//! The webhook dispatcher: on every node, a loop finds tenants with webhook work and, for each
//! tenant this node owns, drains the outbox into deliveries and attempts the due ones. The
//! actual HTTP request is the node's business, behind [`WebhookSender`](crate::domain::webhooks::WebhookSender).

use std::sync::{Arc, Weak};
use std::time::Instant;

use uuid::Uuid;

use crate::context::Timestamp;
use crate::domain::webhooks::deliveries::{self, AttemptResult, Claim};
use crate::domain::webhooks::{
    DeliveryStatus, SendOutcome, WebhookRequest, WebhookSettings, signing, targets,
};
use crate::error::{DomainError, DomainResult};
use crate::runtime::cluster::MembershipView;
use crate::runtime::services::NodeServices;
use crate::runtime::tenant_queue::{self, QueueBase, SCAN_LIMIT, TenantQueue};

/// Outbox events moved into deliveries per transaction.
const FAN_OUT_BATCH: usize = 20;

/// The webhook queue: the shared loop plus the delivery settings.
#[derive(Debug)]
struct WebhookQueue {
    base: QueueBase,
    settings: WebhookSettings,
}

/// Starts the dispatcher loop when a sender is configured; it runs while `alive` does.
pub(crate) fn spawn(
    services: Arc<NodeServices>,
    settings: WebhookSettings,
    membership: Option<MembershipView>,
    alive: Weak<()>,
) {
    if settings.sender.is_none() {
        return;
    }
    let every = settings.poll_interval;
    let base = QueueBase::new(services, membership, settings.concurrency, alive);
    tenant_queue::spawn(Arc::new(WebhookQueue { base, settings }), every);
}

impl TenantQueue for WebhookQueue {
    const NAME: &'static str = "webhook";

    fn base(&self) -> &QueueBase {
        &self.base
    }

    async fn marked(&self) -> DomainResult<Vec<String>> {
        let db = &self.base.services.db;
        db.run(|tx| async move { deliveries::work_tenants(&tx, SCAN_LIMIT).await })
            .await
    }

    /// Fans the tenant's outbox out into deliveries.
    async fn prepare(&self, tenant: &str) -> DomainResult<()> {
        let services = &self.base.services;
        loop {
            let fan_out = services
                .db
                .run(|tx| async move {
                    deliveries::fan_out(&tx, &services.context, tenant, FAN_OUT_BATCH).await
                })
                .await?;
            if !fan_out.more {
                return Ok(());
            }
        }
    }

    async fn due(
        &self,
        tenant: &str,
        now: Timestamp,
        limit: usize,
    ) -> DomainResult<Vec<(Timestamp, Uuid)>> {
        let db = &self.base.services.db;
        db.run(|tx| async move { deliveries::due_deliveries(&tx, tenant, now, limit).await })
            .await
    }

    async fn retire(&self, tenant: &str) -> DomainResult<bool> {
        let db = &self.base.services.db;
        db.run(|tx| async move { deliveries::retire_work_mark_if_idle(&tx, tenant).await })
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

/// Claims, sends and records one delivery attempt.
async fn attempt(
    queue: &WebhookQueue,
    tenant: &str,
    due_at: Timestamp,
    delivery_id: Uuid,
) -> DomainResult<()> {
    let services = &queue.base.services;
    let settings = &queue.settings;
    let lease = settings.attempt_timeout + settings.lease_margin;
    let claim = services
        .db
        .run(|tx| async move {
            deliveries::claim(
                &tx,
                &services.context,
                &services.master_key,
                tenant,
                due_at,
                delivery_id,
                lease,
            )
            .await
        })
        .await?;
    let Some(claim) = claim else {
        return Ok(());
    };
    let result = send(services.context.now(), &claim, settings).await?;
    let policy = settings.retry;
    let (claim, result) = (&claim, &result);
    let recorded = services
        .db
        .run(|tx| async move {
            let context = &services.context;
            deliveries::record_attempt_audited(&tx, context, tenant, claim, result.clone(), &policy)
                .await
        })
        .await?;
    if let Some(recorded) = recorded {
        let outcome = recorded
            .delivery
            .attempts
            .last()
            .map_or("unknown", |attempt| attempt.outcome.as_str());
        metrics::counter!("gatehouse_webhook_attempts_total", "outcome" => outcome.to_owned())
            .increment(1);
        if recorded.delivery.status != DeliveryStatus::Pending {
            metrics::counter!("gatehouse_webhook_deliveries_total", "outcome" => recorded.delivery.status.as_str())
                .increment(1);
        }
    }
    Ok(())
}

/// Checks the target and POSTs the signed event.
// The attempt's latency is measured on the monotonic clock, like any metrics timer.
#[allow(clippy::disallowed_methods)]
async fn send(
    started: Timestamp,
    claim: &Claim,
    settings: &WebhookSettings,
) -> DomainResult<AttemptResult> {
    let (allow_private, timeout) = (settings.allow_private_targets, settings.attempt_timeout);
    let Some(sender) = &settings.sender else {
        return Err(DomainError::Internal("no webhook sender".to_owned()));
    };
    let refused = |error: String| AttemptResult {
        at: started,
        http_status: None,
        latency_ms: 0,
        error,
        refused: true,
    };
    let url = match targets::parse_target_url(&claim.url, true) {
        Ok(url) => url,
        Err(error) => return Ok(refused(error.public_message())),
    };
    if let Err(error) = targets::check_target(&url, allow_private, &*settings.resolver).await {
        return Ok(refused(error.public_message()));
    }
    let body = signing::body(&claim.event)?;
    let headers = signing::headers(
        &claim.secrets,
        &claim.event.event_id,
        started.as_unix_seconds(),
        &body,
    )?;
    let clock = Instant::now();
    let outcome = sender
        .send(WebhookRequest {
            url: claim.url.clone(),
            headers,
            body,
            timeout,
        })
        .await;
    let latency_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(match outcome {
        SendOutcome::Answered(status) => AttemptResult {
            at: started,
            http_status: Some(status),
            latency_ms,
            error: if (200..300).contains(&status) {
                String::new()
            } else {
                format!("target answered HTTP {status}")
            },
            refused: false,
        },
        SendOutcome::Refused(error) => refused(error),
        SendOutcome::Failed(error) => AttemptResult {
            at: started,
            http_status: None,
            latency_ms,
            error,
            refused: false,
        },
    })
}
