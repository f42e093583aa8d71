//! Sign-up, sign-in, refresh rotation, reuse detection, sign-out, suspension.

use gatehouse_protocol::ErrorCode;

use crate::testkit::{PASSWORD, TestNode, unique_email};

#[tokio::test]
async fn sign_up_returns_a_session_and_duplicate_email_is_refused() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("alice");
    let reply = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    assert!(!reply.user_id.is_empty() && !reply.session_id.is_empty());
    assert!(
        reply.access_token.split('.').count() == 3,
        "access token is a JWT"
    );
    assert!(reply.refresh_token.starts_with("grt_"));
    let tokens = reply.tokens.as_ref().unwrap();
    assert_eq!(tokens.access_token, reply.access_token);
    assert_eq!(reply.user.as_ref().unwrap().email, email);

    let again = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::UserEmailAlreadyExists);
    let upper = client
        .sign_up_with_password(&email.to_uppercase(), PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(
        upper.code,
        ErrorCode::UserEmailAlreadyExists,
        "emails are case-insensitive"
    );

    let weak = client
        .sign_up_with_password(&unique_email("weak"), "password123")
        .await
        .unwrap_err();
    assert_eq!(weak.code, ErrorCode::InvalidPassword);
    assert_eq!(weak.field.as_deref(), Some("password"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_give_the_same_answer() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("bob");
    client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();

    let wrong = client
        .sign_in_with_password(&email, "not the password at all")
        .await
        .unwrap_err();
    let unknown = client
        .sign_in_with_password(&unique_email("nobody"), PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(wrong.code, ErrorCode::InvalidCredentials);
    assert_eq!(unknown.code, ErrorCode::InvalidCredentials);
    assert_eq!(wrong.message, unknown.message);
    assert_eq!(wrong.grpc_code, unknown.grpc_code);

    let ok = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    assert!(!ok.refresh_token.is_empty());
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("carol"), PASSWORD)
        .await
        .unwrap();

    let first = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
    assert_ne!(
        first.refresh_token, signed_up.refresh_token,
        "refresh token rotates"
    );
    assert_eq!(first.session_id, signed_up.session_id);
    let second = client.refresh_session(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);

    // Presenting a spent token again is theft or a bug: the whole session goes.
    let reused = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(reused.code, ErrorCode::RefreshTokenReused);
    let after = client
        .refresh_session(&second.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(
        after.code,
        ErrorCode::SessionRevoked,
        "the newest token dies with the session"
    );

    let sessions = node
        .server(&tenant)
        .await
        .list_sessions(&signed_up.user_id, true)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].revoked);
    assert_eq!(sessions[0].revoked_reason, "refresh_token_reused");

    let forged = format!(
        "grt_{}.{}",
        signed_up.session_id.replace('-', ""),
        "A".repeat(43)
    );
    let invalid = client.refresh_session(&forged).await.unwrap_err();
    assert_eq!(invalid.code, ErrorCode::InvalidRefreshToken);
}

#[tokio::test]
async fn a_forged_token_for_a_live_session_does_not_revoke_it() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("dora"), PASSWORD)
        .await
        .unwrap();
    let forged = format!(
        "grt_{}.{}",
        signed_up.session_id.replace('-', ""),
        "B".repeat(43)
    );
    let invalid = client.refresh_session(&forged).await.unwrap_err();
    assert_eq!(invalid.code, ErrorCode::InvalidRefreshToken);
    client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let by_refresh = client
        .sign_up_with_password(&unique_email("erin"), PASSWORD)
        .await
        .unwrap();
    client.sign_out(&by_refresh.refresh_token).await.unwrap();
    let refused = client
        .refresh_session(&by_refresh.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SessionRevoked);

    let email = unique_email("frank");
    let by_bearer = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    client
        .with_access_token(&by_bearer.access_token)
        .sign_out("")
        .await
        .unwrap();
    let refused = client
        .refresh_session(&by_bearer.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SessionRevoked);
}

#[tokio::test]
async fn a_suspended_user_can_neither_refresh_nor_sign_in() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("gina");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let server = node.server(&tenant).await;

    let user = server.suspend_user(&signed_up.user_id).await.unwrap();
    assert_eq!(
        user.state,
        gatehouse_protocol::v1::UserState::Suspended as i32
    );
    let refresh = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refresh.code,
            ErrorCode::SessionRevoked | ErrorCode::UserSuspended
        ),
        "{refresh}"
    );
    let sign_in = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(sign_in.code, ErrorCode::UserSuspended);
    // A wrong password still reveals nothing about the account.
    let wrong = client
        .sign_in_with_password(&email, "some other password")
        .await
        .unwrap_err();
    assert_eq!(wrong.code, ErrorCode::InvalidCredentials);

    server.reactivate_user(&signed_up.user_id).await.unwrap();
    let again = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    client.refresh_session(&again.refresh_token).await.unwrap();
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_per_account() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("henry");
    client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let mut codes = Vec::new();
    for _ in 0..12 {
        codes.push(
            client
                .sign_in_with_password(&email, "guessing the password")
                .await
                .unwrap_err()
                .code,
        );
    }
    assert!(
        codes[..10]
            .iter()
            .all(|code| *code == ErrorCode::InvalidCredentials)
    );
    assert_eq!(codes[11], ErrorCode::RateLimited);
    let limited = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(
        limited.code,
        ErrorCode::RateLimited,
        "even the right password waits"
    );
    // Unknown accounts are limited the same way, so the limit reveals nothing.
    let ghost = unique_email("ghost");
    let mut last = None;
    for _ in 0..12 {
        last = Some(
            client
                .sign_in_with_password(&ghost, PASSWORD)
                .await
                .unwrap_err()
                .code,
        );
    }
    assert_eq!(last, Some(ErrorCode::RateLimited));
}

#[test]
fn the_sdk_states_the_spent_token_window_the_domain_keeps() {
    // Clients and the chaos checker read the window from the SDK; it must be the domain's.
    assert_eq!(
        gatehouse_protocol::sdk::SPENT_REFRESH_TOKENS_REMEMBERED,
        gatehouse_actors::sessions::SPENT_TOKENS_KEPT
    );
}

#[tokio::test]
async fn a_tenants_grace_window_answers_a_retried_refresh_with_the_same_token() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let (ok, stdout, stderr) = node.admin(&[
        "tenant",
        "config",
        &tenant.id,
        "--refresh-grace",
        "30",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let config: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(config["config"]["refresh_grace_seconds"], 30, "{stdout}");
    let (ok, _, stderr) = node.admin(&["tenant", "config", &tenant.id, "--refresh-grace", "301"]);
    assert!(!ok && stderr.contains("refresh_grace_seconds"), "{stderr}");

    let client = node.client(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("retry"), PASSWORD)
        .await
        .unwrap();
    let first = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
    // The reply was lost: the client retries with the token it still has.
    let retried = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
    assert_eq!(retried.refresh_token, first.refresh_token);
    assert_eq!(retried.session_id, first.session_id);
    let next = client.refresh_session(&first.refresh_token).await.unwrap();
    // Two rotations old is a reuse, inside the window or not.
    let reused = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(reused.code, ErrorCode::RefreshTokenReused);
    let revoked = client
        .refresh_session(&next.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(revoked.code, ErrorCode::SessionRevoked);
}
