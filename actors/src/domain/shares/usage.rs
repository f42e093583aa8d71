//! Using and managing a share as its actor does: who may, and the one transaction per use,
//! revocation or decision that makes the change, audits it and announces it.

use std::collections::BTreeMap;

use gatehouse_storage::Transaction;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::context::Context;
use crate::domain::audit::AuditAction;
use crate::domain::audit::{AuditEvent, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::crypto::{constant_time_eq, sha256};
use crate::domain::outbox::EventType;
use crate::domain::permissions::PermissionGraph;
use crate::domain::shares::{
    self, ProposalRecord, ShareRecipient, ShareRecord, ShareRevocationReason,
};
use crate::error::{DomainError, DomainResult};

/// What a use of a share does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ShareOperation {
    /// Read the resource through the share's masks.
    Read,
    /// Propose changes (proposal mode).
    Propose(BTreeMap<String, String>),
}

impl ShareOperation {
    fn as_str(&self) -> &'static str {
        match self {
            ShareOperation::Read => "read",
            ShareOperation::Propose(_) => "propose",
        }
    }
}

/// Who is using or managing a share.
#[derive(Clone, Serialize, Deserialize)]
pub struct ShareCaller {
    /// The signed-in user, for client callers.
    pub user: Option<Uuid>,
    /// The presented share token, if any.
    pub token: Option<String>,
    /// Server or operator: trusted within the tenant.
    pub trusted: bool,
    /// Audit actor string.
    pub actor: String,
}

impl std::fmt::Debug for ShareCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareCaller")
            .field("user", &self.user)
            .field("token", &self.token.is_some())
            .field("trusted", &self.trusted)
            .finish()
    }
}

/// The answer to a use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareUse {
    /// The share after the use.
    pub share: ShareRecord,
    /// The masked resource, for reads.
    pub resource: Option<serde_json::Value>,
    /// The stored proposal, for proposals.
    pub proposal: Option<ProposalRecord>,
}

/// Whether `caller` may use `share` at all (token, recipient user, or trusted).
fn may_use(share: &ShareRecord, caller: &ShareCaller) -> bool {
    if let Some(token) = &caller.token {
        return constant_time_eq(&share.token_hash, &sha256(token.as_bytes()));
    }
    caller.trusted
        || matches!((&share.recipient, caller.user), (ShareRecipient::User(recipient), Some(user)) if *recipient == user)
}

/// Whether `caller` may manage `share` (its owner, or trusted).
fn may_manage(share: &ShareRecord, caller: &ShareCaller) -> bool {
    caller.trusted || caller.user == Some(share.owner)
}

fn audit_event(
    caller: &ShareCaller,
    action: AuditAction,
    share_id: Uuid,
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        actor: caller.actor.clone(),
        action: action.as_str().to_owned(),
        target: format!("share:{share_id}"),
        source_ip: String::new(),
        details,
    }
}

/// Whether a refused use is the share's own doing (and so belongs in the ledger).
pub fn is_audited_refusal(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::ShareRevoked
            | DomainError::ShareExpired
            | DomainError::ShareUseLimitReached
            | DomainError::ShareScopeExceeded(_)
            | DomainError::PermissionDenied(_)
            | DomainError::RateLimited
    )
}

/// Audits a use the share refused.
pub async fn record_refused_use(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    share_id: Uuid,
    caller: &ShareCaller,
    error: &DomainError,
) -> DomainResult<()> {
    let details = json!({ "code": error.code().as_str() });
    let event = audit_event(caller, AuditAction::ShareUseRefused, share_id, details);
    record_change(tx, context, tenant, Some(event), []).await
}

