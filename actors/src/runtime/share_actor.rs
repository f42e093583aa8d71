//! The share actor: the serialisation point of one share's uses (expiry, revocation, use
//! counter, rate limit) and proposals, and the owner-only operations it runs. Every use
//! re-reads the share inside its transaction, so a revocation committed anywhere stops the
//! next use on every node.

use std::sync::Arc;

use ractor::ActorProcessingErr;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::shares::usage;
use crate::domain::shares::{ProposalRecord, ShareCaller, ShareOperation, ShareUse};
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;
use crate::ratelimit::RateLimiter;
use crate::runtime::cluster::ActorKind;
use crate::runtime::entity::EntityKind;
use crate::runtime::owner_call::OwnerOperation;
use crate::runtime::registry::{Registry, split_entity_key};
use crate::runtime::services::NodeServices;

/// The share actor kind.
#[derive(Debug)]
pub struct ShareActor;

/// What a live share actor keeps.
#[derive(Debug)]
pub struct ShareActorState {
    tenant: String,
    share_id: Uuid,
    services: Arc<NodeServices>,
    /// Per-minute limiter, built from the share's (immutable) limit on its first use.
    limiter: Option<RateLimiter>,
}

/// The registry key of a share.
pub fn share_key(tenant: &str, share_id: Uuid) -> String {
    format!("{tenant}/{share_id}")
}

impl EntityKind for ShareActor {
    const KIND: ActorKind = ActorKind::Share;
    type State = ShareActorState;

    fn activate(
        key: &str,
        services: Arc<NodeServices>,
    ) -> Result<ShareActorState, ActorProcessingErr> {
        let (tenant, share_id) = split_entity_key(key)?;
        Ok(ShareActorState {
            tenant,
            share_id,
            services,
            limiter: None,
        })
    }

    fn registry(gatehouse: &Gatehouse) -> &Registry<ShareActor> {
        &gatehouse.share_actors
    }
}

/// Use a share: read through it, or propose a change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UseShare {
    /// Tenant id.
    pub tenant: String,
    /// Share id.
    pub share_id: Uuid,
    /// Who.
    pub caller: ShareCaller,
    /// What.
    pub operation: ShareOperation,
}

impl OwnerOperation for UseShare {
    type Kind = ShareActor;
    type Reply = ShareUse;
    const NAME: &'static str = "use_share";

    fn key(&self) -> String {
        share_key(&self.tenant, self.share_id)
    }

    async fn execute(self, share: &mut ShareActorState) -> DomainResult<ShareUse> {
        let result = attempt_use(share, &self).await;
        if let Err(error) = &result
            && usage::is_audited_refusal(error)
        {
            let services = &share.services;
            let (tenant, share_id, caller) = (share.tenant.as_str(), share.share_id, &self.caller);
            let audited = services
                .db
                .run(|tx| async move {
                    usage::record_refused_use(
                        &tx,
                        &services.context,
                        tenant,
                        share_id,
                        caller,
                        error,
                    )
                    .await
                })
                .await;
            if let Err(audit_error) = audited {
                tracing::warn!(%audit_error, "cannot audit a refused share use");
            }
        }
        result
    }
}

async fn attempt_use(share: &mut ShareActorState, operation: &UseShare) -> DomainResult<ShareUse> {
    let services = share.services.clone();
    let tenant_state = services.tenant(&share.tenant).await?;
    // The actor serialises uses, so checking here and spending after the commit is exact;
    // refused uses (a wrong token, a revoked share) never consume the budget.
    if let Some(limiter) = &share.limiter
        && !limiter.check("use", services.context.now())
    {
        return Err(crate::error::DomainError::RateLimited);
    }
    let (tenant, share_id) = (share.tenant.as_str(), share.share_id);
    let (graph, context) = (&tenant_state.permissions, &services.context);
    let (caller, what) = (&operation.caller, &operation.operation);
    let used = services
        .db
        .run(|tx| async move {
            usage::use_share(&tx, context, graph, tenant, share_id, caller, what).await
        })
        .await?;
    if let Some(per_minute) = used.share.rate_limit_per_minute {
        share
            .limiter
            .get_or_insert_with(|| RateLimiter::new(per_minute, 60_000 / u64::from(per_minute)))
            .spend("use", services.context.now());
    }
    Ok(used)
}

/// Revoke a share (its owner or a trusted caller).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeShare {
    /// Tenant id.
    pub tenant: String,
    /// Share id.
    pub share_id: Uuid,
    /// Who.
    pub caller: ShareCaller,
}

impl OwnerOperation for RevokeShare {
    type Kind = ShareActor;
    /// `true` if this call revoked the share.
    type Reply = bool;
    const NAME: &'static str = "revoke_share";
    const IDEMPOTENT: bool = true;

    fn key(&self) -> String {
        share_key(&self.tenant, self.share_id)
    }

    async fn execute(self, share: &mut ShareActorState) -> DomainResult<bool> {
        let services = &share.services;
        let (tenant, share_id, caller) = (share.tenant.as_str(), share.share_id, &self.caller);
        services
            .db
            .run(|tx| async move {
                usage::revoke_by(&tx, &services.context, tenant, share_id, caller).await
            })
            .await
    }
}

/// Accept (applying it in one transaction) or reject a proposal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecideProposal {
    /// Tenant id.
    pub tenant: String,
    /// Share id.
    pub share_id: Uuid,
    /// Proposal id.
    pub proposal_id: Uuid,
    /// Accept or reject.
    pub accept: bool,
    /// Who.
    pub caller: ShareCaller,
}

impl OwnerOperation for DecideProposal {
    type Kind = ShareActor;
    /// The decided proposal.
    type Reply = ProposalRecord;
    const NAME: &'static str = "decide_proposal";

    fn key(&self) -> String {
        share_key(&self.tenant, self.share_id)
    }

    async fn execute(self, share: &mut ShareActorState) -> DomainResult<ProposalRecord> {
        let services = &share.services;
        let tenant_state = services.tenant(&share.tenant).await?;
        let (graph, context) = (&tenant_state.permissions, &services.context);
        let (tenant, share_id, operation) = (share.tenant.as_str(), share.share_id, &self);
        services
            .db
            .run(|tx| async move {
                usage::decide_by(
                    &tx,
                    context,
                    graph,
                    tenant,
                    share_id,
                    &operation.caller,
                    operation.proposal_id,
                    operation.accept,
                )
                .await
            })
            .await
    }
}
