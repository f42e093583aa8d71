//! `TenantActor`: the serialisation point of a tenant's configuration and key changes. After
//! each committed change it refreshes the node's tenant cache.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use crate::actor::registry::{EntityActor, EntityArgs, Liveness};
use crate::audit::{self, AuditOrigin};
use crate::core::Core;
use crate::error::DomainResult;
use crate::permissions::PermissionDefinition;
use crate::permissions_change;
use crate::signing::SigningKeyRecord;
use crate::tenants::{self, CreatedTenant};
use crate::tenants::{SettingsChanges, TenantRecord};

/// Messages of a `TenantActor`.
#[derive(Debug)]
pub enum TenantMsg {
    /// Create the tenant this actor is keyed by.
    Create {
        /// Human name.
        display_name: String,
        /// Who asked, for the audit ledger.
        origin: AuditOrigin,
        /// Answer, with the one-time secrets.
        reply: oneshot::Sender<DomainResult<CreatedTenant>>,
    },
    /// Retire the active signing key and make a new one.
    RotateSigningKey {
        /// Who asked, for the audit ledger.
        origin: AuditOrigin,
        /// Answer: the new key.
        reply: oneshot::Sender<DomainResult<SigningKeyRecord>>,
    },
    /// Change the tenant's settings.
    UpdateSettings {
        /// The changes.
        changes: SettingsChanges,
        /// Who asked, for the audit ledger.
        origin: AuditOrigin,
        /// Answer: the updated record.
        reply: oneshot::Sender<DomainResult<TenantRecord>>,
    },
    /// Add or replace a permission definition (cycles and unknown references refused).
    DefinePermission {
        /// The definition.
        definition: PermissionDefinition,
        /// Refuse if the id exists.
        create_only: bool,
        /// Who asked, for the audit ledger.
        actor: String,
        /// Answer.
        reply: oneshot::Sender<DomainResult<PermissionDefinition>>,
    },
    /// Delete a permission definition with its grants.
    DeletePermission {
        /// The permission id.
        permission_id: String,
        /// Who asked, for the audit ledger.
        actor: String,
        /// Answer.
        reply: oneshot::Sender<DomainResult<()>>,
    },
    /// Passivation check.
    Tick,
}

/// The tenant actor.
#[derive(Debug, Default)]
pub struct TenantActor;

/// State of a live tenant actor.
#[derive(Debug)]
pub struct TenantActorState {
    tenant: String,
    core: Arc<Core>,
    liveness: Liveness,
}

impl EntityActor for TenantActor {
    const KIND: &'static str = "tenant";

    fn create() -> Self {
        TenantActor
    }

    fn tick() -> TenantMsg {
        TenantMsg::Tick
    }
}

impl Actor for TenantActor {
    type Msg = TenantMsg;
    type State = TenantActorState;
    type Arguments = EntityArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(TenantActorState {
            tenant: args.key,
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
        let core = &state.core;
        let tenant = state.tenant.as_str();
        match message {
            TenantMsg::Tick => state.liveness.on_tick(myself.get_cell()),
            TenantMsg::Create {
                display_name,
                origin,
                reply,
            } => {
                let (display_name, origin) = (display_name.as_str(), &origin);
                let result = core
                    .db
                    .run(|tx| async move {
                        let created = tenants::create_tenant(
                            &tx,
                            &core.context,
                            &core.master_key,
                            tenant,
                            display_name,
                        )
                        .await?;
                        let details = serde_json::json!({ "display_name": display_name });
                        let event =
                            origin.event("tenant.create", format!("tenant:{tenant}"), details);
                        audit::append(&tx, &core.context, tenant, event).await?;
                        Ok(created)
                    })
                    .await
                    .inspect(|_| core.tenants.invalidate(tenant));
                let _ = reply.send(result);
                state.liveness.touch();
            }
            TenantMsg::DefinePermission {
                definition,
                create_only,
                actor,
                reply,
            } => {
                let (definition, actor) = (&definition, actor.as_str());
                let result = core
                    .db
                    .run(|tx| async move {
                        permissions_change::define(
                            &tx,
                            &core.context,
                            tenant,
                            definition,
                            create_only,
                            actor,
                        )
                        .await
                    })
                    .await
                    .inspect(|_| core.tenants.invalidate(tenant));
                let _ = reply.send(result);
                state.liveness.touch();
            }
            TenantMsg::DeletePermission {
                permission_id,
                actor,
                reply,
            } => {
                let (permission_id, actor) = (permission_id.as_str(), actor.as_str());
                let result = core
                    .db
                    .run(|tx| async move {
                        permissions_change::delete(&tx, &core.context, tenant, permission_id, actor)
                            .await
                    })
                    .await
                    .inspect(|()| core.tenants.invalidate(tenant));
                let _ = reply.send(result);
                state.liveness.touch();
            }
            TenantMsg::UpdateSettings {
                changes,
                origin,
                reply,
            } => {
                let (changes, origin) = (&changes, &origin);
                let result = match core.tenant(tenant).await {
                    Ok(state) => {
                        let graph = &state.permissions;
                        core.db
                            .run(|tx| async move {
                                let record =
                                    tenants::update_settings(&tx, tenant, graph, changes).await?;
                                let details = serde_json::to_value(changes).unwrap_or_default();
                                let event = origin.event(
                                    "tenant.config",
                                    format!("tenant:{tenant}"),
                                    details,
                                );
                                audit::append(&tx, &core.context, tenant, event).await?;
                                Ok(record)
                            })
                            .await
                            .inspect(|_| core.tenants.invalidate(tenant))
                    }
                    Err(error) => Err(error),
                };
                let _ = reply.send(result);
                state.liveness.touch();
            }
            TenantMsg::RotateSigningKey { origin, reply } => {
                let origin = &origin;
                let result = core
                    .db
                    .run(|tx| async move {
                        let rotated = tenants::rotate_signing_key(
                            &tx,
                            &core.context,
                            &core.master_key,
                            tenant,
                        )
                        .await?;
                        let details = serde_json::json!({ "kid": rotated.1.kid });
                        let event = origin.event("key.rotate", format!("tenant:{tenant}"), details);
                        audit::append(&tx, &core.context, tenant, event).await?;
                        Ok(rotated)
                    })
                    .await
                    .map(|(_, key)| key)
                    .inspect(|_| core.tenants.invalidate(tenant));
                let _ = reply.send(result);
                state.liveness.touch();
            }
        }
        Ok(())
    }
}
