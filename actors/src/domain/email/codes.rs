//! Single-use secrets of the email flows: a six-digit code and a link token, issued together
//! for one purpose and one address, stored only as MACs, expiring after the tenant's code
//! lifetime (at most ten minutes), spent after a number of wrong tries; and the send limits
//! per address and per source that every message with a code passes first.
//!
//! Wrong, used, expired and unknown codes are the same answer (`Redemption::Invalid`), and a
//! wrong try is counted in the same transaction that reports it, so the count holds across
//! nodes and concurrent tries.

use std::time::Duration;

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::crypto::{MasterKey, base64url, constant_time_eq, from_base64url, sha256};
use crate::domain::keyspace;
use crate::domain::tenants::TenantEmailSettings;
use crate::error::{DomainError, DomainResult};

/// Prefix of emailed link tokens.
pub const LINK_TOKEN_PREFIX: &str = "gel_";
/// Digits in a code.
pub const CODE_DIGITS: usize = 6;

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodePurpose {
    /// Proving the user reads the address.
    Verification,
    /// Setting a new password.
    PasswordReset,
    /// Signing in (or up) without a password.
    SignIn,
}

impl CodePurpose {
    /// Stable spelling in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::Verification => "verification",
            CodePurpose::PasswordReset => "password_reset",
            CodePurpose::SignIn => "sign_in",
        }
    }
}

/// A live code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// Its purpose.
    pub purpose: CodePurpose,
    /// The normalised address it was sent to.
    pub address: String,
    /// The user it belongs to; `None` for a sign-up by code.
    pub user_id: Option<Uuid>,
    /// MAC of the code.
    #[serde(with = "serde_bytes")]
    pub code_mac: Vec<u8>,
    /// SHA-256 of the link token.
    #[serde(with = "serde_bytes")]
    pub token_hash: Vec<u8>,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Wrong tries so far.
    pub failed_attempts: u32,
}

/// A freshly issued code and link token (`Debug` leaves both out).
#[derive(Clone)]
pub struct IssuedCode {
    /// Six digits.
    pub code: String,
    /// The link token (`gel_…`).
    pub token: String,
    /// When both expire.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What presenting a code or link token came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// It was right; the code is spent.
    Valid(CodeRecord),
    /// Wrong, used, expired or unknown. A wrong try was counted in this transaction, which
    /// must commit for the count to hold.
    Invalid,
}

fn mac_label(tenant: &str, purpose: CodePurpose, address: &str) -> Vec<u8> {
    format!(
        "email_code\u{0}{tenant}\u{0}{}\u{0}{address}",
        purpose.as_str()
    )
    .into_bytes()
}

/// Six uniformly random digits (rejection sampling, no modulo bias).
fn random_code(context: &Context) -> String {
    const RANGE: u32 = 10u32.pow(CODE_DIGITS as u32);
    const LIMIT: u32 = u32::MAX - (u32::MAX % RANGE);
    loop {
        let value = u32::from_le_bytes(context.random::<4>());
        if value < LIMIT {
            return format!("{:0width$}", value % RANGE, width = CODE_DIGITS);
        }
    }
}

/// Issues a new code and link token for `purpose` and `address`, replacing any live one.
#[allow(clippy::too_many_arguments)]
pub async fn issue(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    settings: &TenantEmailSettings,
    purpose: CodePurpose,
    address: &str,
    user_id: Option<Uuid>,
) -> DomainResult<IssuedCode> {
    let key = keyspace::email_code(tenant, purpose.as_str(), address);
    if let Some(bytes) = tx.get(&key).await? {
        let old: CodeRecord = codec::decode(&bytes)?;
        tx.clear(&keyspace::email_link(tenant, &old.token_hash))?;
    }
    let now = context.now();
    let code = random_code(context);
    let token = format!("{LINK_TOKEN_PREFIX}{}", base64url(&context.random::<32>()));
    let token_hash = sha256(token.as_bytes()).to_vec();
    let expires_at = now.plus(Duration::from_secs(u64::from(settings.code_ttl_seconds)));
    let record = CodeRecord {
        purpose,
        address: address.to_owned(),
        user_id,
        code_mac: master_key
            .mac(&mac_label(tenant, purpose, address), code.as_bytes())
            .to_vec(),
        token_hash: token_hash.clone(),
        created_at: now,
        expires_at,
        failed_attempts: 0,
    };
    tx.set(&key, &codec::encode(&record)?)?;
    tx.set(
        &keyspace::email_link(tenant, &token_hash),
        &codec::encode(&(purpose, address))?,
    )?;
    Ok(IssuedCode {
        code,
        token,
        expires_at,
    })
}

