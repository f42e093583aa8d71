//! `ShareActor`: the serialisation point of one share's uses (expiry, revocation, use
//! counter, rate limit) and proposals. Every use re-reads the share inside its transaction,
//! so a revocation committed anywhere stops the next use on every node.

use std::collections::BTreeMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::actor::registry::{EntityActor, EntityArgs, Liveness, split_entity_key};
use crate::audit::{self, AuditEvent};
use crate::core::Core;
use crate::crypto::{constant_time_eq, sha256};
use crate::error::{DomainError, DomainResult};
use crate::outbox;
use crate::ratelimit::RateLimiter;
use crate::shares::{self, ProposalRecord, ShareRecipient, ShareRecord};

/// What a use of a share does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ShareOperation {
    /// Read the resource through the share's masks.
    Read,
    /// Propose changes (proposal mode).
    Propose(BTreeMap<String, String>),
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

/// Messages of a `ShareActor`.
#[derive(Debug)]
pub enum ShareMsg {
    /// Use the share.
    Use {
        /// Who.
        caller: ShareCaller,
        /// What.
        operation: ShareOperation,
        /// Answer.
        reply: oneshot::Sender<DomainResult<ShareUse>>,
    },
    /// Revoke the share (owner or trusted caller).
    Revoke {
        /// Who.
        caller: ShareCaller,
        /// Answer: `true` if this call revoked it.
        reply: oneshot::Sender<DomainResult<bool>>,
    },
    /// Accept or reject a proposal (owner or trusted caller).
    Decide {
        /// Who.
        caller: ShareCaller,
        /// The proposal.
        proposal_id: Uuid,
        /// Accept (apply) or reject.
        accept: bool,
        /// Answer.
        reply: oneshot::Sender<DomainResult<ProposalRecord>>,
    },
    /// Passivation check.
    Tick,
}

/// The share actor.
#[derive(Debug, Default)]
pub struct ShareActor;

/// State of a live share actor.
#[derive(Debug)]
pub struct ShareActorState {
    tenant: String,
    share_id: Uuid,
    core: Arc<Core>,
    liveness: Liveness,
    /// Per-minute limiter, built from the share's (immutable) limit on its first use.
    limiter: Option<RateLimiter>,
}

/// The registry key of a share.
pub fn share_key(tenant: &str, share_id: Uuid) -> String {
    format!("{tenant}/{share_id}")
}

impl EntityActor for ShareActor {
    const KIND: &'static str = "share";

    fn create() -> Self {
        ShareActor
    }

    fn tick() -> ShareMsg {
        ShareMsg::Tick
    }
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

impl Actor for ShareActor {
    type Msg = ShareMsg;
    type State = ShareActorState;
    type Arguments = EntityArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let (tenant, share_id) = split_entity_key(&args.key)?;
        Ok(ShareActorState {
            tenant,
            share_id,
            core: args.core,
            liveness: args.liveness,
            limiter: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.liveness.start_ticking(&myself, Self::tick);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ShareMsg::Tick => state.liveness.on_tick(myself.get_cell()),
            ShareMsg::Use {
                caller,
                operation,
                reply,
            } => {
                state.liveness.touch();
                let _ = reply.send(use_share(state, &caller, &operation).await);
            }
            ShareMsg::Revoke { caller, reply } => {
                state.liveness.touch();
                let _ = reply.send(revoke(state, &caller).await);
            }
            ShareMsg::Decide {
                caller,
                proposal_id,
                accept,
                reply,
            } => {
                state.liveness.touch();
                let _ = reply.send(decide(state, &caller, proposal_id, accept).await);
            }
        }
        Ok(())
    }
}

fn audit_event(
    caller: &ShareCaller,
    action: &str,
    share_id: Uuid,
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        actor: caller.actor.clone(),
        action: action.to_owned(),
        target: format!("share:{share_id}"),
        source_ip: String::new(),
        details,
    }
}

/// Uses the share; a use refused by the share's own state is written to the ledger too.
async fn use_share(
    state: &mut ShareActorState,
    caller: &ShareCaller,
    operation: &ShareOperation,
) -> DomainResult<ShareUse> {
    let result = attempt_use(state, caller, operation).await;
    if let Err(error) = &result
        && matches!(
            error,
            DomainError::ShareRevoked
                | DomainError::ShareExpired
                | DomainError::ShareUseLimitReached
                | DomainError::ShareScopeExceeded(_)
                | DomainError::PermissionDenied(_)
                | DomainError::RateLimited
        )
    {
        let core = &state.core;
        let (tenant, share_id) = (state.tenant.as_str(), state.share_id);
        let event = audit_event(
            caller,
            "share.use_refused",
            share_id,
            json!({ "code": error.code().as_str() }),
        );
        let event = &event;
        let audited = core
            .db
            .run(|tx| async move { audit::append(&tx, &core.context, tenant, event.clone()).await })
            .await;
        if let Err(audit_error) = audited {
            tracing::warn!(%audit_error, "cannot audit a refused share use");
        }
    }
    result
}

