//! `gatehouse.v1.Teams`.

use gatehouse_actors::Caller;
use gatehouse_actors::api::teams::InvitationRequest;
use gatehouse_actors::teams::{InvitationRecord, MembershipRecord, TeamChanges, TeamRecord};
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::teams_server::Teams;
use tonic::{Request, Response, Status};

use super::{Api, convert};

fn team(record: &TeamRecord, caller: &Caller) -> v1::Team {
    v1::Team {
        team_id: record.team_id.to_string(),
        display_name: record.display_name.clone(),
        profile_image_url: record.profile_image_url.clone(),
        created_at: Some(convert::timestamp(record.created_at)),
        updated_at: Some(convert::timestamp(record.updated_at)),
        client_metadata_json: record.client_metadata.clone(),
        client_read_only_metadata_json: record.client_read_only_metadata.clone(),
        server_metadata_json: if caller.is_trusted() {
            record.server_metadata.clone()
        } else {
            String::new()
        },
    }
}

fn member(record: &MembershipRecord) -> v1::TeamMember {
    v1::TeamMember {
        team_id: record.team_id.to_string(),
        user_id: record.user_id.to_string(),
        joined_at: Some(convert::timestamp(record.joined_at)),
    }
}

fn invitation(record: &InvitationRecord) -> v1::TeamInvitation {
    let id = |user: Option<uuid::Uuid>| user.map(|id| id.to_string()).unwrap_or_default();
    v1::TeamInvitation {
        invitation_id: record.invitation_id.to_string(),
        team_id: record.team_id.to_string(),
        email: record.email.clone(),
        created_at: Some(convert::timestamp(record.created_at)),
        expires_at: Some(convert::timestamp(record.expires_at)),
        invited_by_user_id: id(record.invited_by),
        accepted_by_user_id: id(record.accepted_by),
        revoked: record.revoked,
    }
}

#[tonic::async_trait]
impl Teams for Api {
    async fn create_team(
        &self,
        request: Request<v1::CreateTeamRequest>,
    ) -> Result<Response<v1::Team>, Status> {
        self.rpc("Teams/CreateTeam", request, |call| async move {
            let body = call.body();
            let creator =
                (!body.creator_user_id.is_empty()).then_some(body.creator_user_id.as_str());
            let record = self
                .gatehouse
                .create_team(&call.caller, &body.display_name, creator)
                .await?;
            Ok(team(&record, &call.caller))
        })
        .await
    }

    async fn get_team(
        &self,
        request: Request<v1::GetTeamRequest>,
    ) -> Result<Response<v1::Team>, Status> {
        self.rpc("Teams/GetTeam", request, |call| async move {
            let record = self
                .gatehouse
                .get_team(&call.caller, &call.body().team_id)
                .await?;
            Ok(team(&record, &call.caller))
        })
        .await
    }

    async fn update_team(
        &self,
        request: Request<v1::UpdateTeamRequest>,
    ) -> Result<Response<v1::Team>, Status> {
        self.rpc("Teams/UpdateTeam", request, |call| async move {
            let (caller, body) = call.into_parts();
            let changes = TeamChanges {
                display_name: body.display_name,
                profile_image_url: body.profile_image_url,
                client_metadata: body.client_metadata_json,
                client_read_only_metadata: body.client_read_only_metadata_json,
                server_metadata: body.server_metadata_json,
            };
            let record = self
                .gatehouse
                .update_team(&caller, &body.team_id, changes)
                .await?;
            Ok(team(&record, &caller))
        })
        .await
    }

    async fn delete_team(
        &self,
        request: Request<v1::DeleteTeamRequest>,
    ) -> Result<Response<v1::DeleteTeamReply>, Status> {
        self.rpc("Teams/DeleteTeam", request, |call| async move {
            self.gatehouse
                .delete_team(&call.caller, &call.body().team_id)
                .await?;
            Ok(v1::DeleteTeamReply {})
        })
        .await
    }

    async fn list_user_teams(
        &self,
        request: Request<v1::ListUserTeamsRequest>,
    ) -> Result<Response<v1::ListTeamsReply>, Status> {
        self.rpc("Teams/ListUserTeams", request, |call| async move {
            let teams = self
                .gatehouse
                .list_user_teams(&call.caller, &call.body().user_id)
                .await?;
            Ok(v1::ListTeamsReply {
                teams: teams
                    .iter()
                    .map(|record| team(record, &call.caller))
                    .collect(),
            })
        })
        .await
    }

