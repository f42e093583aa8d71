//! The browser flow's stored secrets: the begun flow (by the SHA-256 of its `state`, nonce
//! and PKCE verifier sealed, bound to the browser by the SHA-256 of a cookie secret), link
//! tickets, and the single-use code a finished sign-in hands to the app. Each is spent by
//! clearing it in a transaction that read it, so two concurrent spends conflict and only one
//! commits.

use std::time::Duration;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::crypto::{MasterKey, base64url, constant_time_eq, sha256};
use crate::domain::keyspace;
use crate::error::{DomainError, DomainResult};

/// Prefix of the single-use code handed to the app.
pub const CODE_PREFIX: &str = "goc_";
/// Prefix of link tickets.
pub const TICKET_PREFIX: &str = "gol_";

/// 256 random bits, base64url (43 characters: also a valid PKCE verifier).
pub fn random_secret(context: &Context) -> String {
    base64url(&context.random::<32>())
}

/// A begun flow as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct FlowRecord {
    /// The provider it began with.
    pub provider_id: String,
    /// Where the browser returns (checked at the start).
    pub redirect_url: String,
    /// The nonce, sealed.
    #[serde(with = "serde_bytes")]
    pub sealed_nonce: Vec<u8>,
    /// The PKCE verifier, sealed.
    #[serde(with = "serde_bytes")]
    pub sealed_verifier: Vec<u8>,
    /// SHA-256 of the browser-binding cookie's secret.
    #[serde(with = "serde_bytes")]
    pub binding_hash: Vec<u8>,
    /// The user a link flow links to.
    pub link_user: Option<Uuid>,
    /// Whether that user was anonymous when the link began (an upgrade).
    pub link_anonymous: bool,
    /// Every scope asked for.
    pub scopes: Vec<String>,
    /// No callback at or after this.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for FlowRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRecord")
            .field("provider_id", &self.provider_id)
            .field("link_user", &self.link_user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A flow's secrets, made at its start.
#[derive(Clone)]
pub struct FlowSecrets {
    /// `state`.
    pub state: String,
    /// `nonce`.
    pub nonce: String,
    /// PKCE verifier.
    pub verifier: String,
    /// The cookie value that binds the flow to the browser.
    pub binding: String,
}

impl std::fmt::Debug for FlowSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowSecrets(..)")
    }
}

impl FlowSecrets {
    /// Fresh secrets from the context's randomness.
    pub fn draw(context: &Context) -> FlowSecrets {
        FlowSecrets {
            state: random_secret(context),
            nonce: random_secret(context),
            verifier: random_secret(context),
            binding: random_secret(context),
        }
    }
}

/// What a begun flow is for, besides its secrets.
#[derive(Debug, Clone)]
pub struct FlowTarget {
    /// The provider.
    pub provider_id: String,
    /// Where the browser returns.
    pub redirect_url: String,
    /// A link flow's user and whether it is anonymous.
    pub link: Option<(Uuid, bool)>,
    /// Every scope asked for.
    pub scopes: Vec<String>,
}

fn flow_label(tenant: &str, state_hash: &[u8], what: &str) -> String {
    format!("fed_flow/{tenant}/{}/{what}", hex::encode(state_hash))
}

/// Stores a begun flow for `ttl`.
pub fn store_flow(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    secrets: &FlowSecrets,
    target: FlowTarget,
    ttl: Duration,
) -> DomainResult<()> {
    let state_hash = sha256(secrets.state.as_bytes());
    let seal = |what: &str, value: &str| {
        let label = flow_label(tenant, &state_hash, what);
        master_key.seal(context, label.as_bytes(), value.as_bytes())
    };
    let record = FlowRecord {
        provider_id: target.provider_id,
        redirect_url: target.redirect_url,
        sealed_nonce: seal("nonce", &secrets.nonce)?,
        sealed_verifier: seal("verifier", &secrets.verifier)?,
        binding_hash: sha256(secrets.binding.as_bytes()).to_vec(),
        link_user: target.link.map(|(user_id, _)| user_id),
        link_anonymous: target.link.is_some_and(|(_, anonymous)| anonymous),
        scopes: target.scopes,
        expires_at: context.now().plus(ttl),
    };
    tx.set(
        &keyspace::oauth_flow(tenant, &state_hash),
        &codec::encode(&record)?,
    )?;
    tx.set(
        &keyspace::oauth_flow_due(tenant, record.expires_at, &state_hash),
        &state_hash,
    )?;
    Ok(())
}

/// Clears up to `limit` flows that expired before `now` (abandoned in the browser), oldest
/// first. A snapshot read and blind clears: concurrent starts and sweeps never conflict, and
/// an expired flow can no longer be spent anyway.
pub async fn sweep_expired_flows(
    tx: &Transaction,
    tenant: &str,
    now: Timestamp,
    limit: usize,
) -> DomainResult<usize> {
    let due = keyspace::oauth_flow_due_subspace(tenant);
    let (begin, _) = due.range();
    let end = due.pack(&(now.0,));
    let options = RangeOptions {
        limit: Some(limit),
        snapshot: true,
        ..RangeOptions::default()
    };
    let entries = tx.get_range(&begin, &end, options).await?;
    for (key, state_hash) in &entries {
        tx.clear(key)?;
        tx.clear(&keyspace::oauth_flow(tenant, state_hash))?;
    }
    Ok(entries.len())
}

