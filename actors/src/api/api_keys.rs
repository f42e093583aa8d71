//! API keys through the domain facade, and the exchange of a key for a short-lived machine
//! token.
//!
//! Who may do what: operators and the tenant's server key manage every key of the tenant; a
//! signed-in user manages their own user keys (whose scopes they must hold tenant-wide now)
//! and, with `$manage_api_keys` in a team, that team's keys (whose scopes they must hold in
//! the team). Every check runs in the operation's own transaction. A key another caller may
//! not see is `API_KEY_NOT_FOUND`.
//!
//! The machine token of [`Gatehouse::exchange_client_credentials`] is a JWT signed with the
//! tenant's key: `sub` is the user id, the team id or the tenant id, `principal_kind` says
//! which (`user`, `team`, `tenant`), `api_key_id` names the key, `role` is `service`, `sid` is
//! the key id, and `perms` are the key's scopes (for a user key, only those the user still
//! holds). It lives five minutes, or the tenant's access-token lifetime if that is shorter.
//! Gatehouse's own API refuses it as a user's token (`MACHINE_TOKEN_NOT_ACCEPTED`).

use std::time::Duration;

use gatehouse_storage::Transaction;

use crate::access::Caller;
use crate::api::policy::{Policy, check_team_permission};
use crate::context::Timestamp;
use crate::domain::api_keys::{self, CreatedKey, KeyOwner, KeyRecord, KeyView, NewKey};
use crate::domain::audit::AuditOrigin;
use crate::domain::permissions::{self, PermissionGraph, system};
use crate::domain::signing::AccessClaims;
use crate::domain::tenants::TenantState;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::services::AccessToken;

/// Longest life of a machine token.
pub const MACHINE_TOKEN_TTL: Duration = Duration::from_secs(300);
/// `role` of a machine token.
pub const MACHINE_ROLE: &str = "service";

/// Whose keys a request names, as the request names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerSpec {
    /// Not named: the tenant (create) or every key (list) for servers and operators; the
    /// signed-in user for a client.
    Unset,
    /// The tenant's own keys.
    Tenant,
    /// A user id.
    User(String),
    /// A team id.
    Team(String),
}

/// A requested key, validated by [`Gatehouse::create_api_key`].
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Whom it acts as.
    pub owner: OwnerSpec,
    /// Human name.
    pub name: String,
    /// Permission ids of the tenant's graph.
    pub scopes: Vec<String>,
    /// Expiry as a time.
    pub expires_at: Option<Timestamp>,
    /// Expiry as seconds from now.
    pub expires_in_seconds: Option<u64>,
}

/// A machine token and what it says.
#[derive(Debug, Clone)]
pub struct MachineToken {
    /// The signed JWT and its expiry.
    pub token: AccessToken,
    /// `sub`.
    pub subject: String,
    /// `principal_kind`.
    pub principal_kind: &'static str,
    /// `perms`.
    pub permissions: Vec<String>,
    /// Seconds from issue to expiry.
    pub lifetime_seconds: u64,
}

/// Resolves `spec` for `caller`: `None` means every key of the tenant.
fn resolve_owner(
    caller: &Caller,
    spec: &OwnerSpec,
    listing: bool,
) -> DomainResult<Option<KeyOwner>> {
    match (caller.acting_user()?, spec) {
        (None, OwnerSpec::Unset) if listing => Ok(None),
        (None, OwnerSpec::Unset | OwnerSpec::Tenant) => Ok(Some(KeyOwner::Tenant)),
        (_, OwnerSpec::Team(team_id)) => {
            Ok(Some(KeyOwner::Team(super::parse_id("team_id", team_id)?)))
        }
        (None, OwnerSpec::User(user_id)) => {
            Ok(Some(KeyOwner::User(super::parse_id("user_id", user_id)?)))
        }
        (Some(me), OwnerSpec::Unset) => Ok(Some(KeyOwner::User(me))),
        (Some(me), OwnerSpec::User(user_id)) if *user_id == me.to_string() => {
            Ok(Some(KeyOwner::User(me)))
        }
        (Some(_), OwnerSpec::User(_)) => Err(DomainError::PermissionDenied(
            "a user manages only their own keys",
        )),
        (Some(_), OwnerSpec::Tenant) => Err(DomainError::PermissionDenied(
            "tenant keys need a server key",
        )),
    }
}

