//! Tenants: records, API keys, settings, signing-key rotation, and the node-local cache of
//! decoded tenant state that every request reads.

pub mod anonymous;
pub mod auth_settings;
pub mod changes;
pub mod redirects;
pub mod settings;

pub use settings::{EmailSettingsChanges, SettingsChanges, TenantEmailSettings, TenantSettings};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};

use crate::context::{Context, Timestamp};
use crate::domain::crypto::{MasterKey, constant_time_eq, random_token, sha256};
use crate::domain::keyspace;
use crate::domain::permissions::{self, PermissionGraph};
use crate::domain::signing::{SigningKeyRecord, TenantKeys, generate_signing_key};
use crate::error::{DomainError, DomainResult};

/// Prefix of publishable client keys.
pub const CLIENT_KEY_PREFIX: &str = "pck_";
/// Prefix of secret server keys.
pub const SERVER_KEY_PREFIX: &str = "ssk_";

/// Client keys are public; server keys are secret and kept only as a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiKeyKind {
    /// Publishable key shipped inside apps.
    Client,
    /// Secret key for the app's backend.
    Server,
}

/// An API key of a tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Stable id of the key.
    pub key_id: String,
    /// Client or server.
    pub kind: ApiKeyKind,
    /// When it was made.
    pub created_at: Timestamp,
    /// The full key for client keys; the first characters for server keys.
    pub display: String,
    /// SHA-256 of the key.
    #[serde(with = "serde_bytes")]
    pub key_hash: Vec<u8>,
}

/// The stored tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Tenant id, as used in headers, keys and URLs.
    pub tenant_id: String,
    /// Human name.
    pub display_name: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Bumped on every change; caches compare it.
    pub version: u64,
    /// Settings.
    pub settings: TenantSettings,
    /// Signing keys, oldest first; the newest unretired one signs.
    pub signing_keys: Vec<SigningKeyRecord>,
    /// API keys.
    pub api_keys: Vec<ApiKeyRecord>,
    /// Keys that sign only anonymous users' tokens, oldest first (empty for tenants from
    /// before anonymous users, until they turn them on).
    #[serde(default)]
    pub anonymous_signing_keys: Vec<SigningKeyRecord>,
}

/// A newly created tenant with the secrets shown only once.
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedTenant {
    /// The stored record.
    pub record: TenantRecord,
    /// The publishable client key.
    pub publishable_client_key: String,
    /// The secret server key; not recoverable later.
    pub secret_server_key: String,
}

impl std::fmt::Debug for CreatedTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTenant")
            .field("tenant_id", &self.record.tenant_id)
            .finish_non_exhaustive()
    }
}

/// Checks a requested tenant id: 3..=63 of `[a-z0-9-]`, starting with a letter.
pub fn validate_tenant_id(tenant_id: &str) -> DomainResult<()> {
    let valid = (3..=63).contains(&tenant_id.len())
        && tenant_id.starts_with(|c: char| c.is_ascii_lowercase())
        && !tenant_id.ends_with('-')
        && tenant_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "tenant_id",
            "must be 3 to 63 characters of a-z, 0-9 and -, starting with a letter",
        ))
    }
}

/// Checks a display name: 1..=200 characters, none of them control, invisible or bidi
/// formatting characters ([`crate::domain::text::is_hidden`]).
pub fn validate_display_name(field: &'static str, name: &str, required: bool) -> DomainResult<()> {
    if required && name.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > 200 {
        return Err(DomainError::invalid(
            field,
            "must be at most 200 characters",
        ));
    }
    crate::domain::text::refuse_hidden(field, name)
}

fn new_api_key(context: &Context, kind: ApiKeyKind) -> (ApiKeyRecord, String) {
    let prefix = match kind {
        ApiKeyKind::Client => CLIENT_KEY_PREFIX,
        ApiKeyKind::Server => SERVER_KEY_PREFIX,
    };
    let key = random_token(context, prefix);
    let display = match kind {
        ApiKeyKind::Client => key.clone(),
        ApiKeyKind::Server => format!("{}…", &key[..prefix.len() + 6]),
    };
    let record = ApiKeyRecord {
        key_id: hex::encode(context.random::<8>()),
        kind,
        created_at: context.now(),
        display,
        key_hash: sha256(key.as_bytes()).to_vec(),
    };
    (record, key)
}

