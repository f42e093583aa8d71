//! Owner-only work: calls that must run on the node owning an actor, executed locally when
//! this node owns it and forwarded to the owner otherwise.
//!
//! When the owner cannot be reached the call is retried after membership updates instead of
//! failing at once. A call that reached the owner but lost its answer is retried only if it is
//! idempotent: retrying a refresh would look like token reuse and revoke the session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actor::session_actor::{Refreshed, SessionMsg, session_key};
use crate::actor::share_actor::{ShareCaller, ShareMsg, ShareOperation, ShareUse, share_key};
use crate::actor::tenant_actor::TenantMsg;
use crate::audit::AuditOrigin;
use crate::cluster::{ActorKind, Member, MembershipView};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::permissions::PermissionDefinition;
use crate::sessions::RefreshToken;
use crate::shares::ProposalRecord;
use crate::signing::SigningKeyRecord;
use crate::tenants::CreatedTenant;
use crate::tenants::{SettingsChanges, TenantRecord};

/// How long a call keeps looking for a reachable owner.
const ROUTING_DEADLINE: Duration = Duration::from_secs(15);

/// A call that needs the owner of an actor. Its `Debug` output never shows tokens.
#[derive(Clone, Serialize, Deserialize)]
pub enum OwnerCall {
    /// Spend a refresh token.
    RefreshSession {
        /// Tenant id.
        tenant: String,
        /// The presented token.
        refresh_token: String,
    },
    /// Revoke a session (by an admin, or by sign-out with its refresh token).
    RevokeSession {
        /// Tenant id.
        tenant: String,
        /// Session id.
        session_id: Uuid,
        /// Recorded reason.
        reason: String,
        /// For sign-out: the token that must belong to the session.
        refresh_token: Option<String>,
        /// Who asked, for the audit ledger.
        #[serde(default)]
        origin: AuditOrigin,
    },
    /// Create a tenant.
    CreateTenant {
        /// Tenant id.
        tenant: String,
        /// Human name.
        display_name: String,
        /// Who asked, for the audit ledger.
        #[serde(default)]
        origin: AuditOrigin,
    },
    /// Rotate a tenant's signing key.
    RotateSigningKey {
        /// Tenant id.
        tenant: String,
        /// Who asked, for the audit ledger.
        #[serde(default)]
        origin: AuditOrigin,
    },
    /// Change a tenant's settings.
    UpdateTenantSettings {
        /// Tenant id.
        tenant: String,
        /// The changes.
        changes: SettingsChanges,
        /// Who asked, for the audit ledger.
        origin: AuditOrigin,
    },
    /// Add or replace a permission definition.
    DefinePermission {
        /// Tenant id.
        tenant: String,
        /// The definition.
        definition: PermissionDefinition,
        /// Refuse an existing id.
        create_only: bool,
        /// Audit actor.
        actor: String,
    },
    /// Delete a permission definition.
    DeletePermission {
        /// Tenant id.
        tenant: String,
        /// The id.
        permission_id: String,
        /// Audit actor.
        actor: String,
    },
    /// Use a share (read through it, or propose a change).
    UseShare {
        /// Tenant id.
        tenant: String,
        /// Share id.
        share_id: Uuid,
        /// Who.
        caller: ShareCaller,
        /// What.
        operation: ShareOperation,
    },
    /// Revoke a share.
    RevokeShare {
        /// Tenant id.
        tenant: String,
        /// Share id.
        share_id: Uuid,
        /// Who.
        caller: ShareCaller,
    },
    /// Accept or reject a proposal.
    DecideProposal {
        /// Tenant id.
        tenant: String,
        /// Share id.
        share_id: Uuid,
        /// Proposal id.
        proposal_id: Uuid,
        /// Accept or reject.
        accept: bool,
        /// Who.
        caller: ShareCaller,
    },
}

impl std::fmt::Debug for OwnerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, key) = self.target();
        write!(f, "{}({} {key})", self.name(), kind.as_str())
    }
}