/// Whether a client may manage keys of `owner`: its own user keys, and team keys where it
/// holds `$manage_api_keys`. Trusted callers may manage every key of their tenant.
async fn check_manager(
    tx: &Transaction,
    tenant: &TenantState,
    caller: &Caller,
    owner: KeyOwner,
) -> DomainResult<()> {
    let Some(me) = caller.acting_user()? else {
        return Ok(());
    };
    match owner {
        KeyOwner::User(user_id) if user_id == me => Ok(()),
        KeyOwner::Team(team_id) => {
            check_team_permission(tx, tenant, caller, team_id, system::MANAGE_API_KEYS).await
        }
        _ => Err(DomainError::PermissionDenied(
            "not a key this caller manages",
        )),
    }
}

/// A client creating a team key must hold every scope in the team itself.
async fn check_team_scopes(
    tx: &Transaction,
    tenant: &TenantState,
    graph: &PermissionGraph,
    caller: &Caller,
    owner: KeyOwner,
    scopes: &[String],
) -> DomainResult<()> {
    let (Some(me), KeyOwner::Team(team_id)) = (caller.acting_user()?, owner) else {
        return Ok(());
    };
    let held = permissions::direct_grants(tx, tenant.tenant_id(), Some(team_id), me).await?;
    if scopes
        .iter()
        .all(|scope| permissions::holds(graph, &held, scope))
    {
        Ok(())
    } else {
        Err(DomainError::PermissionDenied(
            "a team key cannot carry a permission the caller does not hold in the team",
        ))
    }
}

impl Gatehouse {
    /// Creates a key; the secret is in the answer and nowhere else, ever. A client creating a
    /// key needs a recent sign-in (the tenant's step-up window).
    pub async fn create_api_key(&self, caller: &Caller, spec: KeySpec) -> DomainResult<CreatedKey> {
        let tenant = caller.tenant()?.clone();
        let now = self.services.context.now();
        if !caller.is_trusted() {
            caller.require_recent_user(now, false)?;
        }
        let owner = resolve_owner(caller, &spec.owner, false)?
            .ok_or_else(|| DomainError::Internal("create names no owner".to_owned()))?;
        let expires_at = match (spec.expires_at, spec.expires_in_seconds) {
            (Some(_), Some(_)) => {
                return Err(DomainError::invalid(
                    "expires_in_seconds",
                    "give expires_at or expires_in_seconds, not both",
                ));
            }
            (Some(at), None) => Some(at),
            (None, Some(0)) => {
                return Err(DomainError::invalid(
                    "expires_in_seconds",
                    "must be at least 1",
                ));
            }
            (None, Some(seconds)) => Some(now.plus(Duration::from_secs(seconds))),
            (None, None) => None,
        };
        let new_key = NewKey {
            owner,
            name: spec.name,
            scopes: spec.scopes,
            expires_at,
        };
        let (context, state, origin, new_key) = (
            &self.services.context,
            &tenant,
            &AuditOrigin::of(caller),
            &new_key,
        );
        self.transact(&tenant, caller, Policy::Open, |tx| async move {
            check_manager(&tx, state, caller, owner).await?;
            // Scopes are checked against the graph as stored, not this node's cached copy.
            let graph =
                PermissionGraph::new(permissions::read_definitions(&tx, state.tenant_id()).await?)?;
            check_team_scopes(&tx, state, &graph, caller, owner, &new_key.scopes).await?;
            api_keys::create(
                &tx,
                context,
                &graph,
                state.tenant_id(),
                new_key.clone(),
                origin,
            )
            .await
        })
        .await
    }