/// Creates a tenant with a signing key, a client key and a server key.
pub async fn create_tenant(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant_id: &str,
    display_name: &str,
) -> DomainResult<CreatedTenant> {
    if tx.get(&keyspace::tenant_config(tenant_id)).await?.is_some() {
        return Err(DomainError::TenantAlreadyExists);
    }
    let (client_key, publishable_client_key) = new_api_key(context, ApiKeyKind::Client);
    let (server_key, secret_server_key) = new_api_key(context, ApiKeyKind::Server);
    let record = TenantRecord {
        tenant_id: tenant_id.to_owned(),
        display_name: display_name.to_owned(),
        created_at: context.now(),
        version: 1,
        settings: TenantSettings::default(),
        signing_keys: vec![generate_signing_key(context, master_key, tenant_id)?],
        api_keys: vec![client_key, server_key],
        anonymous_signing_keys: vec![crate::domain::signing::generate_anonymous_signing_key(
            context, master_key, tenant_id,
        )?],
    };
    write_tenant(tx, &record)?;
    tx.set(&keyspace::tenant_index(tenant_id), b"")?;
    for definition in permissions::default_definitions() {
        permissions::write_definition(tx, tenant_id, &definition)?;
    }
    Ok(CreatedTenant {
        record,
        publishable_client_key,
        secret_server_key,
    })
}

pub(crate) fn write_tenant(tx: &Transaction, record: &TenantRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::tenant_config(&record.tenant_id),
        &codec::encode(record)?,
    )?;
    // Every node polls the epoch and drops its cached tenants when it moves.
    tx.atomic_add(&keyspace::tenant_epoch(), 1)?;
    Ok(())
}

/// Reads a tenant record.
pub async fn read_tenant(tx: &Transaction, tenant_id: &str) -> DomainResult<TenantRecord> {
    let bytes = tx
        .get(&keyspace::tenant_config(tenant_id))
        .await?
        .ok_or(DomainError::TenantNotFound)?;
    Ok(codec::decode(&bytes)?)
}

/// Lists tenants in id order after `after`.
pub async fn list_tenants(
    tx: &Transaction,
    after: Option<&str>,
    limit: usize,
) -> DomainResult<(Vec<TenantRecord>, bool)> {
    let subspace = keyspace::tenant_index_subspace();
    let (mut begin, end) = subspace.range();
    if let Some(after) = after {
        begin = keyspace::tenant_index(after);
        begin.push(0xff);
    }
    let entries = tx
        .get_range(
            &begin,
            &end,
            RangeOptions {
                limit: Some(limit + 1),
                snapshot: true,
                ..RangeOptions::default()
            },
        )
        .await?;
    let more = entries.len() > limit;
    let mut tenants = Vec::new();
    for (key, _) in entries.into_iter().take(limit) {
        let (tenant_id,): (String,) = subspace
            .unpack(&key)
            .map_err(|error| DomainError::Internal(format!("tenant index key: {error}")))?;
        tenants.push(read_tenant(tx, &tenant_id).await?);
    }
    Ok((tenants, more))
}

/// Retires the active signing key and creates a new one. Keys retired longer ago than the
/// longest token lifetime are dropped from the record.
pub async fn rotate_signing_key(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant_id: &str,
) -> DomainResult<(TenantRecord, SigningKeyRecord)> {
    let mut record = read_tenant(tx, tenant_id).await?;
    let now = context.now();
    let keep_after = Duration::from_secs(u64::from(record.settings.access_token_ttl_seconds) * 2);
    record.signing_keys.retain(|key| {
        key.retired_at
            .is_none_or(|retired| retired.plus(keep_after) > now)
    });
    for key in &mut record.signing_keys {
        key.retired_at.get_or_insert(now);
    }
    let new_key = generate_signing_key(context, master_key, tenant_id)?;
    record.signing_keys.push(new_key.clone());
    anonymous::rotate_anonymous_key(context, master_key, &mut record, keep_after)?;
    record.version += 1;
    write_tenant(tx, &record)?;
    Ok((record, new_key))
}

/// A tenant as every request needs it: record plus decoded signing keys.
#[derive(Debug)]
pub struct TenantState {
    /// The stored record this state was built from.
    pub record: TenantRecord,
    /// Decoded keys.
    pub keys: TenantKeys,
    /// The permission graph.
    pub permissions: PermissionGraph,
    /// `<public_url>/t/<tenant>`.
    pub issuer: String,
}

