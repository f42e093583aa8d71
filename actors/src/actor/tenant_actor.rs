//! `TenantActor`: the serialisation point of a tenant's configuration and key changes. After
//! each committed change it refreshes the node's tenant cache.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use crate::actor::registry::{EntityActor, EntityArgs, Liveness};
use crate::core::Core;
use crate::error::DomainResult;
use crate::signing::SigningKeyRecord;
use crate::tenants::{self, CreatedTenant};

/// Messages of a `TenantActor`.
#[derive(Debug)]
pub enum TenantMsg {
    /// Create the tenant this actor is keyed by.
    Create {
        /// Human name.
        display_name: String,
        /// Answer, with the one-time secrets.
        reply: oneshot::Sender<DomainResult<CreatedTenant>>,
    },
    /// Retire the active signing key and make a new one.
    RotateSigningKey {
        /// Answer: the new key.
        reply: oneshot::Sender<DomainResult<SigningKeyRecord>>,
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
    ticker: Option<tokio::task::JoinHandle<()>>,
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
            ticker: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker = Some(myself.send_interval(state.liveness.tick_interval(), Self::tick));
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(ticker) = state.ticker.take() {
            ticker.abort();
        }
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
                reply,
            } => {
                let display_name = display_name.as_str();
                let result = core
                    .db
                    .run(|tx| async move {
                        tenants::create_tenant(
                            &tx,
                            &core.context,
                            &core.master_key,
                            tenant,
                            display_name,
                        )
                        .await
                    })
                    .await
                    .and_then(|created| {
                        core.cache_tenant(created.record.clone())?;
                        Ok(created)
                    });
                let _ = reply.send(result);
                state.liveness.touch();
            }
            TenantMsg::RotateSigningKey { reply } => {
                let result = core
                    .db
                    .run(|tx| async move {
                        tenants::rotate_signing_key(&tx, &core.context, &core.master_key, tenant)
                            .await
                    })
                    .await
                    .and_then(|(record, key)| {
                        core.cache_tenant(record)?;
                        Ok(key)
                    });
                let _ = reply.send(result);
                state.liveness.touch();
            }
        }
        Ok(())
    }
}
