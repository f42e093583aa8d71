//! Impersonation against a real node: the token's `act` names the impersonator and `sub`
//! the user; the session is marked in ListSessions; refreshes work but never outlive the
//! session's end; step-up operations are refused in it; start and end are audited; another
//! tenant's server key and blocked users are refused; and `admin user impersonate --json`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use serde_json::Value;

use crate::factors::verified_claims;
use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ApiError {
    result.expect_err("the call must be refused")
}

async fn user_with_password(node: &TestNode, tenant: &TestTenant) -> v1::SignInReply {
    node.client(tenant)
        .await
        .sign_up_with_password(&unique_email("ada"), PASSWORD)
        .await
        .unwrap()
}

fn seconds(at: Option<&prost_types::Timestamp>) -> i64 {
    at.unwrap().seconds
}

#[tokio::test]
async fn an_impersonation_session_carries_act_and_ends_on_time() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let ada = user_with_password(&node, &tenant).await;
    let server = node.server(&tenant).await;
    let reply = server
        .impersonate_user(&ada.user_id, "support ticket 42", 10)
        .await
        .unwrap();
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert_eq!(reply.user_id, ada.user_id);
    let tokens = reply.tokens.clone().unwrap();
    let session = reply.session.clone().unwrap();
    assert_eq!(session.impersonator, "server");
    assert_eq!(session.impersonation_reason, "support ticket 42");
    let ends = seconds(session.expires_at.as_ref());

    // The token: the user as subject, the impersonator as actor, never past the end.
    let claims = verified_claims(&node, &tenant, &tokens.access_token).await;
    assert_eq!(claims["sub"], ada.user_id.as_str());
    assert_eq!(claims["act"]["sub"], "server");
    assert_eq!(claims["role"], "authenticated");
    assert!(claims["exp"].as_i64().unwrap() <= ends, "{claims}");
    assert!(seconds(tokens.access_token_expires_at.as_ref()) <= ends);
    // The user's own token has no `act`.
    let own = verified_claims(&node, &tenant, &ada.tokens.as_ref().unwrap().access_token).await;
    assert!(own.get("act").is_none(), "{own}");

    // Marked in the user's sessions.
    let sessions = server.list_sessions(&ada.user_id, false).await.unwrap();
    let listed = sessions
        .iter()
        .find(|listed| listed.session_id == reply.session_id)
        .expect("the impersonation session is listed");
    assert_eq!(listed.impersonator, "server");
    assert_eq!(listed.impersonation_reason, "support ticket 42");
    assert!(
        sessions
            .iter()
            .filter(|listed| listed.session_id != reply.session_id)
            .all(|listed| listed.impersonator.is_empty())
    );

    // Step-up operations are refused while impersonating, however fresh the session.
    let as_ada = node
        .client(&tenant)
        .await
        .with_access_token(&tokens.access_token);
    let error = refused(
        as_ada
            .change_password(PASSWORD, "another good passphrase")
            .await,
    );
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");
    assert_eq!(
        as_ada.get_current_user().await.unwrap().user_id,
        ada.user_id
    );

    // A refresh works and keeps `act` and the end.
    let client = node.client(&tenant).await;
    let refreshed = client.refresh_session(&tokens.refresh_token).await.unwrap();
    let new_tokens = refreshed.tokens.unwrap();
    let claims = verified_claims(&node, &tenant, &new_tokens.access_token).await;
    assert_eq!(claims["act"]["sub"], "server");
    assert!(claims["exp"].as_i64().unwrap() <= ends);

    // Once the end has passed, no refresh: wait for it (10 s from the start, plus a second).
    let end = Duration::from_secs(u64::try_from(ends).unwrap() + 1);
    if let Some(left) = end.checked_sub(started) {
        tokio::time::sleep(left).await;
    }
    while SystemTime::now().duration_since(UNIX_EPOCH).unwrap() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = refused(client.refresh_session(&new_tokens.refresh_token).await);
    assert_eq!(error.code, ErrorCode::SessionExpired, "{error:?}");
}

async fn actions_on(server: &Client, session_id: &str) -> Vec<(String, String)> {
    server
        .list_audit_entries(200, "")
        .await
        .unwrap()
        .entries
        .into_iter()
        .filter(|entry| entry.target == format!("session:{session_id}"))
        .map(|entry| (entry.action, entry.actor))
        .collect()
}

