//! Impersonation: an operator or the tenant's server starts a time-limited session as a
//! user (`Users.ImpersonateUser`).

use crate::access::Caller;
use crate::api::SignedIn;
use crate::domain::audit::AuditOrigin;
use crate::domain::sessions::ClientInfo;
use crate::domain::sessions::impersonation;
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;

impl Gatehouse {
    /// Starts an impersonation session for `user_id` of the caller's tenant, for
    /// `duration_seconds` (0: 30 minutes; 10 s..=12 h), with a required reason. The session
    /// cannot be refreshed past its end; its tokens carry `act`. No MFA, no new-sign-in
    /// email: this is an operator power, audited at start and end.
    pub async fn impersonate_user(
        &self,
        caller: &Caller,
        user_id: &str,
        reason: &str,
        duration_seconds: u32,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = caller.require_server()?.clone();
        let user_id = super::parse_id("user_id", user_id)?;
        let (reason, seconds) = impersonation::validate_request(reason, duration_seconds)?;
        let origin = AuditOrigin::of(caller);
        let services = &self.services;
        let (tenant_ref, origin, reason) = (&tenant, &origin, reason.as_str());
        let new = services
            .db
            .run(|tx| async move {
                impersonation::start(
                    &tx,
                    &services.context,
                    tenant_ref,
                    user_id,
                    origin,
                    reason,
                    seconds,
                    client,
                )
                .await
            })
            .await?;
        metrics::counter!("gatehouse_impersonations_total").increment(1);
        self.signed_in(&tenant, new)
    }
}