impl OwnerCall {
    /// The actor the call belongs to.
    pub fn target(&self) -> (ActorKind, String) {
        match self {
            OwnerCall::RefreshSession {
                tenant,
                refresh_token,
            } => {
                let session = RefreshToken::parse(refresh_token)
                    .map(|token| token.session_id)
                    .unwrap_or_default();
                (ActorKind::Session, session_key(tenant, session))
            }
            OwnerCall::RevokeSession {
                tenant, session_id, ..
            } => (ActorKind::Session, session_key(tenant, *session_id)),
            OwnerCall::UpdateTenantSettings { tenant, .. } => (ActorKind::Tenant, tenant.clone()),
            OwnerCall::CreateTenant { tenant, .. }
            | OwnerCall::RotateSigningKey { tenant, .. }
            | OwnerCall::DefinePermission { tenant, .. }
            | OwnerCall::DeletePermission { tenant, .. } => (ActorKind::Tenant, tenant.clone()),
            OwnerCall::UseShare {
                tenant, share_id, ..
            }
            | OwnerCall::RevokeShare {
                tenant, share_id, ..
            }
            | OwnerCall::DecideProposal {
                tenant, share_id, ..
            } => (ActorKind::Share, share_key(tenant, *share_id)),
        }
    }

    /// Whether running the call twice is harmless.
    fn is_idempotent(&self) -> bool {
        matches!(
            self,
            OwnerCall::RevokeSession { .. } | OwnerCall::RevokeShare { .. }
        )
    }

    fn name(&self) -> &'static str {
        match self {
            OwnerCall::RefreshSession { .. } => "refresh_session",
            OwnerCall::RevokeSession { .. } => "revoke_session",
            OwnerCall::CreateTenant { .. } => "create_tenant",
            OwnerCall::RotateSigningKey { .. } => "rotate_signing_key",
            OwnerCall::DefinePermission { .. } => "define_permission",
            OwnerCall::DeletePermission { .. } => "delete_permission",
            OwnerCall::UseShare { .. } => "use_share",
            OwnerCall::UpdateTenantSettings { .. } => "update_tenant_settings",
            OwnerCall::RevokeShare { .. } => "revoke_share",
            OwnerCall::DecideProposal { .. } => "decide_proposal",
        }
    }
}

/// The answer to an [`OwnerCall`] (its parts redact their secrets in `Debug`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum OwnerReply {
    /// A refresh succeeded.
    Refreshed(Box<Refreshed>),
    /// `true` if this call revoked the session.
    Revoked(bool),
    /// The tenant was created.
    TenantCreated(Box<CreatedTenant>),
    /// The new signing key.
    KeyRotated(Box<SigningKeyRecord>),
    /// The stored definition.
    PermissionDefined(Box<PermissionDefinition>),
    /// The definition was deleted.
    PermissionDeleted,
    /// The tenant after a settings change.
    TenantUpdated(Box<TenantRecord>),
    /// A share was used.
    ShareUsed(Box<ShareUse>),
    /// `true` if this call revoked the share.
    ShareRevoked(bool),
    /// The decided proposal.
    ProposalDecided(Box<ProposalRecord>),
}

/// An error as it crosses between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    /// Stable code.
    pub code: String,
    /// Public message.
    pub message: String,
    /// Offending field.
    pub field: Option<String>,
}

impl From<&DomainError> for WireError {
    fn from(error: &DomainError) -> WireError {
        WireError {
            code: error.code().as_str().to_owned(),
            message: error.public_message(),
            field: error.field().map(str::to_owned),
        }
    }
}

impl From<WireError> for DomainError {
    fn from(wire: WireError) -> DomainError {
        DomainError::Remote {
            code: wire.code.parse().unwrap_or(ErrorCode::Internal),
            message: wire.message,
            field: wire.field,
        }
    }
}

/// Why a forwarded call has no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForwardError {
    /// The owner could not be reached; the call was never sent.
    #[error("owner unreachable: {0}")]
    Unreachable(String),
    /// The call may have reached the owner, but no answer came back.
    #[error("owner did not answer: {0}")]
    NoAnswer(String),
}

/// Sends owner calls to other nodes (the node implements it over internal gRPC).
#[async_trait::async_trait]
pub trait Forwarder: Send + Sync + std::fmt::Debug {
    /// Runs `call` on `owner`; the inner result is the owner's own answer.
    async fn forward(
        &self,
        owner: &Member,
        call: &OwnerCall,
    ) -> Result<Result<OwnerReply, WireError>, ForwardError>;
}

/// What a node needs to take part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterWiring {
    /// Live membership from gossip.
    pub membership: MembershipView,
    /// Transport to other nodes.
    pub forwarder: Arc<dyn Forwarder>,
}

