//! The tenant actor: the serialisation point of a tenant's configuration, key and
//! permission-graph changes, and the owner-only operations it runs. After each committed
//! change it drops the node's cached tenant state.

use std::sync::Arc;

use ractor::ActorProcessingErr;
use serde::{Deserialize, Serialize};

use crate::domain::audit::AuditOrigin;
use crate::domain::permissions::PermissionDefinition;
use crate::domain::permissions_change;
use crate::domain::signing::SigningKeyRecord;
use crate::domain::tenants::{self, CreatedTenant, SettingsChanges, TenantRecord};
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;
use crate::runtime::cluster::ActorKind;
use crate::runtime::entity::EntityKind;
use crate::runtime::owner_call::OwnerOperation;
use crate::runtime::registry::Registry;
use crate::runtime::services::NodeServices;

/// The tenant actor kind.
#[derive(Debug)]
pub struct TenantActor;

/// What a live tenant actor keeps.
#[derive(Debug)]
pub struct TenantActorState {
    tenant: String,
    services: Arc<NodeServices>,
}

impl TenantActorState {
    /// Drops the cached tenant state after a committed change.
    fn changed<T>(&self, result: DomainResult<T>) -> DomainResult<T> {
        result.inspect(|_| self.services.tenants.invalidate(&self.tenant))
    }
}

impl EntityKind for TenantActor {
    const KIND: ActorKind = ActorKind::Tenant;
    type State = TenantActorState;

    fn activate(
        key: &str,
        services: Arc<NodeServices>,
    ) -> Result<TenantActorState, ActorProcessingErr> {
        Ok(TenantActorState {
            tenant: key.to_owned(),
            services,
        })
    }

    fn registry(gatehouse: &Gatehouse) -> &Registry<TenantActor> {
        &gatehouse.tenant_actors
    }
}

/// Create the tenant the actor is keyed by.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTenant {
    /// Tenant id.
    pub tenant: String,
    /// Human name.
    pub display_name: String,
    /// Who asked, for the audit ledger.
    pub origin: AuditOrigin,
}

impl OwnerOperation for CreateTenant {
    type Kind = TenantActor;
    /// The tenant with its one-time secrets.
    type Reply = CreatedTenant;
    const NAME: &'static str = "create_tenant";

    fn key(&self) -> String {
        self.tenant.clone()
    }

    async fn execute(self, actor: &mut TenantActorState) -> DomainResult<CreatedTenant> {
        let services = &actor.services;
        let (tenant, operation) = (actor.tenant.as_str(), &self);
        let result = services
            .db
            .run(|tx| async move {
                tenants::changes::create(
                    &tx,
                    &services.context,
                    &services.master_key,
                    tenant,
                    &operation.display_name,
                    &operation.origin,
                )
                .await
            })
            .await;
        actor.changed(result)
    }
}

/// Retire the active signing key and make a new one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotateSigningKey {
    /// Tenant id.
    pub tenant: String,
    /// Who asked, for the audit ledger.
    pub origin: AuditOrigin,
}

impl OwnerOperation for RotateSigningKey {
    type Kind = TenantActor;
    /// The new key.
    type Reply = SigningKeyRecord;
    const NAME: &'static str = "rotate_signing_key";

    fn key(&self) -> String {
        self.tenant.clone()
    }

    async fn execute(self, actor: &mut TenantActorState) -> DomainResult<SigningKeyRecord> {
        let services = &actor.services;
        let (tenant, origin) = (actor.tenant.as_str(), &self.origin);
        let result = services
            .db
            .run(|tx| async move {
                let context = &services.context;
                tenants::changes::rotate_key(&tx, context, &services.master_key, tenant, origin)
                    .await
            })
            .await;
        actor.changed(result)
    }
}

/// Change the tenant's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateTenantSettings {
    /// Tenant id.
    pub tenant: String,
    /// The changes.
    pub changes: Box<SettingsChanges>,
    /// Who asked, for the audit ledger.
    pub origin: AuditOrigin,
}

impl OwnerOperation for UpdateTenantSettings {
    type Kind = TenantActor;
    /// The updated record.
    type Reply = TenantRecord;
    const NAME: &'static str = "update_tenant_settings";

    fn key(&self) -> String {
        self.tenant.clone()
    }

    async fn execute(self, actor: &mut TenantActorState) -> DomainResult<TenantRecord> {
        let services = &actor.services;
        let tenant = actor.tenant.as_str();
        let state = services.tenant(tenant).await?;
        let (graph, changes, origin) = (&state.permissions, &self.changes, &self.origin);
        let result = services
            .db
            .run(|tx| async move {
                let context = &services.context;
                let record =
                    tenants::changes::update_settings(&tx, context, tenant, graph, changes, origin)
                        .await?;
                let master_key = &services.master_key;
                tenants::anonymous::ensure_anonymous_key(&tx, context, master_key, record)
            })
            .await;
        actor.changed(result)
    }
}

/// Add or replace a permission definition (cycles and unknown references refused).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DefinePermission {
    /// Tenant id.
    pub tenant: String,
    /// The definition.
    pub definition: PermissionDefinition,
    /// Refuse an existing id.
    pub create_only: bool,
    /// Who asked, for the audit ledger.
    pub actor: String,
}

impl OwnerOperation for DefinePermission {
    type Kind = TenantActor;
    /// The stored definition.
    type Reply = PermissionDefinition;
    const NAME: &'static str = "define_permission";

    fn key(&self) -> String {
        self.tenant.clone()
    }

    async fn execute(self, actor: &mut TenantActorState) -> DomainResult<PermissionDefinition> {
        let services = &actor.services;
        let (tenant, operation) = (actor.tenant.as_str(), &self);
        let result = services
            .db
            .run(|tx| async move {
                permissions_change::define(
                    &tx,
                    &services.context,
                    tenant,
                    &operation.definition,
                    operation.create_only,
                    &operation.actor,
                )
                .await
            })
            .await;
        actor.changed(result)
    }
}

/// Delete a permission definition with its grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeletePermission {
    /// Tenant id.
    pub tenant: String,
    /// The permission id.
    pub permission_id: String,
    /// Who asked, for the audit ledger.
    pub actor: String,
}

impl OwnerOperation for DeletePermission {
    type Kind = TenantActor;
    type Reply = ();
    const NAME: &'static str = "delete_permission";

    fn key(&self) -> String {
        self.tenant.clone()
    }

    async fn execute(self, actor: &mut TenantActorState) -> DomainResult<()> {
        let services = &actor.services;
        let (tenant, operation) = (actor.tenant.as_str(), &self);
        let result = services
            .db
            .run(|tx| async move {
                permissions_change::delete(
                    &tx,
                    &services.context,
                    tenant,
                    &operation.permission_id,
                    &operation.actor,
                )
                .await
            })
            .await;
        actor.changed(result)
    }
}
