//! Links between upstream accounts and users: one per user and provider, with the unique
//! index `(provider, issuer, subject) → user` that upstream sign-in looks up. A subject is
//! unique only at its issuer, so a provider id pointed at another issuer (updated, or deleted
//! and created again) finds none of the old links. Linking and unlinking
//! are audited (`user.oauth_link`, `user.oauth_unlink`) and sent (`user.oauth_linked`,
//! `user.oauth_unlinked`); deleting a user deletes its links and connected tokens.

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::tokens::{Account, TokenRecord};
use crate::context::{Context, Timestamp};
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::keyspace;
use crate::domain::outbox::EventType;
use crate::domain::{factors, users};
use crate::error::{DomainError, DomainResult};

/// A user's link with one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// The provider.
    pub provider_id: String,
    /// The provider's issuer when linked; the subject is unique only there.
    pub issuer: String,
    /// The provider's subject.
    pub subject: String,
    /// The upstream email at the last sign-in (empty if none).
    pub email: String,
    /// When linked.
    pub linked_at: Timestamp,
    /// Last sign-in through it.
    pub last_sign_in_at: Option<Timestamp>,
}

/// A link with its connected account's state, as listed.
#[derive(Debug, Clone)]
pub struct LinkView {
    /// The link.
    pub link: LinkRecord,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
}

/// The user linked to an upstream account, if any.
pub async fn linked_user(
    tx: &Transaction,
    tenant: &str,
    provider_id: &str,
    issuer: &str,
    subject: &str,
) -> DomainResult<Option<Uuid>> {
    match tx
        .get(&keyspace::oauth_link_index(
            tenant,
            provider_id,
            issuer,
            subject,
        ))
        .await?
    {
        Some(bytes) => Uuid::from_slice(&bytes)
            .map(Some)
            .map_err(|_| DomainError::Internal("corrupt upstream link index".to_owned())),
        None => Ok(None),
    }
}

