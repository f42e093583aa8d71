//! Teams, members, selected team and invitations, with the policy checked inside the same
//! transaction as the change.

use std::sync::Arc;

use gatehouse_storage::Transaction;
use uuid::Uuid;

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::permissions::{self, system};
use crate::domain::teams::{self, InvitationRecord, MembershipRecord, TeamChanges, TeamRecord};
use crate::domain::tenants::{TenantState, validate_display_name};
use crate::domain::users::{self, UserRecord, parse_email, validate_metadata};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// Checks, inside `tx`, that a client caller's user holds `wanted` in `team_id`.
/// Server and operator callers pass; the team must exist either way.
pub(crate) async fn check_team_permission(
    tx: &Transaction,
    tenant: &TenantState,
    caller: &Caller,
    team_id: Uuid,
    wanted: &str,
) -> DomainResult<()> {
    let tenant_id = tenant.tenant_id();
    teams::read_team(tx, tenant_id, team_id).await?;
    let Some(user_id) = caller.acting_user()? else {
        return Ok(());
    };
    if !teams::is_member(tx, tenant_id, team_id, user_id).await? {
        return Err(DomainError::PermissionDenied("not a member of this team"));
    }
    let direct = permissions::direct_grants(tx, tenant_id, Some(team_id), user_id).await?;
    if permissions::holds(&tenant.permissions, &direct, wanted) {
        Ok(())
    } else {
        Err(DomainError::PermissionDenied(
            "missing the team permission for this",
        ))
    }
}

impl Gatehouse {
    fn team_tenant(&self, caller: &Caller) -> DomainResult<Arc<TenantState>> {
        Ok(caller.tenant()?.clone())
    }

