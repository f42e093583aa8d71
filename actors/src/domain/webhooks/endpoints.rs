//! Webhook endpoints: records with their sealed `whsec_` secrets, and the transaction
//! functions that create, read, list, change, delete and re-key them.

use std::time::Duration;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::signing::WebhookSecret;
use super::{MAX_ENDPOINTS_PER_TENANT, filter_matches};
use crate::context::{Context, Timestamp};
use crate::domain::crypto::MasterKey;
use crate::domain::keyspace;
use crate::domain::tenants::validate_display_name;
use crate::error::{DomainError, DomainResult};

/// How long the previous secret keeps signing after a rotation.
pub const PREVIOUS_SECRET_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A secret that still signs for a while after a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// The secret, sealed under the master key.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
    /// When it stops signing.
    pub expires_at: Timestamp,
}

/// A stored webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Endpoint id.
    pub endpoint_id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Free text for operators.
    pub description: String,
    /// Event types (or `prefix.*`) it receives; empty means every event.
    pub event_types: Vec<String>,
    /// Whether deliveries are sent.
    pub enabled: bool,
    /// Why it was disabled: `gone` (the target answered 410) or `manual`; empty if enabled.
    pub disabled_reason: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When the current secret was made.
    pub secret_created_at: Timestamp,
    /// Bumped on every change.
    pub version: u64,
    /// The current secret, sealed under the master key bound to tenant and endpoint.
    #[serde(with = "serde_bytes")]
    pub sealed_secret: Vec<u8>,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<PreviousSecret>,
}

impl WebhookEndpoint {
    /// Whether this endpoint should receive an event of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && filter_matches(&self.event_types, event_type)
    }
}

