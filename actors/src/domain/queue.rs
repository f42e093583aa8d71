//! Reads shared by the per-tenant delivery queues (webhook deliveries, email): the tenants
//! marked with work, and a tenant's due entries, keyed `(…, at_millis, id)`.

use gatehouse_storage::{RangeOptions, Subspace, Transaction};
use uuid::Uuid;

use crate::context::Timestamp;
use crate::error::{DomainError, DomainResult};

/// The tenants marked in `marks` (keys `(…, tenant)`), a snapshot read.
pub async fn marked_tenants(
    tx: &Transaction,
    marks: &Subspace,
    limit: usize,
) -> DomainResult<Vec<String>> {
    let (begin, end) = marks.range();
    let entries = tx
        .get_range(
            &begin,
            &end,
            RangeOptions {
                limit: Some(limit),
                snapshot: true,
                ..RangeOptions::default()
            },
        )
        .await?;
    entries
        .into_iter()
        .map(|(key, _)| {
            marks
                .unpack::<(String,)>(&key)
                .map(|(tenant,)| tenant)
                .map_err(|error| DomainError::Internal(format!("work mark key: {error}")))
        })
        .collect()
}

/// Entries of the due queue `due` (keys `(…, at_millis, id)`) at or before `now`, oldest
/// first; a snapshot read (claiming re-reads with conflicts).
pub async fn due_entries(
    tx: &Transaction,
    due: &Subspace,
    now: Timestamp,
    limit: usize,
) -> DomainResult<Vec<(Timestamp, Uuid)>> {
    let (begin, _) = due.range();
    let end = due.pack(&(now.0.saturating_add(1),));
    let entries = tx
        .get_range(
            &begin,
            &end,
            RangeOptions {
                limit: Some(limit),
                snapshot: true,
                ..RangeOptions::default()
            },
        )
        .await?;
    entries
        .into_iter()
        .map(|(key, _)| {
            due.unpack::<(i64, Uuid)>(&key)
                .map(|(at, id)| (Timestamp(at), id))
                .map_err(|error| DomainError::Internal(format!("due key: {error}")))
        })
        .collect()
}
