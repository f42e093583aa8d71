//! A tenant's upstream providers: validated records with the client secret sealed, created,
//! changed and deleted by servers and operators (audited, `oauth_provider.changed` sent).

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::{Host, Url};

use super::{ProviderEndpoint, ProviderKind};
use crate::context::{Context, Timestamp};
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::crypto::MasterKey;
use crate::domain::keyspace;
use crate::domain::outbox::EventType;
use crate::domain::tenants::validate_display_name;
use crate::error::{DomainError, DomainResult};

/// Longest provider id.
pub const MAX_PROVIDER_ID_LEN: usize = 40;
/// Most scopes a provider (or a flow) asks for.
pub const MAX_SCOPES: usize = 50;
/// Longest client id, client secret or issuer.
const MAX_FIELD_BYTES: usize = 2048;

/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The Microsoft identity platform's multi-tenant issuer.
pub const MICROSOFT_ISSUER: &str = "https://login.microsoftonline.com/common/v2.0";
/// GitHub's base URL (it has no OpenID issuer).
pub const GITHUB_ISSUER: &str = "https://github.com";

impl ProviderKind {
    /// Display name when none is given.
    pub fn default_display_name(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "OpenID",
            ProviderKind::Github => "GitHub",
            ProviderKind::Google => "Google",
            ProviderKind::Microsoft => "Microsoft",
        }
    }

    /// The preset issuer, if the kind has one.
    pub fn preset_issuer(self) -> Option<&'static str> {
        match self {
            ProviderKind::Oidc => None,
            ProviderKind::Github => Some(GITHUB_ISSUER),
            ProviderKind::Google => Some(GOOGLE_ISSUER),
            ProviderKind::Microsoft => Some(MICROSOFT_ISSUER),
        }
    }

    /// Scopes asked for when none are given.
    pub fn default_scopes(self) -> Vec<String> {
        let scopes: &[&str] = match self {
            ProviderKind::Github => &["read:user", "user:email"],
            _ => &["openid", "email", "profile"],
        };
        scopes.iter().map(|scope| (*scope).to_owned()).collect()
    }
}

/// A stored provider; the client secret only sealed.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderRecord {
    /// Id in URLs.
    pub provider_id: String,
    /// Protocol.
    pub kind: ProviderKind,
    /// Display name.
    pub display_name: String,
    /// Issuer (GitHub: its base URL).
    pub issuer: String,
    /// OAuth client id.
    pub client_id: String,
    /// The client secret, sealed under [`secret_label`].
    #[serde(with = "serde_bytes")]
    pub sealed_secret: Vec<u8>,
    /// Scopes asked for at sign-in.
    pub scopes: Vec<String>,
    /// May a verified upstream email link to an existing user.
    pub allow_email_linking: bool,
    /// May the provider create users.
    pub allow_sign_up: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for ProviderRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRecord")
            .field("provider_id", &self.provider_id)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ProviderRecord {
    /// `data` of `oauth_provider.changed` and the audit details: never the secret.
    pub fn event_data(&self, change: &str) -> Value {
        json!({
            "provider_id": self.provider_id,
            "kind": self.kind.as_str(),
            "issuer": self.issuer,
            "client_id": self.client_id,
            "scopes": self.scopes,
            "allow_email_linking": self.allow_email_linking,
            "allow_sign_up": self.allow_sign_up,
            "change": change,
        })
    }

    /// The endpoint the node's client talks to, secret opened for this call only.
    pub fn endpoint(&self, master_key: &MasterKey, tenant: &str) -> DomainResult<ProviderEndpoint> {
        let secret = master_key.open(
            secret_label(tenant, &self.provider_id).as_bytes(),
            &self.sealed_secret,
        )?;
        let client_secret = String::from_utf8(secret)
            .map_err(|_| DomainError::Internal("client secret is not UTF-8".to_owned()))?;
        Ok(ProviderEndpoint {
            kind: self.kind,
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret,
        })
    }
}

/// The seal label of a provider's client secret.
pub fn secret_label(tenant: &str, provider_id: &str) -> String {
    format!("fed_provider/{tenant}/{provider_id}")
}

/// The callback URL to register with the provider.
pub fn redirect_uri(public_url: &str, tenant: &str, provider_id: &str) -> String {
    format!(
        "{}/t/{tenant}/oauth/{provider_id}/callback",
        public_url.trim_end_matches('/')
    )
}

/// A provider to create, as given (validated by [`create`]).
#[derive(Clone)]
pub struct NewProvider {
    /// Id in URLs.
    pub provider_id: String,
    /// Protocol.
    pub kind: ProviderKind,
    /// Display name; the kind's when empty.
    pub display_name: String,
    /// Issuer; the kind's preset when empty.
    pub issuer: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Scopes; the kind's defaults when empty.
    pub scopes: Vec<String>,
    /// Email-linking rule.
    pub allow_email_linking: bool,
    /// Sign-up rule.
    pub allow_sign_up: bool,
}

