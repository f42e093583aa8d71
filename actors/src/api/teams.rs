//! Teams, members, selected team and invitations, with the policy checked inside the same
//! transaction as the change.

use std::sync::Arc;

use crate::access::Caller;
use crate::api::policy::Policy;
use crate::domain::audit::AuditOrigin;
use crate::domain::permissions::system;
use crate::domain::teams::{self, InvitationRecord, MembershipRecord, TeamChanges, TeamRecord};
use crate::domain::tenants::{TenantState, validate_display_name};
use crate::domain::users::{self, UserRecord, parse_email, validate_metadata};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

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
        let tenant_id = tenant.tenant_id();
        self.transact(
            &tenant,
            caller,
            Policy::TeamMember { team_id },
            |tx| async move { teams::read_team(&tx, tenant_id, team_id).await },
        )
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
        let (context, tenant_id, changes) = (&self.services.context, tenant.tenant_id(), &changes);
        let policy = Policy::TeamPermission {
            team_id,
            permission: system::UPDATE_TEAM,
        };
        self.transact(&tenant, caller, policy, |tx| async move {
            teams::changes::update(&tx, context, tenant_id, team_id, changes.clone()).await
        })
        .await
    }

    /// Deletes a team (clients need `$delete_team`).
    pub async fn delete_team(&self, caller: &Caller, team_id: &str) -> DomainResult<()> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        let (context, tenant_id, origin) = (
            &self.services.context,
            tenant.tenant_id(),
            &AuditOrigin::of(caller),
        );
        let policy = Policy::TeamPermission {
            team_id,
            permission: system::DELETE_TEAM,
        };
        self.transact(&tenant, caller, policy, |tx| async move {
            teams::changes::delete(&tx, context, tenant_id, team_id, origin).await
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
        let tenant_id = tenant.tenant_id();
        let policy = Policy::TeamPermission {
            team_id,
            permission: system::READ_MEMBERS,
        };
        self.transact(&tenant, caller, policy, |tx| async move {
            teams::list_members(&tx, tenant_id, team_id).await
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
        // A member may always leave; removing someone else takes the team permission.
        let policy = if leaving_self {
            Policy::Open
        } else {
            Policy::TeamPermission {
                team_id,
                permission: system::REMOVE_MEMBERS,
            }
        };
        let (context, tenant_id) = (&self.services.context, tenant.tenant_id());
        self.transact(&tenant, caller, policy, |tx| async move {
            teams::changes::remove_member(&tx, context, tenant_id, team_id, user_id).await
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
        let (context, tenant_id, email) = (&self.services.context, tenant.tenant_id(), &email);
        let policy = Policy::TeamPermission {
            team_id,
            permission: system::INVITE_MEMBERS,
        };
        self.transact(&tenant, caller, policy, |tx| async move {
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
        let tenant_id = tenant.tenant_id();
        let policy = Policy::InvitationTeamPermission {
            invitation_id,
            permission: system::INVITE_MEMBERS,
        };
        self.transact(&tenant, caller, policy, |tx| async move {
            teams::revoke_invitation(&tx, tenant_id, invitation_id).await
        })
        .await
        .map(|_| ())
    }

    /// Invitations of a team (clients need `$invite_members`).
    pub async fn list_team_invitations(
        &self,
        caller: &Caller,
        team_id: &str,
    ) -> DomainResult<Vec<InvitationRecord>> {
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", team_id)?;
        let tenant_id = tenant.tenant_id();
        let policy = Policy::TeamPermission {
            team_id,
            permission: system::INVITE_MEMBERS,
        };
        self.transact(&tenant, caller, policy, |tx| async move {
            teams::list_invitations(&tx, tenant_id, team_id).await
        })
        .await
    }
}
