//! Activation, lookup, supervision and passivation of entity actors of one kind.
//!
//! Lookups read a shared map without touching the supervisor; only activation and
//! passivation go through the supervisor's mailbox, so it never becomes a bottleneck for
//! ordinary calls. A failed (panicked) actor is removed from the map and re-activated from
//! storage by the next call: storage is the source of truth, so nothing is lost.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, MessagingErr, SupervisionEvent};
use tokio::sync::oneshot;

use crate::error::{DomainError, DomainResult};
use crate::runtime::entity::{EntityActor, EntityKind, EntityMsg};
use crate::runtime::services::NodeServices;

/// How long a caller waits for an entity actor's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a call is re-routed when it raced with a stopping actor.
const MAX_ROUTING_ATTEMPTS: usize = 5;

/// What an entity actor starts with.
#[derive(Debug)]
pub struct EntityArgs {
    /// The entity key, e.g. `tenant-id/session-id`.
    pub key: String,
    /// Shared node services.
    pub services: Arc<NodeServices>,
    /// Tracks activity and asks the supervisor to passivate the actor when idle.
    pub liveness: Liveness,
}

type PassivationRequest = Arc<dyn Fn(String, ActorCell) + Send + Sync>;

/// Idle tracking for one entity actor, with the timer that lets it notice idleness.
pub struct Liveness {
    key: String,
    last_active: Instant,
    idle_timeout: Duration,
    request_passivation: PassivationRequest,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Liveness {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}

/// Splits a `tenant/uuid` entity key.
pub fn split_entity_key(key: &str) -> Result<(String, uuid::Uuid), ActorProcessingErr> {
    let (tenant, id) = key
        .split_once('/')
        .ok_or_else(|| format!("bad entity key {key}"))?;
    Ok((tenant.to_owned(), uuid::Uuid::try_parse(id)?))
}

impl std::fmt::Debug for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Liveness")
            .field("key", &self.key)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Liveness {
    /// Starts the periodic `tick` messages (call from `post_start`); stopped on drop.
    pub fn start_ticking<M: ractor::Message>(&mut self, myself: &ActorRef<M>, tick: fn() -> M) {
        self.ticker = Some(myself.send_interval(self.tick_interval(), tick));
    }

    /// Records activity.
    // Idle timers are runtime bookkeeping on the monotonic clock, not domain time.
    #[allow(clippy::disallowed_methods)]
    pub fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// Called on every tick: asks the supervisor to passivate the actor once it is idle.
    pub fn on_tick(&self, myself: ActorCell) {
        if self.last_active.elapsed() >= self.idle_timeout {
            (self.request_passivation)(self.key.clone(), myself);
        }
    }

    /// How often ticks should arrive.
    pub fn tick_interval(&self) -> Duration {
        (self.idle_timeout / 2).max(Duration::from_millis(50))
    }
}

/// Messages of a kind's supervisor.
#[derive(Debug)]
pub enum SupervisorMsg<M: ractor::Message> {
    /// Return the live actor for `key`, starting it if needed.
    Activate {
        /// Entity key.
        key: String,
        /// Where the actor goes.
        reply: oneshot::Sender<DomainResult<ActorRef<M>>>,
    },
    /// The actor is idle: forget it and let it drain.
    Passivate {
        /// Entity key.
        key: String,
        /// The actor that asked.
        actor: ActorCell,
    },
}

type ActorMap<M> = Arc<RwLock<HashMap<String, ActorRef<M>>>>;

struct Supervisor<K: EntityKind> {
    _kind: PhantomData<fn() -> K>,
}

struct SupervisorState<M: ractor::Message> {
    actors: ActorMap<M>,
    services: Arc<NodeServices>,
    idle_timeout: Duration,
    keys_by_actor: HashMap<ractor::ActorId, String>,
}

impl<K: EntityKind> Actor for Supervisor<K> {
    type Msg = SupervisorMsg<EntityMsg<K::State>>;
    type State = SupervisorState<EntityMsg<K::State>>;
    type Arguments = (ActorMap<EntityMsg<K::State>>, Arc<NodeServices>, Duration);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (actors, services, idle_timeout): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState {
            actors,
            services,
            idle_timeout,
            keys_by_actor: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Activate { key, reply } => {
                let existing = read_map(&state.actors).get(&key).cloned();
                let result = match existing {
                    Some(actor) => Ok(actor),
                    None => activate::<K>(&myself, state, key).await,
                };
                let _ = reply.send(result);
            }
            SupervisorMsg::Passivate { key, actor } => {
                let mut actors = write_map(&state.actors);
                if actors
                    .get(&key)
                    .is_some_and(|current| current.get_id() == actor.get_id())
                {
                    actors.remove(&key);
                    drop(actors);
                    // Messages already queued are still handled; later sends fail and are
                    // re-routed to a fresh activation.
                    let _ = actor.drain();
                    metrics::counter!("gatehouse_actor_passivations_total", "kind" => K::KIND.as_str())
                        .increment(1);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, error) => (cell, Some(error)),
            _ => return Ok(()),
        };
        let id = cell.get_id();
        if let Some(key) = state.keys_by_actor.remove(&id) {
            let mut actors = write_map(&state.actors);
            if actors
                .get(&key)
                .is_some_and(|current| current.get_id() == id)
            {
                actors.remove(&key);
            }
            drop(actors);
            metrics::gauge!("gatehouse_actors_active", "kind" => K::KIND.as_str()).decrement(1.0);
            if let Some(error) = failure {
                tracing::error!(kind = K::KIND.as_str(), key, %error, "entity actor failed; it will be re-activated from storage on next use");
                metrics::counter!("gatehouse_actor_failures_total", "kind" => K::KIND.as_str())
                    .increment(1);
            }
        }
        Ok(())
    }
}

// The idle timer starts on the monotonic clock (runtime bookkeeping, not domain time).
#[allow(clippy::disallowed_methods)]
async fn activate<K: EntityKind>(
    myself: &ActorRef<SupervisorMsg<EntityMsg<K::State>>>,
    state: &mut SupervisorState<EntityMsg<K::State>>,
    key: String,
) -> DomainResult<ActorRef<EntityMsg<K::State>>> {
    let args = EntityArgs {
        key: key.clone(),
        services: state.services.clone(),
        liveness: Liveness {
            key: key.clone(),
            last_active: Instant::now(),
            idle_timeout: state.idle_timeout,
            ticker: None,
            request_passivation: {
                let supervisor = myself.clone();
                Arc::new(move |key, actor| {
                    let _ = supervisor.send_message(SupervisorMsg::Passivate { key, actor });
                })
            },
        },
    };
    let (actor, _) = Actor::spawn_linked(None, EntityActor::<K>::new(), args, myself.get_cell())
        .await
        .map_err(|error| {
            DomainError::Unavailable(format!("cannot start {} actor: {error}", K::KIND.as_str()))
        })?;
    state.keys_by_actor.insert(actor.get_id(), key.clone());
    write_map(&state.actors).insert(key, actor.clone());
    metrics::counter!("gatehouse_actor_activations_total", "kind" => K::KIND.as_str()).increment(1);
    metrics::gauge!("gatehouse_actors_active", "kind" => K::KIND.as_str()).increment(1.0);
    Ok(actor)
}

fn read_map<M: ractor::Message>(
    actors: &ActorMap<M>,
) -> std::sync::RwLockReadGuard<'_, HashMap<String, ActorRef<M>>> {
    actors
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_map<M: ractor::Message>(
    actors: &ActorMap<M>,
) -> std::sync::RwLockWriteGuard<'_, HashMap<String, ActorRef<M>>> {
    actors
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The entry point to the actors of one kind on this node.
pub struct Registry<K: EntityKind> {
    actors: ActorMap<EntityMsg<K::State>>,
    supervisor: ActorRef<SupervisorMsg<EntityMsg<K::State>>>,
}

impl<K: EntityKind> std::fmt::Debug for Registry<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kind", &K::KIND.as_str())
            .finish_non_exhaustive()
    }
}

