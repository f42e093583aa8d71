//! OpenID Connect clients: the applications a tenant registers with Gatehouse acting as its
//! OpenID provider, each with its redirect URIs, allowed scopes and, for a confidential
//! client, a secret.
//!
//! A client id reads `gci_<128 random bits, base64url>`. A confidential client's secret reads
//! `gcs_<256 random bits, base64url>`; it is returned once, by [`create`] and
//! [`rotate_secret`], and only its SHA-256 is stored. [`authenticate_client`] (the token
//! endpoint's client authentication) reads the client from storage every time and compares
//! in constant time, so a rotation or a deletion is in force on every node as soon as its
//! transaction commits.

mod rules;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::context::{Context, Timestamp};
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::crypto::{base64url, constant_time_eq, from_base64url, random_token, sha256};
use crate::domain::keyspace;
use crate::domain::tenants::validate_display_name;
use crate::error::{DomainError, DomainResult};

pub use rules::{
    DEFAULT_SCOPES, MAX_REDIRECT_URI_LEN, MAX_REDIRECT_URIS, MAX_SCOPE_LEN, MAX_SCOPES,
    OPENID_SCOPE, is_scope_token, validate_redirect_uri, validate_redirect_uris, validate_scopes,
};

/// Prefix of every client id.
pub const CLIENT_ID_PREFIX: &str = "gci_";
/// Prefix of every client secret.
pub const CLIENT_SECRET_PREFIX: &str = "gcs_";
/// Base64url characters of the 16 random bytes of a client id.
const CLIENT_ID_RANDOM_LEN: usize = 22;

/// How a client authenticates at the token endpoint (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientKind {
    /// A browser or native app that cannot keep a secret: no secret, PKCE only.
    Public,
    /// A server-side app: authenticates with its secret.
    Confidential,
}

impl ClientKind {
    /// `public` or `confidential`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::Confidential => "confidential",
        }
    }
}

/// A stored client: never the secret, only its SHA-256.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OidcClientRecord {
    /// `gci_…`, unique in the tenant.
    pub client_id: String,
    /// Human name, shown on consent pages.
    pub name: String,
    /// Public or confidential.
    pub kind: ClientKind,
    /// SHA-256 of the secret; empty for a public client.
    #[serde(with = "serde_bytes")]
    pub secret_hash: Vec<u8>,
    /// Where authorization answers may go, matched exactly as given.
    pub redirect_uris: Vec<String>,
    /// Where the browser may go after sign-out, matched exactly as given.
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the client may ask for; always holds `openid`.
    pub allowed_scopes: Vec<String>,
    /// A client of the tenant itself, which may skip the consent page.
    pub first_party: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed (creation, update or secret rotation).
    pub updated_at: Timestamp,
    /// Who created it (the audit actor).
    pub created_by: String,
}

impl std::fmt::Debug for OidcClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClientRecord")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("redirect_uris", &self.redirect_uris)
            .field("allowed_scopes", &self.allowed_scopes)
            .field("first_party", &self.first_party)
            .finish_non_exhaustive()
    }
}

impl OidcClientRecord {
    /// The audit details of a change: never the secret or its hash.
    pub fn audit_details(&self) -> Value {
        json!({
            "client_id": self.client_id,
            "name": self.name,
            "kind": self.kind.as_str(),
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "allowed_scopes": self.allowed_scopes,
            "first_party": self.first_party,
        })
    }
}

/// A client to register, as given (validated by [`create`]).
#[derive(Debug, Clone)]
pub struct NewOidcClient {
    /// Human name, 1 to 200 characters.
    pub name: String,
    /// Public or confidential.
    pub kind: ClientKind,
    /// 1 to 20 redirect URIs.
    pub redirect_uris: Vec<String>,
    /// 0 to 20 post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed scopes; [`DEFAULT_SCOPES`] when empty.
    pub allowed_scopes: Vec<String>,
    /// May skip consent.
    pub first_party: bool,
}

/// Changes to a client; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct OidcClientChanges {
    /// Human name.
    pub name: Option<String>,
    /// Replaces the redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// Replaces the post-logout redirect URIs (an empty list clears them).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Replaces the allowed scopes (an empty list: the defaults).
    pub allowed_scopes: Option<Vec<String>>,
    /// First-party flag.
    pub first_party: Option<bool>,
}