impl std::fmt::Debug for NewProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewProvider")
            .field("provider_id", &self.provider_id)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Changes to a provider; `None` keeps the value.
#[derive(Clone, Default)]
pub struct ProviderChanges {
    /// Display name (empty: the kind's).
    pub display_name: Option<String>,
    /// Issuer (empty: the kind's preset).
    pub issuer: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret.
    pub client_secret: Option<String>,
    /// Scopes (empty: the kind's defaults).
    pub scopes: Option<Vec<String>>,
    /// Email-linking rule.
    pub allow_email_linking: Option<bool>,
    /// Sign-up rule.
    pub allow_sign_up: Option<bool>,
}

impl std::fmt::Debug for ProviderChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderChanges")
            .field("issuer", &self.issuer)
            .field("client_secret_changed", &self.client_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// Checks a provider id: 1 to 40 of `a-z`, `0-9`, `-`.
pub fn validate_provider_id(provider_id: &str) -> DomainResult<()> {
    let valid = !provider_id.is_empty()
        && provider_id.len() <= MAX_PROVIDER_ID_LEN
        && provider_id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if valid {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "provider_id",
            "must be 1 to 40 of a-z, 0-9 and '-'",
        ))
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain == "localhost",
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

/// The issuer to store: the kind's preset when empty (required for OIDC); an `https` URL
/// (`http` only to a loopback address) without credentials, query or fragment.
pub fn validate_issuer(kind: ProviderKind, issuer: &str) -> DomainResult<String> {
    let issuer = issuer.trim();
    if issuer.is_empty() {
        return kind
            .preset_issuer()
            .map(str::to_owned)
            .ok_or_else(|| DomainError::invalid("issuer", "is required for an OpenID provider"));
    }
    if issuer.len() > MAX_FIELD_BYTES {
        return Err(DomainError::invalid("issuer", "is too long"));
    }
    let url = Url::parse(issuer)
        .map_err(|error| DomainError::invalid("issuer", format!("is not a valid URL: {error}")))?;
    if !(url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url))) {
        return Err(DomainError::invalid(
            "issuer",
            "must be an https URL (http only to a loopback address)",
        ));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(DomainError::invalid(
            "issuer",
            "must not carry credentials, a query or a fragment",
        ));
    }
    // The issuer is compared with the ID token's `iss` as written: keep the given text.
    Ok(issuer.to_owned())
}

/// Scopes as stored: trimmed, without duplicates, in the given order; the kind's defaults
/// when none are given.
pub fn validate_scopes(kind: ProviderKind, scopes: &[String]) -> DomainResult<Vec<String>> {
    if scopes.iter().all(|scope| scope.trim().is_empty()) {
        return Ok(kind.default_scopes());
    }
    clean_scopes(scopes)
}

/// Trims, checks and deduplicates scopes (no defaults).
pub fn clean_scopes(scopes: &[String]) -> DomainResult<Vec<String>> {
    let mut clean: Vec<String> = Vec::new();
    for scope in scopes.iter().map(|scope| scope.trim()) {
        if scope.is_empty() {
            continue;
        }
        if scope.len() > 200
            || scope.chars().any(|c| {
                c.is_whitespace() || crate::domain::text::is_hidden(c) || c == '"' || c == '\\'
            })
        {
            return Err(DomainError::invalid(
                "scopes",
                format!("bad scope {scope:?}"),
            ));
        }
        if !clean.iter().any(|known| known == scope) {
            clean.push(scope.to_owned());
        }
    }
    if clean.len() > MAX_SCOPES {
        return Err(DomainError::invalid(
            "scopes",
            format!("must list at most {MAX_SCOPES} scopes"),
        ));
    }
    Ok(clean)
}

fn validate_client_field(field: &'static str, value: &str) -> DomainResult<()> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_FIELD_BYTES || value.chars().any(crate::domain::text::is_hidden) {
        return Err(DomainError::invalid(
            field,
            "must be at most 2048 bytes without control characters",
        ));
    }
    Ok(())
}

fn display_name_or_default(kind: ProviderKind, name: &str) -> DomainResult<String> {
    validate_display_name("display_name", name, false)?;
    Ok(if name.trim().is_empty() {
        kind.default_display_name().to_owned()
    } else {
        name.trim().to_owned()
    })
}

fn seal_secret(
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    provider_id: &str,
    secret: &str,
) -> DomainResult<Vec<u8>> {
    validate_client_field("client_secret", secret)?;
    master_key.seal(
        context,
        secret_label(tenant, provider_id).as_bytes(),
        secret.as_bytes(),
    )
}

fn write(tx: &Transaction, tenant: &str, record: &ProviderRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::oauth_provider(tenant, &record.provider_id),
        &codec::encode(record)?,
    )?;
    Ok(())
}

