//! Shares: revocable, expiring, audited grants from an owner to a recipient over a resource,
//! with a permission set, field masks, use limits and an optional proposal mode.

pub mod invitation;
pub mod proposals;
pub mod reading;
pub mod usage;

pub use proposals::{check_proposal, create_proposal, decide_proposal, list_proposals};
pub use reading::{read_through, spend_use};
pub use usage::{ShareCaller, ShareOperation, ShareUse};

use std::collections::BTreeMap;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::crypto::{random_token, sha256};
use crate::domain::keyspace;
use crate::domain::permissions::{self, PermissionGraph, system};
use crate::domain::sessions::Revocation;
use crate::domain::teams;
use crate::domain::tenants::validate_display_name;
use crate::domain::users;
use crate::error::{DomainError, DomainResult};

/// Prefix of share tokens.
pub const SHARE_TOKEN_PREFIX: &str = "gsh_";
/// Share permission over user and team records: read the masked fields.
pub const READ: &str = "read";
/// Share permission over user and team records: change the masked fields (proposal mode).
pub const UPDATE: &str = "update";

/// Who receives a share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareRecipient {
    /// A user of the tenant.
    User(Uuid),
    /// Whoever holds the token sent to this email address.
    Invitee(String),
    /// A named service holding the token.
    Service(String),
}

/// What a share is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareResource {
    /// A team's profile.
    Team(Uuid),
    /// A user's record.
    User(Uuid),
    /// An application-defined resource `kind/id`.
    App {
        /// Resource type.
        kind: String,
        /// Resource id.
        id: String,
    },
}

/// Whether recipients read only, or propose changes for the owner to approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareMode {
    /// Reads only.
    ReadOnly,
    /// Changes wait as proposals until the owner accepts or rejects them.
    Proposal,
}

/// The stored share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareRecord {
    /// Share id.
    pub share_id: Uuid,
    /// The user who granted it.
    pub owner: Uuid,
    /// Who received it.
    pub recipient: ShareRecipient,
    /// What it covers.
    pub resource: ShareResource,
    /// What it allows (`read`/`update` on records, permission ids on app resources).
    pub permissions: Vec<String>,
    /// Fields visible and changeable; empty means every shareable field.
    pub field_mask: Vec<String>,
    /// Read-only or proposal mode.
    pub mode: ShareMode,
    /// No use after this.
    pub expires_at: Option<Timestamp>,
    /// No more uses than this.
    pub max_uses: Option<u64>,
    /// Uses so far.
    pub uses: u64,
    /// Uses allowed per minute.
    pub rate_limit_per_minute: Option<u32>,
    /// SHA-256 of the share token.
    #[serde(with = "serde_bytes")]
    pub token_hash: Vec<u8>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Set once revoked.
    pub revoked: Option<Revocation>,
    /// Bumped on every change.
    pub version: u64,
}

/// State of a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalState {
    /// Waiting for the owner.
    Pending,
    /// Applied.
    Accepted,
    /// Refused.
    Rejected,
}

/// A change proposed through a share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalRecord {
    /// Proposal id.
    pub proposal_id: Uuid,
    /// Its share.
    pub share_id: Uuid,
    /// Field → new value.
    pub changes: BTreeMap<String, String>,
    /// When proposed.
    pub created_at: Timestamp,
    /// Pending, accepted or rejected.
    pub state: ProposalState,
    /// When decided.
    pub decided_at: Option<Timestamp>,
}

/// What a new share asks for, validated by [`create_share`].
#[derive(Debug, Clone)]
pub struct NewShare {
    /// Owner.
    pub owner: Uuid,
    /// Recipient.
    pub recipient: ShareRecipient,
    /// Resource.
    pub resource: ShareResource,
    /// Permission set.
    pub permissions: Vec<String>,
    /// Field mask.
    pub field_mask: Vec<String>,
    /// Mode.
    pub mode: ShareMode,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Use limit.
    pub max_uses: Option<u64>,
    /// Rate limit.
    pub rate_limit_per_minute: Option<u32>,
}

