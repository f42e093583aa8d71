//! Anonymous sign-in and the upgrade of an anonymous caller in place.

use uuid::Uuid;

use crate::access::Caller;
use crate::api::SignedIn;
use crate::domain::sessions::ClientInfo;
use crate::domain::signing::ROLE_ANONYMOUS;
use crate::domain::users::anonymous;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

impl Gatehouse {
    /// Creates an anonymous user with its first session, when the tenant allows anonymous
    /// users. Reads nothing about other users; limited per source address.
    pub async fn sign_in_anonymously(
        &self,
        caller: &Caller,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = caller.tenant()?.clone();
        if !tenant.record.settings.anonymous.enabled {
            return Err(DomainError::PermissionDenied(
                "anonymous sign-in is disabled for this tenant",
            ));
        }
        if tenant.keys.anonymous_kid().is_none() {
            return Err(DomainError::Internal(
                "tenant has no anonymous signing key".to_owned(),
            ));
        }
        let now = self.services.context.now();
        let source_key = format!("{}\u{0}{}", tenant.tenant_id(), client.ip_address);
        if !self.anonymous_by_source.spend(&source_key, now) {
            metrics::counter!("gatehouse_anonymous_sign_in_rate_limited_total").increment(1);
            return Err(DomainError::RateLimited);
        }
        let services = &self.services;
        let tenant_ref = &tenant;
        let new = services
            .db
            .run(|tx| async move {
                anonymous::sign_in_anonymously(&tx, &services.context, tenant_ref, client).await
            })
            .await?;
        metrics::counter!("gatehouse_sign_ins_total", "method" => "anonymous").increment(1);
        self.signed_in(&tenant, new)
    }

    /// The anonymous user the caller is signed in as, if it is one.
    pub(crate) fn anonymous_caller(&self, caller: &Caller) -> DomainResult<Option<Uuid>> {
        match caller {
            Caller::Client {
                user: Some(claims), ..
            } if claims.role == ROLE_ANONYMOUS => Uuid::try_parse(&claims.sub)
                .map(Some)
                .map_err(|_| DomainError::InvalidAccessToken),
            _ => Ok(None),
        }
    }
}