async fn changed(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    record: &ProviderRecord,
    action: AuditAction,
    change: &str,
    origin: &AuditOrigin,
) -> DomainResult<()> {
    let data = record.event_data(change);
    let target = format!("oauth_provider:{}", record.provider_id);
    let audit = origin.event(action, target, data.clone());
    record_change(
        tx,
        context,
        tenant,
        Some(audit),
        [(EventType::OAuthProviderChanged, data)],
    )
    .await
}

/// Creates a provider (`OAUTH_PROVIDER_ALREADY_EXISTS` if the id is taken), audited as
/// `oauth_provider.create`.
pub async fn create(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    new: NewProvider,
    origin: &AuditOrigin,
) -> DomainResult<ProviderRecord> {
    validate_provider_id(&new.provider_id)?;
    let display_name = display_name_or_default(new.kind, &new.display_name)?;
    let issuer = validate_issuer(new.kind, &new.issuer)?;
    validate_client_field("client_id", &new.client_id)?;
    let scopes = validate_scopes(new.kind, &new.scopes)?;
    let key = keyspace::oauth_provider(tenant, &new.provider_id);
    if tx.get(&key).await?.is_some() {
        return Err(DomainError::OAuthProviderAlreadyExists);
    }
    let sealed_secret = seal_secret(
        context,
        master_key,
        tenant,
        &new.provider_id,
        &new.client_secret,
    )?;
    let now = context.now();
    let record = ProviderRecord {
        provider_id: new.provider_id,
        kind: new.kind,
        display_name,
        issuer,
        client_id: new.client_id.trim().to_owned(),
        sealed_secret,
        scopes,
        allow_email_linking: new.allow_email_linking,
        allow_sign_up: new.allow_sign_up,
        created_at: now,
        updated_at: now,
    };
    write(tx, tenant, &record)?;
    let action = AuditAction::OAuthProviderCreate;
    changed(tx, context, tenant, &record, action, "created", origin).await?;
    Ok(record)
}

/// Reads a provider (`OAUTH_PROVIDER_NOT_FOUND`).
pub async fn read(
    tx: &Transaction,
    tenant: &str,
    provider_id: &str,
) -> DomainResult<ProviderRecord> {
    if validate_provider_id(provider_id).is_err() {
        return Err(DomainError::OAuthProviderNotFound);
    }
    let bytes = tx
        .get(&keyspace::oauth_provider(tenant, provider_id))
        .await?
        .ok_or(DomainError::OAuthProviderNotFound)?;
    Ok(codec::decode(&bytes)?)
}

/// Every provider of the tenant, by id.
pub async fn list(tx: &Transaction, tenant: &str) -> DomainResult<Vec<ProviderRecord>> {
    let (begin, end) = keyspace::oauth_providers_subspace(tenant).range();
    tx.get_range(&begin, &end, RangeOptions::default())
        .await?
        .into_iter()
        .map(|(_, bytes)| codec::decode(&bytes).map_err(DomainError::from))
        .collect()
}

/// Changes a provider, audited as `oauth_provider.update` (the details never hold the
/// secret, only whether it changed).
pub async fn update(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    provider_id: &str,
    changes: ProviderChanges,
    origin: &AuditOrigin,
) -> DomainResult<ProviderRecord> {
    let mut record = read(tx, tenant, provider_id).await?;
    if let Some(name) = &changes.display_name {
        record.display_name = display_name_or_default(record.kind, name)?;
    }
    if let Some(issuer) = &changes.issuer {
        record.issuer = validate_issuer(record.kind, issuer)?;
    }
    if let Some(client_id) = &changes.client_id {
        validate_client_field("client_id", client_id)?;
        record.client_id = client_id.trim().to_owned();
    }
    if let Some(secret) = &changes.client_secret {
        record.sealed_secret = seal_secret(context, master_key, tenant, provider_id, secret)?;
    }
    if let Some(scopes) = &changes.scopes {
        record.scopes = validate_scopes(record.kind, scopes)?;
    }
    if let Some(allow) = changes.allow_email_linking {
        record.allow_email_linking = allow;
    }
    if let Some(allow) = changes.allow_sign_up {
        record.allow_sign_up = allow;
    }
    record.updated_at = context.now();
    write(tx, tenant, &record)?;
    let action = AuditAction::OAuthProviderUpdate;
    changed(tx, context, tenant, &record, action, "updated", origin).await?;
    Ok(record)
}

/// Deletes a provider, audited as `oauth_provider.delete`. Links to it stay (listed, and
/// unlinkable) but nobody signs in through it any more.
pub async fn delete(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    provider_id: &str,
    origin: &AuditOrigin,
) -> DomainResult<()> {
    let record = read(tx, tenant, provider_id).await?;
    tx.clear(&keyspace::oauth_provider(tenant, provider_id))?;
    let action = AuditAction::OAuthProviderDelete;
    changed(tx, context, tenant, &record, action, "deleted", origin).await
}