/// A user's link with `provider_id`, if any.
pub async fn read_link(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    provider_id: &str,
) -> DomainResult<Option<LinkRecord>> {
    match tx
        .get(&keyspace::oauth_link(tenant, user_id, provider_id))
        .await?
    {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Writes a link record (its index entry is written by [`link`]).
pub fn write_link(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    record: &LinkRecord,
) -> DomainResult<()> {
    tx.set(
        &keyspace::oauth_link(tenant, user_id, &record.provider_id),
        &codec::encode(record)?,
    )?;
    Ok(())
}

/// Every link of a user, by provider id.
pub async fn user_links(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<Vec<LinkRecord>> {
    let (begin, end) = keyspace::oauth_links_subspace(tenant, user_id).range();
    tx.get_range(&begin, &end, RangeOptions::default())
        .await?
        .into_iter()
        .map(|(_, bytes)| codec::decode(&bytes).map_err(DomainError::from))
        .collect()
}

/// A user's links with their connected accounts' scopes and refresh state.
pub async fn list(tx: &Transaction, tenant: &str, user_id: Uuid) -> DomainResult<Vec<LinkView>> {
    users::read_user(tx, tenant, user_id).await?;
    let mut views = Vec::new();
    for link in user_links(tx, tenant, user_id).await? {
        let account = Account {
            tenant,
            user_id,
            provider_id: &link.provider_id,
        };
        let tokens: Option<TokenRecord> = account.read(tx).await?;
        views.push(LinkView {
            scopes: tokens
                .as_ref()
                .map(|tokens| tokens.scopes.clone())
                .unwrap_or_default(),
            has_refresh_token: tokens.as_ref().is_some_and(TokenRecord::has_refresh_token),
            link,
        });
    }
    Ok(views)
}

/// Links `(provider, issuer, subject)` to `user_id` (`OAUTH_ACCOUNT_LINKED_ELSEWHERE` when another
/// user has it). A user's earlier link with the provider (another subject) is replaced; the
/// same link again only updates its email. A new link is audited as `user.oauth_link`, `user.oauth_linked` sent; returns the stored link.
#[allow(clippy::too_many_arguments)]
pub async fn link(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    provider_id: &str,
    issuer: &str,
    subject: &str,
    email: &str,
    origin: &AuditOrigin,
) -> DomainResult<LinkRecord> {
    match linked_user(tx, tenant, provider_id, issuer, subject).await? {
        Some(other) if other != user_id => return Err(DomainError::OAuthAccountLinkedElsewhere),
        _ => {}
    }
    let now = context.now();
    match read_link(tx, tenant, user_id, provider_id).await? {
        Some(mut previous) if previous.subject == subject && previous.issuer == issuer => {
            // Linked again (for more scopes, say): the same link, not a new one.
            previous.email = email.to_owned();
            write_link(tx, tenant, user_id, &previous)?;
            return Ok(previous);
        }
        Some(previous) => tx.clear(&keyspace::oauth_link_index(
            tenant,
            provider_id,
            &previous.issuer,
            &previous.subject,
        ))?,
        None => {}
    }
    let record = LinkRecord {
        provider_id: provider_id.to_owned(),
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        email: email.to_owned(),
        linked_at: now,
        last_sign_in_at: None,
    };
    tx.set(
        &keyspace::oauth_link_index(tenant, provider_id, issuer, subject),
        user_id.as_bytes(),
    )?;
    write_link(tx, tenant, user_id, &record)?;
    let data = json!({ "user_id": user_id, "provider_id": provider_id, "subject": subject });
    let audit = origin.event(
        AuditAction::UserOAuthLink,
        format!("user:{user_id}"),
        data.clone(),
    );
    record_change(
        tx,
        context,
        tenant,
        Some(audit),
        [(EventType::UserOAuthLinked, data)],
    )
    .await?;
    Ok(record)
}

/// Removes a user's link with `provider_id` and its connected tokens:
/// `OAUTH_ACCOUNT_NOT_LINKED` when there is none, `OAUTH_LAST_SIGN_IN_METHOD` when the user
/// has no password, no passkey and no other link. Audited as `user.oauth_unlink`,
/// `user.oauth_unlinked` sent.
pub async fn unlink(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    provider_id: &str,
    origin: &AuditOrigin,
) -> DomainResult<()> {
    let user = users::read_user(tx, tenant, user_id).await?;
    let record = read_link(tx, tenant, user_id, provider_id)
        .await?
        .ok_or(DomainError::OAuthAccountNotLinked)?;
    let other_links = user_links(tx, tenant, user_id)
        .await?
        .iter()
        .any(|link| link.provider_id != provider_id);
    if user.password_hash.is_none()
        && !other_links
        && !factors::has_passkey(tx, tenant, user_id).await?
    {
        return Err(DomainError::OAuthLastSignInMethod);
    }
    remove(tx, tenant, user_id, &record)?;
    let data = json!({ "user_id": user_id, "provider_id": provider_id, "subject": record.subject });
    let audit = origin.event(
        AuditAction::UserOAuthUnlink,
        format!("user:{user_id}"),
        data.clone(),
    );
    record_change(
        tx,
        context,
        tenant,
        Some(audit),
        [(EventType::UserOAuthUnlinked, data)],
    )
    .await
}

fn remove(tx: &Transaction, tenant: &str, user_id: Uuid, record: &LinkRecord) -> DomainResult<()> {
    tx.clear(&keyspace::oauth_link_index(
        tenant,
        &record.provider_id,
        &record.issuer,
        &record.subject,
    ))?;
    tx.clear(&keyspace::oauth_link(tenant, user_id, &record.provider_id))?;
    Account {
        tenant,
        user_id,
        provider_id: &record.provider_id,
    }
    .delete(tx)
}

/// Deletes every link and connected account of a user that is being deleted, in its
/// transaction.
pub async fn delete_user_links(tx: &Transaction, tenant: &str, user_id: Uuid) -> DomainResult<()> {
    for record in user_links(tx, tenant, user_id).await? {
        remove(tx, tenant, user_id, &record)?;
    }
    let (begin, end) = keyspace::oauth_tokens_subspace(tenant, user_id).range();
    tx.clear_range(&begin, &end)?;
    Ok(())
}