#[tokio::test]
async fn start_and_end_are_audited_and_foreign_or_blocked_targets_refused() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let other = node.tenant("Other").await;
    let ada = user_with_password(&node, &tenant).await;
    let server = node.server(&tenant).await;

    // Signing out of the impersonation session ends it, audited.
    let reply = server
        .impersonate_user(&ada.user_id, "checking the cart", 0)
        .await
        .unwrap();
    let session = reply.session.unwrap();
    let started = seconds(session.created_at.as_ref());
    assert_eq!(seconds(session.expires_at.as_ref()) - started, 30 * 60);
    node.client(&tenant)
        .await
        .sign_out(&reply.tokens.unwrap().refresh_token)
        .await
        .unwrap();
    let actions = actions_on(&server, &reply.session_id).await;
    assert_eq!(
        actions,
        [
            (
                "session.impersonation_start".to_owned(),
                "server".to_owned()
            ),
            ("session.impersonation_end".to_owned(), "server".to_owned()),
        ]
    );
    let entry = server
        .list_audit_entries(200, "")
        .await
        .unwrap()
        .entries
        .into_iter()
        .find(|entry| entry.action == "session.impersonation_start")
        .unwrap();
    let details: Value = serde_json::from_str(&entry.details_json).unwrap();
    assert_eq!(details["reason"], "checking the cart");
    assert_eq!(details["user_id"], ada.user_id.as_str());

    // A revocation by the operator ends it too.
    let reply = server
        .impersonate_user(&ada.user_id, "second look", 600)
        .await
        .unwrap();
    server.revoke_session(&reply.session_id).await.unwrap();
    let actions: Vec<_> = actions_on(&server, &reply.session_id)
        .await
        .into_iter()
        .map(|(action, _)| action)
        .collect();
    assert!(
        actions.contains(&"session.impersonation_end".to_owned()),
        "{actions:?}"
    );

    // A reason is required; the length is bounded.
    let error = refused(server.impersonate_user(&ada.user_id, " ", 0).await);
    assert_eq!(error.code, ErrorCode::InvalidArgument, "{error:?}");
    let error = refused(
        server
            .impersonate_user(&ada.user_id, "why", 12 * 3600 + 1)
            .await,
    );
    assert_eq!(error.code, ErrorCode::InvalidArgument, "{error:?}");

    // Another tenant's server key cannot act in this tenant, nor reach its users.
    let foreign = node.server(&other).await.with_tenant(&tenant.id);
    let error = refused(foreign.impersonate_user(&ada.user_id, "nosy", 0).await);
    assert_eq!(error.code, ErrorCode::InvalidApiKey, "{error:?}");
    let error = refused(
        node.server(&other)
            .await
            .impersonate_user(&ada.user_id, "nosy", 0)
            .await,
    );
    assert_eq!(error.code, ErrorCode::UserNotFound, "{error:?}");
    // A client key cannot impersonate.
    let error = refused(
        node.client(&tenant)
            .await
            .with_access_token(&ada.tokens.as_ref().unwrap().access_token)
            .impersonate_user(&ada.user_id, "me", 0)
            .await,
    );
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");

    // Suspended users are refused.
    server.suspend_user(&ada.user_id).await.unwrap();
    let error = refused(server.impersonate_user(&ada.user_id, "why", 0).await);
    assert_eq!(error.code, ErrorCode::UserSuspended, "{error:?}");
}

#[tokio::test]
async fn the_cli_prints_the_tokens_of_an_operator_impersonation() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let ada = user_with_password(&node, &tenant).await;
    let (ok, stdout, stderr) = node.admin(&[
        "user",
        "impersonate",
        "--tenant",
        &tenant.id,
        &ada.user_id,
        "--reason",
        "support ticket 7",
        "--duration",
        "15m",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["user_id"], ada.user_id.as_str());
    assert_eq!(printed["impersonator"], "operator");
    assert_eq!(printed["reason"], "support ticket 7");
    let token = printed["access_token"].as_str().unwrap();
    let claims = verified_claims(&node, &tenant, token).await;
    assert_eq!(claims["act"]["sub"], "operator");
    assert_eq!(claims["sub"], ada.user_id.as_str());
    assert!(
        printed["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("grt_")
    );
    // The refresh token is a working one.
    node.client(&tenant)
        .await
        .refresh_session(printed["refresh_token"].as_str().unwrap())
        .await
        .unwrap();

    // Without a reason the CLI refuses before calling.
    let (ok, _, _) = node.admin(&["user", "impersonate", "--tenant", &tenant.id, &ada.user_id]);
    assert!(!ok);
    // The anonymous flags of tenant config.
    let (ok, stdout, stderr) = node.admin(&[
        "tenant",
        "config",
        &tenant.id,
        "--anonymous-enabled",
        "true",
        "--anonymous-idle-ttl",
        "2d",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let config = &serde_json::from_str::<Value>(&stdout).unwrap()["config"];
    assert_eq!(config["anonymous_enabled"], true);
    assert_eq!(config["anonymous_idle_ttl_seconds"], 2 * 24 * 3600);
}

#[tokio::test]
async fn impersonation_bypasses_mfa_but_may_not_change_factors() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let email = unique_email("mfa");
    let (_, _, _) = crate::factors::user_with_totp(&node.client(&tenant).await, &email).await;
    // The user's own password sign-in needs the second factor.
    let error = refused(
        node.client(&tenant)
            .await
            .sign_in_with_password(&email, PASSWORD)
            .await,
    );
    assert_eq!(error.code, ErrorCode::MfaRequired, "{error:?}");
    let server = node.server(&tenant).await;
    let user_id = server
        .list_users(v1::ListUsersRequest {
            email_prefix: email.clone(),
            ..v1::ListUsersRequest::default()
        })
        .await
        .unwrap()
        .users[0]
        .user_id
        .clone();
    // The impersonator gets a session at once: an operator power, no MFA asked.
    let reply = server
        .impersonate_user(&user_id, "locked out, on the phone", 60)
        .await
        .unwrap();
    let token = reply.tokens.unwrap().access_token;
    let claims = verified_claims(&node, &tenant, &token).await;
    assert_eq!(claims["sub"], user_id.as_str());
    assert!(claims.get("amr").is_none(), "{claims}");
    // But it cannot remove the user's factors.
    let as_user = node.client(&tenant).await.with_access_token(&token);
    let error = refused(as_user.disable_totp().await);
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");
}
