//! `gatehouse admin team …` and `gatehouse admin permission …`.

use clap::{Args, Subcommand};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::{ApiError, v1};
use serde_json::json;

use super::TenantFlag;
use super::output::Output;

/// Team administration.
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team, optionally with a first member who gets the creator permissions.
    Create {
        #[command(flatten)]
        tenant: TenantFlag,
        name: String,
        #[arg(long)]
        creator: Option<String>,
    },
    /// Show a team.
    Get {
        #[command(flatten)]
        tenant: TenantFlag,
        team_id: String,
    },
    /// Delete a team with its memberships, grants and invitations.
    Delete {
        #[command(flatten)]
        tenant: TenantFlag,
        team_id: String,
    },
    /// Teams of a user.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
        #[arg(long)]
        user: String,
    },
    /// Members of a team.
    Members {
        #[command(flatten)]
        tenant: TenantFlag,
        team_id: String,
    },
    /// Add a member.
    AddMember {
        #[command(flatten)]
        tenant: TenantFlag,
        team_id: String,
        user_id: String,
    },
    /// Remove a member.
    RemoveMember {
        #[command(flatten)]
        tenant: TenantFlag,
        team_id: String,
        user_id: String,
    },
    /// Invite an email address; prints the single-use token.
    Invite {
        #[command(flatten)]
        tenant: TenantFlag,
        team_id: String,
        email: String,
        /// Email the invitation with a link to this URL (trusted domains only); without it
        /// the token is printed for you to deliver.
        #[arg(long, default_value = "")]
        redirect_url: String,
    },
}

/// Permission administration.
#[derive(Debug, Subcommand)]
pub enum PermissionCommand {
    /// Define a permission.
    Define {
        #[command(flatten)]
        tenant: TenantFlag,
        permission_id: String,
        /// Permissions it contains (repeatable).
        #[arg(long = "contains")]
        contains: Vec<String>,
        /// Granted within teams instead of tenant-wide.
        #[arg(long)]
        team: bool,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a permission and every grant of it.
    Delete {
        #[command(flatten)]
        tenant: TenantFlag,
        permission_id: String,
    },
    /// List definitions.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
    },
    /// Grant a permission to a user (with --team for team permissions).
    Grant(GrantArgs),
    /// Revoke a permission.
    Revoke(GrantArgs),
    /// Check a permission.
    Check(GrantArgs),
}

/// Who, what and where of a grant, revocation or check.
#[derive(Debug, Args)]
pub struct GrantArgs {
    #[command(flatten)]
    tenant: TenantFlag,
    user_id: String,
    permission_id: String,
    /// The team, for team permissions.
    #[arg(long, default_value = "")]
    team: String,
}

/// Prints a yes/no answer as `{ key: bool }` or one of two words.
fn answer(out: &Output, key: &str, value: bool, yes: &str, no: &str) {
    out.value(&json!({ key: value }), if value { yes } else { no });
}

fn team_json(team: &v1::Team) -> serde_json::Value {
    json!({ "team_id": team.team_id, "display_name": team.display_name })
}