/// Fields a share can expose, per resource kind.
pub fn shareable_fields(resource: &ShareResource) -> &'static [&'static str] {
    match resource {
        ShareResource::User(_) => &[
            "user_id",
            "email",
            "display_name",
            "email_verified",
            "client_metadata",
        ],
        ShareResource::Team(_) => &[
            "team_id",
            "display_name",
            "profile_image_url",
            "client_metadata",
        ],
        ShareResource::App { .. } => &[],
    }
}

/// Checks that `owner` holds everything the share would give away.
pub async fn check_owner_holds(
    tx: &Transaction,
    graph: &PermissionGraph,
    tenant: &str,
    owner: Uuid,
    resource: &ShareResource,
    granted: &[String],
) -> DomainResult<()> {
    let denied = || DomainError::PermissionDenied("the owner does not hold what the share grants");
    match resource {
        ShareResource::User(user_id) => {
            users::read_user(tx, tenant, *user_id).await?;
            if *user_id != owner {
                return Err(denied());
            }
        }
        ShareResource::Team(team_id) => {
            teams::read_team(tx, tenant, *team_id).await?;
            if !teams::is_member(tx, tenant, *team_id, owner).await? {
                return Err(denied());
            }
            let held = permissions::direct_grants(tx, tenant, Some(*team_id), owner).await?;
            if granted.iter().any(|permission| permission == UPDATE)
                && !permissions::holds(graph, &held, system::UPDATE_TEAM)
            {
                return Err(denied());
            }
        }
        ShareResource::App { .. } => {
            let held = permissions::direct_grants(tx, tenant, None, owner).await?;
            if !granted
                .iter()
                .all(|permission| permissions::holds(graph, &held, permission))
            {
                return Err(denied());
            }
        }
    }
    Ok(())
}

fn validate_new_share(
    share: &NewShare,
    graph: &PermissionGraph,
    now: Timestamp,
) -> DomainResult<()> {
    if share.permissions.is_empty() || share.permissions.len() > 100 {
        return Err(DomainError::invalid(
            "permissions",
            "must list 1 to 100 permissions",
        ));
    }
    match &share.resource {
        ShareResource::App { kind, id } => {
            for (field, value) in [("resource_type", kind), ("resource_id", id)] {
                if value.is_empty()
                    || value.len() > 200
                    || value.chars().any(crate::domain::text::is_hidden)
                {
                    return Err(DomainError::invalid(
                        field,
                        "must be 1 to 200 printable characters",
                    ));
                }
            }
            if let Some(unknown) = share
                .permissions
                .iter()
                .find(|permission| !graph.knows(permission))
            {
                return Err(DomainError::invalid(
                    "permissions",
                    format!("unknown permission {unknown}"),
                ));
            }
            if share.mode == ShareMode::Proposal {
                return Err(DomainError::invalid(
                    "mode",
                    "proposals apply to user and team records only",
                ));
            }
        }
        resource => {
            if let Some(other) = share
                .permissions
                .iter()
                .find(|p| *p != READ && *p != UPDATE)
            {
                return Err(DomainError::invalid(
                    "permissions",
                    format!("{other} is not read or update"),
                ));
            }
            let fields = shareable_fields(resource);
            if let Some(unknown) = share
                .field_mask
                .iter()
                .find(|field| !fields.contains(&field.as_str()))
            {
                return Err(DomainError::invalid(
                    "field_mask",
                    format!("unknown field {unknown}"),
                ));
            }
            let updates = share
                .permissions
                .iter()
                .any(|permission| permission == UPDATE);
            if updates != (share.mode == ShareMode::Proposal) {
                return Err(DomainError::invalid(
                    "mode",
                    "update is granted in proposal mode, and only there",
                ));
            }
        }
    }
    if share.expires_at.is_some_and(|expiry| expiry <= now) {
        return Err(DomainError::invalid("expires_at", "must be in the future"));
    }
    if share.max_uses == Some(0) {
        return Err(DomainError::invalid("max_uses", "must be at least 1"));
    }
    if share.rate_limit_per_minute == Some(0) {
        return Err(DomainError::invalid(
            "rate_limit_per_minute",
            "must be at least 1",
        ));
    }
    if let ShareRecipient::Invitee(email) = &share.recipient {
        users::parse_email(email)?;
    }
    Ok(())
}

