//! API keys: long-lived machine credentials of a tenant, a user or a team, each with a name,
//! scopes from the tenant's permission graph, an optional expiry and a last-used time.
//!
//! A key reads `gak_<key id, 32 hex>_<256 random bits, base64url>`. Only the SHA-256 of the
//! random part is stored; the whole key is shown once, at creation. The first
//! [`SHOWN_PREFIX_LEN`] characters are kept as the key's `prefix` to recognise it by. An
//! exchange (`authenticate`) reads the key from storage every time, so a revocation is in
//! force on every node as soon as its transaction commits: there is no cache to outlive it.

#[cfg(test)]
mod tests;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::crypto::{base64url, constant_time_eq, from_base64url, sha256};
use crate::domain::keyspace;
use crate::domain::outbox::EventType;
use crate::domain::permissions::{self, PermissionGraph};
use crate::domain::teams;
use crate::domain::tenants::validate_display_name;
use crate::domain::users;
use crate::error::{DomainError, DomainResult};

/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "gak_";
/// How many leading characters of a key are kept and shown to recognise it by.
pub const SHOWN_PREFIX_LEN: usize = 12;
/// Most scopes one key may carry.
pub const MAX_SCOPES: usize = 100;
/// `last_used_at` is written at most this often per key, so exchanges of one busy key do not
/// all write (and conflict on) the same record.
pub const LAST_USED_RESOLUTION_MILLIS: i64 = 60_000;
/// Hex characters of the key id inside a key.
const KEY_ID_LEN: usize = 32;
/// Base64url characters of the 32-byte secret inside a key.
const SECRET_LEN: usize = 43;

/// Whom a key acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOwner {
    /// The tenant itself (an app backend).
    Tenant,
    /// One user: the key can never carry more than the user holds.
    User(Uuid),
    /// One team.
    Team(Uuid),
}

impl KeyOwner {
    /// `tenant`, `user` or `team`: the key's principal kind, also the `principal_kind` claim.
    pub fn kind(self) -> &'static str {
        match self {
            KeyOwner::Tenant => "tenant",
            KeyOwner::User(_) => "user",
            KeyOwner::Team(_) => "team",
        }
    }

    /// The user or team id; empty for the tenant.
    pub fn id(self) -> String {
        match self {
            KeyOwner::Tenant => String::new(),
            KeyOwner::User(id) | KeyOwner::Team(id) => id.to_string(),
        }
    }
}

/// The stored key: never the secret, only its SHA-256.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Key id (also inside the key itself).
    pub key_id: Uuid,
    /// Whom it acts as.
    pub owner: KeyOwner,
    /// Human name.
    pub name: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    /// Permission ids of the tenant's graph, sorted and unique.
    pub scopes: Vec<String>,
    /// SHA-256 of the key's random part.
    #[serde(with = "serde_bytes")]
    pub secret_hash: Vec<u8>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Who created it (the audit actor).
    pub created_by: String,
    /// No exchange at or after this.
    pub expires_at: Option<Timestamp>,
    /// Set once revoked.
    pub revoked_at: Option<Timestamp>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key_id", &self.key_id)
            .field("owner", &self.owner)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    /// Whether an exchange at `now` is refused for time or revocation.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }

    /// `data` of `api_key.created` and `api_key.revoked`: never the secret or its hash.
    pub fn event_data(&self) -> Value {
        json!({
            "key_id": self.key_id,
            "name": self.name,
            "prefix": self.prefix,
            "owner_kind": self.owner.kind(),
            "owner_id": self.owner.id(),
            "scopes": self.scopes,
            "expires_at": self.expires_at.map(Timestamp::rfc3339),
        })
    }
}

/// A key with its last exchange, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyView {
    /// The key.
    pub record: KeyRecord,
    /// When it was last exchanged (to within [`LAST_USED_RESOLUTION_MILLIS`]).
    pub last_used_at: Option<Timestamp>,
}

/// What a new key asks for, validated by [`create`].
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Whom it acts as.
    pub owner: KeyOwner,
    /// Human name.
    pub name: String,
    /// Permission ids.
    pub scopes: Vec<String>,
    /// Optional expiry, in the future.
    pub expires_at: Option<Timestamp>,
}

