//! Connected accounts: a user's upstream tokens per provider, sealed at rest, with the scopes
//! granted, the access token's expiry and a version bumped by every write (so a refresh can
//! tell that another one already ran). A refresh the provider refused for good drops both
//! tokens and marks the record revoked until the user links again.

use std::time::Duration;

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TokenSet;
use crate::context::{Context, Timestamp};
use crate::domain::crypto::MasterKey;
use crate::domain::keyspace;
use crate::error::{DomainError, DomainResult};

/// A stored access token is handed out only while it stays valid at least this long.
pub const MIN_REMAINING: Duration = Duration::from_secs(60);

/// A connected account's tokens as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The access token, sealed (empty once dropped).
    #[serde(with = "serde_bytes")]
    pub sealed_access: Vec<u8>,
    /// The refresh token, sealed, if there is one.
    pub sealed_refresh: Option<serde_bytes::ByteBuf>,
    /// When the access token expires, if the provider said.
    pub expires_at: Option<Timestamp>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// The provider refused the refresh token (`invalid_grant`); both tokens were dropped.
    pub revoked: bool,
    /// Bumped by every write.
    pub version: u64,
    /// Last written.
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("has_refresh_token", &self.sealed_refresh.is_some())
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("revoked", &self.revoked)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// Whether the access token may be handed out at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        !self.revoked
            && !self.sealed_access.is_empty()
            && self
                .expires_at
                .is_none_or(|expiry| expiry >= now.plus(MIN_REMAINING))
    }

    /// Whether the access token has not expired at `now` (it may have less than
    /// [`MIN_REMAINING`] left: a provider's tokens may be that short-lived).
    pub fn is_unexpired(&self, now: Timestamp) -> bool {
        !self.revoked
            && !self.sealed_access.is_empty()
            && self.expires_at.is_none_or(|expiry| expiry > now)
    }

    /// Whether a refresh token is stored.
    pub fn has_refresh_token(&self) -> bool {
        self.sealed_refresh.is_some()
    }

    /// The requested scopes the grant lacks, space separated (empty when none).
    pub fn missing_scopes(&self, wanted: &[String]) -> String {
        wanted
            .iter()
            .filter(|scope| !self.scopes.contains(scope))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// An access token handed out (it crosses nodes as an owner reply; `Debug` hides it).
#[derive(Clone, Serialize, Deserialize)]
pub struct AccessGrant {
    /// The token.
    pub access_token: String,
    /// Its expiry, if the provider said.
    pub expires_at: Option<Timestamp>,
    /// Scopes granted.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for AccessGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessGrant")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

fn label(tenant: &str, user_id: Uuid, provider_id: &str, what: &str) -> String {
    format!("fed_tokens/{tenant}/{user_id}/{provider_id}/{what}")
}

/// Where one connected account is.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// The user.
    pub user_id: Uuid,
    /// The provider.
    pub provider_id: &'a str,
}

impl Account<'_> {
    fn key(&self) -> Vec<u8> {
        keyspace::oauth_tokens(self.tenant, self.user_id, self.provider_id)
    }

    fn label(&self, what: &str) -> String {
        label(self.tenant, self.user_id, self.provider_id, what)
    }

    /// Reads the account's tokens, if any.
    pub async fn read(&self, tx: &Transaction) -> DomainResult<Option<TokenRecord>> {
        match tx.get(&self.key()).await? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes the account's tokens.
    pub fn write(&self, tx: &Transaction, record: &TokenRecord) -> DomainResult<()> {
        tx.set(&self.key(), &codec::encode(record)?)?;
        Ok(())
    }

    /// Deletes the account's tokens.
    pub fn delete(&self, tx: &Transaction) -> DomainResult<()> {
        tx.clear(&self.key())?;
        Ok(())
    }

    /// The stored access token, opened.
    pub fn grant(&self, master_key: &MasterKey, record: &TokenRecord) -> DomainResult<AccessGrant> {
        let access = master_key.open(self.label("access").as_bytes(), &record.sealed_access)?;
        Ok(AccessGrant {
            access_token: String::from_utf8(access)
                .map_err(|_| DomainError::Internal("access token is not UTF-8".to_owned()))?,
            expires_at: record.expires_at,
            scopes: record.scopes.clone(),
        })
    }

    /// The stored refresh token, opened.
    pub fn refresh_token(
        &self,
        master_key: &MasterKey,
        record: &TokenRecord,
    ) -> DomainResult<Option<String>> {
        let Some(sealed) = &record.sealed_refresh else {
            return Ok(None);
        };
        let token = master_key.open(self.label("refresh").as_bytes(), sealed)?;
        String::from_utf8(token)
            .map(Some)
            .map_err(|_| DomainError::Internal("refresh token is not UTF-8".to_owned()))
    }

    /// Stores new tokens over `previous` (a sign-in's, a link's or a refresh's): a set
    /// without a refresh token keeps the stored one, a set without scopes keeps the stored
    /// scopes; the record is no longer revoked.
    pub fn store(
        &self,
        tx: &Transaction,
        context: &Context,
        master_key: &MasterKey,
        previous: Option<&TokenRecord>,
        tokens: &TokenSet,
    ) -> DomainResult<TokenRecord> {
        let seal = |what: &str, value: &str| {
            master_key.seal(context, self.label(what).as_bytes(), value.as_bytes())
        };
        let sealed_refresh = match &tokens.refresh_token {
            Some(token) => Some(serde_bytes::ByteBuf::from(seal("refresh", token)?)),
            None => previous
                .filter(|previous| !previous.revoked)
                .and_then(|previous| previous.sealed_refresh.clone()),
        };
        let scopes = if tokens.scopes.is_empty() {
            previous
                .map(|previous| previous.scopes.clone())
                .unwrap_or_default()
        } else {
            tokens.scopes.clone()
        };
        let record = TokenRecord {
            sealed_access: seal("access", &tokens.access_token)?,
            sealed_refresh,
            expires_at: tokens.expires_at,
            scopes,
            revoked: false,
            version: previous.map_or(1, |previous| previous.version + 1),
            updated_at: context.now(),
        };
        self.write(tx, &record)?;
        Ok(record)
    }

    /// Drops both tokens after the provider refused the refresh token for good.
    pub fn revoke(
        &self,
        tx: &Transaction,
        context: &Context,
        previous: &TokenRecord,
    ) -> DomainResult<()> {
        let record = TokenRecord {
            sealed_access: Vec::new(),
            sealed_refresh: None,
            expires_at: None,
            scopes: previous.scopes.clone(),
            revoked: true,
            version: previous.version + 1,
            updated_at: context.now(),
        };
        self.write(tx, &record)
    }
}
