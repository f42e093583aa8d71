//! The domain facade a node serves: authentication of callers and every operation, each
//! authorised against the caller inside the domain (not in the transport layer).

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use gatehouse_storage::Database;
use uuid::Uuid;

use crate::access::{Caller, Credentials, operator_key_matches, require_tenant_key};
use crate::context::Context;
use crate::domain::crypto::{MasterKey, random_token, sha256};
use crate::domain::email::EmailSettings;
use crate::domain::keyspace;
use crate::domain::passwords::{Argon2Params, PasswordHasher, PoolSize};
use crate::domain::sessions::liveness;
use crate::domain::signing::AccessClaims;
use crate::domain::tenants::{ApiKeyKind, TenantCache};
use crate::domain::upstream::UpstreamClient;
use crate::domain::webhooks::WebhookSettings;
use crate::error::{DomainError, DomainResult};
use crate::ratelimit::RateLimiter;
use crate::runtime::cluster::{ActorKind, Membership, MembershipView};
use crate::runtime::connected_account_actor::ConnectedAccountActor;
use crate::runtime::registry::Registry;
use crate::runtime::routing::ClusterWiring;
use crate::runtime::services::NodeServices;
use crate::runtime::session_actor::SessionActor;
use crate::runtime::share_actor::ShareActor;
use crate::runtime::tenant_actor::TenantActor;

/// Polls the tenant-change epoch so a change made on any node reaches this node's cache.
async fn spawn_tenant_epoch_poller(
    gatehouse: &Arc<Gatehouse>,
    every: Duration,
) -> DomainResult<()> {
    // Read before any request can fill the cache, so no change slips between the two.
    let mut last_epoch = read_tenant_epoch(&gatehouse.services).await?;
    let weak = Arc::downgrade(gatehouse);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(gatehouse) = weak.upgrade() else {
                return;
            };
            match read_tenant_epoch(&gatehouse.services).await {
                Ok(epoch) if epoch != last_epoch => {
                    last_epoch = epoch;
                    gatehouse.services.tenants.clear();
                    metrics::counter!("gatehouse_tenant_cache_invalidations_total").increment(1);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot poll the tenant epoch"),
            }
        }
    });
    Ok(())
}

async fn read_tenant_epoch(services: &NodeServices) -> DomainResult<Option<Vec<u8>>> {
    services.db
        .run(
            |tx| async move { Ok::<_, DomainError>(tx.snapshot_get(&keyspace::tenant_epoch()).await?) },
        )
        .await
}

/// Stops actors whose ownership moved whenever the membership changes.
fn spawn_ownership_watcher(gatehouse: Weak<Gatehouse>, membership: MembershipView) {
    let mut changes = membership.subscribe();
    tokio::spawn(async move {
        loop {
            if changes.changed().await.is_err() {
                return;
            }
            let Some(gatehouse) = gatehouse.upgrade() else {
                return;
            };
            let stopped = gatehouse.drop_unowned_actors();
            if stopped > 0 {
                tracing::info!(stopped, "stopped actors now owned by other nodes");
            }
        }
    });
}

/// Prefix of operator keys.
pub const OPERATOR_KEY_PREFIX: &str = "gop_";

/// Node-level settings of the domain.
#[derive(Debug, Clone)]
pub struct GatehouseOptions {
    /// Base URL of the HTTP endpoint (issuer prefix).
    pub public_url: String,
    /// Password hashing threads (0 = one per core).
    pub password_hash_threads: usize,
    /// Password hashing queue length.
    pub password_hash_queue: usize,
    /// Of those, how many one source (tenant and client address) may have waiting.
    pub password_hash_queue_per_source: usize,
    /// Of those, how many one tenant may have waiting.
    pub password_hash_queue_per_tenant: usize,
    /// How long an entity actor may sit idle before it passivates.
    pub actor_idle_timeout: Duration,
    /// How often the tenant-change epoch is polled to drop stale tenant caches.
    pub tenant_epoch_poll: Duration,
    /// How often the revocation feed is polled to drop stale live-session cache entries:
    /// a revocation, suspension, ban or deletion on another node is in force here one poll
    /// after it commits.
    pub revocation_poll: Duration,
    /// Membership and transport when this node is part of a cluster.
    pub cluster: Option<ClusterWiring>,
    /// Webhook sender and delivery settings.
    pub webhooks: WebhookSettings,
    /// SMTP sender and email delivery settings.
    pub email: EmailSettings,
    /// The argon2id cost of new password hashes.
    pub argon2: Argon2Params,
    /// HTTP to upstream OAuth / OpenID providers; without one, upstream sign-in answers
    /// `OAUTH_UPSTREAM_UNAVAILABLE`.
    pub upstream: Option<Arc<dyn UpstreamClient>>,
}