/// Creates a share; returns it with its token (shown once).
pub async fn create_share(
    tx: &Transaction,
    context: &Context,
    graph: &PermissionGraph,
    tenant: &str,
    share: NewShare,
) -> DomainResult<(ShareRecord, String)> {
    validate_new_share(&share, graph, context.now())?;
    users::read_user(tx, tenant, share.owner).await?;
    if let ShareRecipient::User(recipient) = share.recipient {
        users::read_user(tx, tenant, recipient).await?;
    }
    check_owner_holds(
        tx,
        graph,
        tenant,
        share.owner,
        &share.resource,
        &share.permissions,
    )
    .await?;
    let token = random_token(context, SHARE_TOKEN_PREFIX);
    let record = ShareRecord {
        share_id: uuid::Builder::from_random_bytes(context.random::<16>()).into_uuid(),
        owner: share.owner,
        recipient: share.recipient,
        resource: share.resource,
        permissions: share.permissions,
        field_mask: share.field_mask,
        mode: share.mode,
        expires_at: share.expires_at,
        max_uses: share.max_uses,
        uses: 0,
        rate_limit_per_minute: share.rate_limit_per_minute,
        token_hash: sha256(token.as_bytes()).to_vec(),
        created_at: context.now(),
        revoked: None,
        version: 1,
    };
    write_share(tx, tenant, &record)?;
    tx.set(
        &keyspace::share_by_token(tenant, &record.token_hash),
        record.share_id.as_bytes(),
    )?;
    tx.set(
        &keyspace::owner_share(tenant, record.owner, record.share_id),
        b"",
    )?;
    if let ShareRecipient::User(recipient) = record.recipient {
        tx.set(
            &keyspace::recipient_share(tenant, recipient, record.share_id),
            b"",
        )?;
    }
    Ok((record, token))
}

fn write_share(tx: &Transaction, tenant: &str, share: &ShareRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::share(tenant, share.share_id),
        &codec::encode(share)?,
    )?;
    Ok(())
}

/// Reads a share.
pub async fn read_share(
    tx: &Transaction,
    tenant: &str,
    share_id: Uuid,
) -> DomainResult<ShareRecord> {
    let bytes = tx
        .get(&keyspace::share(tenant, share_id))
        .await?
        .ok_or(DomainError::ShareNotFound)?;
    Ok(codec::decode(&bytes)?)
}

/// The share a token belongs to (without touching the share itself).
pub async fn share_id_for_token(tx: &Transaction, tenant: &str, token: &str) -> DomainResult<Uuid> {
    if !token.starts_with(SHARE_TOKEN_PREFIX) || token.len() > 128 {
        return Err(DomainError::ShareNotFound);
    }
    let bytes = tx
        .get(&keyspace::share_by_token(tenant, &sha256(token.as_bytes())))
        .await?
        .ok_or(DomainError::ShareNotFound)?;
    Uuid::from_slice(&bytes).map_err(|_| DomainError::Internal("share token index".to_owned()))
}

/// Why a share was revoked; `as_str` is the spelling stored with the share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareRevocationReason {
    /// Its owner (or a trusted caller acting for the tenant) revoked it.
    Owner,
}

impl ShareRevocationReason {
    /// Stable spelling in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareRevocationReason::Owner => "owner",
        }
    }
}

/// Revokes a share; `false` if it already was.
pub async fn revoke_share(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    share_id: Uuid,
    reason: ShareRevocationReason,
) -> DomainResult<bool> {
    let mut share = read_share(tx, tenant, share_id).await?;
    if share.revoked.is_some() {
        return Ok(false);
    }
    share.revoked = Some(Revocation {
        at: context.now(),
        reason: reason.as_str().to_owned(),
    });
    share.version += 1;
    write_share(tx, tenant, &share)?;
    Ok(true)
}

