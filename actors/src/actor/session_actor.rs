//! `SessionActor`: the serialisation point of one session's refresh-token rotation and
//! revocation. Every change is one storage transaction that re-reads the session record, so
//! a second owner during a membership change conflicts instead of overwriting.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::actor::registry::{EntityActor, EntityArgs, Liveness, split_entity_key};
use crate::audit::{self, AuditOrigin};
use crate::context::Timestamp;
use crate::core::{Core, token_permissions};
use crate::error::{DomainError, DomainResult};
use crate::sessions::{self, RefreshOutcome, RefreshToken, SessionRecord};

/// A successful refresh.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Refreshed {
    /// The session after rotation.
    pub session: SessionRecord,
    /// New access token.
    pub access_token: String,
    /// Its expiry.
    pub access_token_expires_at: Timestamp,
    /// New refresh token; the presented one is spent.
    pub refresh_token: String,
}

impl std::fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshed")
            .field("session_id", &self.session.session_id)
            .finish_non_exhaustive()
    }
}

/// Messages of a `SessionActor`.
#[derive(Debug)]
pub enum SessionMsg {
    /// Spend a refresh token.
    Refresh {
        /// The presented token.
        token: RefreshToken,
        /// Answer.
        reply: oneshot::Sender<DomainResult<Refreshed>>,
    },
    /// Revoke the session.
    Revoke {
        /// Recorded reason.
        reason: &'static str,
        /// When set (sign-out by refresh token), the token must belong to the session.
        token: Option<RefreshToken>,
        /// Who asked: an admin revocation is audited as theirs.
        origin: AuditOrigin,
        /// `true` if this call revoked it, `false` if it already was.
        reply: oneshot::Sender<DomainResult<bool>>,
    },
    /// Passivation check.
    Tick,
    /// Panics inside the handler: a fault-injection hook that proves supervision
    /// contains the failure and the next call re-activates the actor from storage.
    Crash,
}

/// The session actor.
#[derive(Debug, Default)]
pub struct SessionActor;

/// State of a live session actor.
#[derive(Debug)]
pub struct SessionActorState {
    tenant: String,
    session_id: Uuid,
    core: Arc<Core>,
    liveness: Liveness,
}

/// The registry key of a session.
pub fn session_key(tenant: &str, session_id: Uuid) -> String {
    format!("{tenant}/{session_id}")
}

impl EntityActor for SessionActor {
    const KIND: &'static str = "session";

    fn create() -> Self {
        SessionActor
    }

    fn tick() -> SessionMsg {
        SessionMsg::Tick
    }
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionActorState;
    type Arguments = EntityArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let (tenant, session_id) = split_entity_key(&args.key)?;
        Ok(SessionActorState {
            tenant,
            session_id,
            core: args.core,
            liveness: args.liveness,
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
            SessionMsg::Tick => {
                state.liveness.on_tick(myself.get_cell());
                return Ok(());
            }
            SessionMsg::Crash => panic!("session actor asked to crash"),
            SessionMsg::Refresh { token, reply } => {
                state.liveness.touch();
                let _ = reply.send(refresh(state, &token).await);
            }
            SessionMsg::Revoke {
                reason,
                token,
                origin,
                reply,
            } => {
                state.liveness.touch();
                let core = &state.core;
                let (tenant, session_id) = (state.tenant.as_str(), state.session_id);
                let (token, origin) = (token.as_ref(), &origin);
                let result = core
                    .db
                    .run(|tx| async move {
                        match token {
                            Some(token) => {
                                sessions::sign_out(&tx, &core.context, tenant, token).await
                            }
                            None => {
                                let revoked = sessions::revoke_session(
                                    &tx,
                                    &core.context,
                                    tenant,
                                    session_id,
                                    reason,
                                )
                                .await?;
                                // Signing out is the user's own business; revocations
                                // by an operator or server are audited.
                                if revoked && reason != "sign_out" {
                                    let event = origin.event(
                                        "session.revoke",
                                        format!("session:{session_id}"),
                                        serde_json::json!({ "reason": reason }),
                                    );
                                    audit::append(&tx, &core.context, tenant, event).await?;
                                }
                                Ok(revoked)
                            }
                        }
                    })
                    .await;
                let _ = reply.send(result);
            }
        }
        Ok(())
    }
}

async fn refresh(state: &SessionActorState, token: &RefreshToken) -> DomainResult<Refreshed> {
    if token.session_id != state.session_id {
        return Err(DomainError::Internal(
            "token routed to the wrong session".to_owned(),
        ));
    }
    let core = &state.core;
    let tenant = state.tenant.as_str();
    let outcome = core
        .db
        .run(|tx| async move { sessions::refresh(&tx, &core.context, tenant, token).await })
        .await?;
    match outcome {
        RefreshOutcome::Reused => Err(DomainError::RefreshTokenReused),
        RefreshOutcome::Rotated {
            session,
            refresh_token,
        } => {
            let tenant_state = core.tenant(tenant).await?;
            let perms = if tenant_state.record.settings.permission_claims_in_token {
                let (state_ref, user_id) = (&tenant_state, session.user_id);
                core.db
                    .run(|tx| async move { token_permissions(&tx, state_ref, user_id).await })
                    .await?
            } else {
                None
            };
            let access =
                core.issue_access_token(&tenant_state, session.user_id, session.session_id, perms)?;
            Ok(Refreshed {
                session: *session,
                access_token: access.token,
                access_token_expires_at: access.expires_at,
                refresh_token,
            })
        }
    }
}
