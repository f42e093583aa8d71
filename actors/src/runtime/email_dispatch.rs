//! The email dispatcher: on every node with an SMTP sender, a loop finds tenants with
//! messages waiting and, for each tenant this node owns, claims the due messages, sends them
//! through the node's [`EmailSender`](crate::domain::email::EmailSender) and records the
//! outcome. A claimed message whose outcome was never recorded (the node died mid-send) is
//! due again when its lease runs out, on whichever node owns the tenant then.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::context::Timestamp;
use crate::domain::email::outbox::{self, EmailStatus};
use crate::domain::email::{EmailSettings, SmtpOutcome};
use crate::error::{DomainError, DomainResult};
use crate::runtime::cluster::{ActorKind, MembershipView};
use crate::runtime::services::NodeServices;

/// Due messages taken per pass over a tenant.
const DUE_BATCH: usize = 32;
/// Most tenants looked at per scan.
const SCAN_LIMIT: usize = 10_000;

#[derive(Debug)]
struct Dispatcher {
    services: Arc<NodeServices>,
    settings: EmailSettings,
    membership: Option<MembershipView>,
    running: Mutex<HashSet<String>>,
    permits: Arc<Semaphore>,
    alive: Weak<()>,
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
                tracing::warn!(%error, "email dispatcher scan failed");
            }
        }
    });
}

impl Dispatcher {
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
        .run(|tx| async move { outbox::work_tenants(&tx, SCAN_LIMIT).await })
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
                tracing::warn!(tenant, %error, "email dispatch pass failed");
            }
            if let Ok(mut running) = dispatcher.running.lock() {
                running.remove(&tenant);
            }
        });
    }
    Ok(())
}

/// One pass over a tenant: send what is due until nothing is.
async fn run_tenant(dispatcher: &Arc<Dispatcher>, tenant: &str) -> DomainResult<()> {
    let services = &dispatcher.services;
    loop {
        if !dispatcher.owns(tenant) {
            return Ok(());
        }
        let now = services.context.now();
        let due = services
            .db
            .run(|tx| async move { outbox::due_messages(&tx, tenant, now, DUE_BATCH).await })
            .await?;
        if due.is_empty() {
            services
                .db
                .run(|tx| async move { outbox::retire_work_mark_if_idle(&tx, tenant).await })
                .await?;
            return Ok(());
        }
        let full_batch = due.len() == DUE_BATCH;
        let mut attempts = tokio::task::JoinSet::new();
        for (due_at, message_id) in due {
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
                attempt(&dispatcher, &tenant, due_at, message_id).await
            });
        }
        while let Some(joined) = attempts.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(tenant, %error, "email attempt failed"),
                Err(error) => tracing::error!(tenant, %error, "email attempt panicked"),
            }
        }
        if !full_batch {
            return Ok(());
        }
    }
}

/// Claims, sends and records one message.
// The attempt's latency is measured on the monotonic clock, like any metrics timer.
#[allow(clippy::disallowed_methods)]
async fn attempt(
    dispatcher: &Dispatcher,
    tenant: &str,
    due_at: Timestamp,
    message_id: Uuid,
) -> DomainResult<()> {
    let services = &dispatcher.services;
    let settings = &dispatcher.settings;
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