fn spend(tx: &Transaction, tenant: &str, record: &CodeRecord) -> DomainResult<()> {
    tx.clear(&keyspace::email_code(
        tenant,
        record.purpose.as_str(),
        &record.address,
    ))?;
    tx.clear(&keyspace::email_link(tenant, &record.token_hash))?;
    Ok(())
}

/// Checks `code` for `purpose` and `address`: right spends it, wrong counts a try (and spends
/// the code at `max_attempts`), expired removes it.
#[allow(clippy::too_many_arguments)]
pub async fn redeem_code(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    purpose: CodePurpose,
    address: &str,
    code: &str,
    max_attempts: u32,
) -> DomainResult<Redemption> {
    let key = keyspace::email_code(tenant, purpose.as_str(), address);
    let Some(bytes) = tx.get(&key).await? else {
        return Ok(Redemption::Invalid);
    };
    let mut record: CodeRecord = codec::decode(&bytes)?;
    if context.now() >= record.expires_at {
        spend(tx, tenant, &record)?;
        return Ok(Redemption::Invalid);
    }
    let presented = master_key.mac(&mac_label(tenant, purpose, address), code.trim().as_bytes());
    if constant_time_eq(&presented, &record.code_mac) {
        spend(tx, tenant, &record)?;
        return Ok(Redemption::Valid(record));
    }
    record.failed_attempts += 1;
    if record.failed_attempts >= max_attempts {
        spend(tx, tenant, &record)?;
    } else {
        tx.set(&key, &codec::encode(&record)?)?;
    }
    Ok(Redemption::Invalid)
}

/// Checks a link token for `purpose`: a live one is spent and returned.
pub async fn redeem_token(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    purpose: CodePurpose,
    token: &str,
) -> DomainResult<Redemption> {
    let token = token.trim();
    let well_formed = token
        .strip_prefix(LINK_TOKEN_PREFIX)
        .and_then(from_base64url)
        .is_some_and(|bytes| bytes.len() == 32);
    if !well_formed {
        return Ok(Redemption::Invalid);
    }
    let token_hash = sha256(token.as_bytes());
    let Some(pointer) = tx.get(&keyspace::email_link(tenant, &token_hash)).await? else {
        return Ok(Redemption::Invalid);
    };
    let (stored_purpose, address): (CodePurpose, String) = codec::decode(&pointer)?;
    if stored_purpose != purpose {
        return Ok(Redemption::Invalid);
    }
    let key = keyspace::email_code(tenant, purpose.as_str(), &address);
    let Some(bytes) = tx.get(&key).await? else {
        return Ok(Redemption::Invalid);
    };
    let record: CodeRecord = codec::decode(&bytes)?;
    if !constant_time_eq(&record.token_hash, &token_hash) {
        return Ok(Redemption::Invalid);
    }
    spend(tx, tenant, &record)?;
    if context.now() >= record.expires_at {
        return Ok(Redemption::Invalid);
    }
    Ok(Redemption::Valid(record))
}

/// A send window per address.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SendWindow {
    started_at: Timestamp,
    count: u32,
}

/// Counts one message with a code for `address` and for `source`; `RateLimited` when either
/// is over the tenant's limit for the window.
///
/// The address count is read with conflicts, so it is exact across nodes and concurrent
/// sends. The source count uses atomic adds over fixed windows so one busy source does not
/// serialise every send; concurrent sends may pass it by at most the number in flight.
pub async fn spend_send_allowance(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    settings: &TenantEmailSettings,
    address: &str,
    source: &str,
) -> DomainResult<()> {
    let now = context.now();
    let window = i64::from(settings.send_window_seconds) * 1000;
    let key = keyspace::email_limit(tenant, "address", address);
    let mut current = match tx.get(&key).await? {
        Some(bytes) => codec::decode::<SendWindow>(&bytes)?,
        None => SendWindow {
            started_at: now,
            count: 0,
        },
    };
    if now.0 - current.started_at.0 >= window {
        current = SendWindow {
            started_at: now,
            count: 0,
        };
    }
    if current.count >= settings.sends_per_address {
        return Err(DomainError::RateLimited);
    }
    if !source.is_empty() {
        let bucket = now.0.div_euclid(window.max(1));
        let bucket_key = |bucket: i64| {
            keyspace::email_limit(tenant, "source", &format!("{source}\u{0}{bucket}"))
        };
        let used = tx
            .snapshot_get(&bucket_key(bucket))
            .await?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map_or(0, i64::from_le_bytes);
        if used >= i64::from(settings.sends_per_source) {
            return Err(DomainError::RateLimited);
        }
        tx.atomic_add(&bucket_key(bucket), 1)?;
        // Windows before the last one are of no further use.
        tx.clear(&bucket_key(bucket - 2))?;
    }
    current.count += 1;
    tx.set(&key, &codec::encode(&current)?)?;
    Ok(())
}