/// A spent flow with its secrets opened.
#[derive(Clone)]
pub struct SpentFlow {
    /// The record.
    pub record: FlowRecord,
    /// The nonce.
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
}

impl std::fmt::Debug for SpentFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpentFlow")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Spends the flow `state` names. Unknown, expired, another provider's or another browser's
/// (`binding` missing or not matching) is `OAUTH_STATE_INVALID`, and nothing is written;
/// otherwise the flow is cleared in `tx`.
pub async fn spend_flow(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    provider_id: &str,
    state: &str,
    binding: Option<&str>,
) -> DomainResult<SpentFlow> {
    if state.is_empty() || state.len() > 128 {
        return Err(DomainError::OAuthStateInvalid);
    }
    let state_hash = sha256(state.as_bytes());
    let key = keyspace::oauth_flow(tenant, &state_hash);
    let record: FlowRecord = match tx.get(&key).await? {
        Some(bytes) => codec::decode(&bytes)?,
        None => return Err(DomainError::OAuthStateInvalid),
    };
    let presented = sha256(binding.unwrap_or_default().as_bytes());
    if binding.is_none_or(str::is_empty) || !constant_time_eq(&record.binding_hash, &presented) {
        // Another browser's callback must not burn the flow of the one that began it.
        return Err(DomainError::OAuthStateInvalid);
    }
    if record.provider_id != provider_id {
        return Err(DomainError::OAuthStateInvalid);
    }
    if context.now() >= record.expires_at {
        return Err(DomainError::OAuthStateInvalid);
    }
    tx.clear(&key)?;
    tx.clear(&keyspace::oauth_flow_due(
        tenant,
        record.expires_at,
        &state_hash,
    ))?;
    let open = |what: &str, sealed: &[u8]| -> DomainResult<String> {
        let label = flow_label(tenant, &state_hash, what);
        String::from_utf8(master_key.open(label.as_bytes(), sealed)?)
            .map_err(|_| DomainError::Internal("sealed flow secret is not UTF-8".to_owned()))
    };
    Ok(SpentFlow {
        nonce: open("nonce", &record.sealed_nonce)?,
        verifier: open("verifier", &record.sealed_verifier)?,
        record,
    })
}

/// A link ticket as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketRecord {
    /// The user to link to.
    pub user_id: Uuid,
    /// Whether that user is anonymous (an upgrade).
    pub anonymous: bool,
    /// The provider.
    pub provider_id: String,
    /// The redirect URL the start must name.
    pub redirect_url: String,
    /// No start at or after this.
    pub expires_at: Timestamp,
}

/// Stores a new link ticket; returns its text.
pub fn issue_ticket(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    record: &TicketRecord,
) -> DomainResult<String> {
    let ticket = format!("{TICKET_PREFIX}{}", random_secret(context));
    tx.set(
        &keyspace::oauth_ticket(tenant, &sha256(ticket.as_bytes())),
        &codec::encode(record)?,
    )?;
    Ok(ticket)
}

/// Spends a link ticket for `provider_id` and `redirect_url`; anything else is
/// `OAUTH_STATE_INVALID`.
pub async fn spend_ticket(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    provider_id: &str,
    redirect_url: &str,
    ticket: &str,
) -> DomainResult<TicketRecord> {
    if !ticket.starts_with(TICKET_PREFIX) || ticket.len() > 128 {
        return Err(DomainError::OAuthStateInvalid);
    }
    let key = keyspace::oauth_ticket(tenant, &sha256(ticket.as_bytes()));
    let record: TicketRecord = match tx.get(&key).await? {
        Some(bytes) => codec::decode(&bytes)?,
        None => return Err(DomainError::OAuthStateInvalid),
    };
    if record.provider_id != provider_id
        || record.redirect_url != redirect_url
        || context.now() >= record.expires_at
    {
        return Err(DomainError::OAuthStateInvalid);
    }
    tx.clear(&key)?;
    Ok(record)
}

/// A finished sign-in waiting for the app's exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The user to sign in.
    pub user_id: Uuid,
    /// The provider.
    pub provider_id: String,
    /// The upstream subject.
    pub subject: String,
    /// Whether the flow created the user (or upgraded an anonymous one).
    pub signed_up: bool,
    /// No exchange at or after this.
    pub expires_at: Timestamp,
}

/// Stores a single-use code for `record`; returns its text (`goc_…`, only its SHA-256
/// stored).
pub fn issue_code(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    record: &CodeRecord,
) -> DomainResult<String> {
    let code = format!("{CODE_PREFIX}{}", random_secret(context));
    tx.set(
        &keyspace::oauth_code(tenant, &sha256(code.as_bytes())),
        &codec::encode(record)?,
    )?;
    Ok(code)
}

/// Spends a code of `tenant`; unknown, malformed, spent and expired codes are all
/// `OAUTH_CODE_INVALID`.
pub async fn spend_code(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    code: &str,
) -> DomainResult<CodeRecord> {
    if !code.starts_with(CODE_PREFIX) || code.len() > 128 {
        return Err(DomainError::OAuthCodeInvalid);
    }
    let key = keyspace::oauth_code(tenant, &sha256(code.as_bytes()));
    let record: CodeRecord = match tx.get(&key).await? {
        Some(bytes) => codec::decode(&bytes)?,
        None => return Err(DomainError::OAuthCodeInvalid),
    };
    if context.now() >= record.expires_at {
        return Err(DomainError::OAuthCodeInvalid);
    }
    tx.clear(&key)?;
    Ok(record)
}