    /// Keys of one owner, or every key of the tenant for a trusted caller naming none.
    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        owner: OwnerSpec,
    ) -> DomainResult<Vec<KeyView>> {
        let tenant = caller.tenant()?.clone();
        let owner = resolve_owner(caller, &owner, true)?;
        let state = &tenant;
        self.transact(&tenant, caller, Policy::Open, |tx| async move {
            if let Some(owner) = owner {
                check_manager(&tx, state, caller, owner).await?;
            }
            api_keys::list(&tx, state.tenant_id(), owner).await
        })
        .await
    }

    /// One key, if the caller manages it.
    pub async fn get_api_key(&self, caller: &Caller, key_id: &str) -> DomainResult<KeyView> {
        let tenant = caller.tenant()?.clone();
        let key_id = super::parse_id("key_id", key_id)?;
        let state = &tenant;
        self.transact(&tenant, caller, Policy::Open, |tx| async move {
            let view = api_keys::view(&tx, state.tenant_id(), key_id).await?;
            visible(&tx, state, caller, &view.record).await?;
            Ok(view)
        })
        .await
    }

    /// Revokes a key; refused by every node's exchange once this returns.
    pub async fn revoke_api_key(&self, caller: &Caller, key_id: &str) -> DomainResult<KeyRecord> {
        let tenant = caller.tenant()?.clone();
        let key_id = super::parse_id("key_id", key_id)?;
        let (context, state, origin) = (&self.services.context, &tenant, &AuditOrigin::of(caller));
        self.transact(&tenant, caller, Policy::Open, |tx| async move {
            let record = api_keys::read(&tx, state.tenant_id(), key_id).await?;
            visible(&tx, state, caller, &record).await?;
            api_keys::revoke(&tx, context, state.tenant_id(), key_id, origin).await
        })
        .await
    }

    /// Exchanges an API key of the caller's tenant for a machine token. Any caller of the
    /// tenant may present one (the key is the credential); unknown, expired and revoked keys
    /// are all `API_KEY_INVALID`.
    pub async fn exchange_client_credentials(
        &self,
        caller: &Caller,
        key: &str,
    ) -> DomainResult<MachineToken> {
        let tenant = caller.tenant()?.clone();
        if key.is_empty() {
            return Err(DomainError::invalid("api_key", "must not be empty"));
        }
        let (context, state) = (&self.services.context, &tenant);
        let (record, permissions) = self
            .services
            .db
            .run(|tx| async move {
                let tenant_id = state.tenant_id();
                let record = api_keys::authenticate(&tx, context, tenant_id, key).await?;
                // The graph as stored now, not this node's cached copy: a permission defined
                // or changed on another node counts at once.
                let graph =
                    PermissionGraph::new(permissions::read_definitions(&tx, tenant_id).await?)?;
                let permissions =
                    api_keys::token_permissions(&tx, &graph, tenant_id, &record).await?;
                Ok::<_, DomainError>((record, permissions))
            })
            .await?;
        let now = context.now();
        let ttl = MACHINE_TOKEN_TTL.min(Duration::from_secs(u64::from(
            tenant.record.settings.access_token_ttl_seconds,
        )));
        let expires_at = now.plus(ttl);
        let subject = match record.owner {
            KeyOwner::Tenant => tenant.tenant_id().to_owned(),
            owner => owner.id(),
        };
        let claims = AccessClaims {
            sub: subject.clone(),
            iss: tenant.issuer.clone(),
            aud: tenant.tenant_id().to_owned(),
            exp: expires_at.as_unix_seconds(),
            iat: now.as_unix_seconds(),
            sid: record.key_id.to_string(),
            tid: tenant.tenant_id().to_owned(),
            role: MACHINE_ROLE.to_owned(),
            is_restricted: false,
            restricted_reason: None,
            amr: Vec::new(),
            auth_time: now.as_unix_seconds(),
            perms: Some(permissions.clone()),
            principal_kind: Some(record.owner.kind().to_owned()),
            api_key_id: Some(record.key_id.to_string()),
            act: None,
        };
        Ok(MachineToken {
            token: AccessToken {
                token: tenant.keys.sign(&claims)?,
                expires_at,
            },
            subject,
            principal_kind: record.owner.kind(),
            permissions,
            lifetime_seconds: ttl.as_secs(),
        })
    }
}

/// A key the caller does not manage is reported as not found.
async fn visible(
    tx: &Transaction,
    tenant: &TenantState,
    caller: &Caller,
    record: &KeyRecord,
) -> DomainResult<()> {
    match check_manager(tx, tenant, caller, record.owner).await {
        Err(DomainError::PermissionDenied(_) | DomainError::TeamNotFound) => {
            Err(DomainError::ApiKeyNotFound)
        }
        other => other,
    }
}
