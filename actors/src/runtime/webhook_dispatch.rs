//! The webhook dispatcher: on every node, a loop finds tenants with webhook work and, for each
//! tenant this node owns, drains the outbox into deliveries and attempts the due ones. The
//! actual HTTP request is the node's business, behind [`WebhookSender`](crate::domain::webhooks::WebhookSender).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::context::Timestamp;
use crate::domain::webhooks::deliveries::{self, AttemptResult, Claim};
use crate::domain::webhooks::{
    DeliveryStatus, SendOutcome, WebhookRequest, WebhookSettings, signing, targets,
};
use crate::error::{DomainError, DomainResult};
use crate::runtime::cluster::{ActorKind, MembershipView};
use crate::runtime::services::NodeServices;

/// Outbox events moved into deliveries per transaction.
const FAN_OUT_BATCH: usize = 20;
/// Due deliveries taken per pass over a tenant.
const DUE_BATCH: usize = 32;
/// Most tenants looked at per scan.
const SCAN_LIMIT: usize = 10_000;

/// What the dispatcher works with: storage and time, the delivery settings, the membership
/// that says which tenants this node owns, and its own running passes and attempt budget.
#[derive(Debug)]
struct Dispatcher {
    services: Arc<NodeServices>,
    settings: WebhookSettings,
    membership: Option<MembershipView>,
    running: Mutex<HashSet<String>>,
    permits: Arc<Semaphore>,
    /// Gone once the node's domain is dropped: the loop and its passes stop then.
    alive: Weak<()>,
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
    let dispatcher = Arc::new(Dispatcher {
        services,
        permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        settings,
        membership,
        running: Mutex::new(HashSet::new()),
        alive,
    });
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if dispatcher.alive.strong_count() == 0 {
                return;
            }
            if let Err(error) = scan(&dispatcher).await {
                tracing::warn!(%error, "webhook dispatcher scan failed");
            }
        }
    });
}

impl Dispatcher {
    /// Whether this node (still running) owns `tenant`'s dispatch.
    fn owns(&self, tenant: &str) -> bool {
        self.alive.strong_count() > 0
            && self
                .membership
                .as_ref()
                .is_none_or(|membership| membership.current().is_local(ActorKind::Tenant, tenant))
    }
}

async fn scan(dispatcher: &Arc<Dispatcher>) -> DomainResult<()> {
    let tenants = dispatcher
        .services
        .db
        .run(|tx| async move { deliveries::work_tenants(&tx, SCAN_LIMIT).await })
        .await?;
    for tenant in tenants {
        if !dispatcher.owns(&tenant) {
            continue;
        }
        let fresh = dispatcher
            .running
            .lock()
            .map(|mut running| running.insert(tenant.clone()))
            .unwrap_or(false);
        if !fresh {
            continue;
        }
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            if let Err(error) = run_tenant(&dispatcher, &tenant).await {
                tracing::warn!(tenant, %error, "webhook dispatch pass failed");
            }
            if let Ok(mut running) = dispatcher.running.lock() {
                running.remove(&tenant);
            }
        });
    }
    Ok(())
}

/// One pass over a tenant: fan the outbox out, then attempt what is due, until nothing is due.
async fn run_tenant(dispatcher: &Arc<Dispatcher>, tenant: &str) -> DomainResult<()> {
    let services = &dispatcher.services;
    loop {
        if !dispatcher.owns(tenant) {
            return Ok(());
        }
        loop {
            let fan_out = services
                .db
                .run(|tx| async move {
                    deliveries::fan_out(&tx, &services.context, tenant, FAN_OUT_BATCH).await
                })
                .await?;
            if !fan_out.more {
                break;
            }
        }
        let now = services.context.now();
        let due = services
            .db
            .run(|tx| async move { deliveries::due_deliveries(&tx, tenant, now, DUE_BATCH).await })
            .await?;
        if due.is_empty() {
            services
                .db
                .run(|tx| async move { deliveries::retire_work_mark_if_idle(&tx, tenant).await })
                .await?;
            return Ok(());
        }
        let full_batch = due.len() == DUE_BATCH;
        let mut attempts = tokio::task::JoinSet::new();
        for (due_at, delivery_id) in due {
            let permit = dispatcher
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| DomainError::Unavailable("dispatcher stopped".to_owned()))?;
            let dispatcher = dispatcher.clone();
            let tenant = tenant.to_owned();
            attempts.spawn(async move {
                let _permit = permit;
                attempt(&dispatcher, &tenant, due_at, delivery_id).await
            });
        }
        while let Some(joined) = attempts.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(tenant, %error, "webhook attempt failed"),
                Err(error) => tracing::error!(tenant, %error, "webhook attempt panicked"),
            }
        }
        if !full_batch {
            return Ok(());
        }
    }
}

/// Claims, sends and records one delivery attempt.
async fn attempt(
    dispatcher: &Dispatcher,
    tenant: &str,
    due_at: Timestamp,
    delivery_id: Uuid,
) -> DomainResult<()> {
    let services = &dispatcher.services;
    let settings = &dispatcher.settings;
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
