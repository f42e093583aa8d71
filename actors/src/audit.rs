//! The per-tenant audit ledger: entries chained by SHA-256 so that editing, removing or
//! reordering any stored entry is detected by verification.

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::context::{Context, Timestamp};
use crate::error::{DomainError, DomainResult};
use crate::keys;

/// Hash of the (absent) entry before the first one.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, by whom, from where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Who acted: `operator`, `server`, `user:<id>`, or `impersonator:<id>`.
    pub actor: String,
    /// What was done: `tenant.create`, `session.revoke`, `permission.grant`, ...
    pub action: String,
    /// What it was done to: `user:<id>`, `session:<id>`, `share:<id>`, ...
    pub target: String,
    /// Source address, when known.
    pub source_ip: String,
    /// Action-specific details.
    pub details: serde_json::Value,
}

/// A stored ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the tenant's ledger, from 1.
    pub seq: u64,
    /// When it was appended.
    pub at: Timestamp,
    /// The event.
    pub event: AuditEvent,
    /// Hash of the previous entry (`GENESIS_HASH` for the first).
    pub prev_hash: String,
    /// SHA-256 over `seq`, `at`, the event and `prev_hash`.
    pub hash: String,
}

/// The ledger head: last sequence number and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Last sequence number.
    pub seq: u64,
    /// Hash of the last entry.
    pub hash: String,
}

/// The hash an entry must carry.
pub fn entry_hash(
    seq: u64,
    at: Timestamp,
    event: &AuditEvent,
    prev_hash: &str,
) -> DomainResult<String> {
    let canonical = serde_json::to_vec(&(seq, at.0, event, prev_hash))
        .map_err(|error| DomainError::Internal(format!("audit encoding: {error}")))?;
    Ok(hex::encode(Sha256::digest(&canonical)))
}

/// Reads the head of a tenant's ledger.
pub async fn read_head(tx: &Transaction, tenant: &str) -> DomainResult<AuditHead> {
    match tx.get(&keys::audit_head(tenant)).await? {
        Some(bytes) => Ok(codec::decode(&bytes)?),
        None => Ok(AuditHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }),
    }
}

/// Appends an entry in `tx`. Appends of one tenant serialise on the head key.
pub async fn append(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    event: AuditEvent,
) -> DomainResult<AuditEntry> {
    let head = read_head(tx, tenant).await?;
    let seq = head.seq + 1;
    let at = context.now();
    let hash = entry_hash(seq, at, &event, &head.hash)?;
    let entry = AuditEntry {
        seq,
        at,
        event,
        prev_hash: head.hash,
        hash: hash.clone(),
    };
    tx.set(&keys::audit_entry(tenant, seq), &codec::encode(&entry)?)?;
    tx.set(
        &keys::audit_head(tenant),
        &codec::encode(&AuditHead { seq, hash })?,
    )?;
    Ok(entry)
}

/// Reads up to `limit` entries after `after_seq`, in order.
pub async fn read_entries(
    tx: &Transaction,
    tenant: &str,
    after_seq: u64,
    limit: usize,
) -> DomainResult<Vec<AuditEntry>> {
    let (_, end) = keys::audit_subspace(tenant).range();
    let mut begin = keys::audit_entry(tenant, after_seq);
    begin.push(0x00);
    tx.get_range(
        &begin,
        &end,
        RangeOptions {
            limit: Some(limit),
            snapshot: true,
            ..RangeOptions::default()
        },
    )
    .await?
    .into_iter()
    .map(|(_, value)| codec::decode(&value).map_err(DomainError::from))
    .collect()
}
