//! Session administration for server and operator callers.

use crate::access::Caller;
use crate::audit::{self, AuditOrigin};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::session_actor::RevokeSession;
use crate::sessions::{self, RevocationReason, SessionRecord};
use crate::users;

impl Gatehouse {
    /// A user's sessions, newest first.
    pub async fn list_sessions(
        &self,
        caller: &Caller,
        user_id: &str,
        include_inactive: bool,
    ) -> DomainResult<Vec<SessionRecord>> {
        let tenant = caller.require_server()?;
        let user_id = super::parse_id("user_id", user_id)?;
        let core = &self.core;
        let tenant_id = tenant.tenant_id();
        core.db
            .run(|tx| async move {
                users::read_user(&tx, tenant_id, user_id).await?;
                sessions::list_user_sessions(
                    &tx,
                    &core.context,
                    tenant_id,
                    user_id,
                    include_inactive,
                )
                .await
            })
            .await
    }

    /// Revokes one session through its actor.
    pub async fn revoke_session(&self, caller: &Caller, session_id: &str) -> DomainResult<()> {
        let tenant = caller.require_server()?;
        let session_id = super::parse_id("session_id", session_id)?;
        self.route(RevokeSession {
            tenant: tenant.tenant_id().to_owned(),
            session_id,
            reason: RevocationReason::Admin,
            token: None,
            origin: AuditOrigin::of(caller),
        })
        .await
        .map(|_| ())
    }

    /// Revokes every session of a user; returns how many were live.
    pub async fn revoke_user_sessions(&self, caller: &Caller, user_id: &str) -> DomainResult<u32> {
        let tenant = caller.require_server()?;
        let user_id = super::parse_id("user_id", user_id)?;
        let core = &self.core;
        let tenant_id = tenant.tenant_id();
        let origin = &AuditOrigin::of(caller);
        core.db
            .run(|tx| async move {
                users::read_user(&tx, tenant_id, user_id).await?;
                let revoked = sessions::revoke_user_sessions(
                    &tx,
                    &core.context,
                    tenant_id,
                    user_id,
                    RevocationReason::Admin,
                )
                .await?;
                let details = serde_json::json!({ "revoked": revoked });
                let event =
                    origin.event("user.revoke_sessions", format!("user:{user_id}"), details);
                audit::append(&tx, &core.context, tenant_id, event).await?;
                Ok::<_, DomainError>(revoked)
            })
            .await
    }
}
