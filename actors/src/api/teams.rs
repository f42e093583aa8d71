//! Teams, members, selected team and invitations, with the policy checked inside the same
//! transaction as the change.

use std::sync::Arc;

use crate::access::Caller;
use crate::api::policy::Policy;
use crate::domain::audit::AuditOrigin;
use crate::domain::email::EmailKind;
use crate::domain::email::flows::{self, Keys};
use crate::domain::email::templates::TemplateVars;
use crate::domain::permissions::system;
use crate::domain::sessions::ClientInfo;
use crate::domain::teams::{self, InvitationRecord, MembershipRecord, TeamChanges, TeamRecord};
use crate::domain::tenants::redirects::check_redirect;
use crate::domain::tenants::{TenantState, validate_display_name};
use crate::domain::users::{self, UserRecord, parse_email, validate_metadata};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// A team invitation as a request carries it.
#[derive(Debug, Clone, Copy, Default)]
pub struct InvitationRequest<'a> {
    /// The team.
    pub team_id: &'a str,
    /// The invited address.
    pub email: &'a str,
    /// Where the emailed link leads (trusted domains only), with `token=` added.
    pub redirect_url: &'a str,
    /// Servers and operators: also return the token.
    pub return_token: bool,
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

    /// Invites an email address to a team (clients need `$invite_members`) and emails the
    /// invitation, in the same transaction, with a link to `redirect_url` carrying the token.
    /// The token itself is returned only to a server or operator that asks for it
    /// (`return_token`); a client never sees it. Without a link the token must be returned.
    pub async fn create_team_invitation(
        &self,
        caller: &Caller,
        request: InvitationRequest<'_>,
        client: &ClientInfo,
    ) -> DomainResult<(InvitationRecord, Option<String>)> {
        caller.refuse_anonymous()?;
        let tenant = self.team_tenant(caller)?;
        let team_id = super::parse_id("team_id", request.team_id)?;
        let email = parse_email(request.email)?;
        let return_token = request.return_token && caller.is_trusted();
        let redirect = match request.redirect_url.trim() {
            "" if return_token => None,
            "" => {
                return Err(DomainError::invalid(
                    "redirect_url",
                    "is required: the emailed invitation links to it",
                ));
            }
            url => Some(check_redirect(
                &tenant.record.settings,
                "redirect_url",
                url,
            )?),
        };
        let invited_by = caller.acting_user()?;
        let keys = Keys {
            context: &self.services.context,
            master_key: &self.services.master_key,
        };
        let (tenant_ref, email, redirect) = (&tenant, &email, &redirect);
        let policy = Policy::TeamPermission {
            team_id,
            permission: system::INVITE_MEMBERS,
        };
        let (invitation, token) = self
            .transact(&tenant, caller, policy, |tx| async move {
                let tenant_id = tenant_ref.tenant_id();
                let (invitation, token) = teams::changes::invite(
                    &tx,
                    keys.context,
                    tenant_id,
                    team_id,
                    email,
                    invited_by,
                )
                .await?;
                if let Some(redirect) = redirect {
                    let team = teams::read_team(&tx, tenant_id, team_id).await?;
                    let inviter = match invited_by {
                        Some(user_id) => users::find_user(&tx, tenant_id, user_id).await?,
                        None => None,
                    };
                    // An account's own address as stored, never the variant that was typed.
                    let account =
                        users::find_user_by_email(&tx, tenant_id, &email.normalized).await?;
                    let to = account
                        .as_ref()
                        .and_then(|user| user.stored_address(&email.normalized))
                        .unwrap_or(&email.display);
                    let vars = TemplateVars {
                        link: flows::link_with_token(redirect, &token),
                        team_name: team.display_name,
                        expires_in_minutes: u32::try_from(teams::INVITATION_TTL.as_secs() / 60)
                            .unwrap_or(u32::MAX),
                        inviter_name: inviter
                            .as_ref()
                            .map(flows::inviter_name)
                            .unwrap_or_default(),
                        ..flows::base_vars(tenant_ref, None, to, client)
                    };
                    let kind = EmailKind::TeamInvitation;
                    flows::compose(&tx, keys, tenant_ref, kind, to, &vars).await?;
                }
                Ok((invitation, token))
            })
            .await?;
        Ok((invitation, return_token.then_some(token)))
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
