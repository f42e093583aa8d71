//! Teams, invitations, the permission graph and the policy: one assertion per denial path,
//! including every cross-tenant attempt.

use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1::{self, PermissionScope};
use gatehouse_protocol::{ApiError, ErrorCode};

use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

struct Person {
    user_id: String,
    email: String,
    client: Client,
}

async fn person(node: &TestNode, tenant: &TestTenant, label: &str) -> Person {
    let email = unique_email(label);
    let client = node.client(tenant).await;
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    Person {
        user_id: signed_up.user_id,
        email,
        client: client.with_access_token(&signed_up.access_token),
    }
}

fn denied<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ErrorCode {
    result.expect_err("the call must be refused").code
}

async fn has(client: &Client, user_id: &str, permission: &str, team_id: &str) -> bool {
    client
        .has_permission(v1::HasPermissionRequest {
            user_id: user_id.to_owned(),
            permission_id: permission.to_owned(),
            team_id: team_id.to_owned(),
        })
        .await
        .unwrap()
        .granted
}

#[tokio::test]
async fn a_team_grows_through_invitations_and_roles_limit_what_members_do() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let owner = person(&node, &tenant, "owner").await;
    let invitee = person(&node, &tenant, "invitee").await;
    let stranger = person(&node, &tenant, "stranger").await;

    let team = owner
        .client
        .create_team(v1::CreateTeamRequest {
            display_name: "Rocket".to_owned(),
            ..v1::CreateTeamRequest::default()
        })
        .await
        .unwrap();
    let team_id = team.team_id.clone();
    assert!(
        has(&owner.client, "", "$invite_members", &team_id).await,
        "creator is admin"
    );

    // Invitations: single use, for the invited address only. (A client's invitation is only
    // emailed; the server asks for the token to hand it over itself.)
    let server = node.server(&tenant).await;
    let invite = server
        .create_team_invitation(v1::CreateTeamInvitationRequest {
            team_id: team_id.clone(),
            email: invitee.email.to_uppercase(),
            return_token: true,
            ..v1::CreateTeamInvitationRequest::default()
        })
        .await
        .unwrap();
    assert!(invite.token.starts_with("gti_"));
    let accept = |client: &Client, token: &str| {
        let client = client.clone();
        let token = token.to_owned();
        async move {
            client
                .accept_team_invitation(v1::AcceptTeamInvitationRequest {
                    token,
                    user_id: String::new(),
                })
                .await
        }
    };
    assert_eq!(
        denied(accept(&stranger.client, &invite.token).await),
        ErrorCode::InvitationInvalid
    );
    accept(&invitee.client, &invite.token).await.unwrap();
    assert_eq!(
        denied(accept(&invitee.client, &invite.token).await),
        ErrorCode::InvitationInvalid
    );
    let revoked = server
        .create_team_invitation(v1::CreateTeamInvitationRequest {
            team_id: team_id.clone(),
            email: stranger.email.clone(),
            return_token: true,
            ..v1::CreateTeamInvitationRequest::default()
        })
        .await
        .unwrap();
    owner
        .client
        .revoke_team_invitation(v1::RevokeTeamInvitationRequest {
            invitation_id: revoked.invitation.unwrap().invitation_id,
        })
        .await
        .unwrap();
    assert_eq!(
        denied(accept(&stranger.client, &revoked.token).await),
        ErrorCode::InvitationInvalid
    );

    // A plain member reads members but cannot manage the team.
    let members = invitee
        .client
        .list_team_members(v1::ListTeamMembersRequest {
            team_id: team_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(members.members.len(), 2);
    assert!(!has(&invitee.client, "", "$invite_members", &team_id).await);
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            trusted_domains: vec!["app.example.com".to_owned()],
            set_trusted_domains: true,
            ..v1::UpdateTenantConfigRequest::default()
        })
        .await
        .unwrap();
    let invite_by_member = invitee
        .client
        .create_team_invitation(v1::CreateTeamInvitationRequest {
            team_id: team_id.clone(),
            email: unique_email("x"),
            redirect_url: "https://app.example.com/join".to_owned(),
            // A client asking for the token does not get it either way.
            return_token: true,
        })
        .await;
    assert_eq!(denied(invite_by_member), ErrorCode::PermissionDenied);
    let by_owner = owner
        .client
        .create_team_invitation(v1::CreateTeamInvitationRequest {
            team_id: team_id.clone(),
            email: unique_email("y"),
            redirect_url: "https://app.example.com/join".to_owned(),
            return_token: true,
        })
        .await
        .unwrap();
    assert!(
        by_owner.token.is_empty(),
        "a client caller must not see the token"
    );
    let untrusted = owner
        .client
        .create_team_invitation(v1::CreateTeamInvitationRequest {
            team_id: team_id.clone(),
            email: unique_email("z"),
            redirect_url: "https://evil.example.net/join".to_owned(),
            return_token: false,
        })
        .await;
    assert_eq!(denied(untrusted), ErrorCode::InvalidArgument);
    let rename = invitee
        .client
        .update_team(v1::UpdateTeamRequest {
            team_id: team_id.clone(),
            display_name: Some("Mine".to_owned()),
            ..v1::UpdateTeamRequest::default()
        })
        .await;
    assert_eq!(denied(rename), ErrorCode::PermissionDenied);
    let delete = invitee
        .client
        .delete_team(v1::DeleteTeamRequest {
            team_id: team_id.clone(),
        })
        .await;
    assert_eq!(denied(delete), ErrorCode::PermissionDenied);
    let remove_owner = invitee
        .client
        .remove_team_member(v1::RemoveTeamMemberRequest {
            team_id: team_id.clone(),
            user_id: owner.user_id.clone(),
        })
        .await;
    assert_eq!(denied(remove_owner), ErrorCode::PermissionDenied);
    let grant_self_admin = invitee
        .client
        .grant_permission(v1::GrantPermissionRequest {
            user_id: invitee.user_id.clone(),
            permission_id: "team_admin".to_owned(),
            team_id: team_id.clone(),
        })
        .await;
    assert_eq!(denied(grant_self_admin), ErrorCode::PermissionDenied);
    // The owner may change the team, but not its server-owned fields from a client.
    owner
        .client
        .update_team(v1::UpdateTeamRequest {
            team_id: team_id.clone(),
            display_name: Some("Rocket Labs".to_owned()),
            ..v1::UpdateTeamRequest::default()
        })
        .await
        .unwrap();
    let server_field = owner
        .client
        .update_team(v1::UpdateTeamRequest {
            team_id: team_id.clone(),
            server_metadata_json: Some("{}".to_owned()),
            ..v1::UpdateTeamRequest::default()
        })
        .await;
    assert_eq!(denied(server_field), ErrorCode::PermissionDenied);

    // Non-members see nothing; clients see only their own teams and permissions.
    assert_eq!(
        denied(
            stranger
                .client
                .get_team(v1::GetTeamRequest {
                    team_id: team_id.clone()
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        denied(
            stranger
                .client
                .list_team_members(v1::ListTeamMembersRequest {
                    team_id: team_id.clone()
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        denied(
            stranger
                .client
                .list_user_teams(v1::ListUserTeamsRequest {
                    user_id: owner.user_id.clone()
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        denied(
            stranger
                .client
                .has_permission(v1::HasPermissionRequest {
                    user_id: owner.user_id.clone(),
                    permission_id: "team_admin".to_owned(),
                    team_id: team_id.clone(),
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        denied(
            stranger
                .client
                .add_team_member(v1::AddTeamMemberRequest {
                    team_id: team_id.clone(),
                    user_id: stranger.user_id.clone(),
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    let mine = invitee
        .client
        .list_user_teams(v1::ListUserTeamsRequest::default())
        .await
        .unwrap();
    assert_eq!(mine.teams.len(), 1);
    assert!(mine.teams[0].server_metadata_json.is_empty());

    // Selecting a team needs membership.
    let selected = invitee
        .client
        .select_team(v1::SelectTeamRequest {
            user_id: String::new(),
            team_id: team_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(selected.user_id, invitee.user_id);
    assert_eq!(
        denied(
            stranger
                .client
                .select_team(v1::SelectTeamRequest {
                    user_id: String::new(),
                    team_id: team_id.clone(),
                })
                .await
        ),
        ErrorCode::TeamMembershipNotFound
    );

    // A member may leave on its own; the owner may remove members.
    invitee
        .client
        .remove_team_member(v1::RemoveTeamMemberRequest {
            team_id: team_id.clone(),
            user_id: invitee.user_id.clone(),
        })
        .await
        .unwrap();
    assert!(
        !has(
            &node.server(&tenant).await,
            &invitee.user_id,
            "team_member",
            &team_id
        )
        .await
    );
    owner
        .client
        .delete_team(v1::DeleteTeamRequest {
            team_id: team_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        denied(
            node.server(&tenant)
                .await
                .get_team(v1::GetTeamRequest { team_id })
                .await
        ),
        ErrorCode::TeamNotFound
    );
}

#[tokio::test]
async fn the_permission_graph_is_transitive_acyclic_and_server_managed() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let server = node.server(&tenant).await;
    let user = person(&node, &tenant, "perm").await;
    let define = |id: &str, contains: &[&str]| v1::DefinePermissionRequest {
        definition: Some(v1::PermissionDefinition {
            permission_id: id.to_owned(),
            description: String::new(),
            contains: contains.iter().map(|c| (*c).to_owned()).collect(),
            scope: PermissionScope::Tenant as i32,
        }),
        create_only: true,
    };
    server
        .define_permission(define("read:invoices", &[]))
        .await
        .unwrap();
    server
        .define_permission(define("edit:invoices", &["read:invoices"]))
        .await
        .unwrap();
    server
        .define_permission(define("billing:admin", &["edit:invoices"]))
        .await
        .unwrap();
    assert_eq!(
        denied(server.define_permission(define("read:invoices", &[])).await),
        ErrorCode::PermissionAlreadyExists
    );
    let mut cycle = define("read:invoices", &["billing:admin"]);
    cycle.create_only = false;
    let error = server.define_permission(cycle).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidArgument, "{error}");
    assert_eq!(
        denied(
            user.client
                .define_permission(define("client:made", &[]))
                .await
        ),
        ErrorCode::PermissionDenied
    );

    server
        .grant_permission(v1::GrantPermissionRequest {
            user_id: user.user_id.clone(),
            permission_id: "billing:admin".to_owned(),
            team_id: String::new(),
        })
        .await
        .unwrap();
    assert!(
        has(&server, &user.user_id, "read:invoices", "").await,
        "transitive"
    );
    assert!(
        has(&user.client, "", "edit:invoices", "").await,
        "clients check themselves"
    );
    let effective = user
        .client
        .list_effective_permissions(v1::ListEffectivePermissionsRequest::default())
        .await
        .unwrap();
    assert_eq!(
        effective.permission_ids,
        ["billing:admin", "edit:invoices", "read:invoices"]
    );
    // Clients cannot grant tenant-wide permissions, not even ones they hold.
    let other = person(&node, &tenant, "other").await;
    assert_eq!(
        denied(
            user.client
                .grant_permission(v1::GrantPermissionRequest {
                    user_id: other.user_id.clone(),
                    permission_id: "read:invoices".to_owned(),
                    team_id: String::new(),
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    // Removing a link in the chain removes what it implied.
    server
        .delete_permission(v1::DeletePermissionRequest {
            permission_id: "edit:invoices".to_owned(),
        })
        .await
        .unwrap();
    assert!(!has(&server, &user.user_id, "read:invoices", "").await);
    assert!(has(&server, &user.user_id, "billing:admin", "").await);
    assert_eq!(
        denied(
            server
                .grant_permission(v1::GrantPermissionRequest {
                    user_id: user.user_id.clone(),
                    permission_id: "no:such".to_owned(),
                    team_id: String::new(),
                })
                .await
        ),
        ErrorCode::PermissionNotFound
    );
}

#[tokio::test]
async fn every_cross_tenant_attempt_is_refused() {
    let node = TestNode::start().await;
    let a = node.tenant("A").await;
    let b = node.tenant("B").await;
    let b_owner = person(&node, &b, "b-owner").await;
    let b_team = b_owner
        .client
        .create_team(v1::CreateTeamRequest {
            display_name: "B team".to_owned(),
            ..v1::CreateTeamRequest::default()
        })
        .await
        .unwrap();
    let b_invite = node
        .server(&b)
        .await
        .create_team_invitation(v1::CreateTeamInvitationRequest {
            team_id: b_team.team_id.clone(),
            email: "a-user@example.com".to_owned(),
            return_token: true,
            ..v1::CreateTeamInvitationRequest::default()
        })
        .await
        .unwrap();
    let a_server = node.server(&a).await;
    let a_user = {
        let client = node.client(&a).await;
        let signed_up = client
            .sign_up_with_password("a-user@example.com", PASSWORD)
            .await
            .unwrap();
        client.with_access_token(&signed_up.access_token)
    };

    // A's server key inside A cannot see B's team or user.
    let b_team_id = b_team.team_id.clone();
    assert_eq!(
        denied(
            a_server
                .get_team(v1::GetTeamRequest {
                    team_id: b_team_id.clone()
                })
                .await
        ),
        ErrorCode::TeamNotFound
    );
    assert_eq!(
        denied(
            a_server
                .add_team_member(v1::AddTeamMemberRequest {
                    team_id: b_team_id.clone(),
                    user_id: b_owner.user_id.clone(),
                })
                .await
        ),
        ErrorCode::TeamNotFound
    );
    assert_eq!(
        denied(
            a_server
                .grant_permission(v1::GrantPermissionRequest {
                    user_id: b_owner.user_id.clone(),
                    permission_id: "team_admin".to_owned(),
                    team_id: b_team_id.clone(),
                })
                .await
        ),
        ErrorCode::UserNotFound
    );
    assert_eq!(
        denied(
            a_server
                .delete_team(v1::DeleteTeamRequest {
                    team_id: b_team_id.clone()
                })
                .await
        ),
        ErrorCode::TeamNotFound
    );
    // A's user with the invitation token of B (sent to the same address) cannot join.
    assert_eq!(
        denied(
            a_user
                .accept_team_invitation(v1::AcceptTeamInvitationRequest {
                    token: b_invite.token.clone(),
                    user_id: String::new(),
                })
                .await
        ),
        ErrorCode::InvitationInvalid
    );
    // A's keys presented for tenant B are not B's keys.
    assert_eq!(
        denied(
            a_server
                .with_tenant(&b.id)
                .get_team(v1::GetTeamRequest {
                    team_id: b_team_id.clone()
                })
                .await
        ),
        ErrorCode::InvalidApiKey
    );
    // B's team is intact.
    let b_server = node.server(&b).await;
    let members = b_server
        .list_team_members(v1::ListTeamMembersRequest { team_id: b_team_id })
        .await
        .unwrap();
    assert_eq!(members.members.len(), 1);
}