impl Default for GatehouseOptions {
    fn default() -> Self {
        GatehouseOptions {
            public_url: "http://127.0.0.1:8080".to_owned(),
            password_hash_threads: 0,
            password_hash_queue: 4096,
            password_hash_queue_per_source: 32,
            password_hash_queue_per_tenant: 2048,
            actor_idle_timeout: Duration::from_secs(120),
            tenant_epoch_poll: Duration::from_millis(500),
            revocation_poll: Duration::from_millis(250),
            cluster: None,
            webhooks: WebhookSettings::default(),
            email: EmailSettings::default(),
            argon2: Argon2Params::default(),
            upstream: None,
        }
    }
}

/// The domain of one node.
#[derive(Debug)]
pub struct Gatehouse {
    pub(crate) services: Arc<NodeServices>,
    pub(crate) tenant_actors: Registry<TenantActor>,
    pub(crate) session_actors: Registry<SessionActor>,
    pub(crate) share_actors: Registry<ShareActor>,
    pub(crate) connected_account_actors: Registry<ConnectedAccountActor>,
    /// Anonymous sign-ins per tenant and source address.
    pub(crate) anonymous_by_source: RateLimiter,
    /// Upstream sign-ins begun per tenant and source address.
    pub(crate) oauth_starts_by_source: RateLimiter,
    /// Password sign-up attempts by clients per tenant and source address.
    pub(crate) sign_ups_by_source: RateLimiter,
    operator_key_hash: RwLock<Option<Vec<u8>>>,
    /// Membership and transport, when clustered.
    pub(crate) cluster: Option<ClusterWiring>,
    /// Webhook sender and delivery settings.
    pub(crate) webhooks: WebhookSettings,
    /// HTTP to upstream providers.
    pub(crate) upstream: Option<Arc<dyn UpstreamClient>>,
    /// Background loops hold a weak handle and stop once the domain is dropped.
    alive: Arc<()>,
}

impl Gatehouse {
    /// Starts the domain over `db`.
    pub async fn start(
        db: Database,
        context: Context,
        master_key: MasterKey,
        options: GatehouseOptions,
    ) -> DomainResult<Arc<Gatehouse>> {
        let hasher = PasswordHasher::start(
            context.clone(),
            PoolSize {
                threads: options.password_hash_threads,
                queue: options.password_hash_queue,
                per_source: options.password_hash_queue_per_source,
                per_tenant: options.password_hash_queue_per_tenant,
            },
            options.argon2,
        )?;
        let services = Arc::new(NodeServices {
            db,
            context,
            master_key,
            hasher,
            tenants: TenantCache::default(),
            public_url: options.public_url.trim_end_matches('/').to_owned(),
            upstream: options.upstream.clone(),
        });
        let tenant_actors = Registry::start(services.clone(), options.actor_idle_timeout).await?;
        let session_actors = Registry::start(services.clone(), options.actor_idle_timeout).await?;
        let share_actors = Registry::start(services.clone(), options.actor_idle_timeout).await?;
        let connected_account_actors =
            Registry::start(services.clone(), options.actor_idle_timeout).await?;
        let gatehouse = Arc::new(Gatehouse {
            services,
            tenant_actors,
            session_actors,
            share_actors,
            connected_account_actors,
            // 30 anonymous users per source, one more every 10 s.
            anonymous_by_source: RateLimiter::new(30, 10_000),
            // 100 upstream sign-ins begun per source, one more every second.
            oauth_starts_by_source: RateLimiter::new(100, 1_000),
            // 100 sign-up attempts per source, one more every half second.
            sign_ups_by_source: RateLimiter::new(100, 500),
            operator_key_hash: RwLock::new(None),
            cluster: options.cluster,
            webhooks: options.webhooks,
            upstream: options.upstream.clone(),
            alive: Arc::new(()),
        });
        spawn_tenant_epoch_poller(&gatehouse, options.tenant_epoch_poll).await?;
        crate::runtime::revocation_feed::spawn(
            gatehouse.services.clone(),
            options.revocation_poll,
            Arc::downgrade(&gatehouse.alive),
        )
        .await?;
        crate::runtime::webhook_dispatch::spawn(
            gatehouse.services.clone(),
            gatehouse.webhooks.clone(),
            gatehouse
                .cluster
                .as_ref()
                .map(|cluster| cluster.membership.clone()),
            Arc::downgrade(&gatehouse.alive),
        );
        crate::runtime::email_dispatch::spawn(
            gatehouse.services.clone(),
            options.email.clone(),
            gatehouse
                .cluster
                .as_ref()
                .map(|cluster| cluster.membership.clone()),
            Arc::downgrade(&gatehouse.alive),
        );
        if let Some(cluster) = &gatehouse.cluster {
            spawn_ownership_watcher(Arc::downgrade(&gatehouse), cluster.membership.clone());
        }
        Ok(gatehouse)
    }

