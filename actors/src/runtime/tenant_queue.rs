//! The loop every per-tenant delivery queue runs (webhooks, email): on every node with a
//! sender, look for tenants marked with work and, for each tenant this node owns and is not
//! already serving, take the due entries in batches and attempt each under a node-wide
//! budget, until nothing is due; then retire the tenant's mark if its queue is empty.
//!
//! A queue says only what differs: where its marks and due entries are, what to do before a
//! round (webhooks fan their outbox out) and how to attempt one entry.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::context::Timestamp;
use crate::error::{DomainError, DomainResult};
use crate::runtime::cluster::{ActorKind, MembershipView};
use crate::runtime::services::NodeServices;

/// Due entries taken per round over a tenant.
pub(crate) const DUE_BATCH: usize = 32;
/// Most tenants looked at per scan.
pub(crate) const SCAN_LIMIT: usize = 10_000;

/// What every queue's dispatcher holds: storage and time, which tenants this node owns, the
/// tenants it is serving now, and its budget of attempts in flight.
#[derive(Debug)]
pub(crate) struct QueueBase {
    pub(crate) services: Arc<NodeServices>,
    membership: Option<MembershipView>,
    running: Mutex<HashSet<String>>,
    permits: Arc<Semaphore>,
    /// Gone once the node's domain is dropped: the loop and its passes stop then.
    alive: Weak<()>,
}

impl QueueBase {
    pub(crate) fn new(
        services: Arc<NodeServices>,
        membership: Option<MembershipView>,
        concurrency: usize,
        alive: Weak<()>,
    ) -> QueueBase {
        QueueBase {
            services,
            membership,
            running: Mutex::new(HashSet::new()),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            alive,
        }
    }

    /// Whether this node (still running) owns `tenant`'s queue.
    fn owns(&self, tenant: &str) -> bool {
        self.alive.strong_count() > 0
            && self
                .membership
                .as_ref()
                .is_none_or(|membership| membership.current().is_local(ActorKind::Tenant, tenant))
    }
}

/// One kind of per-tenant queue.
pub(crate) trait TenantQueue: Send + Sync + Sized + 'static {
    /// Names the queue in logs (`webhook`, `email`).
    const NAME: &'static str;

    /// The shared state.
    fn base(&self) -> &QueueBase;

    /// Tenants marked as having work (a snapshot read).
    fn marked(&self) -> impl Future<Output = DomainResult<Vec<String>>> + Send;

    /// Runs before each round over `tenant`.
    fn prepare(&self, tenant: &str) -> impl Future<Output = DomainResult<()>> + Send {
        let _ = tenant;
        async { Ok(()) }
    }

    /// Up to `limit` entries due at `now`, oldest first.
    fn due(
        &self,
        tenant: &str,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = DomainResult<Vec<(Timestamp, Uuid)>>> + Send;

    /// Clears `tenant`'s mark if its queue is empty.
    fn retire(&self, tenant: &str) -> impl Future<Output = DomainResult<bool>> + Send;

    /// Claims, attempts and records one due entry.
    fn attempt(
        self: Arc<Self>,
        tenant: String,
        due_at: Timestamp,
        id: Uuid,
    ) -> impl Future<Output = DomainResult<()>> + Send;
}

/// Starts `queue`'s loop, looking for work every `every`; it stops with the node's domain.
pub(crate) fn spawn<Q: TenantQueue>(queue: Arc<Q>, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if queue.base().alive.strong_count() == 0 {
                return;
            }
            if let Err(error) = scan(&queue).await {
                tracing::warn!(%error, queue = Q::NAME, "dispatcher scan failed");
            }
        }
    });
}

async fn scan<Q: TenantQueue>(queue: &Arc<Q>) -> DomainResult<()> {
    for tenant in queue.marked().await? {
        if !queue.base().owns(&tenant) {
            continue;
        }
        let fresh = queue
            .base()
            .running
            .lock()
            .map(|mut running| running.insert(tenant.clone()))
            .unwrap_or(false);
        if !fresh {
            continue;
        }
        let queue = queue.clone();
        tokio::spawn(async move {
            if let Err(error) = run_tenant(&queue, &tenant).await {
                tracing::warn!(tenant, %error, queue = Q::NAME, "dispatch pass failed");
            }
            if let Ok(mut running) = queue.base().running.lock() {
                running.remove(&tenant);
            }
        });
    }
    Ok(())
}

/// One pass over a tenant: rounds of due entries until nothing is due.
async fn run_tenant<Q: TenantQueue>(queue: &Arc<Q>, tenant: &str) -> DomainResult<()> {
    loop {
        if !queue.base().owns(tenant) {
            return Ok(());
        }
        queue.prepare(tenant).await?;
        let now = queue.base().services.context.now();
        let due = queue.due(tenant, now, DUE_BATCH).await?;
        if due.is_empty() {
            queue.retire(tenant).await?;
            return Ok(());
        }
        let full_batch = due.len() == DUE_BATCH;
        let mut attempts = tokio::task::JoinSet::new();
        for (due_at, id) in due {
            let permit = queue
                .base()
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| DomainError::Unavailable("dispatcher stopped".to_owned()))?;
            let attempt = queue.clone().attempt(tenant.to_owned(), due_at, id);
            attempts.spawn(async move {
                let _permit = permit;
                attempt.await
            });
        }
        while let Some(joined) = attempts.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(tenant, %error, queue = Q::NAME, "attempt failed"),
                Err(error) => tracing::error!(tenant, %error, queue = Q::NAME, "attempt panicked"),
            }
        }
        if !full_batch {
            return Ok(());
        }
    }
}
