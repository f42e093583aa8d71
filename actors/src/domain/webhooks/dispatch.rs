//! The dispatcher: on every node, a loop finds tenants with webhook work and, for each tenant
//! this node owns, drains the outbox into deliveries and attempts the due ones. The actual
//! HTTP request is the node's business, behind [`WebhookSender`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use uuid::Uuid;

use super::deliveries::{self, AttemptResult, Claim, Recorded};
use super::{signing, targets};
use crate::cluster::ActorKind;
use crate::context::Timestamp;
use crate::domain::audit::AuditAction;
use crate::domain::audit::{self, AuditEvent};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

pub use super::deliveries::RetryPolicy;

/// Outbox events moved into deliveries per transaction.
const FAN_OUT_BATCH: usize = 20;
/// Due deliveries taken per pass over a tenant.
const DUE_BATCH: usize = 32;
/// Most tenants looked at per scan.
const SCAN_LIMIT: usize = 10_000;

/// One HTTP POST to make (`Debug` shows the URL and body size only).
#[derive(Clone)]
pub struct WebhookRequest {
    /// Target URL.
    pub url: String,
    /// Headers, Standard Webhooks ones included.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Vec<u8>,
    /// Give up waiting for an answer after this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The target answered with this HTTP status.
    Answered(u16),
    /// The target's address is not allowed; nothing was sent.
    Refused(String),
    /// No answer: connection error, timeout, unsupported scheme.
    Failed(String),
}

/// Sends webhook requests; the node implements it over HTTP. Implementations must refuse
/// private targets (checking the addresses they actually connect to) unless the node allows
/// them.
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync + std::fmt::Debug {
    /// POSTs `request` and reports the outcome.
    async fn send(&self, request: WebhookRequest) -> SendOutcome;

    /// Whether `https` URLs can be delivered.
    fn supports_https(&self) -> bool {
        false
    }
}

/// Node-level webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The HTTP sender; without one, no dispatcher runs on this node.
    pub sender: Option<Arc<dyn WebhookSender>>,
    /// Whether private, loopback and link-local targets are allowed.
    pub allow_private_targets: bool,
    /// How long one attempt may wait for an answer.
    pub attempt_timeout: Duration,
    /// Extra time past the timeout before another owner may retry a claimed delivery.
    pub lease_margin: Duration,
    /// How often the dispatcher looks for work.
    pub poll_interval: Duration,
    /// Backoff and give-up schedule.
    pub retry: RetryPolicy,
    /// Most attempts in flight on this node.
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            sender: None,
            allow_private_targets: false,
            attempt_timeout: Duration::from_secs(15),
            lease_margin: Duration::from_secs(15),
            poll_interval: Duration::from_millis(500),
            retry: RetryPolicy::default(),
            concurrency: 32,
        }
    }
}

impl WebhookSettings {
    /// Whether `https` endpoint URLs may be created.
    pub fn https_supported(&self) -> bool {
        self.sender
            .as_ref()
            .is_none_or(|sender| sender.supports_https())
    }
}

/// Tenants whose dispatch pass is running on this node, and the attempt budget.
#[derive(Debug)]
struct DispatcherState {
    sender: Arc<dyn WebhookSender>,
    running: Mutex<HashSet<String>>,
    permits: Arc<Semaphore>,
}

/// Starts the dispatcher loop when a sender is configured.
pub(crate) fn spawn(gatehouse: &Arc<Gatehouse>) {
    let settings = &gatehouse.webhooks;
    let Some(sender) = settings.sender.clone() else {
        return;
    };
    let state = Arc::new(DispatcherState {
        sender,
        running: Mutex::new(HashSet::new()),
        permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
    });
    let every = settings.poll_interval;
    let weak = Arc::downgrade(gatehouse);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(error) = scan(&weak, &state).await {
                tracing::warn!(%error, "webhook dispatcher scan failed");
            }
            if weak.strong_count() == 0 {
                return;
            }
        }
    });
}

fn owns(gatehouse: &Gatehouse, tenant: &str) -> bool {
    gatehouse
        .membership()
        .is_none_or(|membership| membership.is_local(ActorKind::Tenant, tenant))
}

async fn scan(weak: &Weak<Gatehouse>, state: &Arc<DispatcherState>) -> DomainResult<()> {
    let Some(gatehouse) = weak.upgrade() else {
        return Ok(());
    };
    let tenants = gatehouse
        .services
        .db
        .run(|tx| async move { deliveries::work_tenants(&tx, SCAN_LIMIT).await })
        .await?;
    for tenant in tenants {
        if !owns(&gatehouse, &tenant) {
            continue;
        }
        let fresh = state
            .running
            .lock()
            .map(|mut running| running.insert(tenant.clone()))
            .unwrap_or(false);
        if !fresh {
            continue;
        }
        let gatehouse = gatehouse.clone();
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(error) = run_tenant(&gatehouse, &state, &tenant).await {
                tracing::warn!(tenant, %error, "webhook dispatch pass failed");
            }
            if let Ok(mut running) = state.running.lock() {
                running.remove(&tenant);
            }
        });
    }
    Ok(())
}

/// One pass over a tenant: fan the outbox out, then attempt what is due, until nothing is due.
async fn run_tenant(
    gatehouse: &Arc<Gatehouse>,
    state: &Arc<DispatcherState>,
    tenant: &str,
) -> DomainResult<()> {
    let services = &gatehouse.services;
    loop {
        if !owns(gatehouse, tenant) {
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
            let permit = state
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| DomainError::Unavailable("dispatcher stopped".to_owned()))?;
            let gatehouse = gatehouse.clone();
            let sender = state.sender.clone();
            let tenant = tenant.to_owned();
            attempts.spawn(async move {
                let _permit = permit;
                attempt(&gatehouse, sender.as_ref(), &tenant, due_at, delivery_id).await
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
    gatehouse: &Gatehouse,
    sender: &dyn WebhookSender,
    tenant: &str,
    due_at: Timestamp,
    delivery_id: Uuid,
) -> DomainResult<()> {
    let services = &gatehouse.services;
    let settings = &gatehouse.webhooks;
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
    let result = send(
        services.context.now(),
        &claim,
        sender,
        settings.allow_private_targets,
        settings.attempt_timeout,
    )
    .await?;
    let policy = settings.retry;
    let (claim, result) = (&claim, &result);
    let recorded = services
        .db
        .run(|tx| async move {
            let recorded = deliveries::record_attempt(
                &tx,
                &services.context,
                tenant,
                claim,
                result.clone(),
                &policy,
            )
            .await?;
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
                audit::append(&tx, &services.context, tenant, event).await?;
            }
            Ok::<_, DomainError>(recorded)
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
        if recorded.delivery.status != super::DeliveryStatus::Pending {
            metrics::counter!("gatehouse_webhook_deliveries_total", "outcome" => recorded.delivery.status.as_str())
                .increment(1);
        }
    }
    Ok(())
}

/// Checks the target and POSTs the signed event.
async fn send(
    started: Timestamp,
    claim: &Claim,
    sender: &dyn WebhookSender,
    allow_private: bool,
    timeout: Duration,
) -> DomainResult<AttemptResult> {
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
    if let Err(error) = targets::check_target(&url, allow_private).await {
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