impl TenantState {
    /// Builds the decoded state from a record.
    pub fn new(
        record: TenantRecord,
        permissions: PermissionGraph,
        master_key: &MasterKey,
        public_url: &str,
    ) -> DomainResult<TenantState> {
        let keys = TenantKeys::load(master_key, &record.tenant_id, &record.signing_keys)?
            .with_anonymous(
                master_key,
                &record.tenant_id,
                &record.anonymous_signing_keys,
            )?;
        let issuer = format!(
            "{}/t/{}",
            public_url.trim_end_matches('/'),
            record.tenant_id
        );
        Ok(TenantState {
            record,
            keys,
            permissions,
            issuer,
        })
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> &str {
        &self.record.tenant_id
    }

    /// Whether `key` is one of the tenant's keys of `kind` (constant time per key).
    pub fn has_api_key(&self, kind: ApiKeyKind, key: &str) -> bool {
        let presented = sha256(key.as_bytes());
        self.record
            .api_keys
            .iter()
            .filter(|record| record.kind == kind)
            .fold(false, |found, record| {
                found | constant_time_eq(&record.key_hash, &presented)
            })
    }
}

/// Node-local cache of decoded tenant state, refreshed from storage on miss or change.
#[derive(Debug, Default)]
pub struct TenantCache {
    entries: RwLock<HashMap<String, Arc<TenantState>>>,
}

impl TenantCache {
    /// The cached state, if present.
    pub fn get(&self, tenant_id: &str) -> Option<Arc<TenantState>> {
        self.entries
            .read()
            .ok()
            .and_then(|entries| entries.get(tenant_id).cloned())
    }

    /// Stores `state` unless a newer version is already cached.
    pub fn put(&self, state: Arc<TenantState>) -> Arc<TenantState> {
        let Ok(mut entries) = self.entries.write() else {
            return state;
        };
        match entries.get(state.tenant_id()) {
            Some(existing) if existing.record.version > state.record.version => existing.clone(),
            _ => {
                entries.insert(state.tenant_id().to_owned(), state.clone());
                state
            }
        }
    }

    /// Drops a tenant so the next read reloads it.
    pub fn invalidate(&self, tenant_id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(tenant_id);
        }
    }

    /// Drops every cached tenant.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use gatehouse_storage::Database;

    #[test]
    fn tenant_ids_are_validated() {
        for good in ["acme", "acme-prod", "a12"] {
            assert!(validate_tenant_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ab",
            "Acme",
            "1acme",
            "acme_",
            "acme-",
            &"a".repeat(64),
            "ac me",
        ] {
            assert!(validate_tenant_id(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn created_tenant_accepts_its_keys_only() {
        let db = Database::memory();
        let context = Context::system();
        let master = MasterKey::from_bytes(&[1; 32]);
        let tx = db.create_transaction().await.unwrap();
        let created = create_tenant(&tx, &context, &master, "acme", "Acme")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let state = TenantState::new(
            created.record.clone(),
            PermissionGraph::default(),
            &master,
            "http://x",
        )
        .unwrap();
        assert!(state.has_api_key(ApiKeyKind::Client, &created.publishable_client_key));
        assert!(state.has_api_key(ApiKeyKind::Server, &created.secret_server_key));
        assert!(!state.has_api_key(ApiKeyKind::Server, &created.publishable_client_key));
        assert!(!state.has_api_key(ApiKeyKind::Client, "pck_wrong"));
        assert_eq!(state.issuer, "http://x/t/acme");
        let stored = serde_json::to_string(&format!("{:?}", created.record)).unwrap();
        assert!(
            !stored.contains(&created.secret_server_key),
            "server key stored in clear"
        );

        let tx = db.create_transaction().await.unwrap();
        let again = create_tenant(&tx, &context, &master, "acme", "Acme").await;
        assert!(matches!(again, Err(DomainError::TenantAlreadyExists)));
    }

    #[tokio::test]
    async fn rotation_keeps_the_previous_key_published() {
        let db = Database::memory();
        let context = Context::system();
        let master = MasterKey::from_bytes(&[1; 32]);
        let tx = db.create_transaction().await.unwrap();
        let created = create_tenant(&tx, &context, &master, "acme", "Acme")
            .await
            .unwrap();
        let (record, new_key) = rotate_signing_key(&tx, &context, &master, "acme")
            .await
            .unwrap();
        assert_eq!(record.signing_keys.len(), 2);
        assert_eq!(record.version, created.record.version + 1);
        // The anonymous users' key rotates with it.
        assert_eq!(record.anonymous_signing_keys.len(), 2);
        let new_anonymous = record.anonymous_signing_keys[1].kid.clone();
        let state =
            TenantState::new(record, PermissionGraph::default(), &master, "http://x").unwrap();
        assert_eq!(state.keys.active_kid(), new_key.kid);
        assert_eq!(state.keys.anonymous_kid(), Some(new_anonymous.as_str()));
        assert_eq!(state.keys.jwks().keys.len(), 2);
        assert_eq!(state.keys.jwks_with_anonymous().keys.len(), 4);
    }
}
