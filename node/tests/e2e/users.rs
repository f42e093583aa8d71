//! User management: create, read, update, delete, list with pagination and email search.

use gatehouse_protocol::ErrorCode;
use gatehouse_protocol::v1::{CreateUserRequest, ListUsersRequest, UpdateUserRequest};

use crate::testkit::{PASSWORD, TestNode};

#[tokio::test]
async fn users_are_created_updated_listed_and_deleted() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let server = node.server(&tenant).await;
    let client = node.client(&tenant).await;

    let mut ids = Vec::new();
    for index in 0..7 {
        let user = server
            .create_user(CreateUserRequest {
                email: format!(
                    "user{index}@{}.example.com",
                    if index % 2 == 0 { "even" } else { "odd" }
                ),
                password: Some(PASSWORD.to_owned()),
                display_name: format!("User {index}"),
                email_verified: index == 0,
            })
            .await
            .unwrap();
        assert!(user.has_password);
        ids.push(user.user_id);
    }
    // Pages of 3 walk every user exactly once, in creation order.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = server
            .list_users(ListUsersRequest {
                page_size: 3,
                page_token: token.clone(),
                email_prefix: String::new(),
                include_anonymous: false,
            })
            .await
            .unwrap();
        assert!(page.users.len() <= 3);
        seen.extend(page.users.into_iter().map(|user| user.user_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids);

    // Email prefix search is case-insensitive and paginates too.
    let found = server
        .list_users(ListUsersRequest {
            page_size: 2,
            page_token: String::new(),
            email_prefix: "USER1".to_owned(),
            include_anonymous: false,
        })
        .await
        .unwrap();
    assert_eq!(found.users.len(), 1);
    assert_eq!(found.users[0].email, "user1@odd.example.com");
    let mut prefixed = 0;
    let mut token = String::new();
    loop {
        let page = server
            .list_users(ListUsersRequest {
                page_size: 2,
                page_token: token.clone(),
                email_prefix: "user".to_owned(),
                include_anonymous: false,
            })
            .await
            .unwrap();
        prefixed += page.users.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(prefixed, 7);

    // Update: email moves the unique index, password revokes sessions.
    let signed_in = client
        .sign_in_with_password("user2@even.example.com", PASSWORD)
        .await
        .unwrap();
    let updated = server
        .update_user(UpdateUserRequest {
            user_id: ids[2].clone(),
            email: Some("renamed@example.com".to_owned()),
            display_name: Some("Renamed".to_owned()),
            server_metadata_json: Some("{\"plan\":\"pro\"}".to_owned()),
            ..UpdateUserRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.email, "renamed@example.com");
    assert_eq!(updated.display_name, "Renamed");
    assert_eq!(updated.server_metadata_json, "{\"plan\":\"pro\"}");
    let taken = server
        .update_user(UpdateUserRequest {
            user_id: ids[3].clone(),
            email: Some("Renamed@example.com".to_owned()),
            ..UpdateUserRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code, ErrorCode::UserEmailAlreadyExists);
    // The old address is free again.
    client
        .sign_up_with_password("user2@even.example.com", PASSWORD)
        .await
        .unwrap();
    server
        .update_user(UpdateUserRequest {
            user_id: ids[2].clone(),
            password: Some("a brand new passphrase".to_owned()),
            ..UpdateUserRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(
        client
            .refresh_session(&signed_in.refresh_token)
            .await
            .unwrap_err()
            .code,
        ErrorCode::SessionRevoked,
        "a password change revokes sessions"
    );
    client
        .sign_in_with_password("renamed@example.com", "a brand new passphrase")
        .await
        .unwrap();

    // Delete removes the user, its email and its sessions.
    server.delete_user(&ids[2]).await.unwrap();
    assert_eq!(
        server.get_user(&ids[2]).await.unwrap_err().code,
        ErrorCode::UserNotFound
    );
    assert_eq!(
        server.list_sessions(&ids[2], true).await.unwrap_err().code,
        ErrorCode::UserNotFound
    );
    assert_eq!(
        client
            .sign_in_with_password("renamed@example.com", "a brand new passphrase")
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        server.delete_user(&ids[2]).await.unwrap_err().code,
        ErrorCode::UserNotFound
    );
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_by_the_server() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let server = node.server(&tenant).await;
    let client = node.client(&tenant).await;
    let first = client
        .sign_up_with_password("maya@example.com", PASSWORD)
        .await
        .unwrap();
    let second = client
        .sign_in_with_password("maya@example.com", PASSWORD)
        .await
        .unwrap();
    let third = client
        .sign_in_with_password("maya@example.com", PASSWORD)
        .await
        .unwrap();

    let sessions = server.list_sessions(&first.user_id, false).await.unwrap();
    assert_eq!(sessions.len(), 3);
    assert!(
        sessions
            .iter()
            .all(|session| session.ip_address == "127.0.0.1")
    );
    server.revoke_session(&second.session_id).await.unwrap();
    assert_eq!(
        client
            .refresh_session(&second.refresh_token)
            .await
            .unwrap_err()
            .code,
        ErrorCode::SessionRevoked
    );
    assert_eq!(
        server
            .list_sessions(&first.user_id, false)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        server
            .list_sessions(&first.user_id, true)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        server.revoke_user_sessions(&first.user_id).await.unwrap(),
        2
    );
    assert_eq!(
        client
            .refresh_session(&third.refresh_token)
            .await
            .unwrap_err()
            .code,
        ErrorCode::SessionRevoked
    );
    assert!(
        server
            .list_sessions(&first.user_id, false)
            .await
            .unwrap()
            .is_empty()
    );
}