/// Saves a share after a use.
pub fn save_share(tx: &Transaction, tenant: &str, share: &ShareRecord) -> DomainResult<()> {
    write_share(tx, tenant, share)
}

/// Shares given by (`outgoing`) or to a user.
pub async fn list_user_shares(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    outgoing: bool,
) -> DomainResult<Vec<ShareRecord>> {
    let subspace = if outgoing {
        keyspace::owner_shares_subspace(tenant, user_id)
    } else {
        keyspace::recipient_shares_subspace(tenant, user_id)
    };
    let (begin, end) = subspace.range();
    let mut shares = Vec::new();
    for (key, _) in tx.get_range(&begin, &end, RangeOptions::default()).await? {
        let (share_id,): (Uuid,) = subspace
            .unpack(&key)
            .map_err(|error| DomainError::Internal(format!("share index: {error}")))?;
        shares.push(read_share(tx, tenant, share_id).await?);
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::reading::masked;
    use super::*;

    fn share(mask: &[&str]) -> ShareRecord {
        ShareRecord {
            share_id: Uuid::nil(),
            owner: Uuid::nil(),
            recipient: ShareRecipient::Service("svc".to_owned()),
            resource: ShareResource::User(Uuid::nil()),
            permissions: vec![READ.to_owned()],
            field_mask: mask.iter().map(|f| (*f).to_owned()).collect(),
            mode: ShareMode::ReadOnly,
            expires_at: Some(Timestamp(1_000)),
            max_uses: Some(2),
            uses: 0,
            rate_limit_per_minute: None,
            token_hash: Vec::new(),
            created_at: Timestamp(0),
            revoked: None,
            version: 1,
        }
    }

    #[test]
    fn masks_hide_every_field_not_listed() {
        let full =
            json!({ "user_id": "u", "email": "e@x", "display_name": "D", "password_hash": "x" });
        assert_eq!(
            masked(&share(&["display_name"]), full.clone()),
            json!({ "display_name": "D" })
        );
        let all = masked(&share(&[]), full);
        assert!(
            all.get("password_hash").is_none(),
            "never-shareable fields stay hidden"
        );
        assert_eq!(all["email"], "e@x");
    }

    #[test]
    fn uses_stop_at_the_limit_expiry_and_revocation() {
        let mut record = share(&[]);
        spend_use(&mut record, Timestamp(10)).unwrap_or_else(|error| panic!("{error}"));
        spend_use(&mut record, Timestamp(10)).unwrap_or_else(|error| panic!("{error}"));
        assert!(matches!(
            spend_use(&mut record, Timestamp(10)),
            Err(DomainError::ShareUseLimitReached)
        ));
        let mut record = share(&[]);
        assert!(matches!(
            spend_use(&mut record, Timestamp(1_000)),
            Err(DomainError::ShareExpired)
        ));
        record.revoked = Some(Revocation {
            at: Timestamp(1),
            reason: "owner".to_owned(),
        });
        assert!(matches!(
            spend_use(&mut record, Timestamp(5)),
            Err(DomainError::ShareRevoked)
        ));
    }

    #[test]
    fn proposals_respect_mode_and_mask() {
        let mut record = share(&["display_name"]);
        let change = |field: &str| BTreeMap::from([(field.to_owned(), "x".to_owned())]);
        assert!(
            check_proposal(&record, &change("display_name")).is_err(),
            "read-only share"
        );
        record.mode = ShareMode::Proposal;
        record.permissions.push(UPDATE.to_owned());
        assert!(check_proposal(&record, &change("display_name")).is_ok());
        assert!(
            check_proposal(&record, &change("client_metadata")).is_err(),
            "outside the mask"
        );
        assert!(
            check_proposal(&record, &change("email")).is_err(),
            "never changeable"
        );
    }
}