impl Gatehouse {
    /// Runs `call` where its actor lives.
    pub(crate) async fn route(&self, call: OwnerCall) -> DomainResult<OwnerReply> {
        let Some(cluster) = &self.cluster else {
            return self.execute_local(call).await;
        };
        let (kind, key) = call.target();
        let started = Instant::now();
        loop {
            let membership = cluster.membership.current();
            let owner = match membership.owner(kind, &key) {
                Some(owner) if owner.node_id != membership.self_id => owner.clone(),
                _ => return self.execute_local(call).await,
            };
            let forwarded_at = Instant::now();
            // An owner that stops answering (paused, partitioned) is dropped from the
            // membership within seconds: stop waiting then instead of for the full deadline.
            let outcome = tokio::select! {
                outcome = cluster.forwarder.forward(&owner, &call) => outcome,
                () = owner_leaves(&cluster.membership, &owner.node_id) => Err(ForwardError::NoAnswer(
                    format!("{} left the serving members while the call was in flight", owner.node_id),
                )),
            };
            metrics::histogram!("gatehouse_forwarded_call_seconds", "call" => call.name())
                .record(forwarded_at.elapsed().as_secs_f64());
            let retryable = match outcome {
                Ok(answer) => {
                    metrics::counter!("gatehouse_forwarded_calls_total", "call" => call.name(), "outcome" => "answered").increment(1);
                    return answer.map_err(DomainError::from);
                }
                Err(ForwardError::Unreachable(reason)) => {
                    metrics::counter!("gatehouse_forwarded_calls_total", "call" => call.name(), "outcome" => "unreachable").increment(1);
                    tracing::debug!(owner = owner.node_id, %reason, "owner unreachable; waiting for membership");
                    true
                }
                Err(ForwardError::NoAnswer(reason)) => {
                    metrics::counter!("gatehouse_forwarded_calls_total", "call" => call.name(), "outcome" => "no_answer").increment(1);
                    if !call.is_idempotent() {
                        return Err(DomainError::Unavailable(format!(
                            "the owner of this {} did not answer; the outcome is unknown",
                            kind.as_str()
                        )));
                    }
                    tracing::debug!(owner = owner.node_id, %reason, "no answer; retrying idempotent call");
                    true
                }
            };
            if !retryable || started.elapsed() >= ROUTING_DEADLINE {
                return Err(DomainError::Unavailable(format!(
                    "no reachable owner for this {}",
                    kind.as_str()
                )));
            }
            cluster
                .membership
                .changed_within(Duration::from_millis(250))
                .await;
        }
    }

