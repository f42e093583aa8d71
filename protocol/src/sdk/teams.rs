//! Typed helpers for teams, permissions and shares; each takes the request message as is.

use super::client::{AuthedChannel, Client, once};
use crate::status::ApiError;
use crate::v1;

/// Generates one helper per unary call: `name(request) -> reply`, sent once.
macro_rules! unary_helpers {
    ($service:ident: $( $(#[$doc:meta])* $method:ident($request:ty) -> $reply:ty; )*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $method(&self, request: $request) -> Result<$reply, ApiError> {
                    once(self.$service().$method(request)).await
                }
            )*
        }
    };
}

impl Client {
    /// The raw `Teams` client with this client's metadata.
    pub fn teams(&self) -> v1::teams_client::TeamsClient<AuthedChannel> {
        v1::teams_client::TeamsClient::with_interceptor(
            self.channel(),
            self.request_metadata().clone(),
        )
    }

    /// The raw `Permissions` client with this client's metadata.
    pub fn permissions(&self) -> v1::permissions_client::PermissionsClient<AuthedChannel> {
        v1::permissions_client::PermissionsClient::with_interceptor(
            self.channel(),
            self.request_metadata().clone(),
        )
    }
}

impl Client {
    /// The raw `Shares` client with this client's metadata.
    pub fn shares(&self) -> v1::shares_client::SharesClient<AuthedChannel> {
        v1::shares_client::SharesClient::with_interceptor(
            self.channel(),
            self.request_metadata().clone(),
        )
    }
}

unary_helpers! { shares:
    /// Creates a share.
    create_share(v1::CreateShareRequest) -> v1::CreateShareReply;
    /// Reads through a share.
    read_through_share(v1::UseShareRequest) -> v1::ReadThroughShareReply;
    /// Proposes changes through a share.
    propose_through_share(v1::ProposeThroughShareRequest) -> v1::ShareProposal;
    /// Accepts or rejects a proposal.
    decide_proposal(v1::DecideProposalRequest) -> v1::ShareProposal;
    /// Revokes a share.
    revoke_share(v1::RevokeShareRequest) -> v1::RevokeShareReply;
    /// Lists shares.
    list_shares(v1::ListSharesRequest) -> v1::ListSharesReply;
    /// Lists proposals.
    list_proposals(v1::ListProposalsRequest) -> v1::ListProposalsReply;
}

unary_helpers! { teams:
    /// Creates a team.
    create_team(v1::CreateTeamRequest) -> v1::Team;
    /// Reads a team.
    get_team(v1::GetTeamRequest) -> v1::Team;
    /// Changes a team.
    update_team(v1::UpdateTeamRequest) -> v1::Team;
    /// Deletes a team.
    delete_team(v1::DeleteTeamRequest) -> v1::DeleteTeamReply;
    /// Teams of a user.
    list_user_teams(v1::ListUserTeamsRequest) -> v1::ListTeamsReply;
    /// Members of a team.
    list_team_members(v1::ListTeamMembersRequest) -> v1::ListTeamMembersReply;
    /// Adds a member (server).
    add_team_member(v1::AddTeamMemberRequest) -> v1::TeamMember;
    /// Removes a member.
    remove_team_member(v1::RemoveTeamMemberRequest) -> v1::RemoveTeamMemberReply;
    /// Sets the selected team.
    select_team(v1::SelectTeamRequest) -> v1::User;
    /// Invites an email address.
    create_team_invitation(v1::CreateTeamInvitationRequest) -> v1::CreateTeamInvitationReply;
    /// Accepts an invitation.
    accept_team_invitation(v1::AcceptTeamInvitationRequest) -> v1::TeamMember;
    /// Revokes an invitation.
    revoke_team_invitation(v1::RevokeTeamInvitationRequest) -> v1::RevokeTeamInvitationReply;
    /// Invitations of a team.
    list_team_invitations(v1::ListTeamInvitationsRequest) -> v1::ListTeamInvitationsReply;
}

unary_helpers! { permissions:
    /// Defines or replaces a permission.
    define_permission(v1::DefinePermissionRequest) -> v1::PermissionDefinition;
    /// Deletes a permission and its grants.
    delete_permission(v1::DeletePermissionRequest) -> v1::DeletePermissionReply;
    /// Every permission definition.
    list_permission_definitions(v1::ListPermissionDefinitionsRequest) -> v1::ListPermissionDefinitionsReply;
    /// Grants a permission.
    grant_permission(v1::GrantPermissionRequest) -> v1::GrantPermissionReply;
    /// Revokes a permission.
    revoke_permission(v1::RevokePermissionRequest) -> v1::RevokePermissionReply;
    /// Checks a permission.
    has_permission(v1::HasPermissionRequest) -> v1::HasPermissionReply;
    /// Lists effective permissions.
    list_effective_permissions(v1::ListEffectivePermissionsRequest) -> v1::ListEffectivePermissionsReply;
}
