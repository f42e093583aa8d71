//! Session administration for server and operator callers, a signed-in user's own sessions,
//! and the hosted pages' browser sessions: their liveness check and the caller they act as.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::sessions::{self, RevocationReason, SessionRecord};
use crate::domain::tenants::TenantState;
use crate::domain::users::{self, UserRecord};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::services::session_claims;
use crate::runtime::session_actor::RevokeSession;

/// A hosted pages' browser session as the domain sees it: the caller it acts as (a client
/// of the tenant with the claims the session's access token would carry), its user and
/// the session.
#[derive(Debug, Clone)]
pub struct BrowserCaller {
    /// `Caller::Client` with the session's claims: every policy check applies as to the
    /// session's own access token (restrictions, step-up, impersonation, anonymous).
    pub caller: Caller,
    /// The session's user, as read with the session.
    pub user: UserRecord,
    /// The session.
    pub session: SessionRecord,
}

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

    /// The caller a live browser session of the hosted pages acts as: the liveness check of
    /// [`Gatehouse::live_session_user`], then the session and its user read in one snapshot
    /// and the claims an access token of that session would carry now. The pages then call
    /// the same operations, under the same policy, as the session's own client would.
    pub async fn browser_caller(
        &self,
        tenant: &Arc<TenantState>,
        session_id: Uuid,
        user_id: Uuid,
    ) -> DomainResult<BrowserCaller> {
        let tenant_id = tenant.tenant_id();
        self.ensure_session_live(tenant_id, session_id, user_id)
            .await?;
        let services = &self.services;
        let (session, user) = services
            .db
            .run(|tx| async move {
                let session = sessions::find_session(&tx, tenant_id, session_id)
                    .await?
                    .ok_or(DomainError::SessionNotFound)?;
                let user = users::read_user(&tx, tenant_id, user_id).await?;
                Ok::<_, DomainError>((session, user))
            })
            .await?;
        let now = services.context.now();
        if session.user_id != user_id {
            return Err(DomainError::InvalidAccessToken);
        }
        if !session.is_active(now) {
            return Err(DomainError::SessionExpired);
        }
        let ttl = Duration::from_secs(u64::from(tenant.record.settings.access_token_ttl_seconds));
        let expires_at = sessions::impersonation::access_token_expiry(&session, now, ttl);
        let claims = session_claims(tenant, &session, None, user.email_verified, now, expires_at);
        Ok(BrowserCaller {
            caller: Caller::Client {
                tenant: tenant.clone(),
                user: Some(Box::new(claims)),
            },
            user,
            session,
        })
    }

    /// The signed-in user's own live sessions, newest first, and the id of the caller's.
    pub async fn list_my_sessions(
        &self,
        caller: &Caller,
    ) -> DomainResult<(Vec<SessionRecord>, Uuid)> {
        let (tenant, claims) = caller.require_user_even_restricted()?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let current = super::parse_id("sid", &claims.sid)?;
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let listed = services
            .db
            .run(|tx| async move {
                let context = &services.context;
                sessions::list_for_user(&tx, context, tenant_id, user_id, false).await
            })
            .await?;
        Ok((listed, current))
    }

    /// Signs out one of the signed-in user's own sessions (another device), through the
    /// session's actor like any revocation. A session of another user is `SESSION_NOT_FOUND`,
    /// as is one that does not exist.
    pub async fn revoke_my_session(&self, caller: &Caller, session_id: &str) -> DomainResult<()> {
        let (tenant, claims) = caller.require_user_even_restricted()?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let session_id = super::parse_id("session_id", session_id)?;
        let tenant_id = tenant.tenant_id();
        let owner = self
            .services
            .db
            .run(|tx| async move {
                let session = sessions::find_session(&tx, tenant_id, session_id).await?;
                Ok::<_, DomainError>(session.map(|session| session.user_id))
            })
            .await?;
        if owner != Some(user_id) {
            return Err(DomainError::SessionNotFound);
        }
        self.route(RevokeSession {
            tenant: tenant_id.to_owned(),
            session_id,
            reason: RevocationReason::SignOut,
            token: None,
            origin: AuditOrigin::of(caller),
        })
        .await
        .map(|_| ())
    }

    /// Signs out every other session of the signed-in user, keeping the caller's; returns how
    /// many were live.
    pub async fn revoke_my_other_sessions(&self, caller: &Caller) -> DomainResult<u32> {
        let (tenant, claims) = caller.require_user_even_restricted()?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let current = super::parse_id("sid", &claims.sid)?;
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                let reason = RevocationReason::SignOut;
                sessions::revoke_user_sessions(
                    &tx,
                    context,
                    tenant_id,
                    user_id,
                    reason,
                    Some(current),
                )
                .await
            })
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
