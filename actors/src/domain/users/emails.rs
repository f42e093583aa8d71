//! A user's secondary addresses: add (claiming the address in the tenant's email index, so
//! it is unique across primary and secondary addresses), verify (through the verification
//! code flow), make primary, remove. Changing one's email is: add, verify, make primary,
//! remove the old one.

use gatehouse_storage::Transaction;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Email, UserRecord, read_user, write_user};
use crate::context::{Context, Timestamp};
use crate::domain::change::record_events;
use crate::domain::keyspace;
use crate::domain::outbox::EventType;
use crate::error::{DomainError, DomainResult};

/// Most secondary addresses per user.
pub const MAX_SECONDARY_EMAILS: usize = 10;

/// One secondary address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondaryEmail {
    /// As written to (see [`super::normalize`]).
    pub email: String,
    /// Normalised; its email-index key.
    pub normalized: String,
    /// Whether the user proved they read it.
    pub verified: bool,
    /// When it was added.
    pub added_at: Timestamp,
}

/// Which of a user's addresses `normalized` is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressOf {
    /// The primary address, verified or not.
    Primary {
        /// Whether it is verified.
        verified: bool,
    },
    /// A secondary address.
    Secondary {
        /// Whether it is verified.
        verified: bool,
    },
    /// Not one of the user's addresses.
    None,
}

impl UserRecord {
    /// Which of this user's addresses `normalized` is.
    pub fn address(&self, normalized: &str) -> AddressOf {
        if self.email_normalized == normalized {
            return AddressOf::Primary {
                verified: self.email_verified,
            };
        }
        self.secondary_emails
            .iter()
            .find(|secondary| secondary.normalized == normalized)
            .map_or(AddressOf::None, |secondary| AddressOf::Secondary {
                verified: secondary.verified,
            })
    }

    /// The address keyed `normalized` as it is stored (primary or secondary): where mail
    /// for it goes.
    pub fn stored_address(&self, normalized: &str) -> Option<&str> {
        if self.email_normalized == normalized {
            return Some(&self.email);
        }
        self.secondary_emails
            .iter()
            .find(|secondary| secondary.normalized == normalized)
            .map(|secondary| secondary.email.as_str())
    }

    /// Marks `normalized` (primary or secondary) verified; whether anything changed.
    pub fn mark_address_verified(&mut self, normalized: &str) -> bool {
        if self.email_normalized == normalized {
            return !std::mem::replace(&mut self.email_verified, true);
        }
        self.secondary_emails
            .iter_mut()
            .find(|secondary| secondary.normalized == normalized)
            .is_some_and(|secondary| !std::mem::replace(&mut secondary.verified, true))
    }
}

fn not_theirs() -> DomainError {
    DomainError::invalid("email", "is not one of the user's addresses")
}

fn changed(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    mut user: UserRecord,
) -> DomainResult<UserRecord> {
    user.updated_at = context.now();
    user.version += 1;
    write_user(tx, tenant, &user)?;
    record_events(
        tx,
        context,
        tenant,
        [(EventType::UserUpdated, user.event_data())],
    )?;
    Ok(user)
}

/// Adds an unverified secondary address; `USER_EMAIL_ALREADY_EXISTS` when any user of the
/// tenant (this one included) already has it.
pub async fn add_email(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    email: &Email,
) -> DomainResult<UserRecord> {
    let mut user = read_user(tx, tenant, user_id).await?;
    if user.is_anonymous {
        return Err(DomainError::invalid(
            "user_id",
            "is anonymous: upgrade it first",
        ));
    }
    if user.secondary_emails.len() >= MAX_SECONDARY_EMAILS {
        return Err(DomainError::invalid(
            "email",
            format!("a user may have at most {MAX_SECONDARY_EMAILS} further addresses"),
        ));
    }
    super::normalize::adopt_legacy_key(tx, tenant, &email.normalized).await?;
    let index = keyspace::email_index(tenant, &email.normalized);
    if tx.get(&index).await?.is_some() {
        return Err(DomainError::UserEmailAlreadyExists);
    }
    tx.set(&index, user_id.as_bytes())?;
    user.secondary_emails.push(SecondaryEmail {
        email: email.display.clone(),
        normalized: email.normalized.clone(),
        verified: false,
        added_at: context.now(),
    });
    changed(tx, context, tenant, user)
}

/// Removes a secondary address and its index entry (and any code sent to it). The primary
/// address cannot be removed.
pub async fn remove_email(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    normalized: &str,
) -> DomainResult<UserRecord> {
    let mut user = read_user(tx, tenant, user_id).await?;
    match user.address(normalized) {
        AddressOf::Primary { .. } => {
            return Err(DomainError::invalid(
                "email",
                "is the primary address; make another address primary first",
            ));
        }
        AddressOf::None => return Err(not_theirs()),
        AddressOf::Secondary { .. } => {}
    }
    user.secondary_emails
        .retain(|secondary| secondary.normalized != normalized);
    tx.clear(&keyspace::email_index(tenant, normalized))?;
    tx.clear(&keyspace::email_code(tenant, "verification", normalized))?;
    changed(tx, context, tenant, user)
}

/// Makes a verified secondary address the primary one; the old primary becomes secondary.
pub async fn make_primary(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    normalized: &str,
) -> DomainResult<UserRecord> {
    let mut user = read_user(tx, tenant, user_id).await?;
    match user.address(normalized) {
        AddressOf::Primary { .. } => return Ok(user),
        AddressOf::None => return Err(not_theirs()),
        AddressOf::Secondary { verified: false } => {
            return Err(DomainError::invalid(
                "email",
                "must be verified before it becomes the primary address",
            ));
        }
        AddressOf::Secondary { verified: true } => {}
    }
    let position = user
        .secondary_emails
        .iter()
        .position(|secondary| secondary.normalized == normalized)
        .ok_or_else(not_theirs)?;
    let promoted = user.secondary_emails.remove(position);
    let demoted = SecondaryEmail {
        email: std::mem::replace(&mut user.email, promoted.email),
        normalized: std::mem::replace(&mut user.email_normalized, promoted.normalized),
        verified: std::mem::replace(&mut user.email_verified, true),
        added_at: promoted.added_at,
    };
    user.secondary_emails.insert(position, demoted);
    changed(tx, context, tenant, user)
}