    /// Runs an owner call on this node's actors, whether or not this node is the owner
    /// (storage transactions keep a mistaken owner from doing harm).
    pub async fn execute_local(&self, call: OwnerCall) -> DomainResult<OwnerReply> {
        match call {
            OwnerCall::RefreshSession {
                tenant,
                refresh_token,
            } => {
                let token = RefreshToken::parse(&refresh_token)?;
                let key = session_key(&tenant, token.session_id);
                let refreshed = self
                    .session_actors
                    .call(&key, |reply| SessionMsg::Refresh {
                        token: token.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::Refreshed(Box::new(refreshed)))
            }
            OwnerCall::RevokeSession {
                tenant,
                session_id,
                reason,
                refresh_token,
                origin,
            } => {
                let token = refresh_token
                    .as_deref()
                    .map(RefreshToken::parse)
                    .transpose()?;
                let reason: &'static str = match reason.as_str() {
                    "sign_out" => "sign_out",
                    _ => "admin",
                };
                let key = session_key(&tenant, session_id);
                let revoked = self
                    .session_actors
                    .call(&key, |reply| SessionMsg::Revoke {
                        reason,
                        token: token.clone(),
                        origin: origin.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::Revoked(revoked))
            }
            OwnerCall::CreateTenant {
                tenant,
                display_name,
                origin,
            } => {
                let created = self
                    .tenant_actors
                    .call(&tenant, |reply| TenantMsg::Create {
                        display_name: display_name.clone(),
                        origin: origin.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::TenantCreated(Box::new(created)))
            }
            OwnerCall::DefinePermission {
                tenant,
                definition,
                create_only,
                actor,
            } => {
                let stored = self
                    .tenant_actors
                    .call(&tenant, |reply| TenantMsg::DefinePermission {
                        definition: definition.clone(),
                        create_only,
                        actor: actor.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::PermissionDefined(Box::new(stored)))
            }
            OwnerCall::DeletePermission {
                tenant,
                permission_id,
                actor,
            } => {
                self.tenant_actors
                    .call(&tenant, |reply| TenantMsg::DeletePermission {
                        permission_id: permission_id.clone(),
                        actor: actor.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::PermissionDeleted)
            }
            OwnerCall::UseShare {
                tenant,
                share_id,
                caller,
                operation,
            } => {
                let used = self
                    .share_actors
                    .call(&share_key(&tenant, share_id), |reply| ShareMsg::Use {
                        caller: caller.clone(),
                        operation: operation.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::ShareUsed(Box::new(used)))
            }
            OwnerCall::RevokeShare {
                tenant,
                share_id,
                caller,
            } => {
                let revoked = self
                    .share_actors
                    .call(&share_key(&tenant, share_id), |reply| ShareMsg::Revoke {
                        caller: caller.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::ShareRevoked(revoked))
            }
            OwnerCall::DecideProposal {
                tenant,
                share_id,
                proposal_id,
                accept,
                caller,
            } => {
                let proposal = self
                    .share_actors
                    .call(&share_key(&tenant, share_id), |reply| ShareMsg::Decide {
                        caller: caller.clone(),
                        proposal_id,
                        accept,
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::ProposalDecided(Box::new(proposal)))
            }
            OwnerCall::UpdateTenantSettings {
                tenant,
                changes,
                origin,
            } => {
                let record = self
                    .tenant_actors
                    .call(&tenant, |reply| TenantMsg::UpdateSettings {
                        changes: changes.clone(),
                        origin: origin.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::TenantUpdated(Box::new(record)))
            }
            OwnerCall::RotateSigningKey { tenant, origin } => {
                let key = self
                    .tenant_actors
                    .call(&tenant, |reply| TenantMsg::RotateSigningKey {
                        origin: origin.clone(),
                        reply,
                    })
                    .await?;
                Ok(OwnerReply::KeyRotated(Box::new(key)))
            }
        }
    }
}

/// Resolves once `node_id` is no longer a serving member.
async fn owner_leaves(membership: &MembershipView, node_id: &str) {
    let mut changes = membership.subscribe();
    loop {
        let still_serving = changes
            .borrow_and_update()
            .serving()
            .any(|member| member.node_id == node_id);
        if !still_serving || changes.changed().await.is_err() {
            return;
        }
    }
}

/// Turns an unexpected reply kind into an internal error.
pub(crate) fn unexpected(_reply: OwnerReply) -> DomainError {
    // The reply may hold secrets (a new tenant's server key): never format it.
    DomainError::Internal("unexpected owner reply kind".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::access::Credentials;
    use crate::context::Context;

    #[test]
    fn debug_output_never_contains_secrets() {
        let (token, _) = RefreshToken::mint(&Context::system(), Uuid::new_v4());
        let secret = token.split('.').nth(1).unwrap().to_owned();
        let call = OwnerCall::RefreshSession {
            tenant: "acme".to_owned(),
            refresh_token: token.clone(),
        };
        assert!(!format!("{call:?}").contains(&secret));
        let credentials = Credentials {
            tenant: Some("acme".to_owned()),
            server_key: Some("ssk_very_secret".to_owned()),
            access_token: Some("eyJhbGciOi.secret.sig".to_owned()),
            ..Credentials::default()
        };
        let shown = format!("{credentials:?}");
        assert!(
            !shown.contains("very_secret") && !shown.contains("eyJ"),
            "{shown}"
        );
    }

    #[test]
    fn errors_cross_nodes_with_their_code_and_field() {
        let original = DomainError::invalid("refresh_token", "must not be empty");
        let back = DomainError::from(WireError::from(&original));
        assert_eq!(back.code(), ErrorCode::InvalidArgument);
        assert_eq!(back.field(), Some("refresh_token"));
        let internal = DomainError::Internal("disk on fire at /var/x".to_owned());
        let wire = WireError::from(&internal);
        assert!(
            !wire.message.contains("disk"),
            "internal details stay on the node"
        );
    }
}
