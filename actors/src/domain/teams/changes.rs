//! Team changes as the API runs them: each makes the change and, in the same transaction,
//! writes its webhook events (and audit entry) through [`record_change`].

use gatehouse_storage::Transaction;
use serde_json::json;
use uuid::Uuid;

use crate::context::Context;
use crate::domain::api_keys;
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::outbox::EventType;
use crate::domain::teams::{self, InvitationRecord, MembershipRecord, TeamChanges, TeamRecord};
use crate::domain::users::Email;
use crate::error::DomainResult;

impl TeamRecord {
    /// `data` of `team.created` and `team.updated`.
    pub fn event_data(&self) -> serde_json::Value {
        json!({ "team_id": self.team_id, "display_name": self.display_name })
    }
}

/// Creates a team, with `creator` as its first member when named.
pub async fn create(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    display_name: &str,
    creator: Option<Uuid>,
    creator_permissions: &[String],
) -> DomainResult<TeamRecord> {
    let team = teams::create_team(
        tx,
        context,
        tenant,
        display_name,
        creator,
        creator_permissions,
    )
    .await?;
    let mut events = vec![(EventType::TeamCreated, team.event_data())];
    if creator.is_some() {
        let data = json!({ "team_id": team.team_id, "user_id": creator });
        events.push((EventType::TeamMembershipCreated, data));
    }
    record_change(tx, context, tenant, None, events).await?;
    Ok(team)
}

/// Changes a team.
pub async fn update(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    team_id: Uuid,
    changes: TeamChanges,
) -> DomainResult<TeamRecord> {
    let team = teams::update_team(tx, context, tenant, team_id, changes).await?;
    record_change(
        tx,
        context,
        tenant,
        None,
        [(EventType::TeamUpdated, team.event_data())],
    )
    .await?;
    Ok(team)
}

/// Deletes a team with its memberships, grants and invitations; audited for `origin`.
pub async fn delete(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    team_id: Uuid,
    origin: &AuditOrigin,
) -> DomainResult<()> {
    teams::delete_team(tx, tenant, team_id).await?;
    api_keys::delete_owner_keys(tx, tenant, api_keys::KeyOwner::Team(team_id)).await?;
    let audit = origin.event(
        AuditAction::TeamDelete,
        format!("team:{team_id}"),
        json!({}),
    );
    let events = [(EventType::TeamDeleted, json!({ "team_id": team_id }))];
    record_change(tx, context, tenant, Some(audit), events).await
}

/// Adds a member with the tenant's default member permissions.
pub async fn add_member(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    team_id: Uuid,
    user_id: Uuid,
    default_permissions: &[String],
) -> DomainResult<MembershipRecord> {
    let membership =
        teams::add_member(tx, context, tenant, team_id, user_id, default_permissions).await?;
    let data = json!({ "team_id": team_id, "user_id": user_id });
    record_change(
        tx,
        context,
        tenant,
        None,
        [(EventType::TeamMembershipCreated, data)],
    )
    .await?;
    Ok(membership)
}

/// Removes a member.
pub async fn remove_member(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    team_id: Uuid,
    user_id: Uuid,
) -> DomainResult<()> {
    teams::remove_member(tx, tenant, team_id, user_id).await?;
    let data = json!({ "team_id": team_id, "user_id": user_id });
    record_change(
        tx,
        context,
        tenant,
        None,
        [(EventType::TeamMembershipDeleted, data)],
    )
    .await
}

/// Invites `email` to a team; returns the invitation with its token (shown once).
pub async fn invite(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    team_id: Uuid,
    email: &Email,
    invited_by: Option<Uuid>,
) -> DomainResult<(InvitationRecord, String)> {
    let (invitation, token) =
        teams::create_invitation(tx, context, tenant, team_id, email, invited_by).await?;
    let data = json!({
        "team_id": team_id,
        "invitation_id": invitation.invitation_id,
        "email": invitation.email,
    });
    record_change(
        tx,
        context,
        tenant,
        None,
        [(EventType::TeamInvitationCreated, data)],
    )
    .await?;
    Ok((invitation, token))
}

/// Accepts an invitation for `user_id`, who becomes a member.
pub async fn accept_invitation(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    token: &str,
    user_id: Uuid,
    member_permissions: &[String],
) -> DomainResult<MembershipRecord> {
    let (invitation, membership) =
        teams::accept_invitation(tx, context, tenant, token, user_id, member_permissions).await?;
    let data = json!({
        "team_id": invitation.team_id,
        "invitation_id": invitation.invitation_id,
        "user_id": user_id,
    });
    record_change(
        tx,
        context,
        tenant,
        None,
        [(EventType::TeamInvitationAccepted, data)],
    )
    .await?;
    Ok(membership)
}
