//! The session actor: the serialisation point of one session's refresh-token rotation and
//! revocation, and the owner-only operations it runs. Every change is one storage transaction
//! that re-reads the session record, so a second owner during a membership change conflicts
//! instead of overwriting.

use std::sync::Arc;

use ractor::ActorProcessingErr;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::audit::AuditOrigin;
use crate::domain::sessions::grace::Grace;
use crate::domain::sessions::{self, RefreshOutcome, RefreshToken, Refreshed, RevocationReason};
use crate::domain::sign_in::token_permissions;
use crate::domain::users::anonymous::{self, Activity};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::cluster::ActorKind;
use crate::runtime::entity::EntityKind;
use crate::runtime::owner_call::OwnerOperation;
use crate::runtime::registry::{Registry, split_entity_key};
use crate::runtime::services::NodeServices;

/// The session actor kind.
#[derive(Debug)]
pub struct SessionActor;

/// What a live session actor keeps.
#[derive(Debug)]
pub struct SessionActorState {
    tenant: String,
    session_id: Uuid,
    services: Arc<NodeServices>,
}

/// The registry key of a session.
pub fn session_key(tenant: &str, session_id: Uuid) -> String {
    format!("{tenant}/{session_id}")
}

impl EntityKind for SessionActor {
    const KIND: ActorKind = ActorKind::Session;
    type State = SessionActorState;

    fn activate(
        key: &str,
        services: Arc<NodeServices>,
    ) -> Result<SessionActorState, ActorProcessingErr> {
        let (tenant, session_id) = split_entity_key(key)?;
        Ok(SessionActorState {
            tenant,
            session_id,
            services,
        })
    }

    fn registry(gatehouse: &Gatehouse) -> &Registry<SessionActor> {
        &gatehouse.session_actors
    }
}

/// Spend a refresh token for a new token pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshSession {
    /// Tenant id.
    pub tenant: String,
    /// The presented token, parsed once at the edge.
    pub token: RefreshToken,
}

impl OwnerOperation for RefreshSession {
    type Kind = SessionActor;
    type Reply = Refreshed;
    const NAME: &'static str = "refresh_session";

    fn key(&self) -> String {
        session_key(&self.tenant, self.token.session_id)
    }

    async fn execute(self, session: &mut SessionActorState) -> DomainResult<Refreshed> {
        if self.token.session_id != session.session_id {
            return Err(DomainError::Internal(
                "token routed to the wrong session".to_owned(),
            ));
        }
        let services = &session.services;
        let (tenant, token) = (session.tenant.as_str(), &self.token);
        let tenant_state = services.tenant(tenant).await?;
        let state = &tenant_state;
        // The `perms` claim is read in the rotation's own transaction, so the new token
        // carries the grants as of the rotation and a refresh stays one transaction.
        let (outcome, perms) = services
            .db
            .run(|tx| async move {
                let context = &services.context;
                // An anonymous user idle too long is deleted before the token is looked at.
                if let Some(found) = sessions::find_session(&tx, tenant, token.session_id).await?
                    && found.anonymous
                {
                    let settings = &state.record.settings;
                    let user_id = found.user_id;
                    let activity =
                        anonymous::expire_if_idle(&tx, context, tenant, settings, user_id).await?;
                    if activity == Activity::Expired {
                        return Ok((None, None));
                    }
                }
                let grace = Grace {
                    window_seconds: state.record.settings.refresh_grace_seconds,
                    master_key: &services.master_key,
                };
                let outcome = sessions::refresh(&tx, context, tenant, token, Some(grace)).await?;
                let perms = match &outcome {
                    RefreshOutcome::Rotated { session, .. } => {
                        if session.anonymous {
                            anonymous::touch(&tx, context, tenant, session.user_id).await?;
                        }
                        token_permissions(&tx, state, session.user_id).await?
                    }
                    RefreshOutcome::Reused => None,
                };
                Ok::<_, DomainError>((Some(outcome), perms))
            })
            .await?;
        let Some(outcome) = outcome else {
            return Err(DomainError::SessionExpired);
        };
        let (session, refresh_token, email_verified) = match outcome {
            RefreshOutcome::Reused => return Err(DomainError::RefreshTokenReused),
            RefreshOutcome::Rotated {
                session,
                refresh_token,
                email_verified,
            } => (session, refresh_token, email_verified),
        };
        let access = services.issue_access_token(state, &session, perms, email_verified)?;
        Ok(Refreshed {
            session: *session,
            access_token: access.token,
            access_token_expires_at: access.expires_at,
            refresh_token,
        })
    }
}

/// Revoke a session: by an admin, or by sign-out with its refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeSession {
    /// Tenant id.
    pub tenant: String,
    /// Session id.
    pub session_id: Uuid,
    /// Recorded reason (`sign_out` or `admin`).
    pub reason: RevocationReason,
    /// For sign-out: the token that must belong to the session.
    pub token: Option<RefreshToken>,
    /// Who asked, for the audit ledger.
    pub origin: AuditOrigin,
}

impl OwnerOperation for RevokeSession {
    type Kind = SessionActor;
    /// `true` if this call revoked the session.
    type Reply = bool;
    const NAME: &'static str = "revoke_session";
    const IDEMPOTENT: bool = true;

    fn key(&self) -> String {
        session_key(&self.tenant, self.session_id)
    }

    async fn execute(self, session: &mut SessionActorState) -> DomainResult<bool> {
        let services = &session.services;
        let (tenant, operation) = (session.tenant.as_str(), &self);
        services
            .db
            .run(|tx| async move {
                match &operation.token {
                    Some(token) => sessions::sign_out(&tx, &services.context, tenant, token).await,
                    None => {
                        sessions::revoke_audited(
                            &tx,
                            &services.context,
                            tenant,
                            operation.session_id,
                            operation.reason,
                            &operation.origin,
                        )
                        .await
                    }
                }
            })
            .await
    }
}
