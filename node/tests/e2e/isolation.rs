//! Tenant isolation and access types: one test per denial path.

use gatehouse_protocol::ErrorCode;
use gatehouse_protocol::sdk::Credentials;

use crate::testkit::{PASSWORD, TestNode, unique_email};

#[tokio::test]
async fn tenant_a_keys_cannot_read_or_change_tenant_b_users() {
    let node = TestNode::start().await;
    let a = node.tenant("A").await;
    let b = node.tenant("B").await;
    let b_user = node
        .client(&b)
        .await
        .sign_up_with_password(&unique_email("b-user"), PASSWORD)
        .await
        .unwrap();
    let a_server = node.server(&a).await;

    // A's server key presented for tenant B is not a key of B.
    let a_key_on_b = a_server.with_tenant(&b.id);
    for error in [
        a_key_on_b.get_user(&b_user.user_id).await.unwrap_err(),
        a_key_on_b.delete_user(&b_user.user_id).await.unwrap_err(),
        a_key_on_b.suspend_user(&b_user.user_id).await.unwrap_err(),
        a_key_on_b
            .revoke_session(&b_user.session_id)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(error.code, ErrorCode::InvalidApiKey, "{error}");
    }
    // Inside its own tenant, A cannot see B's ids at all.
    assert_eq!(
        a_server.get_user(&b_user.user_id).await.unwrap_err().code,
        ErrorCode::UserNotFound
    );
    assert_eq!(
        a_server
            .suspend_user(&b_user.user_id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::UserNotFound
    );
    assert_eq!(
        a_server
            .revoke_session(&b_user.session_id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::SessionNotFound
    );
    let listed = a_server
        .list_users(gatehouse_protocol::v1::ListUsersRequest::default())
        .await
        .unwrap();
    assert!(listed.users.is_empty());
    // B's refresh token is meaningless in A.
    let a_client = node.client(&a).await;
    assert_eq!(
        a_client
            .refresh_session(&b_user.refresh_token)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidRefreshToken
    );
    // B's access token does not authenticate with A's client key.
    assert_eq!(
        a_client
            .with_access_token(&b_user.access_token)
            .get_current_user()
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidAccessToken
    );
    // B is untouched.
    let b_server = node.server(&b).await;
    let user = b_server.get_user(&b_user.user_id).await.unwrap();
    assert_eq!(user.state, gatehouse_protocol::v1::UserState::Active as i32);
    node.client(&b)
        .await
        .refresh_session(&b_user.refresh_token)
        .await
        .unwrap();
}

#[tokio::test]
async fn access_types_are_enforced() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("lena"), PASSWORD)
        .await
        .unwrap();

    // A client key cannot manage users or sessions, even with a valid user token.
    let as_user = client.with_access_token(&signed_up.access_token);
    assert_eq!(
        as_user.get_user(&signed_up.user_id).await.unwrap_err().code,
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        as_user
            .list_sessions(&signed_up.user_id, false)
            .await
            .unwrap_err()
            .code,
        ErrorCode::PermissionDenied
    );
    // ...but can read its own user.
    let me = as_user.get_current_user().await.unwrap();
    assert_eq!(me.user_id, signed_up.user_id);
    assert!(me.server_metadata_json.is_empty());
    // Without a bearer token there is no current user.
    assert_eq!(
        client.get_current_user().await.unwrap_err().code,
        ErrorCode::MissingCredentials
    );
    // A signed-in client changes its own client-owned fields, and nothing else.
    let renamed = as_user
        .update_user(gatehouse_protocol::v1::UpdateUserRequest {
            display_name: Some("Lena".to_owned()),
            client_metadata_json: Some("{\"theme\":\"dark\"}".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Lena");
    assert_eq!(renamed.user_id, signed_up.user_id);
    for forbidden in [
        gatehouse_protocol::v1::UpdateUserRequest {
            email: Some(unique_email("takeover")),
            ..Default::default()
        },
        gatehouse_protocol::v1::UpdateUserRequest {
            server_metadata_json: Some("{\"plan\":\"pro\"}".to_owned()),
            ..Default::default()
        },
        gatehouse_protocol::v1::UpdateUserRequest {
            email_verified: Some(true),
            ..Default::default()
        },
    ] {
        assert_eq!(
            as_user.update_user(forbidden).await.unwrap_err().code,
            ErrorCode::PermissionDenied
        );
    }
    let other = client
        .sign_up_with_password(&unique_email("other"), PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        as_user
            .update_user(gatehouse_protocol::v1::UpdateUserRequest {
                user_id: other.user_id.clone(),
                display_name: Some("Hijacked".to_owned()),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code,
        ErrorCode::PermissionDenied
    );
    let untouched = node
        .server(&tenant)
        .await
        .get_user(&other.user_id)
        .await
        .unwrap();
    assert_eq!(untouched.display_name, "");

    // Server keys cannot administer tenants.
    let server = node.server(&tenant).await;
    assert_eq!(
        server.create_tenant("Sneaky", None).await.unwrap_err().code,
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        server
            .rotate_signing_key(&tenant.id)
            .await
            .unwrap_err()
            .code,
        ErrorCode::PermissionDenied
    );
    // Wrong or missing keys.
    let anonymous = node.anonymous().await;
    assert_eq!(
        anonymous.list_tenants(10, "").await.unwrap_err().code,
        ErrorCode::MissingCredentials
    );
    let bad_operator = anonymous.with_credentials(Credentials::Operator {
        operator_key: "gop_not-the-key".to_owned(),
    });
    assert_eq!(
        bad_operator.list_tenants(10, "").await.unwrap_err().code,
        ErrorCode::InvalidApiKey
    );
    let bad_client = client.with_credentials(Credentials::Client {
        publishable_key: "pck_wrong".to_owned(),
    });
    assert_eq!(
        bad_client
            .sign_in_with_password(&unique_email("x"), PASSWORD)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidApiKey
    );
    let no_tenant = anonymous.with_credentials(Credentials::Client {
        publishable_key: tenant.client_key.clone(),
    });
    assert_eq!(
        no_tenant
            .sign_in_with_password(&unique_email("x"), PASSWORD)
            .await
            .unwrap_err()
            .code,
        ErrorCode::MissingCredentials
    );
    assert_eq!(
        client
            .with_tenant("no-such-tenant")
            .sign_in_with_password(&unique_email("x"), PASSWORD)
            .await
            .unwrap_err()
            .code,
        ErrorCode::TenantNotFound
    );
    // A server key may be used as a client key? No: kinds are distinct.
    let server_as_client = client.with_credentials(Credentials::Client {
        publishable_key: tenant.server_key.clone(),
    });
    assert_eq!(
        server_as_client
            .sign_in_with_password(&unique_email("x"), PASSWORD)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidApiKey
    );
}