    async fn list_team_members(
        &self,
        request: Request<v1::ListTeamMembersRequest>,
    ) -> Result<Response<v1::ListTeamMembersReply>, Status> {
        self.rpc("Teams/ListTeamMembers", request, |call| async move {
            let members = self
                .gatehouse
                .list_team_members(&call.caller, &call.body().team_id)
                .await?;
            Ok(v1::ListTeamMembersReply {
                members: members.iter().map(member).collect(),
            })
        })
        .await
    }

    async fn add_team_member(
        &self,
        request: Request<v1::AddTeamMemberRequest>,
    ) -> Result<Response<v1::TeamMember>, Status> {
        self.rpc("Teams/AddTeamMember", request, |call| async move {
            let body = call.body();
            let record = self
                .gatehouse
                .add_team_member(&call.caller, &body.team_id, &body.user_id)
                .await?;
            Ok(member(&record))
        })
        .await
    }

    async fn remove_team_member(
        &self,
        request: Request<v1::RemoveTeamMemberRequest>,
    ) -> Result<Response<v1::RemoveTeamMemberReply>, Status> {
        self.rpc("Teams/RemoveTeamMember", request, |call| async move {
            let body = call.body();
            self.gatehouse
                .remove_team_member(&call.caller, &body.team_id, &body.user_id)
                .await?;
            Ok(v1::RemoveTeamMemberReply {})
        })
        .await
    }

    async fn select_team(
        &self,
        request: Request<v1::SelectTeamRequest>,
    ) -> Result<Response<v1::User>, Status> {
        self.rpc("Teams/SelectTeam", request, |call| async move {
            let body = call.body();
            let user = self
                .gatehouse
                .select_team(&call.caller, &body.user_id, &body.team_id)
                .await?;
            Ok(convert::user(&user, &call.caller))
        })
        .await
    }

    async fn create_team_invitation(
        &self,
        request: Request<v1::CreateTeamInvitationRequest>,
    ) -> Result<Response<v1::CreateTeamInvitationReply>, Status> {
        self.rpc("Teams/CreateTeamInvitation", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            let request = InvitationRequest {
                team_id: &body.team_id,
                email: &body.email,
                redirect_url: &body.redirect_url,
                return_token: body.return_token,
            };
            let (record, token) = self
                .gatehouse
                .create_team_invitation(&call.caller, request, &client)
                .await?;
            Ok(v1::CreateTeamInvitationReply {
                invitation: Some(invitation(&record)),
                token: token.unwrap_or_default(),
            })
        })
        .await
    }

    async fn accept_team_invitation(
        &self,
        request: Request<v1::AcceptTeamInvitationRequest>,
    ) -> Result<Response<v1::TeamMember>, Status> {
        self.rpc("Teams/AcceptTeamInvitation", request, |call| async move {
            let body = call.body();
            let record = self
                .gatehouse
                .accept_team_invitation(&call.caller, &body.token, &body.user_id)
                .await?;
            Ok(member(&record))
        })
        .await
    }

    async fn revoke_team_invitation(
        &self,
        request: Request<v1::RevokeTeamInvitationRequest>,
    ) -> Result<Response<v1::RevokeTeamInvitationReply>, Status> {
        self.rpc("Teams/RevokeTeamInvitation", request, |call| async move {
            self.gatehouse
                .revoke_team_invitation(&call.caller, &call.body().invitation_id)
                .await?;
            Ok(v1::RevokeTeamInvitationReply {})
        })
        .await
    }

    async fn list_team_invitations(
        &self,
        request: Request<v1::ListTeamInvitationsRequest>,
    ) -> Result<Response<v1::ListTeamInvitationsReply>, Status> {
        self.rpc("Teams/ListTeamInvitations", request, |call| async move {
            let records = self
                .gatehouse
                .list_team_invitations(&call.caller, &call.body().team_id)
                .await?;
            Ok(v1::ListTeamInvitationsReply {
                invitations: records.iter().map(invitation).collect(),
            })
        })
        .await
    }
}