/// A client with its secret, as [`create`] and [`rotate_secret`] return it (`Debug` leaves
/// the secret out).
#[derive(Clone)]
pub struct IssuedClient {
    /// The stored client.
    pub record: OidcClientRecord,
    /// The secret, shown once; `None` for a public client.
    pub secret: Option<String>,
}

impl std::fmt::Debug for IssuedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedClient")
            .field("record", &self.record)
            .field("has_secret", &self.secret.is_some())
            .finish()
    }
}

/// Whether `client_id` has the shape of an id this module hands out.
pub fn is_client_id(client_id: &str) -> bool {
    client_id
        .strip_prefix(CLIENT_ID_PREFIX)
        .is_some_and(|random| {
            random.len() == CLIENT_ID_RANDOM_LEN
                && from_base64url(random).is_some_and(|bytes| bytes.len() == 16)
        })
}

fn validate_name(name: &str) -> DomainResult<()> {
    validate_display_name("name", name, true)
}

fn redirect_uris(uris: &[String]) -> DomainResult<Vec<String>> {
    validate_redirect_uris("redirect_uris", uris, 1)
}

fn post_logout_redirect_uris(uris: &[String]) -> DomainResult<Vec<String>> {
    validate_redirect_uris("post_logout_redirect_uris", uris, 0)
}

/// A fresh secret and its stored hash.
fn new_secret(context: &Context) -> (String, Vec<u8>) {
    let secret = random_token(context, CLIENT_SECRET_PREFIX);
    let hash = sha256(secret.as_bytes()).to_vec();
    (secret, hash)
}

fn write(tx: &Transaction, tenant: &str, record: &OidcClientRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::oidc_client(tenant, &record.client_id),
        &codec::encode(record)?,
    )?;
    Ok(())
}

async fn audited(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    record: &OidcClientRecord,
    action: AuditAction,
    origin: &AuditOrigin,
) -> DomainResult<()> {
    let target = format!("oidc_client:{}", record.client_id);
    let audit = origin.event(action, target, record.audit_details());
    record_change(tx, context, tenant, Some(audit), []).await
}

/// Registers a client; a confidential one gets its secret, shown once. Audited as
/// `oidc_client.create`, in `tx`.
pub async fn create(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    new: NewOidcClient,
    origin: &AuditOrigin,
) -> DomainResult<IssuedClient> {
    validate_name(&new.name)?;
    let redirect_uris = redirect_uris(&new.redirect_uris)?;
    let post_logout_redirect_uris = post_logout_redirect_uris(&new.post_logout_redirect_uris)?;
    let allowed_scopes = validate_scopes(&new.allowed_scopes)?;
    let client_id = format!("{CLIENT_ID_PREFIX}{}", base64url(&context.random::<16>()));
    let (secret, secret_hash) = match new.kind {
        ClientKind::Public => (None, Vec::new()),
        ClientKind::Confidential => {
            let (secret, hash) = new_secret(context);
            (Some(secret), hash)
        }
    };
    let now = context.now();
    let record = OidcClientRecord {
        client_id,
        name: new.name,
        kind: new.kind,
        secret_hash,
        redirect_uris,
        post_logout_redirect_uris,
        allowed_scopes,
        first_party: new.first_party,
        created_at: now,
        updated_at: now,
        created_by: origin.actor.clone(),
    };
    write(tx, tenant, &record)?;
    audited(
        tx,
        context,
        tenant,
        &record,
        AuditAction::OidcClientCreate,
        origin,
    )
    .await?;
    Ok(IssuedClient { record, secret })
}

/// Reads a client of the tenant (`OIDC_CLIENT_NOT_FOUND`, also for an id of another tenant).
pub async fn read(
    tx: &Transaction,
    tenant: &str,
    client_id: &str,
) -> DomainResult<OidcClientRecord> {
    if !is_client_id(client_id) {
        return Err(DomainError::OidcClientNotFound);
    }
    let bytes = tx
        .get(&keyspace::oidc_client(tenant, client_id))
        .await?
        .ok_or(DomainError::OidcClientNotFound)?;
    Ok(codec::decode(&bytes)?)
}