async fn attempt_use(
    state: &mut ShareActorState,
    caller: &ShareCaller,
    operation: &ShareOperation,
) -> DomainResult<ShareUse> {
    let core = state.core.clone();
    let tenant_state = core.tenant(&state.tenant).await?;
    let (tenant, share_id) = (state.tenant.as_str(), state.share_id);
    // The actor serialises uses, so checking here and spending after the commit is exact;
    // refused uses (a wrong token, a revoked share) never consume the budget.
    if let Some(limiter) = &state.limiter
        && !limiter.check("use", core.context.now())
    {
        return Err(DomainError::RateLimited);
    }
    let graph = &tenant_state.permissions;
    let used = core
        .db
        .run(|tx| {
            let core = &core;
            async move {
                let mut share = shares::read_share(&tx, tenant, share_id).await?;
                if !may_use(&share, caller) {
                    return Err(DomainError::ShareNotFound);
                }
                shares::spend_use(&mut share, core.context.now())?;
                shares::check_owner_holds(
                    &tx,
                    graph,
                    tenant,
                    share.owner,
                    &share.resource,
                    &share.permissions,
                )
                .await?;
                let (resource, proposal) = match operation {
                    ShareOperation::Read => {
                        (Some(shares::read_through(&tx, tenant, &share).await?), None)
                    }
                    ShareOperation::Propose(changes) => {
                        shares::check_proposal(&share, changes)?;
                        let proposal = shares::create_proposal(
                            &tx,
                            &core.context,
                            tenant,
                            &share,
                            changes.clone(),
                        )?;
                        outbox::emit(
                            &tx,
                            &core.context,
                            tenant,
                            "share.proposal.created",
                            json!({ "share_id": share_id, "proposal_id": proposal.proposal_id }),
                        )?;
                        (None, Some(proposal))
                    }
                };
                shares::save_share(&tx, tenant, &share)?;
                let kind = match operation {
                    ShareOperation::Read => "read",
                    ShareOperation::Propose(_) => "propose",
                };
                audit::append(
                    &tx,
                    &core.context,
                    tenant,
                    audit_event(
                        caller,
                        "share.use",
                        share_id,
                        json!({ "operation": kind, "use": share.uses }),
                    ),
                )
                .await?;
                outbox::emit(
                    &tx,
                    &core.context,
                    tenant,
                    "share.used",
                    json!({ "share_id": share_id, "operation": kind }),
                )?;
                Ok(ShareUse {
                    share,
                    resource,
                    proposal,
                })
            }
        })
        .await?;
    if let Some(per_minute) = used.share.rate_limit_per_minute {
        state
            .limiter
            .get_or_insert_with(|| RateLimiter::new(per_minute, 60_000 / u64::from(per_minute)))
            .spend("use", core.context.now());
    }
    Ok(used)
}

async fn revoke(state: &ShareActorState, caller: &ShareCaller) -> DomainResult<bool> {
    let core = &state.core;
    let (tenant, share_id) = (state.tenant.as_str(), state.share_id);
    core.db
        .run(|tx| async move {
            let share = shares::read_share(&tx, tenant, share_id).await?;
            if !may_manage(&share, caller) {
                return Err(DomainError::ShareNotFound);
            }
            let revoked =
                shares::revoke_share(&tx, &core.context, tenant, share_id, "owner").await?;
            if revoked {
                audit::append(
                    &tx,
                    &core.context,
                    tenant,
                    audit_event(caller, "share.revoke", share_id, json!({})),
                )
                .await?;
                outbox::emit(
                    &tx,
                    &core.context,
                    tenant,
                    "share.revoked",
                    json!({ "share_id": share_id }),
                )?;
            }
            Ok(revoked)
        })
        .await
}

async fn decide(
    state: &ShareActorState,
    caller: &ShareCaller,
    proposal_id: Uuid,
    accept: bool,
) -> DomainResult<ProposalRecord> {
    let core = state.core.clone();
    let tenant_state = core.tenant(&state.tenant).await?;
    let graph = &tenant_state.permissions;
    let (tenant, share_id) = (state.tenant.as_str(), state.share_id);
    let core = &core;
    core.db
        .run(|tx| async move {
            let share = shares::read_share(&tx, tenant, share_id).await?;
            if !may_manage(&share, caller) {
                return Err(DomainError::ShareNotFound);
            }
            let proposal = shares::decide_proposal(
                &tx,
                &core.context,
                graph,
                tenant,
                &share,
                proposal_id,
                accept,
            )
            .await?;
            audit::append(
                &tx,
                &core.context,
                tenant,
                audit_event(
                    caller,
                    "share.proposal.decide",
                    share_id,
                    json!({ "proposal_id": proposal_id, "accepted": accept }),
                ),
            )
            .await?;
            outbox::emit(
                &tx,
                &core.context,
                tenant,
                "share.proposal.decided",
                json!({ "share_id": share_id, "proposal_id": proposal_id, "accepted": accept }),
            )?;
            Ok(proposal)
        })
        .await
}