    /// Creates a team. A signed-in client user becomes its first member with the creator
    /// permissions; servers may name a `creator` or none.
    pub async fn create_team(
        &self,
        caller: &Caller,
        display_name: &str,
        creator: Option<&str>,
    ) -> DomainResult<TeamRecord> {
        let tenant = self.team_tenant(caller)?;
        validate_display_name("display_name", display_name, true)?;
        let creator = match caller.acting_user()? {
            Some(user) => {
                if !tenant.record.settings.client_team_creation_enabled {
                    return Err(DomainError::PermissionDenied(
                        "clients may not create teams",
                    ));
                }
                if creator.is_some_and(|named| named != user.to_string()) {
                    return Err(DomainError::PermissionDenied(
                        "a client creates teams only for itself",
                    ));
                }
                Some(user)
            }
            None => creator
                .filter(|id| !id.is_empty())
                .map(|id| super::parse_id("creator_user_id", id))
                .transpose()?,
        };
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let defaults = &tenant.record.settings.team_creator_default_permissions;
        let name = display_name.trim();
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                teams::changes::create(&tx, context, tenant_id, name, creator, defaults).await
            })
            .await
    }

    /// Reads a team (clients: members only).
    pub async fn get_team(&self, caller: &Caller, team_id: &str) -> DomainResult<TeamRecord> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        let tenant = &tenant;
        self.services
            .db
            .run(|tx| async move {
                let team = teams::read_team(&tx, tenant.tenant_id(), team_id).await?;
                if let Some(user) = caller.acting_user()?
                    && !teams::is_member(&tx, tenant.tenant_id(), team_id, user).await?
                {
                    return Err(DomainError::PermissionDenied("not a member of this team"));
                }
                Ok(team)
            })
            .await
    }

    /// Changes a team. Clients need `$update_team` and may change only the name, picture
    /// and client metadata.
    pub async fn update_team(
        &self,
        caller: &Caller,
        team_id: &str,
        changes: TeamChanges,
    ) -> DomainResult<TeamRecord> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        if let Some(name) = &changes.display_name {
            validate_display_name("display_name", name, true)?;
        }
        for (field, value) in [
            ("client_metadata_json", &changes.client_metadata),
            (
                "client_read_only_metadata_json",
                &changes.client_read_only_metadata,
            ),
            ("server_metadata_json", &changes.server_metadata),
        ] {
            if let Some(value) = value {
                validate_metadata(field, value)?;
            }
        }
        if !caller.is_trusted()
            && (changes.client_read_only_metadata.is_some() || changes.server_metadata.is_some())
        {
            return Err(DomainError::PermissionDenied(
                "clients may not change server-owned fields",
            ));
        }
        let services = &self.services;
        let (tenant, changes) = (&tenant, &changes);
        services
            .db
            .run(|tx| async move {
                check_team_permission(&tx, tenant, caller, team_id, system::UPDATE_TEAM).await?;
                let (context, changes) = (&services.context, changes.clone());
                teams::changes::update(&tx, context, tenant.tenant_id(), team_id, changes).await
            })
            .await
    }

    /// Deletes a team (clients need `$delete_team`).
    pub async fn delete_team(&self, caller: &Caller, team_id: &str) -> DomainResult<()> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        let services = &self.services;
        let tenant = &tenant;
        services
            .db
            .run(|tx| async move {
                check_team_permission(&tx, tenant, caller, team_id, system::DELETE_TEAM).await?;
                let origin = AuditOrigin::of(caller);
                let context = &services.context;
                teams::changes::delete(&tx, context, tenant.tenant_id(), team_id, &origin).await
            })
            .await
    }

    /// Teams of a user (clients: only their own; empty id means the caller).
    pub async fn list_user_teams(
        &self,
        caller: &Caller,
        user_id: &str,
    ) -> DomainResult<Vec<TeamRecord>> {
        let tenant = self.team_tenant(caller)?;
        let user_id = match (caller.acting_user()?, user_id) {
            (Some(me), "") => me,
            (Some(me), named) if named == me.to_string() => me,
            (Some(_), _) => {
                return Err(DomainError::PermissionDenied(
                    "clients list only their own teams",
                ));
            }
            (None, named) => super::parse_id("user_id", named)?,
        };
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move {
                users::read_user(&tx, tenant_id, user_id).await?;
                teams::list_user_teams(&tx, tenant_id, user_id).await
            })
            .await
    }

    /// Members of a team (clients need `$read_members`).
    pub async fn list_team_members(
        &self,
        caller: &Caller,
        team_id: &str,
    ) -> DomainResult<Vec<MembershipRecord>> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        let tenant = &tenant;
        self.services
            .db
            .run(|tx| async move {
                check_team_permission(&tx, tenant, caller, team_id, system::READ_MEMBERS).await?;
                teams::list_members(&tx, tenant.tenant_id(), team_id).await
            })
            .await
    }

    /// Adds a member directly (server and operator only; clients use invitations).
    pub async fn add_team_member(
        &self,
        caller: &Caller,
        team_id: &str,
        user_id: &str,
    ) -> DomainResult<MembershipRecord> {
        let tenant = caller.require_server()?.clone();
        let team_id = super::parse_id("team_id", team_id)?;
        let user_id = super::parse_id("user_id", user_id)?;
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let defaults = &tenant.record.settings.team_member_default_permissions;
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                teams::changes::add_member(&tx, context, tenant_id, team_id, user_id, defaults)
                    .await
            })
            .await
    }

    /// Removes a member: servers always; clients need `$remove_members`, or remove themselves.
    pub async fn remove_team_member(
        &self,
        caller: &Caller,
        team_id: &str,
        user_id: &str,
    ) -> DomainResult<()> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        let user_id = super::parse_id("user_id", user_id)?;
        let leaving_self = caller.acting_user()? == Some(user_id);
        let services = &self.services;
        let tenant = &tenant;
        services
            .db
            .run(|tx| async move {
                if !leaving_self {
                    check_team_permission(&tx, tenant, caller, team_id, system::REMOVE_MEMBERS)
                        .await?;
                }
                let context = &services.context;
                teams::changes::remove_member(&tx, context, tenant.tenant_id(), team_id, user_id)
                    .await
            })
            .await
    }

    /// Sets the caller's (client) or a user's (server) selected team; empty clears it.
    pub async fn select_team(
        &self,
        caller: &Caller,
        user_id: &str,
        team_id: &str,
    ) -> DomainResult<UserRecord> {
        let tenant = self.team_tenant(caller)?;
        let user_id = match caller.acting_user()? {
            Some(me) if user_id.is_empty() || user_id == me.to_string() => me,
            Some(_) => {
                return Err(DomainError::PermissionDenied(
                    "clients select only their own team",
                ));
            }
            None => super::parse_id("user_id", user_id)?,
        };
        let team_id = (!team_id.is_empty())
            .then(|| super::parse_id("team_id", team_id))
            .transpose()?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move { teams::select_team(&tx, tenant_id, user_id, team_id).await })
            .await
    }

    /// Invites an email address to a team (clients need `$invite_members`). The token is
    /// returned to the caller, who delivers it (email sending is not built in yet).
    pub async fn create_team_invitation(
        &self,
        caller: &Caller,
        team_id: &str,
        email: &str,
    ) -> DomainResult<(InvitationRecord, String)> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        let email = parse_email(email)?;
        let invited_by = caller.acting_user()?;
        let services = &self.services;
        let (tenant, email) = (&tenant, &email);
        services
            .db
            .run(|tx| async move {
                check_team_permission(&tx, tenant, caller, team_id, system::INVITE_MEMBERS).await?;
                let (context, tenant_id) = (&services.context, tenant.tenant_id());
                teams::changes::invite(&tx, context, tenant_id, team_id, email, invited_by).await
            })
            .await
    }

    /// Accepts an invitation: the signed-in client user, or `user_id` for servers.
    pub async fn accept_team_invitation(
        &self,
        caller: &Caller,
        token: &str,
        user_id: &str,
    ) -> DomainResult<MembershipRecord> {
        let tenant = self.team_tenant(caller)?;
        let user_id = match caller.acting_user()? {
            Some(me) => me,
            None => super::parse_id("user_id", user_id)?,
        };
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let defaults = &tenant.record.settings.team_member_default_permissions;
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                teams::changes::accept_invitation(&tx, context, tenant_id, token, user_id, defaults)
                    .await
            })
            .await
    }

    /// Revokes an invitation (clients need `$invite_members` in its team).
    pub async fn revoke_team_invitation(
        &self,
        caller: &Caller,
        invitation_id: &str,
    ) -> DomainResult<()> {
        let tenant = self.team_tenant(caller)?;
        let invitation_id = super::parse_id("invitation_id", invitation_id)?;
        let tenant = &tenant;
        self.services
            .db
            .run(|tx| async move {
                let invitation =
                    teams::read_invitation(&tx, tenant.tenant_id(), invitation_id).await?;
                check_team_permission(
                    &tx,
                    tenant,
                    caller,
                    invitation.team_id,
                    system::INVITE_MEMBERS,
                )
                .await?;
                teams::revoke_invitation(&tx, tenant.tenant_id(), invitation_id).await?;
                Ok(())
            })
            .await
    }

    /// Invitations of a team (clients need `$invite_members`).
    pub async fn list_team_invitations(
        &self,
        caller: &Caller,
        team_id: &str,
    ) -> DomainResult<Vec<InvitationRecord>> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        let tenant = &tenant;
        self.services
            .db
            .run(|tx| async move {
                check_team_permission(&tx, tenant, caller, team_id, system::INVITE_MEMBERS).await?;
                teams::list_invitations(&tx, tenant.tenant_id(), team_id).await
            })
            .await
    }
}