/// Every client of the tenant, oldest first.
pub async fn list(tx: &Transaction, tenant: &str) -> DomainResult<Vec<OidcClientRecord>> {
    let (begin, end) = keyspace::oidc_clients_subspace(tenant).range();
    let mut records = tx
        .get_range(&begin, &end, RangeOptions::default())
        .await?
        .into_iter()
        .map(|(_, bytes)| codec::decode::<OidcClientRecord>(&bytes).map_err(DomainError::from))
        .collect::<DomainResult<Vec<_>>>()?;
    records.sort_by(|a, b| (a.created_at, &a.client_id).cmp(&(b.created_at, &b.client_id)));
    Ok(records)
}

/// Changes a client; every given field is checked as at creation. Audited as
/// `oidc_client.update`, in `tx`.
pub async fn update(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    client_id: &str,
    changes: OidcClientChanges,
    origin: &AuditOrigin,
) -> DomainResult<OidcClientRecord> {
    let mut record = read(tx, tenant, client_id).await?;
    if let Some(name) = changes.name {
        validate_name(&name)?;
        record.name = name;
    }
    if let Some(uris) = &changes.redirect_uris {
        record.redirect_uris = redirect_uris(uris)?;
    }
    if let Some(uris) = &changes.post_logout_redirect_uris {
        record.post_logout_redirect_uris = post_logout_redirect_uris(uris)?;
    }
    if let Some(scopes) = &changes.allowed_scopes {
        record.allowed_scopes = validate_scopes(scopes)?;
    }
    if let Some(first_party) = changes.first_party {
        record.first_party = first_party;
    }
    record.updated_at = context.now();
    write(tx, tenant, &record)?;
    audited(
        tx,
        context,
        tenant,
        &record,
        AuditAction::OidcClientUpdate,
        origin,
    )
    .await?;
    Ok(record)
}

/// Deletes a client; its secret stops working at once. Audited as `oidc_client.delete`.
pub async fn delete(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    client_id: &str,
    origin: &AuditOrigin,
) -> DomainResult<OidcClientRecord> {
    let record = read(tx, tenant, client_id).await?;
    tx.clear(&keyspace::oidc_client(tenant, client_id))?;
    audited(
        tx,
        context,
        tenant,
        &record,
        AuditAction::OidcClientDelete,
        origin,
    )
    .await?;
    Ok(record)
}

/// Gives a confidential client a new secret, shown once; the old one stops working as soon
/// as `tx` commits. A public client has none (`OIDC_CLIENT_PUBLIC`). Audited as
/// `oidc_client.rotate_secret`.
pub async fn rotate_secret(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    client_id: &str,
    origin: &AuditOrigin,
) -> DomainResult<IssuedClient> {
    let mut record = read(tx, tenant, client_id).await?;
    if record.kind == ClientKind::Public {
        return Err(DomainError::OidcClientPublic);
    }
    let (secret, hash) = new_secret(context);
    record.secret_hash = hash;
    record.updated_at = context.now();
    write(tx, tenant, &record)?;
    audited(
        tx,
        context,
        tenant,
        &record,
        AuditAction::OidcClientRotateSecret,
        origin,
    )
    .await?;
    Ok(IssuedClient {
        record,
        secret: Some(secret),
    })
}

/// The confidential client `client_id` of the tenant if `secret` is its secret, compared in
/// constant time. An unknown or malformed id, a public client and a wrong secret are all
/// `OIDC_CLIENT_INVALID`, with the same work done, so the answer tells nothing about which
/// client ids exist.
pub async fn authenticate_client(
    tx: &Transaction,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> DomainResult<OidcClientRecord> {
    let presented = sha256(secret.as_bytes());
    let record = match read(tx, tenant, client_id).await {
        Ok(record) => record,
        Err(DomainError::OidcClientNotFound) => {
            std::hint::black_box(constant_time_eq(&[0; 32], &presented));
            return Err(DomainError::OidcClientInvalid);
        }
        Err(error) => return Err(error),
    };
    let matches = record.kind == ClientKind::Confidential
        && record.secret_hash.len() == presented.len()
        && constant_time_eq(&record.secret_hash, &presented);
    if matches {
        Ok(record)
    } else {
        Err(DomainError::OidcClientInvalid)
    }
}
