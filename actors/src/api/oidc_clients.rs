//! The tenant's OpenID Connect clients through the domain facade.
//!
//! Who may do what: operators and the tenant's server key manage every client of the tenant;
//! client keys and signed-in users manage none (`PERMISSION_DENIED`). A client of another
//! tenant is `OIDC_CLIENT_NOT_FOUND`, since every read is in the caller's tenant. Each change
//! runs in one transaction with its audit entry.

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::oidc_clients::{self, IssuedClient, OidcClientRecord};
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;

pub use crate::domain::oidc_clients::{ClientKind, NewOidcClient, OidcClientChanges};

impl Gatehouse {
    /// Registers a client; a confidential client's secret is in the answer and nowhere else.
    pub async fn create_oidc_client(
        &self,
        caller: &Caller,
        new: NewOidcClient,
    ) -> DomainResult<IssuedClient> {
        let tenant_id = caller.require_server()?.tenant_id();
        let (context, origin, new) = (&self.services.context, &AuditOrigin::of(caller), &new);
        self.services
            .db
            .run(|tx| async move {
                oidc_clients::create(&tx, context, tenant_id, new.clone(), origin).await
            })
            .await
    }

    /// Every client of the caller's tenant, oldest first.
    pub async fn list_oidc_clients(&self, caller: &Caller) -> DomainResult<Vec<OidcClientRecord>> {
        let tenant_id = caller.require_server()?.tenant_id();
        self.services
            .db
            .run(|tx| async move { oidc_clients::list(&tx, tenant_id).await })
            .await
    }

    /// One client of the caller's tenant.
    pub async fn get_oidc_client(
        &self,
        caller: &Caller,
        client_id: &str,
    ) -> DomainResult<OidcClientRecord> {
        let tenant_id = caller.require_server()?.tenant_id();
        self.services
            .db
            .run(|tx| async move { oidc_clients::read(&tx, tenant_id, client_id).await })
            .await
    }

    /// Changes a client; fields left `None` keep their value.
    pub async fn update_oidc_client(
        &self,
        caller: &Caller,
        client_id: &str,
        changes: OidcClientChanges,
    ) -> DomainResult<OidcClientRecord> {
        let tenant_id = caller.require_server()?.tenant_id();
        let (context, origin, changes) =
            (&self.services.context, &AuditOrigin::of(caller), &changes);
        self.services
            .db
            .run(|tx| async move {
                oidc_clients::update(&tx, context, tenant_id, client_id, changes.clone(), origin)
                    .await
            })
            .await
    }

    /// Deletes a client; its secret stops working on every node once this returns.
    pub async fn delete_oidc_client(
        &self,
        caller: &Caller,
        client_id: &str,
    ) -> DomainResult<OidcClientRecord> {
        let tenant_id = caller.require_server()?.tenant_id();
        let (context, origin) = (&self.services.context, &AuditOrigin::of(caller));
        self.services
            .db
            .run(|tx| async move {
                oidc_clients::delete(&tx, context, tenant_id, client_id, origin).await
            })
            .await
    }

    /// Gives a confidential client a new secret (in the answer, once); the old one stops
    /// working on every node once this returns.
    pub async fn rotate_oidc_client_secret(
        &self,
        caller: &Caller,
        client_id: &str,
    ) -> DomainResult<IssuedClient> {
        let tenant_id = caller.require_server()?.tenant_id();
        let (context, origin) = (&self.services.context, &AuditOrigin::of(caller));
        self.services
            .db
            .run(|tx| async move {
                oidc_clients::rotate_secret(&tx, context, tenant_id, client_id, origin).await
            })
            .await
    }
}