/// An endpoint with its secret in clear, returned only by creation and rotation.
#[derive(Clone)]
pub struct CreatedEndpoint {
    /// The stored endpoint.
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`; shown once.
    pub secret: String,
}

impl std::fmt::Debug for CreatedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEndpoint")
            .field("endpoint_id", &self.endpoint.endpoint_id)
            .finish_non_exhaustive()
    }
}

/// A validated new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Checked URL.
    pub url: String,
    /// Description.
    pub description: String,
    /// Checked filter.
    pub event_types: Vec<String>,
}

/// Validated changes; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    /// New URL (already checked).
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New filter (already checked).
    pub event_types: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Checks an endpoint description.
pub fn validate_description(description: &str) -> DomainResult<()> {
    validate_display_name("description", description, false)
}

fn seal_label(tenant: &str, endpoint_id: Uuid) -> Vec<u8> {
    format!("gatehouse/webhook-secret/{tenant}/{endpoint_id}").into_bytes()
}

/// Creates an endpoint with a fresh secret.
pub async fn create_endpoint(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    new_endpoint: NewEndpoint,
) -> DomainResult<CreatedEndpoint> {
    let (begin, end) = keyspace::webhook_endpoints_subspace(tenant).range();
    let existing = tx
        .get_range(
            &begin,
            &end,
            RangeOptions {
                limit: Some(MAX_ENDPOINTS_PER_TENANT),
                ..RangeOptions::default()
            },
        )
        .await?;
    if existing.len() >= MAX_ENDPOINTS_PER_TENANT {
        return Err(DomainError::WebhookEndpointLimitReached(
            MAX_ENDPOINTS_PER_TENANT,
        ));
    }
    let now = context.now();
    let endpoint_id = uuid::Builder::from_unix_timestamp_millis(
        u64::try_from(now.0).unwrap_or(0),
        &context.random::<10>(),
    )
    .into_uuid();
    let secret = WebhookSecret::generate(context);
    let endpoint = WebhookEndpoint {
        endpoint_id,
        url: new_endpoint.url,
        description: new_endpoint.description,
        event_types: new_endpoint.event_types,
        enabled: true,
        disabled_reason: String::new(),
        created_at: now,
        updated_at: now,
        secret_created_at: now,
        version: 1,
        sealed_secret: master_key.seal(
            context,
            &seal_label(tenant, endpoint_id),
            secret.as_bytes(),
        )?,
        previous_secret: None,
    };
    write_endpoint(tx, tenant, &endpoint)?;
    Ok(CreatedEndpoint {
        endpoint,
        secret: secret.to_text(),
    })
}

/// Writes an endpoint record.
pub fn write_endpoint(
    tx: &Transaction,
    tenant: &str,
    endpoint: &WebhookEndpoint,
) -> DomainResult<()> {
    tx.set(
        &keyspace::webhook_endpoint(tenant, endpoint.endpoint_id),
        &codec::encode(endpoint)?,
    )?;
    Ok(())
}

/// Reads an endpoint, if it exists.
pub async fn find_endpoint(
    tx: &Transaction,
    tenant: &str,
    endpoint_id: Uuid,
) -> DomainResult<Option<WebhookEndpoint>> {
    match tx
        .get(&keyspace::webhook_endpoint(tenant, endpoint_id))
        .await?
    {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Reads an endpoint or fails with `WEBHOOK_ENDPOINT_NOT_FOUND`.
pub async fn read_endpoint(
    tx: &Transaction,
    tenant: &str,
    endpoint_id: Uuid,
) -> DomainResult<WebhookEndpoint> {
    find_endpoint(tx, tenant, endpoint_id)
        .await?
        .ok_or(DomainError::WebhookEndpointNotFound)
}

/// Every endpoint of a tenant, oldest first (a snapshot read: listing conflicts with nothing).
pub async fn list_endpoints(tx: &Transaction, tenant: &str) -> DomainResult<Vec<WebhookEndpoint>> {
    let (begin, end) = keyspace::webhook_endpoints_subspace(tenant).range();
    tx.get_range(
        &begin,
        &end,
        RangeOptions {
            snapshot: true,
            ..RangeOptions::default()
        },
    )
    .await?
    .into_iter()
    .map(|(_, value)| codec::decode(&value).map_err(DomainError::from))
    .collect()
}

/// Applies `changes`; re-enabling clears the disabled reason.
pub async fn update_endpoint(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    endpoint_id: Uuid,
    changes: EndpointChanges,
) -> DomainResult<WebhookEndpoint> {
    let mut endpoint = read_endpoint(tx, tenant, endpoint_id).await?;
    if let Some(url) = changes.url {
        endpoint.url = url;
    }
    if let Some(description) = changes.description {
        endpoint.description = description;
    }
    if let Some(event_types) = changes.event_types {
        endpoint.event_types = event_types;
    }
    if let Some(enabled) = changes.enabled {
        if enabled != endpoint.enabled {
            endpoint.disabled_reason = if enabled {
                String::new()
            } else {
                "manual".to_owned()
            };
        }
        endpoint.enabled = enabled;
    }
    endpoint.updated_at = context.now();
    endpoint.version += 1;
    write_endpoint(tx, tenant, &endpoint)?;
    Ok(endpoint)
}

/// Disables an endpoint whose target answered 410 Gone.
pub async fn disable_gone_endpoint(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    endpoint_id: Uuid,
) -> DomainResult<Option<WebhookEndpoint>> {
    let Some(mut endpoint) = find_endpoint(tx, tenant, endpoint_id).await? else {
        return Ok(None);
    };
    if !endpoint.enabled {
        return Ok(None);
    }
    endpoint.enabled = false;
    endpoint.disabled_reason = "gone".to_owned();
    endpoint.updated_at = context.now();
    endpoint.version += 1;
    write_endpoint(tx, tenant, &endpoint)?;
    Ok(Some(endpoint))
}

/// Deletes an endpoint and its delivery log index; its pending deliveries are cancelled
/// when they come due.
pub async fn delete_endpoint(
    tx: &Transaction,
    tenant: &str,
    endpoint_id: Uuid,
) -> DomainResult<WebhookEndpoint> {
    let endpoint = read_endpoint(tx, tenant, endpoint_id).await?;
    tx.clear(&keyspace::webhook_endpoint(tenant, endpoint_id))?;
    let (begin, end) = keyspace::webhook_log_subspace(tenant, endpoint_id).range();
    tx.clear_range(&begin, &end)?;
    Ok(endpoint)
}

/// Replaces the secret; the previous one keeps signing for [`PREVIOUS_SECRET_GRACE`].
pub async fn rotate_secret(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    endpoint_id: Uuid,
) -> DomainResult<CreatedEndpoint> {
    let mut endpoint = read_endpoint(tx, tenant, endpoint_id).await?;
    let now = context.now();
    let secret = WebhookSecret::generate(context);
    let sealed = master_key.seal(context, &seal_label(tenant, endpoint_id), secret.as_bytes())?;
    endpoint.previous_secret = Some(PreviousSecret {
        sealed: std::mem::replace(&mut endpoint.sealed_secret, sealed),
        expires_at: now.plus(PREVIOUS_SECRET_GRACE),
    });
    endpoint.secret_created_at = now;
    endpoint.updated_at = now;
    endpoint.version += 1;
    write_endpoint(tx, tenant, &endpoint)?;
    Ok(CreatedEndpoint {
        endpoint,
        secret: secret.to_text(),
    })
}

/// The secrets that sign an attempt at `now`: the current one, then the previous one while
/// its grace period lasts.
pub fn signing_secrets(
    master_key: &MasterKey,
    tenant: &str,
    endpoint: &WebhookEndpoint,
    now: Timestamp,
) -> DomainResult<Vec<WebhookSecret>> {
    let label = seal_label(tenant, endpoint.endpoint_id);
    let mut secrets = vec![WebhookSecret::from_bytes(
        master_key.open(&label, &endpoint.sealed_secret)?,
    )];
    if let Some(previous) = &endpoint.previous_secret
        && previous.expires_at > now
    {
        secrets.push(WebhookSecret::from_bytes(
            master_key.open(&label, &previous.sealed)?,
        ));
    }
    Ok(secrets)
}
