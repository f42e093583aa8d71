//! One generic ractor actor for every entity kind. What differs between a tenant, a session
//! and a share actor is only the state it keeps between calls ([`EntityKind::State`]); the
//! work itself arrives as an owner operation in the single [`EntityMsg::Call`] message.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;
use crate::runtime::cluster::ActorKind;
use crate::runtime::owner_call::OwnerOperation;
use crate::runtime::registry::{EntityArgs, Liveness, Registry};
use crate::runtime::services::NodeServices;

/// A kind of entity actor: which placement kind it is and what it keeps while alive.
pub trait EntityKind: Send + Sync + Sized + 'static {
    /// Placement kind, also the name in metrics and logs.
    const KIND: ActorKind;
    /// What a live actor of this kind keeps between calls (ids, caches, limiters).
    type State: Send + 'static;
    /// Builds the state of the actor keyed by `key`.
    fn activate(key: &str, services: Arc<NodeServices>) -> Result<Self::State, ActorProcessingErr>;
    /// This node's actors of the kind.
    fn registry(gatehouse: &Gatehouse) -> &Registry<Self>;
}

/// Work an actor runs on its state; it answers its caller itself, so replies stay typed.
pub type ActorJob<S> =
    Box<dyn for<'a> FnOnce(&'a mut S) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> + Send>;

/// The messages of every entity actor.
pub enum EntityMsg<S> {
    /// Run an owner operation on the actor's state.
    Call(ActorJob<S>),
    /// Passivation check.
    Tick,
    /// Panics inside the handler: proves supervision contains the failure and the next call
    /// re-activates the actor from storage.
    #[cfg(test)]
    Crash,
}

impl<S> std::fmt::Debug for EntityMsg<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntityMsg::Call(_) => "Call",
            EntityMsg::Tick => "Tick",
            #[cfg(test)]
            EntityMsg::Crash => "Crash",
        })
    }
}

impl<S: Send + 'static> EntityMsg<S> {
    /// The message that runs `operation` and sends its answer to `reply`.
    pub fn call<O>(operation: O, reply: oneshot::Sender<DomainResult<O::Reply>>) -> EntityMsg<S>
    where
        O: OwnerOperation,
        O::Kind: EntityKind<State = S>,
    {
        EntityMsg::Call(Box::new(move |state: &mut S| {
            Box::pin(async move {
                let _ = reply.send(operation.execute(state).await);
            })
        }))
    }

    fn tick() -> EntityMsg<S> {
        EntityMsg::Tick
    }
}

/// The actor of one entity of kind `K`.
pub struct EntityActor<K> {
    _kind: PhantomData<fn() -> K>,
}

impl<K> EntityActor<K> {
    /// A fresh handler.
    pub fn new() -> EntityActor<K> {
        EntityActor { _kind: PhantomData }
    }
}

impl<K> std::fmt::Debug for EntityActor<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EntityActor")
    }
}

impl<K> Default for EntityActor<K> {
    fn default() -> Self {
        EntityActor::new()
    }
}

/// What a live entity actor holds.
pub struct EntityState<K: EntityKind> {
    liveness: Liveness,
    state: K::State,
}

impl<K: EntityKind> std::fmt::Debug for EntityState<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityState")
            .field("liveness", &self.liveness)
            .finish_non_exhaustive()
    }
}

impl<K: EntityKind> Actor for EntityActor<K> {
    type Msg = EntityMsg<K::State>;
    type State = EntityState<K>;
    type Arguments = EntityArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(EntityState {
            state: K::activate(&args.key, args.services)?,
            liveness: args.liveness,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.liveness.start_ticking(&myself, EntityMsg::tick);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EntityMsg::Tick => state.liveness.on_tick(myself.get_cell()),
            EntityMsg::Call(job) => {
                state.liveness.touch();
                job(&mut state.state).await;
                // A long call is activity too: idleness counts from its end.
                state.liveness.touch();
            }
            #[cfg(test)]
            EntityMsg::Crash => panic!("{} actor asked to crash", K::KIND.as_str()),
        }
        Ok(())
    }
}