/// A freshly created key and its secret (`Debug` leaves the secret out).
#[derive(Clone)]
pub struct CreatedKey {
    /// The stored key.
    pub record: KeyRecord,
    /// The whole key, shown once.
    pub secret: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Checks a key's scopes against `graph`: 1 to [`MAX_SCOPES`] known permission ids; returns
/// them sorted without duplicates.
pub fn validate_scopes(graph: &PermissionGraph, scopes: &[String]) -> DomainResult<Vec<String>> {
    if scopes.is_empty() || scopes.len() > MAX_SCOPES {
        return Err(DomainError::invalid(
            "scopes",
            format!("must list 1 to {MAX_SCOPES} permissions"),
        ));
    }
    if let Some(unknown) = scopes.iter().find(|scope| !graph.knows(scope)) {
        return Err(DomainError::invalid(
            "scopes",
            format!("unknown permission {unknown}"),
        ));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

fn validate_name(name: &str) -> DomainResult<()> {
    validate_display_name("name", name, true)
}

/// Splits a presented key into its id and secret; anything malformed is `API_KEY_INVALID`.
fn parse_key(key: &str) -> DomainResult<(Uuid, &str)> {
    let rest = key
        .strip_prefix(API_KEY_PREFIX)
        .ok_or(DomainError::ApiKeyInvalid)?;
    if rest.len() != KEY_ID_LEN + 1 + SECRET_LEN || !rest.is_char_boundary(KEY_ID_LEN) {
        return Err(DomainError::ApiKeyInvalid);
    }
    let (id, secret) = rest.split_at(KEY_ID_LEN);
    let secret = secret.strip_prefix('_').ok_or(DomainError::ApiKeyInvalid)?;
    let key_id = Uuid::try_parse(id).map_err(|_| DomainError::ApiKeyInvalid)?;
    if from_base64url(secret).is_none_or(|bytes| bytes.len() != 32) {
        return Err(DomainError::ApiKeyInvalid);
    }
    Ok((key_id, secret))
}

/// Checks that the owner exists and, for a user key, that the user holds every scope
/// tenant-wide now (a user key never carries more than its user).
async fn check_owner(
    tx: &Transaction,
    graph: &PermissionGraph,
    tenant: &str,
    owner: KeyOwner,
    scopes: &[String],
) -> DomainResult<()> {
    match owner {
        KeyOwner::Tenant => Ok(()),
        KeyOwner::Team(team_id) => teams::read_team(tx, tenant, team_id).await.map(drop),
        KeyOwner::User(user_id) => {
            users::read_user(tx, tenant, user_id).await?;
            let held = permissions::direct_grants(tx, tenant, None, user_id).await?;
            if scopes
                .iter()
                .all(|scope| permissions::holds(graph, &held, scope))
            {
                Ok(())
            } else {
                Err(DomainError::PermissionDenied(
                    "a user key cannot carry a permission the user does not hold",
                ))
            }
        }
    }
}

/// Creates a key; returns it with its secret (shown once). Audited as `api_key.create`,
/// `api_key.created` emitted, in `tx`.
pub async fn create(
    tx: &Transaction,
    context: &Context,
    graph: &PermissionGraph,
    tenant: &str,
    new_key: NewKey,
    origin: &AuditOrigin,
) -> DomainResult<CreatedKey> {
    validate_name(&new_key.name)?;
    let scopes = validate_scopes(graph, &new_key.scopes)?;
    let now = context.now();
    if new_key.expires_at.is_some_and(|expiry| expiry <= now) {
        return Err(DomainError::invalid("expires_at", "must be in the future"));
    }
    check_owner(tx, graph, tenant, new_key.owner, &scopes).await?;
    let key_id = uuid::Builder::from_random_bytes(context.random::<16>()).into_uuid();
    let random = base64url(&context.random::<32>());
    let secret = format!("{API_KEY_PREFIX}{}_{random}", key_id.simple());
    let record = KeyRecord {
        key_id,
        owner: new_key.owner,
        name: new_key.name,
        prefix: secret[..SHOWN_PREFIX_LEN].to_owned(),
        scopes,
        secret_hash: sha256(random.as_bytes()).to_vec(),
        created_at: now,
        created_by: origin.actor.clone(),
        expires_at: new_key.expires_at,
        revoked_at: None,
    };
    write(tx, tenant, &record)?;
    tx.set(
        &keyspace::owner_api_key(tenant, record.owner.kind(), &record.owner.id(), key_id),
        b"",
    )?;
    let data = record.event_data();
    let audit = origin.event(
        AuditAction::ApiKeyCreate,
        format!("api_key:{key_id}"),
        data.clone(),
    );
    record_change(
        tx,
        context,
        tenant,
        Some(audit),
        [(EventType::ApiKeyCreated, data)],
    )
    .await?;
    Ok(CreatedKey { record, secret })
}

fn write(tx: &Transaction, tenant: &str, record: &KeyRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::api_key(tenant, record.key_id),
        &codec::encode(record)?,
    )?;
    Ok(())
}

/// Reads a key.
pub async fn read(tx: &Transaction, tenant: &str, key_id: Uuid) -> DomainResult<KeyRecord> {
    let bytes = tx
        .get(&keyspace::api_key(tenant, key_id))
        .await?
        .ok_or(DomainError::ApiKeyNotFound)?;
    Ok(codec::decode(&bytes)?)
}

/// When a key was last exchanged.
pub async fn last_used(
    tx: &Transaction,
    tenant: &str,
    key_id: Uuid,
) -> DomainResult<Option<Timestamp>> {
    match tx
        .snapshot_get(&keyspace::api_key_used(tenant, key_id))
        .await?
    {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// A key with its last use.
pub async fn view(tx: &Transaction, tenant: &str, key_id: Uuid) -> DomainResult<KeyView> {
    let record = read(tx, tenant, key_id).await?;
    let last_used_at = last_used(tx, tenant, key_id).await?;
    Ok(KeyView {
        record,
        last_used_at,
    })
}

/// The keys of one owner, or of the whole tenant (`None`), oldest first.
pub async fn list(
    tx: &Transaction,
    tenant: &str,
    owner: Option<KeyOwner>,
) -> DomainResult<Vec<KeyView>> {
    let records = match owner {
        Some(owner) => {
            let mut records = Vec::new();
            for key_id in owner_key_ids(tx, tenant, owner).await? {
                records.push(read(tx, tenant, key_id).await?);
            }
            records
        }
        None => {
            let (begin, end) = keyspace::api_keys_subspace(tenant).range();
            tx.get_range(&begin, &end, RangeOptions::default())
                .await?
                .into_iter()
                .map(|(_, bytes)| codec::decode::<KeyRecord>(&bytes).map_err(DomainError::from))
                .collect::<DomainResult<Vec<_>>>()?
        }
    };
    let mut views = Vec::with_capacity(records.len());
    for record in records {
        let last_used_at = last_used(tx, tenant, record.key_id).await?;
        views.push(KeyView {
            record,
            last_used_at,
        });
    }
    views.sort_by_key(|view| (view.record.created_at, view.record.key_id));
    Ok(views)
}

async fn owner_key_ids(tx: &Transaction, tenant: &str, owner: KeyOwner) -> DomainResult<Vec<Uuid>> {
    let subspace = keyspace::owner_api_keys_subspace(tenant, owner.kind(), &owner.id());
    let (begin, end) = subspace.range();
    tx.get_range(&begin, &end, RangeOptions::default())
        .await?
        .into_iter()
        .map(|(key, _)| {
            subspace
                .unpack::<(Uuid,)>(&key)
                .map(|(key_id,)| key_id)
                .map_err(|error| DomainError::Internal(format!("api key index: {error}")))
        })
        .collect()
}

/// Revokes a key; revoking a revoked key changes nothing and records nothing. Audited as
/// `api_key.revoke`, `api_key.revoked` emitted, in `tx`.
pub async fn revoke(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    key_id: Uuid,
    origin: &AuditOrigin,
) -> DomainResult<KeyRecord> {
    let mut record = read(tx, tenant, key_id).await?;
    if record.revoked_at.is_some() {
        return Ok(record);
    }
    record.revoked_at = Some(context.now());
    write(tx, tenant, &record)?;
    let data = record.event_data();
    let audit = origin.event(
        AuditAction::ApiKeyRevoke,
        format!("api_key:{key_id}"),
        data.clone(),
    );
    record_change(
        tx,
        context,
        tenant,
        Some(audit),
        [(EventType::ApiKeyRevoked, data)],
    )
    .await?;
    Ok(record)
}

/// Deletes every key of a user or team that is being deleted, in its transaction.
pub async fn delete_owner_keys(
    tx: &Transaction,
    tenant: &str,
    owner: KeyOwner,
) -> DomainResult<()> {
    for key_id in owner_key_ids(tx, tenant, owner).await? {
        tx.clear(&keyspace::api_key(tenant, key_id))?;
        tx.clear(&keyspace::api_key_used(tenant, key_id))?;
    }
    let (begin, end) = keyspace::owner_api_keys_subspace(tenant, owner.kind(), &owner.id()).range();
    tx.clear_range(&begin, &end)?;
    Ok(())
}

/// The live key `presented` names, its secret compared in constant time. Unknown, malformed,
/// wrong, expired and revoked keys are all `API_KEY_INVALID`. Records the use at most once a
/// [`LAST_USED_RESOLUTION_MILLIS`] per key, with a snapshot read and a blind write so that
/// concurrent exchanges of one key never conflict.
pub async fn authenticate(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    presented: &str,
) -> DomainResult<KeyRecord> {
    let (key_id, secret) = parse_key(presented)?;
    let presented_hash = sha256(secret.as_bytes());
    let record = match read(tx, tenant, key_id).await {
        Ok(record) => record,
        Err(DomainError::ApiKeyNotFound) => {
            // The same work as for a known key, so an unknown id takes no less time.
            std::hint::black_box(constant_time_eq(&[0; 32], &presented_hash));
            return Err(DomainError::ApiKeyInvalid);
        }
        Err(error) => return Err(error),
    };
    let now = context.now();
    if !constant_time_eq(&record.secret_hash, &presented_hash) || !record.is_live(now) {
        return Err(DomainError::ApiKeyInvalid);
    }
    let stale = last_used(tx, tenant, key_id)
        .await?
        .is_none_or(|at| now.millis_since(at) >= LAST_USED_RESOLUTION_MILLIS);
    if stale {
        tx.set(
            &keyspace::api_key_used(tenant, key_id),
            &codec::encode(&now)?,
        )?;
    }
    Ok(record)
}

/// The `perms` of a machine token for `record`: its scopes still in the graph, and for a user
/// key only those the user still holds tenant-wide. A key whose user may no longer sign in
/// (suspended, banned, deleted) or whose team is gone is `API_KEY_INVALID`.
pub async fn token_permissions(
    tx: &Transaction,
    graph: &PermissionGraph,
    tenant: &str,
    record: &KeyRecord,
) -> DomainResult<Vec<String>> {
    let known = record.scopes.iter().filter(|scope| graph.knows(scope));
    match record.owner {
        KeyOwner::Tenant => Ok(known.cloned().collect()),
        KeyOwner::Team(team_id) => match teams::read_team(tx, tenant, team_id).await {
            Ok(_) => Ok(known.cloned().collect()),
            Err(DomainError::TeamNotFound) => Err(DomainError::ApiKeyInvalid),
            Err(error) => Err(error),
        },
        KeyOwner::User(user_id) => {
            let user = match users::read_user(tx, tenant, user_id).await {
                Ok(user) => user,
                Err(DomainError::UserNotFound) => return Err(DomainError::ApiKeyInvalid),
                Err(error) => return Err(error),
            };
            user.ensure_may_sign_in()
                .map_err(|_| DomainError::ApiKeyInvalid)?;
            let held = permissions::direct_grants(tx, tenant, None, user_id).await?;
            let effective = permissions::effective(graph, &held);
            Ok(known
                .filter(|scope| effective.contains(*scope))
                .cloned()
                .collect())
        }
    }
}
