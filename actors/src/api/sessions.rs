//! Session administration for server and operator callers, and the liveness check of the
//! hosted pages' browser sessions.

use uuid::Uuid;

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::sessions::{self, RevocationReason, SessionRecord};
use crate::domain::users::{self, UserRecord};
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;
use crate::runtime::session_actor::RevokeSession;

impl Gatehouse {
    /// The user of a hosted pages' browser session, when the session is live and its user
    /// active: the check every access token passes (this node's live-session cache, else one
    /// snapshot read), then the user. `SESSION_REVOKED`, `SESSION_EXPIRED`, `USER_SUSPENDED`,
    /// `USER_BANNED` or `INVALID_ACCESS_TOKEN` (the session is another user's) otherwise.
    pub async fn live_session_user(
        &self,
        tenant_id: &str,
        session_id: Uuid,
        user_id: Uuid,
    ) -> DomainResult<UserRecord> {
        self.ensure_session_live(tenant_id, session_id, user_id)
            .await?;
        self.services
            .db
            .run(|tx| async move { users::read_user(&tx, tenant_id, user_id).await })
            .await
    }

    /// A user's sessions, newest first.
    pub async fn list_sessions(
        &self,
        caller: &Caller,
        user_id: &str,
        include_inactive: bool,
    ) -> DomainResult<Vec<SessionRecord>> {
        let tenant = caller.require_server()?;
        let user_id = super::parse_id("user_id", user_id)?;
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                sessions::list_for_user(&tx, context, tenant_id, user_id, include_inactive).await
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
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let origin = &AuditOrigin::of(caller);
        services
            .db
            .run(|tx| async move {
                sessions::revoke_all_audited(&tx, &services.context, tenant_id, user_id, origin)
                    .await
            })
            .await
    }
}