/// Runs a team command.
pub async fn run_team(client: &Client, out: &Output, command: TeamCommand) -> Result<(), ApiError> {
    match command {
        TeamCommand::Create {
            tenant,
            name,
            creator,
        } => {
            let team = client
                .with_tenant(&tenant.tenant)
                .create_team(v1::CreateTeamRequest {
                    display_name: name,
                    creator_user_id: creator.unwrap_or_default(),
                })
                .await?;
            out.value(
                &team_json(&team),
                &format!("created team {} ({})", team.team_id, team.display_name),
            );
        }
        TeamCommand::Get { tenant, team_id } => {
            let team = client
                .with_tenant(&tenant.tenant)
                .get_team(v1::GetTeamRequest { team_id })
                .await?;
            out.value(
                &team_json(&team),
                &format!("{} {}", team.team_id, team.display_name),
            );
        }
        TeamCommand::Delete { tenant, team_id } => {
            client
                .with_tenant(&tenant.tenant)
                .delete_team(v1::DeleteTeamRequest {
                    team_id: team_id.clone(),
                })
                .await?;
            out.done("deleted", &team_id);
        }
        TeamCommand::List { tenant, user } => {
            let teams = client
                .with_tenant(&tenant.tenant)
                .list_user_teams(v1::ListUserTeamsRequest { user_id: user })
                .await?;
            let text = teams
                .teams
                .iter()
                .map(|team| format!("{} {}", team.team_id, team.display_name))
                .collect::<Vec<_>>()
                .join("\n");
            out.value(
                &json!({ "teams": teams.teams.iter().map(team_json).collect::<Vec<_>>() }),
                &text,
            );
        }
        TeamCommand::Members { tenant, team_id } => {
            let members = client
                .with_tenant(&tenant.tenant)
                .list_team_members(v1::ListTeamMembersRequest { team_id })
                .await?;
            let ids: Vec<_> = members
                .members
                .iter()
                .map(|member| member.user_id.clone())
                .collect();
            out.value(&json!({ "members": ids }), &ids.join("\n"));
        }
        TeamCommand::AddMember {
            tenant,
            team_id,
            user_id,
        } => {
            client
                .with_tenant(&tenant.tenant)
                .add_team_member(v1::AddTeamMemberRequest {
                    team_id,
                    user_id: user_id.clone(),
                })
                .await?;
            out.done("added", &user_id);
        }
        TeamCommand::RemoveMember {
            tenant,
            team_id,
            user_id,
        } => {
            client
                .with_tenant(&tenant.tenant)
                .remove_team_member(v1::RemoveTeamMemberRequest {
                    team_id,
                    user_id: user_id.clone(),
                })
                .await?;
            out.done("removed", &user_id);
        }
        TeamCommand::Invite {
            tenant,
            team_id,
            email,
            redirect_url,
        } => {
            let redirect_url_missing = redirect_url.is_empty();
            let reply = client
                .with_tenant(&tenant.tenant)
                .create_team_invitation(v1::CreateTeamInvitationRequest {
                    team_id,
                    email,
                    redirect_url,
                    return_token: redirect_url_missing,
                })
                .await?;
            let invitation_id = reply
                .invitation
                .map(|invitation| invitation.invitation_id)
                .unwrap_or_default();
            out.value(
                &json!({ "invitation_id": invitation_id, "token": reply.token }),
                &format!(
                    "invitation {invitation_id}; token (give it to the invitee): {}",
                    reply.token
                ),
            );
        }
    }
    Ok(())
}

/// Runs a permission command.
pub async fn run_permission(
    client: &Client,
    out: &Output,
    command: PermissionCommand,
) -> Result<(), ApiError> {
    match command {
        PermissionCommand::Define {
            tenant,
            permission_id,
            contains,
            team,
            description,
        } => {
            let scope = if team {
                v1::PermissionScope::Team
            } else {
                v1::PermissionScope::Tenant
            };
            let stored = client
                .with_tenant(&tenant.tenant)
                .define_permission(v1::DefinePermissionRequest {
                    definition: Some(v1::PermissionDefinition {
                        permission_id,
                        description,
                        contains,
                        scope: scope as i32,
                    }),
                    create_only: false,
                })
                .await?;
            out.value(
                &json!({ "permission_id": stored.permission_id, "contains": stored.contains }),
                &format!("defined {}", stored.permission_id),
            );
        }
        PermissionCommand::Delete {
            tenant,
            permission_id,
        } => {
            client
                .with_tenant(&tenant.tenant)
                .delete_permission(v1::DeletePermissionRequest {
                    permission_id: permission_id.clone(),
                })
                .await?;
            out.done("deleted", &permission_id);
        }
        PermissionCommand::List { tenant } => {
            let list = client
                .with_tenant(&tenant.tenant)
                .list_permission_definitions(v1::ListPermissionDefinitionsRequest {})
                .await?;
            let rows: Vec<_> = list
                .definitions
                .iter()
                .map(|definition| json!({ "permission_id": definition.permission_id, "contains": definition.contains }))
                .collect();
            let text = list
                .definitions
                .iter()
                .map(|definition| {
                    format!(
                        "{} ⊇ [{}]",
                        definition.permission_id,
                        definition.contains.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.value(&json!({ "definitions": rows }), &text);
        }
        PermissionCommand::Grant(args) => {
            let reply = client
                .with_tenant(&args.tenant.tenant)
                .grant_permission(v1::GrantPermissionRequest {
                    user_id: args.user_id,
                    permission_id: args.permission_id,
                    team_id: args.team,
                })
                .await?;
            answer(out, "changed", reply.changed, "granted", "already granted");
        }
        PermissionCommand::Revoke(args) => {
            let reply = client
                .with_tenant(&args.tenant.tenant)
                .revoke_permission(v1::RevokePermissionRequest {
                    user_id: args.user_id,
                    permission_id: args.permission_id,
                    team_id: args.team,
                })
                .await?;
            answer(out, "changed", reply.changed, "revoked", "was not granted");
        }
        PermissionCommand::Check(args) => {
            let reply = client
                .with_tenant(&args.tenant.tenant)
                .has_permission(v1::HasPermissionRequest {
                    user_id: args.user_id,
                    permission_id: args.permission_id,
                    team_id: args.team,
                })
                .await?;
            answer(out, "granted", reply.granted, "granted", "not granted");
        }
    }
    Ok(())
}
