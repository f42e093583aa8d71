//! Teams, memberships, a user's selected team, and email invitations.

pub mod changes;

use std::time::Duration;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::crypto::{constant_time_eq, random_token, sha256};
use crate::domain::keyspace;
use crate::domain::permissions;
use crate::domain::users::{self, Email};
use crate::error::{DomainError, DomainResult};

/// Prefix of invitation tokens.
pub const INVITATION_TOKEN_PREFIX: &str = "gti_";
/// Default invitation lifetime.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The stored team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRecord {
    /// Team id.
    pub team_id: Uuid,
    /// Human name.
    pub display_name: String,
    /// Profile picture URL.
    #[serde(default)]
    pub profile_image_url: String,
    /// JSON object readable and writable by members' clients.
    #[serde(default)]
    pub client_metadata: String,
    /// JSON object readable by clients, written by servers.
    #[serde(default)]
    pub client_read_only_metadata: String,
    /// JSON object for servers only.
    #[serde(default)]
    pub server_metadata: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Bumped on every change.
    pub version: u64,
}

/// A user's membership in a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipRecord {
    /// Team.
    pub team_id: Uuid,
    /// Member.
    pub user_id: Uuid,
    /// When they joined.
    pub joined_at: Timestamp,
}

/// An invitation to join a team by email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvitationRecord {
    /// Invitation id.
    pub invitation_id: Uuid,
    /// Team to join.
    pub team_id: Uuid,
    /// Invited address, normalised.
    pub email: String,
    /// SHA-256 of the token.
    #[serde(with = "serde_bytes")]
    pub token_hash: Vec<u8>,
    /// Creation time.
    pub created_at: Timestamp,
    /// No use after this.
    pub expires_at: Timestamp,
    /// Who invited, if a user did.
    pub invited_by: Option<Uuid>,
    /// Who accepted it, once used.
    pub accepted_by: Option<Uuid>,
    /// Set when revoked.
    pub revoked: bool,
}

/// Changes to a team; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TeamChanges {
    /// New name.
    pub display_name: Option<String>,
    /// New picture URL.
    pub profile_image_url: Option<String>,
    /// New client metadata.
    pub client_metadata: Option<String>,
    /// New client read-only metadata.
    pub client_read_only_metadata: Option<String>,
    /// New server metadata.
    pub server_metadata: Option<String>,
}

fn write_team(tx: &Transaction, tenant: &str, team: &TeamRecord) -> DomainResult<()> {
    tx.set(&keyspace::team(tenant, team.team_id), &codec::encode(team)?)?;
    Ok(())
}

/// Reads a team or fails with `TEAM_NOT_FOUND`.
pub async fn read_team(tx: &Transaction, tenant: &str, team_id: Uuid) -> DomainResult<TeamRecord> {
    let bytes = tx
        .get(&keyspace::team(tenant, team_id))
        .await?
        .ok_or(DomainError::TeamNotFound)?;
    Ok(codec::decode(&bytes)?)
}

