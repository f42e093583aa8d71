//! A tenant's anonymous users: the toggle, their idle lifetime, and the second signing key
//! that signs only their tokens (kept out of the standard JWKS, so an app that did not opt
//! in rejects anonymous tokens; `?include_anonymous=true` publishes it).

use std::time::Duration;

use gatehouse_storage::Transaction;
use serde::{Deserialize, Serialize};

use super::settings::bounded;
use super::{TenantRecord, write_tenant};
use crate::context::Context;
use crate::domain::crypto::MasterKey;
use crate::domain::signing::generate_anonymous_signing_key;
use crate::error::DomainResult;

/// Whether a tenant has anonymous users and how long an idle one lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantAnonymousSettings {
    /// Whether `Auth.SignInAnonymously` is open (off by default).
    pub enabled: bool,
    /// An anonymous user idle longer than this can no longer refresh and is deleted.
    pub idle_ttl_seconds: u32,
}

/// The idle lifetime of anonymous users unless the tenant sets one.
pub const DEFAULT_ANONYMOUS_IDLE_TTL_SECONDS: u32 = 30 * 24 * 3600;

impl Default for TenantAnonymousSettings {
    fn default() -> Self {
        TenantAnonymousSettings {
            enabled: false,
            idle_ttl_seconds: DEFAULT_ANONYMOUS_IDLE_TTL_SECONDS,
        }
    }
}

/// Requested changes to the anonymous users' settings; `None` leaves a setting alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AnonymousSettingsChanges {
    /// Open or close anonymous sign-in.
    pub enabled: Option<bool>,
    /// Idle lifetime (1 hour..=1 year).
    pub idle_ttl_seconds: Option<u32>,
}

impl AnonymousSettingsChanges {
    /// Validates the changes and applies them.
    pub fn apply(&self, settings: &mut TenantAnonymousSettings) -> DomainResult<()> {
        bounded(
            "anonymous.idle_ttl_seconds",
            self.idle_ttl_seconds,
            3600..=365 * 24 * 3600,
        )?;
        if let Some(enabled) = self.enabled {
            settings.enabled = enabled;
        }
        if let Some(value) = self.idle_ttl_seconds {
            settings.idle_ttl_seconds = value;
        }
        Ok(())
    }
}

/// Gives a tenant from before anonymous users its anonymous signing key once they are turned
/// on; returns the record as stored.
pub fn ensure_anonymous_key(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    mut record: TenantRecord,
) -> DomainResult<TenantRecord> {
    if !record.settings.anonymous.enabled || !record.anonymous_signing_keys.is_empty() {
        return Ok(record);
    }
    let key = generate_anonymous_signing_key(context, master_key, &record.tenant_id)?;
    record.anonymous_signing_keys.push(key);
    record.version += 1;
    write_tenant(tx, &record)?;
    Ok(record)
}

/// Rotates the anonymous users' key along with the tenant's key (when it has one), dropping
/// keys retired longer ago than `keep_after`.
pub(super) fn rotate_anonymous_key(
    context: &Context,
    master_key: &MasterKey,
    record: &mut TenantRecord,
    keep_after: Duration,
) -> DomainResult<()> {
    if record.anonymous_signing_keys.is_empty() {
        return Ok(());
    }
    let now = context.now();
    record.anonymous_signing_keys.retain(|key| {
        key.retired_at
            .is_none_or(|retired| retired.plus(keep_after) > now)
    });
    for key in &mut record.anonymous_signing_keys {
        key.retired_at.get_or_insert(now);
    }
    let key = generate_anonymous_signing_key(context, master_key, &record.tenant_id)?;
    record.anonymous_signing_keys.push(key);
    Ok(())
}