/// Spends one use of the share and does what `operation` asks, in one transaction.
pub async fn use_share(
    tx: &Transaction,
    context: &Context,
    graph: &PermissionGraph,
    tenant: &str,
    share_id: Uuid,
    caller: &ShareCaller,
    operation: &ShareOperation,
) -> DomainResult<ShareUse> {
    let mut share = shares::read_share(tx, tenant, share_id).await?;
    if !may_use(&share, caller) {
        return Err(DomainError::ShareNotFound);
    }
    shares::spend_use(&mut share, context.now())?;
    shares::check_owner_holds(
        tx,
        graph,
        tenant,
        share.owner,
        &share.resource,
        &share.permissions,
    )
    .await?;
    let (resource, proposal) = match operation {
        ShareOperation::Read => (Some(shares::read_through(tx, tenant, &share).await?), None),
        ShareOperation::Propose(changes) => {
            shares::check_proposal(&share, changes)?;
            let proposal = shares::create_proposal(tx, context, tenant, &share, changes.clone())?;
            (None, Some(proposal))
        }
    };
    shares::save_share(tx, tenant, &share)?;
    let kind = operation.as_str();
    let details = json!({ "operation": kind, "use": share.uses });
    let proposed = proposal.as_ref().map(|proposal| {
        let data = json!({ "share_id": share_id, "proposal_id": proposal.proposal_id });
        (EventType::ShareProposalCreated, data)
    });
    let used = (
        EventType::ShareUsed,
        json!({ "share_id": share_id, "operation": kind }),
    );
    record_change(
        tx,
        context,
        tenant,
        Some(audit_event(
            caller,
            AuditAction::ShareUse,
            share_id,
            details,
        )),
        proposed.into_iter().chain([used]),
    )
    .await?;
    Ok(ShareUse {
        share,
        resource,
        proposal,
    })
}

/// Revokes the share for its owner or a trusted caller; `false` if it already was.
pub async fn revoke_by(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    share_id: Uuid,
    caller: &ShareCaller,
) -> DomainResult<bool> {
    let share = shares::read_share(tx, tenant, share_id).await?;
    if !may_manage(&share, caller) {
        return Err(DomainError::ShareNotFound);
    }
    let revoked =
        shares::revoke_share(tx, context, tenant, share_id, ShareRevocationReason::Owner).await?;
    if revoked {
        record_change(
            tx,
            context,
            tenant,
            Some(audit_event(
                caller,
                AuditAction::ShareRevoke,
                share_id,
                json!({}),
            )),
            [(EventType::ShareRevoked, json!({ "share_id": share_id }))],
        )
        .await?;
    }
    Ok(revoked)
}

/// Accepts (applying it) or rejects a proposal, for the share's owner or a trusted caller.
#[allow(clippy::too_many_arguments)]
pub async fn decide_by(
    tx: &Transaction,
    context: &Context,
    graph: &PermissionGraph,
    tenant: &str,
    share_id: Uuid,
    caller: &ShareCaller,
    proposal_id: Uuid,
    accept: bool,
) -> DomainResult<ProposalRecord> {
    let share = shares::read_share(tx, tenant, share_id).await?;
    if !may_manage(&share, caller) {
        return Err(DomainError::ShareNotFound);
    }
    let proposal =
        shares::decide_proposal(tx, context, graph, tenant, &share, proposal_id, accept).await?;
    let details = json!({ "proposal_id": proposal_id, "accepted": accept });
    let data = json!({ "share_id": share_id, "proposal_id": proposal_id, "accepted": accept });
    record_change(
        tx,
        context,
        tenant,
        Some(audit_event(
            caller,
            AuditAction::ShareProposalDecide,
            share_id,
            details,
        )),
        [(EventType::ShareProposalDecided, data)],
    )
    .await?;
    Ok(proposal)
}

/// Creates a share for its owner and audits and announces it; returns it with its token.
pub async fn create_audited(
    tx: &Transaction,
    context: &Context,
    graph: &PermissionGraph,
    tenant: &str,
    new_share: shares::NewShare,
    origin: &AuditOrigin,
) -> DomainResult<(ShareRecord, String)> {
    let (share, token) = shares::create_share(tx, context, graph, tenant, new_share).await?;
    let audit = origin.event(
        AuditAction::ShareCreate,
        format!("share:{}", share.share_id),
        json!({ "owner": share.owner, "permissions": share.permissions }),
    );
    let data = json!({ "share_id": share.share_id, "owner": share.owner });
    record_change(
        tx,
        context,
        tenant,
        Some(audit),
        [(EventType::ShareCreated, data)],
    )
    .await?;
    Ok((share, token))
}
