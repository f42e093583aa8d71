//! Users: records, the unique email index, and the transaction functions over them.

pub mod anonymous;
#[cfg(test)]
mod anonymous_tests;
pub mod changes;
pub mod emails;
pub mod normalize;
#[cfg(test)]
mod normalize_tests;

pub use normalize::{Email, MAX_EMAIL_BYTES, parse_email};

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::change::record_events;
use crate::domain::keyspace;
use crate::domain::outbox::EventType;
use crate::domain::sessions;
use crate::domain::tenants::validate_display_name;
use crate::error::{DomainError, DomainResult};

/// Largest accepted metadata document, in bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Lifecycle state of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserState {
    /// May sign in.
    Active,
    /// Blocked from signing in and refreshing.
    Suspended,
    /// Banned for good (with a reason): no sign-in by any method, no refresh.
    Banned,
}

impl UserState {
    /// Stable spelling in events and the audit ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "active",
            UserState::Suspended => "suspended",
            UserState::Banned => "banned",
        }
    }
}

/// The stored user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    /// Time-ordered id.
    pub user_id: Uuid,
    /// Email as written to: trimmed, NFC, the domain in its ASCII form.
    pub email: String,
    /// Normalised email ([`normalize`]); the unique index key.
    pub email_normalized: String,
    /// Human name.
    pub display_name: String,
    /// Lifecycle state.
    pub state: UserState,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// Argon2id PHC string, if the user has a password.
    pub password_hash: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// JSON object the user's client may read and write.
    #[serde(default)]
    pub client_metadata: String,
    /// JSON object the client may read, only servers write.
    #[serde(default)]
    pub client_read_only_metadata: String,
    /// JSON object only servers see.
    #[serde(default)]
    pub server_metadata: String,
    /// The team the user last selected, if any.
    #[serde(default)]
    pub selected_team_id: Option<Uuid>,
    /// Why the user was banned (set while banned).
    #[serde(default)]
    pub ban_reason: Option<String>,
    /// Further addresses of the user; each holds an entry in the tenant's email index, so an
    /// address belongs to one user whether primary or secondary.
    #[serde(default)]
    pub secondary_emails: Vec<emails::SecondaryEmail>,
    /// An anonymous user: no email (`email` and `email_normalized` empty, no index entry),
    /// left out of user lists by default, deleted once idle (see [`anonymous`]).
    #[serde(default)]
    pub is_anonymous: bool,
    /// An anonymous user's last sign-in or refresh.
    #[serde(default)]
    pub last_active_at: Option<Timestamp>,
    /// Bumped on every change.
    pub version: u64,
}

/// Checks that `text` is empty or a JSON object within the size limit.
pub fn validate_metadata(field: &'static str, text: &str) -> DomainResult<()> {
    if text.is_empty() {
        return Ok(());
    }
    if text.len() > MAX_METADATA_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(DomainError::invalid(field, "must be a JSON object")),
    }
}

/// Fields of a new user, already validated (password already hashed).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The email.
    pub email: Email,
    /// Human name.
    pub display_name: String,
    /// PHC string.
    pub password_hash: Option<String>,
    /// Whether the email is known to be verified.
    pub email_verified: bool,
}

/// Creates a user and its email index entry in `tx`.
pub async fn create_user(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    new_user: NewUser,
) -> DomainResult<UserRecord> {
    normalize::adopt_legacy_key(tx, tenant, &new_user.email.normalized).await?;
    let index_key = keyspace::email_index(tenant, &new_user.email.normalized);
    if tx.get(&index_key).await?.is_some() {
        return Err(DomainError::UserEmailAlreadyExists);
    }
    let now = context.now();
    let user_id = new_user_id(now);
    let record = UserRecord {
        user_id,
        email: new_user.email.display,
        email_normalized: new_user.email.normalized,
        display_name: new_user.display_name,
        state: UserState::Active,
        email_verified: new_user.email_verified,
        password_hash: new_user.password_hash,
        created_at: now,
        updated_at: now,
        client_metadata: String::new(),
        client_read_only_metadata: String::new(),
        server_metadata: String::new(),
        selected_team_id: None,
        ban_reason: None,
        secondary_emails: Vec::new(),
        is_anonymous: false,
        last_active_at: None,
        version: 1,
    };
    tx.set(&index_key, user_id.as_bytes())?;
    write_user(tx, tenant, &record)?;
    record_events(
        tx,
        context,
        tenant,
        [(EventType::UserCreated, record.event_data())],
    )?;
    Ok(record)
}

