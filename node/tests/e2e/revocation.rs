//! Revocation is in force for access tokens inside Gatehouse: a suspended user's or an
//! ended session's still-unexpired access token is refused on every user call.

use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1::{self, UpdateUserRequest};
use gatehouse_protocol::{ApiError, ErrorCode};

use crate::testkit::{PASSWORD, TestNode, unique_email};

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ErrorCode {
    result.expect_err("the old access token still acts").code
}

/// The user calls a signed-in client makes: reading and changing itself, creating a team.
async fn user_calls(user: &Client) -> Vec<Result<(), ApiError>> {
    let me = user.get_current_user().await.map(drop);
    let update = user
        .update_user(UpdateUserRequest {
            client_metadata_json: Some("{\"theme\":\"dark\"}".to_owned()),
            ..UpdateUserRequest::default()
        })
        .await
        .map(drop);
    let team = user
        .create_team(v1::CreateTeamRequest {
            display_name: "Rocket".to_owned(),
            ..v1::CreateTeamRequest::default()
        })
        .await
        .map(drop);
    vec![me, update, team]
}

#[tokio::test]
async fn a_suspended_users_unexpired_access_token_is_refused() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let server = node.server(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("ada"), PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    for call in user_calls(&user).await {
        call.unwrap();
    }

    server.suspend_user(&signed_up.user_id).await.unwrap();
    for call in user_calls(&user).await {
        assert_eq!(refused(call), ErrorCode::UserSuspended);
    }
    // Signing out with the old token stays a harmless no-op.
    user.sign_out("").await.unwrap();
}

#[tokio::test]
async fn a_revoked_sessions_access_token_is_refused_and_the_users_other_session_goes_on() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let server = node.server(&tenant).await;
    let email = unique_email("bob");
    let first = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let second = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let (first_user, second_user) = (
        client.with_access_token(&first.access_token),
        client.with_access_token(&second.access_token),
    );
    first_user.get_current_user().await.unwrap();

    server.revoke_session(&first.session_id).await.unwrap();
    for call in user_calls(&first_user).await {
        assert_eq!(refused(call), ErrorCode::SessionRevoked);
    }
    for call in user_calls(&second_user).await {
        call.unwrap();
    }

    // Signing out everywhere ends the other session's token too.
    server.revoke_user_sessions(&first.user_id).await.unwrap();
    assert_eq!(
        refused(second_user.get_current_user().await),
        ErrorCode::SessionRevoked
    );
}