/// Creates a team; a creating user becomes a member with `creator_permissions`.
pub async fn create_team(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    display_name: &str,
    creator: Option<Uuid>,
    creator_permissions: &[String],
) -> DomainResult<TeamRecord> {
    let now = context.now();
    let team = TeamRecord {
        team_id: uuid::Builder::from_random_bytes(context.random::<16>()).into_uuid(),
        display_name: display_name.to_owned(),
        profile_image_url: String::new(),
        client_metadata: String::new(),
        client_read_only_metadata: String::new(),
        server_metadata: String::new(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    write_team(tx, tenant, &team)?;
    if let Some(user_id) = creator {
        add_member(
            tx,
            context,
            tenant,
            team.team_id,
            user_id,
            creator_permissions,
        )
        .await?;
    }
    Ok(team)
}

/// Applies changes to a team.
pub async fn update_team(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    team_id: Uuid,
    changes: TeamChanges,
) -> DomainResult<TeamRecord> {
    let mut team = read_team(tx, tenant, team_id).await?;
    if let Some(name) = changes.display_name {
        team.display_name = name;
    }
    if let Some(url) = changes.profile_image_url {
        team.profile_image_url = url;
    }
    if let Some(metadata) = changes.client_metadata {
        team.client_metadata = metadata;
    }
    if let Some(metadata) = changes.client_read_only_metadata {
        team.client_read_only_metadata = metadata;
    }
    if let Some(metadata) = changes.server_metadata {
        team.server_metadata = metadata;
    }
    team.updated_at = context.now();
    team.version += 1;
    write_team(tx, tenant, &team)?;
    Ok(team)
}

/// Deletes a team with its memberships, team-scoped grants and invitations.
pub async fn delete_team(tx: &Transaction, tenant: &str, team_id: Uuid) -> DomainResult<()> {
    read_team(tx, tenant, team_id).await?;
    for member in list_members(tx, tenant, team_id).await? {
        tx.clear(&keyspace::user_team(tenant, member.user_id, team_id))?;
        permissions::clear_team_grants(tx, tenant, team_id, member.user_id).await?;
        clear_selected_team(tx, tenant, member.user_id, team_id).await?;
    }
    let (begin, end) = keyspace::members_subspace(tenant, team_id).range();
    tx.clear_range(&begin, &end)?;
    let invitations = keyspace::team_invitations_subspace(tenant, team_id);
    let (begin, end) = invitations.range();
    for (key, _) in tx.get_range(&begin, &end, RangeOptions::default()).await? {
        let (invitation_id,): (Uuid,) = invitations
            .unpack(&key)
            .map_err(|error| DomainError::Internal(format!("invitation index: {error}")))?;
        if let Some(bytes) = tx.get(&keyspace::invitation(tenant, invitation_id)).await? {
            let invitation: InvitationRecord = codec::decode(&bytes)?;
            tx.clear(&keyspace::invitation_by_token(
                tenant,
                &invitation.token_hash,
            ))?;
        }
        tx.clear(&keyspace::invitation(tenant, invitation_id))?;
    }
    tx.clear_range(&begin, &end)?;
    tx.clear(&keyspace::team(tenant, team_id))?;
    Ok(())
}

/// Whether `user_id` is a member of `team_id`.
pub async fn is_member(
    tx: &Transaction,
    tenant: &str,
    team_id: Uuid,
    user_id: Uuid,
) -> DomainResult<bool> {
    Ok(tx
        .get(&keyspace::member(tenant, team_id, user_id))
        .await?
        .is_some())
}

/// Adds a member with `default_permissions` granted in the team.
pub async fn add_member(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    team_id: Uuid,
    user_id: Uuid,
    default_permissions: &[String],
) -> DomainResult<MembershipRecord> {
    read_team(tx, tenant, team_id).await?;
    users::read_user(tx, tenant, user_id).await?;
    if is_member(tx, tenant, team_id, user_id).await? {
        return Err(DomainError::TeamMembershipAlreadyExists);
    }
    let membership = MembershipRecord {
        team_id,
        user_id,
        joined_at: context.now(),
    };
    tx.set(
        &keyspace::member(tenant, team_id, user_id),
        &codec::encode(&membership)?,
    )?;
    tx.set(&keyspace::user_team(tenant, user_id, team_id), b"")?;
    for permission in default_permissions {
        permissions::grant(tx, tenant, Some(team_id), user_id, permission).await?;
    }
    Ok(membership)
}

/// Removes a member and everything they held in the team.
pub async fn remove_member(
    tx: &Transaction,
    tenant: &str,
    team_id: Uuid,
    user_id: Uuid,
) -> DomainResult<()> {
    if !is_member(tx, tenant, team_id, user_id).await? {
        return Err(DomainError::TeamMembershipNotFound);
    }
    tx.clear(&keyspace::member(tenant, team_id, user_id))?;
    tx.clear(&keyspace::user_team(tenant, user_id, team_id))?;
    permissions::clear_team_grants(tx, tenant, team_id, user_id).await?;
    clear_selected_team(tx, tenant, user_id, team_id).await
}

async fn clear_selected_team(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    team_id: Uuid,
) -> DomainResult<()> {
    if let Some(mut user) = users::find_user(tx, tenant, user_id).await?
        && user.selected_team_id == Some(team_id)
    {
        user.selected_team_id = None;
        user.version += 1;
        users::write_user(tx, tenant, &user)?;
    }
    Ok(())
}

/// Members of a team.
pub async fn list_members(
    tx: &Transaction,
    tenant: &str,
    team_id: Uuid,
) -> DomainResult<Vec<MembershipRecord>> {
    let (begin, end) = keyspace::members_subspace(tenant, team_id).range();
    tx.get_range(&begin, &end, RangeOptions::default())
        .await?
        .into_iter()
        .map(|(_, value)| codec::decode(&value).map_err(DomainError::from))
        .collect()
}

/// Teams a user belongs to.
pub async fn list_user_teams(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<Vec<TeamRecord>> {
    let subspace = keyspace::user_teams_subspace(tenant, user_id);
    let (begin, end) = subspace.range();
    let mut teams = Vec::new();
    for (key, _) in tx.get_range(&begin, &end, RangeOptions::default()).await? {
        let (team_id,): (Uuid,) = subspace
            .unpack(&key)
            .map_err(|error| DomainError::Internal(format!("user team index: {error}")))?;
        teams.push(read_team(tx, tenant, team_id).await?);
    }
    Ok(teams)
}

/// Sets (or clears) the user's selected team; the user must be a member.
pub async fn select_team(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    team_id: Option<Uuid>,
) -> DomainResult<users::UserRecord> {
    let mut user = users::read_user(tx, tenant, user_id).await?;
    if let Some(team_id) = team_id
        && !is_member(tx, tenant, team_id, user_id).await?
    {
        return Err(DomainError::TeamMembershipNotFound);
    }
    user.selected_team_id = team_id;
    user.version += 1;
    users::write_user(tx, tenant, &user)?;
    Ok(user)
}

/// Creates an invitation; returns it with its single-use token.
pub async fn create_invitation(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    team_id: Uuid,
    email: &Email,
    invited_by: Option<Uuid>,
) -> DomainResult<(InvitationRecord, String)> {
    read_team(tx, tenant, team_id).await?;
    let token = random_token(context, INVITATION_TOKEN_PREFIX);
    let now = context.now();
    let invitation = InvitationRecord {
        invitation_id: uuid::Builder::from_random_bytes(context.random::<16>()).into_uuid(),
        team_id,
        email: email.normalized.clone(),
        token_hash: sha256(token.as_bytes()).to_vec(),
        created_at: now,
        expires_at: now.plus(INVITATION_TTL),
        invited_by,
        accepted_by: None,
        revoked: false,
    };
    write_invitation(tx, tenant, &invitation)?;
    tx.set(
        &keyspace::invitation_by_token(tenant, &invitation.token_hash),
        invitation.invitation_id.as_bytes(),
    )?;
    tx.set(
        &keyspace::team_invitation(tenant, team_id, invitation.invitation_id),
        b"",
    )?;
    Ok((invitation, token))
}

fn write_invitation(
    tx: &Transaction,
    tenant: &str,
    invitation: &InvitationRecord,
) -> DomainResult<()> {
    tx.set(
        &keyspace::invitation(tenant, invitation.invitation_id),
        &codec::encode(invitation)?,
    )?;
    Ok(())
}

/// Reads an invitation by id.
pub async fn read_invitation(
    tx: &Transaction,
    tenant: &str,
    invitation_id: Uuid,
) -> DomainResult<InvitationRecord> {
    let bytes = tx
        .get(&keyspace::invitation(tenant, invitation_id))
        .await?
        .ok_or(DomainError::InvitationInvalid("unknown invitation"))?;
    Ok(codec::decode(&bytes)?)
}

/// Accepts an invitation for `user_id`, whose email must be the invited one. Single use.
pub async fn accept_invitation(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    token: &str,
    user_id: Uuid,
    member_permissions: &[String],
) -> DomainResult<(InvitationRecord, MembershipRecord)> {
    if token.is_empty() || token.len() > 128 {
        return Err(DomainError::invalid("token", "is not an invitation token"));
    }
    let hash = sha256(token.as_bytes());
    let id_bytes = tx
        .get(&keyspace::invitation_by_token(tenant, &hash))
        .await?
        .ok_or(DomainError::InvitationInvalid("unknown invitation"))?;
    let invitation_id = Uuid::from_slice(&id_bytes)
        .map_err(|_| DomainError::Internal("invitation index".to_owned()))?;
    let mut invitation = read_invitation(tx, tenant, invitation_id).await?;
    if !constant_time_eq(&invitation.token_hash, &hash) {
        return Err(DomainError::InvitationInvalid("unknown invitation"));
    }
    if invitation.revoked {
        return Err(DomainError::InvitationInvalid("revoked"));
    }
    if invitation.accepted_by.is_some() {
        return Err(DomainError::InvitationInvalid("already used"));
    }
    if context.now() >= invitation.expires_at {
        return Err(DomainError::InvitationInvalid("expired"));
    }
    let user = users::read_user(tx, tenant, user_id).await?;
    // An invitation written before NFC and IDNA holds its address's old key.
    let invited = users::parse_email(&invitation.email).map(|email| email.normalized);
    if user.email_normalized != invitation.email
        && invited.ok() != Some(user.email_normalized.clone())
    {
        return Err(DomainError::InvitationInvalid(
            "it was sent to another email address",
        ));
    }
    let membership = add_member(
        tx,
        context,
        tenant,
        invitation.team_id,
        user_id,
        member_permissions,
    )
    .await?;
    invitation.accepted_by = Some(user_id);
    write_invitation(tx, tenant, &invitation)?;
    Ok((invitation, membership))
}

/// Revokes an unused invitation.
pub async fn revoke_invitation(
    tx: &Transaction,
    tenant: &str,
    invitation_id: Uuid,
) -> DomainResult<InvitationRecord> {
    let mut invitation = read_invitation(tx, tenant, invitation_id).await?;
    invitation.revoked = true;
    write_invitation(tx, tenant, &invitation)?;
    Ok(invitation)
}

/// Invitations of a team.
pub async fn list_invitations(
    tx: &Transaction,
    tenant: &str,
    team_id: Uuid,
) -> DomainResult<Vec<InvitationRecord>> {
    let subspace = keyspace::team_invitations_subspace(tenant, team_id);
    let (begin, end) = subspace.range();
    let mut invitations = Vec::new();
    for (key, _) in tx.get_range(&begin, &end, RangeOptions::default()).await? {
        let (invitation_id,): (Uuid,) = subspace
            .unpack(&key)
            .map_err(|error| DomainError::Internal(format!("invitation index: {error}")))?;
        invitations.push(read_invitation(tx, tenant, invitation_id).await?);
    }
    Ok(invitations)
}