    /// Stops local actors this node no longer owns; returns how many.
    pub fn drop_unowned_actors(&self) -> usize {
        let Some(cluster) = &self.cluster else {
            return 0;
        };
        let membership = cluster.membership.current();
        self.tenant_actors
            .retain(|key| membership.is_local(ActorKind::Tenant, key))
            + self
                .session_actors
                .retain(|key| membership.is_local(ActorKind::Session, key))
            + self
                .share_actors
                .retain(|key| membership.is_local(ActorKind::Share, key))
            + self
                .connected_account_actors
                .retain(|key| membership.is_local(ActorKind::ConnectedAccount, key))
    }

    /// The membership this node sees, when clustered.
    pub fn membership(&self) -> Option<Arc<Membership>> {
        self.cluster
            .as_ref()
            .map(|cluster| cluster.membership.current())
    }

    /// Shared services, for the transport layer's read-only needs (JWKS, health).
    pub fn services(&self) -> &Arc<NodeServices> {
        &self.services
    }

    /// Live actors on this node: (tenants, sessions).
    pub fn active_actors(&self) -> (usize, usize) {
        (self.tenant_actors.active(), self.session_actors.active())
    }

    /// Live actors on this node per kind.
    pub fn active_actors_by_kind(&self) -> [(&'static str, usize); 4] {
        [
            ("tenant", self.tenant_actors.active()),
            ("session", self.session_actors.active()),
            ("share", self.share_actors.active()),
            ("connected_account", self.connected_account_actors.active()),
        ]
    }

    /// Creates the operator key if the store has none. Returns the key only when this call
    /// created it: it is shown once and stored only as a hash.
    pub async fn ensure_operator_key(&self) -> DomainResult<Option<String>> {
        let candidate = random_token(&self.services.context, OPERATOR_KEY_PREFIX);
        let candidate_hash = sha256(candidate.as_bytes());
        let created = self
            .services
            .db
            .run(|tx| async move {
                if tx.get(&keyspace::operator_key()).await?.is_some() {
                    return Ok::<_, DomainError>(false);
                }
                tx.set(&keyspace::operator_key(), &candidate_hash)?;
                Ok(true)
            })
            .await?;
        Ok(created.then_some(candidate))
    }

    async fn operator_key_hash(&self) -> DomainResult<Vec<u8>> {
        if let Some(hash) = self
            .operator_key_hash
            .read()
            .ok()
            .and_then(|hash| hash.clone())
        {
            return Ok(hash);
        }
        let hash = self
            .services
            .db
            .run(|tx| async move { Ok::<_, DomainError>(tx.get(&keyspace::operator_key()).await?) })
            .await?
            .ok_or(DomainError::InvalidApiKey)?;
        if let Ok(mut cached) = self.operator_key_hash.write() {
            *cached = Some(hash.clone());
        }
        Ok(hash)
    }

    /// Turns request credentials into a caller, or says why not.
    pub async fn authenticate(&self, credentials: &Credentials) -> DomainResult<Caller> {
        let tenant = match credentials.tenant.as_deref() {
            Some(tenant_id) if !tenant_id.is_empty() => {
                Some(self.services.tenant(tenant_id).await?)
            }
            _ => None,
        };
        if let Some(operator_key) = &credentials.operator_key {
            if !operator_key_matches(&self.operator_key_hash().await?, operator_key) {
                return Err(DomainError::InvalidApiKey);
            }
            return Ok(Caller::Operator { tenant });
        }
        let tenant = tenant.ok_or(DomainError::MissingCredentials("x-gatehouse-tenant"))?;
        if let Some(server_key) = &credentials.server_key {
            require_tenant_key(&tenant, ApiKeyKind::Server, server_key)?;
            return Ok(Caller::Server { tenant });
        }
        if let Some(client_key) = &credentials.client_key {
            require_tenant_key(&tenant, ApiKeyKind::Client, client_key)?;
            let user = match &credentials.access_token {
                Some(token) => {
                    let claims = tenant.keys.verify(
                        token,
                        &tenant.issuer,
                        tenant.tenant_id(),
                        self.services.context.now(),
                    )?;
                    // A machine token (from an API key) is no signed-in user.
                    if claims.principal_kind.is_some() {
                        return Err(DomainError::MachineTokenNotAccepted);
                    }
                    // Signing out only ends the token's session, which may already be over.
                    if !credentials.ending_session {
                        self.ensure_live(tenant.tenant_id(), &claims).await?;
                    }
                    Some(claims)
                }
                None => None,
            };
            let user = user.map(Box::new);
            return Ok(Caller::Client { tenant, user });
        }
        Err(DomainError::MissingCredentials(
            "x-gatehouse-client-key, x-gatehouse-server-key or x-gatehouse-operator-key",
        ))
    }

    /// Refuses an access token whose session ended or whose user may not act: one lookup
    /// in this node's live-session cache, and on a miss one snapshot read of the session and
    /// the user (`sessions::liveness`).
    pub(crate) async fn ensure_live(
        &self,
        tenant: &str,
        claims: &AccessClaims,
    ) -> DomainResult<()> {
        let session_id =
            Uuid::try_parse(&claims.sid).map_err(|_| DomainError::InvalidAccessToken)?;
        let user_id = Uuid::try_parse(&claims.sub).map_err(|_| DomainError::InvalidAccessToken)?;
        self.ensure_session_live(tenant, session_id, user_id).await
    }

    /// Refuses a session that ended or whose user may not act, by ids: the check of
    /// [`Gatehouse::ensure_live`], which the hosted pages' browser sessions pass too.
    pub(crate) async fn ensure_session_live(
        &self,
        tenant: &str,
        session_id: Uuid,
        user_id: Uuid,
    ) -> DomainResult<()> {
        let services = &self.services;
        let cache = &services.context.live_sessions;
        let now = services.context.now();
        if cache.is_live(tenant, session_id, user_id, now) {
            metrics::counter!("gatehouse_live_session_cache_total", "outcome" => "hit")
                .increment(1);
            return Ok(());
        }
        metrics::counter!("gatehouse_live_session_cache_total", "outcome" => "miss").increment(1);
        let generation = cache.generation(user_id);
        let until =
            services
                .db
                .run(|tx| async move {
                    liveness::check_live(&tx, tenant, session_id, user_id, now).await
                })
                .await?;
        cache.insert(tenant, session_id, user_id, generation, now, until);
        Ok(())
    }

    /// Drains every actor.
    pub async fn shutdown(&self) {
        self.session_actors.shutdown().await;
        self.share_actors.shutdown().await;
        self.connected_account_actors.shutdown().await;
        self.tenant_actors.shutdown().await;
    }
}