impl<K: EntityKind> Registry<K> {
    /// Starts the supervisor of this kind.
    pub async fn start(
        services: Arc<NodeServices>,
        idle_timeout: Duration,
    ) -> DomainResult<Registry<K>> {
        let actors: ActorMap<EntityMsg<K::State>> = Arc::default();
        let (supervisor, _) = Actor::spawn(
            None,
            Supervisor::<K> { _kind: PhantomData },
            (actors.clone(), services, idle_timeout),
        )
        .await
        .map_err(|error| {
            DomainError::Internal(format!("start {} supervisor: {error}", K::KIND.as_str()))
        })?;
        Ok(Registry { actors, supervisor })
    }

    /// Number of live actors.
    pub fn active(&self) -> usize {
        read_map(&self.actors).len()
    }

    /// Sends a request to the actor of `key` and waits for its answer. A send that races
    /// with passivation is re-routed; an actor that dies while handling the request yields
    /// `UNAVAILABLE` (the request may or may not have taken effect).
    pub async fn call<R>(
        &self,
        key: &str,
        make: impl Fn(oneshot::Sender<DomainResult<R>>) -> EntityMsg<K::State>,
    ) -> DomainResult<R> {
        for _ in 0..MAX_ROUTING_ATTEMPTS {
            let actor = self.lookup(key).await?;
            let (reply, answer) = oneshot::channel();
            match actor.send_message(make(reply)) {
                Ok(()) => {}
                Err(MessagingErr::SendErr(_)) | Err(MessagingErr::ChannelClosed) => {
                    let mut actors = write_map(&self.actors);
                    if actors
                        .get(key)
                        .is_some_and(|current| current.get_id() == actor.get_id())
                    {
                        actors.remove(key);
                    }
                    continue;
                }
                Err(error) => return Err(DomainError::Internal(format!("send: {error}"))),
            }
            return match tokio::time::timeout(CALL_TIMEOUT, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(DomainError::Unavailable(format!(
                    "{} actor stopped before answering",
                    K::KIND.as_str()
                ))),
                Err(_) => Err(DomainError::Unavailable(format!(
                    "{} actor did not answer in time",
                    K::KIND.as_str()
                ))),
            };
        }
        Err(DomainError::Unavailable(format!(
            "{} actor kept stopping",
            K::KIND.as_str()
        )))
    }