/// A time-ordered id for a user created at `now`.
pub(crate) fn new_user_id(now: Timestamp) -> Uuid {
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(now.as_unix_seconds()).unwrap_or(0),
        u32::try_from(now.0.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    ))
}

/// Writes a user record.
pub fn write_user(tx: &Transaction, tenant: &str, record: &UserRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::user(tenant, record.user_id),
        &codec::encode(record)?,
    )?;
    Ok(())
}

/// Reads a user, if it exists.
pub async fn find_user(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<Option<UserRecord>> {
    match tx.get(&keyspace::user(tenant, user_id)).await? {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Reads a user or fails with `USER_NOT_FOUND`.
pub async fn read_user(tx: &Transaction, tenant: &str, user_id: Uuid) -> DomainResult<UserRecord> {
    find_user(tx, tenant, user_id)
        .await?
        .ok_or(DomainError::UserNotFound)
}

/// Finds a user by normalised email.
pub async fn find_user_by_email(
    tx: &Transaction,
    tenant: &str,
    email_normalized: &str,
) -> DomainResult<Option<UserRecord>> {
    normalize::adopt_legacy_key(tx, tenant, email_normalized).await?;
    let Some(id_bytes) = tx
        .get(&keyspace::email_index(tenant, email_normalized))
        .await?
    else {
        return Ok(None);
    };
    let user_id = Uuid::from_slice(&id_bytes)
        .map_err(|_| DomainError::Internal("corrupt email index entry".to_owned()))?;
    find_user(tx, tenant, user_id).await
}

/// Changes to apply to a user; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New email.
    pub email: Option<Email>,
    /// New name.
    pub display_name: Option<String>,
    /// New password hash (already hashed).
    pub password_hash: Option<String>,
    /// New verification flag.
    pub email_verified: Option<bool>,
    /// New client metadata.
    pub client_metadata: Option<String>,
    /// New client read-only metadata.
    pub client_read_only_metadata: Option<String>,
    /// New server metadata.
    pub server_metadata: Option<String>,
}

/// Applies `changes`, keeping the email index unique. A password change revokes every
/// session of the user.
pub async fn update_user(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    changes: UserChanges,
) -> DomainResult<UserRecord> {
    let mut record = read_user(tx, tenant, user_id).await?;
    if record.is_anonymous && (changes.email.is_some() || changes.password_hash.is_some()) {
        return Err(DomainError::invalid(
            "user_id",
            "is anonymous: upgrade it to sign it up",
        ));
    }
    if let Some(email) = changes.email {
        // The address may just have moved from a legacy key of this very user.
        if normalize::adopt_legacy_key(tx, tenant, &email.normalized).await? {
            record = read_user(tx, tenant, user_id).await?;
        }
        if email.normalized != record.email_normalized {
            let new_index = keyspace::email_index(tenant, &email.normalized);
            // One of the user's own secondary addresses becomes the primary one.
            let own = record
                .secondary_emails
                .iter()
                .position(|secondary| secondary.normalized == email.normalized)
                .map(|position| record.secondary_emails.remove(position));
            if own.is_none() && tx.get(&new_index).await?.is_some() {
                return Err(DomainError::UserEmailAlreadyExists);
            }
            tx.clear(&keyspace::email_index(tenant, &record.email_normalized))?;
            tx.set(&new_index, user_id.as_bytes())?;
            record.email_normalized = email.normalized;
            record.email_verified = own.is_some_and(|secondary| secondary.verified);
        }
        record.email = email.display;
    }
    if let Some(name) = changes.display_name {
        record.display_name = name;
    }
    if let Some(verified) = changes.email_verified {
        record.email_verified = verified;
    }
    if let Some(metadata) = changes.client_metadata {
        record.client_metadata = metadata;
    }
    if let Some(metadata) = changes.client_read_only_metadata {
        record.client_read_only_metadata = metadata;
    }
    if let Some(metadata) = changes.server_metadata {
        record.server_metadata = metadata;
    }
    if let Some(hash) = changes.password_hash {
        record.password_hash = Some(hash);
        sessions::revoke_user_sessions(
            tx,
            context,
            tenant,
            user_id,
            sessions::RevocationReason::PasswordChanged,
            None,
        )
        .await?;
    }
    record.updated_at = context.now();
    record.version += 1;
    write_user(tx, tenant, &record)?;
    record_events(
        tx,
        context,
        tenant,
        [(EventType::UserUpdated, record.event_data())],
    )?;
    Ok(record)
}

/// Sets the user's state; suspension and banning revoke every session. `ban_reason` is kept
/// while banned.
pub async fn set_user_state(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    state: UserState,
    ban_reason: Option<&str>,
) -> DomainResult<UserRecord> {
    let mut record = read_user(tx, tenant, user_id).await?;
    let ban_reason = (state == UserState::Banned).then(|| ban_reason.unwrap_or("").to_owned());
    if record.ban_reason != ban_reason {
        record.ban_reason = ban_reason;
        record.updated_at = context.now();
        record.version += 1;
        write_user(tx, tenant, &record)?;
    }
    if state != UserState::Active {
        // Its access tokens stop on every node, whether or not it had live sessions.
        sessions::liveness::note_revocation(tx, context, user_id)?;
        sessions::revoke_user_sessions(
            tx,
            context,
            tenant,
            user_id,
            if state == UserState::Banned {
                sessions::RevocationReason::UserBanned
            } else {
                sessions::RevocationReason::UserSuspended
            },
            None,
        )
        .await?;
    }
    if record.state != state {
        record.state = state;
        record.updated_at = context.now();
        record.version += 1;
        write_user(tx, tenant, &record)?;
        record_events(
            tx,
            context,
            tenant,
            [(EventType::UserUpdated, record.event_data())],
        )?;
    }
    Ok(record)
}

/// Deletes the user, its email index entry and all its sessions.
pub async fn delete_user(tx: &Transaction, tenant: &str, user_id: Uuid) -> DomainResult<()> {
    let record = read_user(tx, tenant, user_id).await?;
    sessions::delete_user_sessions(tx, tenant, user_id).await?;
    crate::domain::factors::delete_user_factors(tx, tenant, user_id).await?;
    crate::domain::upstream::links::delete_user_links(tx, tenant, user_id).await?;
    crate::domain::oidc::consent::delete_user_consents(tx, tenant, user_id).await?;
    // An anonymous user has no address and no index entry.
    if !record.email_normalized.is_empty() {
        tx.clear(&keyspace::email_index(tenant, &record.email_normalized))?;
    }
    for secondary in &record.secondary_emails {
        tx.clear(&keyspace::email_index(tenant, &secondary.normalized))?;
    }
    tx.clear(&keyspace::user(tenant, user_id))?;
    Ok(())
}

/// Where a page of users starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCursor {
    /// After this user id (listing by id).
    AfterId(Uuid),
    /// After this normalised email (email prefix search).
    AfterEmail(String),
}

/// Lists users by id, or by email when `email_prefix` is set; returns the page and the
/// cursor of the next page. Anonymous users (never in the email index) are listed by id
/// only with `include_anonymous`; a page may then hold fewer than `limit` users.
pub async fn list_users(
    tx: &Transaction,
    tenant: &str,
    email_prefix: Option<&str>,
    cursor: Option<UserCursor>,
    limit: usize,
    include_anonymous: bool,
) -> DomainResult<(Vec<UserRecord>, Option<UserCursor>)> {
    let options = RangeOptions {
        limit: Some(limit + 1),
        snapshot: true,
        ..RangeOptions::default()
    };
    match email_prefix {
        None => {
            let subspace = keyspace::users_subspace(tenant);
            let (mut begin, end) = subspace.range();
            if let Some(UserCursor::AfterId(after)) = cursor {
                begin = keyspace::user(tenant, after);
                begin.push(0x00);
            }
            let entries = tx.get_range(&begin, &end, options).await?;
            let more = entries.len() > limit;
            let read = entries
                .into_iter()
                .take(limit)
                .map(|(_, value)| codec::decode::<UserRecord>(&value).map_err(DomainError::from))
                .collect::<DomainResult<Vec<_>>>()?;
            // The cursor is the last record read, so a page of anonymous users moves on too.
            let next = more
                .then(|| read.last().map(|user| UserCursor::AfterId(user.user_id)))
                .flatten();
            let users = read
                .into_iter()
                .filter(|user| include_anonymous || !user.is_anonymous)
                .collect();
            Ok((users, next))
        }
        Some(prefix) => {
            let (mut begin, end) = keyspace::email_prefix_range(tenant, &prefix.to_lowercase());
            if let Some(UserCursor::AfterEmail(after)) = cursor {
                let mut after_key = keyspace::email_index(tenant, &after);
                after_key.push(0x00);
                begin = begin.max(after_key);
            }
            let entries = tx.get_range(&begin, &end, options).await?;
            let more = entries.len() > limit;
            let subspace = keyspace::email_index_subspace(tenant);
            let mut users = Vec::new();
            let mut last_email = None;
            for (key, id_bytes) in entries.into_iter().take(limit) {
                let (email,): (String,) = subspace
                    .unpack(&key)
                    .map_err(|_| DomainError::Internal("corrupt email index key".to_owned()))?;
                let user_id = Uuid::from_slice(&id_bytes)
                    .map_err(|_| DomainError::Internal("corrupt email index entry".to_owned()))?;
                // The index also holds further addresses; a user is listed under its primary one.
                if let Some(user) = find_user(tx, tenant, user_id).await?
                    && user.email_normalized == email
                {
                    users.push(user);
                }
                last_email = Some(email);
            }
            // The cursor is the last index entry read, so a page of further addresses still
            // moves the listing on.
            let next = more
                .then_some(last_email)
                .flatten()
                .map(UserCursor::AfterEmail);
            Ok((users, next))
        }
    }
}

/// Validates a display name for a user.
pub fn validate_user_display_name(name: &str) -> DomainResult<()> {
    validate_display_name("display_name", name, false)
}

impl UserRecord {
    /// Refuses a user who may not sign in or refresh: `USER_SUSPENDED` or `USER_BANNED`.
    pub fn ensure_may_sign_in(&self) -> DomainResult<()> {
        match self.state {
            UserState::Active => Ok(()),
            UserState::Suspended => Err(DomainError::UserSuspended),
            UserState::Banned => Err(DomainError::UserBanned),
        }
    }

    /// `data` of `user.created` and `user.updated`: public fields only, never password
    /// hashes or server metadata.
    pub fn event_data(&self) -> serde_json::Value {
        serde_json::json!({
            "user_id": self.user_id,
            "email": self.email,
            "display_name": self.display_name,
            "state": self.state.as_str(),
            "email_verified": self.email_verified,
            "is_anonymous": self.is_anonymous,
            "secondary_emails": self.secondary_emails.iter().map(|secondary| serde_json::json!({
                "email": secondary.email,
                "verified": secondary.verified,
            })).collect::<Vec<_>>(),
            "created_at": self.created_at.rfc3339(),
            "updated_at": self.updated_at.rfc3339(),
        })
    }

    /// `data` of `user.deleted`.
    pub fn deleted_event_data(&self) -> serde_json::Value {
        serde_json::json!({ "user_id": self.user_id, "email": self.email })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn metadata_must_be_a_small_json_object() {
        assert!(validate_metadata("m", "").is_ok());
        assert!(validate_metadata("m", "{\"a\":1}").is_ok());
        assert!(validate_metadata("m", "[1]").is_err());
        assert!(validate_metadata("m", "{").is_err());
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_METADATA_BYTES));
        assert!(validate_metadata("m", &big).is_err());
    }
}
