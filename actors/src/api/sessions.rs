//! Session administration for server and operator callers.

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::sessions::{self, RevocationReason, SessionRecord};
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;
use crate::runtime::session_actor::RevokeSession;

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