    async fn lookup(&self, key: &str) -> DomainResult<ActorRef<EntityMsg<K::State>>> {
        if let Some(actor) = read_map(&self.actors).get(key) {
            return Ok(actor.clone());
        }
        let (reply, answer) = oneshot::channel();
        self.supervisor
            .send_message(SupervisorMsg::Activate {
                key: key.to_owned(),
                reply,
            })
            .map_err(|_| DomainError::Unavailable("supervisor stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| DomainError::Unavailable("supervisor stopped".to_owned()))?
    }

    /// Lets every actor whose key fails `keep` drain and stop (ownership moved elsewhere).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> usize {
        let leaving: Vec<_> = {
            let mut actors = write_map(&self.actors);
            let keys: Vec<String> = actors.keys().filter(|key| !keep(key)).cloned().collect();
            keys.into_iter()
                .filter_map(|key| actors.remove(&key))
                .collect()
        };
        for actor in &leaving {
            let _ = actor.drain();
        }
        leaving.len()
    }

    /// Stops every actor of this kind after it drains its mailbox, then the supervisor.
    pub async fn shutdown(&self) {
        let actors: Vec<_> = write_map(&self.actors)
            .drain()
            .map(|(_, actor)| actor)
            .collect();
        for actor in actors {
            let _ = actor.drain_and_wait(Some(Duration::from_secs(5))).await;
        }
        self.supervisor.stop(None);
    }
}
