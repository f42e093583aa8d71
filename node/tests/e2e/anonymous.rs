//! Anonymous users against a real node: refused while the tenant's toggle is off; their
//! tokens say `role: anon` and are signed with a key that only the `include_anonymous` JWKS
//! publishes; they are left out of user lists unless asked for; what they cannot do; and
//! the upgrade in place by password sign-up and by emailed code (same user id, team and
//! metadata, a normal token).

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_protocol::sdk::{Client, EmailProof};
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::factors::verified_claims;
use crate::mail::{REDIRECT, code_of, email_tenant, next_message, node_with_smtp};
use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ApiError {
    result.expect_err("the call must be refused")
}

async fn jwks(node: &TestNode, tenant: &TestTenant, query: &str) -> JwkSet {
    reqwest::get(format!(
        "{}/t/{}/.well-known/jwks.json{query}",
        node.http_url(),
        tenant.id
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

async fn enable_anonymous(node: &TestNode, tenant: &TestTenant) {
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            anonymous_enabled: Some(true),
            ..v1::UpdateTenantConfigRequest::default()
        })
        .await
        .unwrap();
}

/// The anonymous user's client: the tenant's client key with its access token.
async fn signed_in_anonymously(node: &TestNode, tenant: &TestTenant) -> (Client, v1::SignInReply) {
    let reply = node
        .client(tenant)
        .await
        .sign_in_anonymously()
        .await
        .unwrap();
    let client = node
        .client(tenant)
        .await
        .with_access_token(&reply.tokens.as_ref().unwrap().access_token);
    (client, reply)
}

async fn user_ids(server: &Client, include_anonymous: bool) -> Vec<String> {
    server
        .list_users(v1::ListUsersRequest {
            include_anonymous,
            ..v1::ListUsersRequest::default()
        })
        .await
        .unwrap()
        .users
        .into_iter()
        .map(|user| user.user_id)
        .collect()
}

#[tokio::test]
async fn anonymous_tokens_use_a_key_only_the_opt_in_jwks_lists() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let error = refused(node.client(&tenant).await.sign_in_anonymously().await);
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");

    enable_anonymous(&node, &tenant).await;
    let (anon, reply) = signed_in_anonymously(&node, &tenant).await;
    let token = reply.tokens.as_ref().unwrap().access_token.clone();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let standard = jwks(&node, &tenant, "").await;
    assert!(
        standard.find(&kid).is_none(),
        "the standard JWKS lists the anonymous key"
    );
    let opt_in = jwks(&node, &tenant, "?include_anonymous=true").await;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[tenant.id.as_str()]);
    let key = DecodingKey::from_jwk(opt_in.find(&kid).expect("the opt-in JWKS lists it")).unwrap();
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["role"], "anon");
    assert_eq!(claims["sub"], reply.user_id.as_str());
    assert!(claims.get("act").is_none());
    // Every key of the standard set is in the opt-in one too.
    assert_eq!(opt_in.keys.len(), standard.keys.len() + 1);

    // Gatehouse itself accepts the token; the user has no email.
    let me = anon.get_current_user().await.unwrap();
    assert_eq!(me.user_id, reply.user_id);
    assert!(me.is_anonymous);
    assert!(me.email.is_empty());

    // Listed only on request.
    let server = node.server(&tenant).await;
    let ada = unique_email("ada");
    server
        .create_user(v1::CreateUserRequest {
            email: ada.clone(),
            ..v1::CreateUserRequest::default()
        })
        .await
        .unwrap();
    assert!(!user_ids(&server, false).await.contains(&reply.user_id));
    assert!(user_ids(&server, true).await.contains(&reply.user_id));

    // A refresh keeps `role: anon`.
    let refreshed = node
        .client(&tenant)
        .await
        .refresh_session(&reply.tokens.as_ref().unwrap().refresh_token)
        .await
        .unwrap();
    let again = &refreshed.tokens.as_ref().unwrap().access_token;
    let kid_again = jsonwebtoken::decode_header(again).unwrap().kid.unwrap();
    assert_eq!(kid_again, kid);

    // What an anonymous user may not do: invite (the same call without a redirect would
    // be an INVALID_ARGUMENT for a full user, so this is the anonymous refusal), add a
    // second factor, ask for a verification email.
    let team_id = make_a_home(&anon).await;
    let invite = refused(
        anon.create_team_invitation(v1::CreateTeamInvitationRequest {
            team_id,
            email: ada,
            ..v1::CreateTeamInvitationRequest::default()
        })
        .await,
    );
    assert_eq!(invite.code, ErrorCode::PermissionDenied, "{invite:?}");
    let totp = refused(anon.enroll_totp().await);
    assert_eq!(totp.code, ErrorCode::PermissionDenied, "{totp:?}");
    let verification = refused(anon.send_email_verification("", "").await);
    assert_eq!(
        verification.code,
        ErrorCode::PermissionDenied,
        "{verification:?}"
    );

    // Turned off again: no new anonymous users.
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            anonymous_enabled: Some(false),
            ..v1::UpdateTenantConfigRequest::default()
        })
        .await
        .unwrap();
    let error = refused(node.client(&tenant).await.sign_in_anonymously().await);
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");
}

/// Creates a team and writes metadata as the anonymous user.
async fn make_a_home(anon: &Client) -> String {
    let team = anon
        .create_team(v1::CreateTeamRequest {
            display_name: "Mine".to_owned(),
            ..v1::CreateTeamRequest::default()
        })
        .await
        .unwrap();
    anon.update_user(v1::UpdateUserRequest {
        client_metadata_json: Some("{\"cart\":3}".to_owned()),
        ..v1::UpdateUserRequest::default()
    })
    .await
    .unwrap();
    team.team_id
}

async fn assert_upgraded(
    node: &TestNode,
    tenant: &TestTenant,
    anonymous: &v1::SignInReply,
    upgraded: &v1::SignInReply,
    team_id: &str,
    email: &str,
) {
    assert_eq!(upgraded.user_id, anonymous.user_id);
    let token = &upgraded.tokens.as_ref().unwrap().access_token;
    // The standard JWKS verifies the new token: a normal user now.
    let claims = verified_claims(node, tenant, token).await;
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["sub"], anonymous.user_id.as_str());
    let me = node
        .client(tenant)
        .await
        .with_access_token(token)
        .get_current_user()
        .await
        .unwrap();
    assert!(!me.is_anonymous);
    assert_eq!(me.email, email);
    assert_eq!(me.client_metadata_json, "{\"cart\":3}");
    let teams = node
        .server(tenant)
        .await
        .list_user_teams(v1::ListUserTeamsRequest {
            user_id: anonymous.user_id.clone(),
        })
        .await
        .unwrap();
    assert!(teams.teams.iter().any(|team| team.team_id == team_id));
    // The anonymous session ended with the upgrade.
    let error = refused(
        node.client(tenant)
            .await
            .refresh_session(&anonymous.tokens.as_ref().unwrap().refresh_token)
            .await,
    );
    assert_eq!(error.code, ErrorCode::SessionRevoked, "{error:?}");
    // Listed by default now, and findable by its address.
    let server = node.server(tenant).await;
    assert!(user_ids(&server, false).await.contains(&anonymous.user_id));
}

#[tokio::test]
async fn a_password_sign_up_upgrades_the_anonymous_user_in_place() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    enable_anonymous(&node, &tenant).await;
    let (anon, reply) = signed_in_anonymously(&node, &tenant).await;
    let team_id = make_a_home(&anon).await;
    // An address someone has is refused, and the anonymous user stays as it was.
    let taken = unique_email("taken");
    node.server(&tenant)
        .await
        .create_user(v1::CreateUserRequest {
            email: taken.clone(),
            ..v1::CreateUserRequest::default()
        })
        .await
        .unwrap();
    let error = refused(anon.sign_up_with_password(&taken, PASSWORD).await);
    assert_eq!(error.code, ErrorCode::UserEmailAlreadyExists, "{error:?}");
    assert!(anon.get_current_user().await.unwrap().is_anonymous);

    let email = unique_email("upgraded");
    let upgraded = anon.sign_up_with_password(&email, PASSWORD).await.unwrap();
    assert_upgraded(&node, &tenant, &reply, &upgraded, &team_id, &email).await;
    // The password works for a fresh sign-in too.
    let again = node
        .client(&tenant)
        .await
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    assert_eq!(again.user_id, reply.user_id);
}

#[tokio::test]
async fn an_emailed_code_upgrades_the_anonymous_user_in_place() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", v1::UpdateTenantConfigRequest::default()).await;
    enable_anonymous(&node, &tenant).await;
    let (anon, reply) = signed_in_anonymously(&node, &tenant).await;
    let team_id = make_a_home(&anon).await;
    let email = unique_email("coded");
    anon.send_sign_in_code(&email, REDIRECT).await.unwrap();
    let message = next_message(&smtp, &email, 0).await;
    let upgraded = anon
        .sign_in_with_code(EmailProof::Code {
            email: &email,
            code: &code_of(&message),
        })
        .await
        .unwrap();
    assert_upgraded(&node, &tenant, &reply, &upgraded, &team_id, &email).await;
    let me = node
        .client(&tenant)
        .await
        .with_access_token(&upgraded.tokens.as_ref().unwrap().access_token)
        .get_current_user()
        .await
        .unwrap();
    assert!(me.email_verified);
}

#[tokio::test]
async fn anonymous_sign_in_is_limited_per_source() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    enable_anonymous(&node, &tenant).await;
    let client = node.client(&tenant).await;
    let mut created = 0;
    let limited = loop {
        match client.sign_in_anonymously().await {
            Ok(_) => created += 1,
            Err(error) => break error,
        }
        assert!(created <= 40, "no limit after {created} anonymous users");
    };
    assert_eq!(limited.code, ErrorCode::RateLimited, "{limited:?}");
    assert!(created >= 30, "limited after only {created}");
    // Another tenant's budget is its own.
    let other = node.tenant("Other").await;
    enable_anonymous(&node, &other).await;
    node.client(&other)
        .await
        .sign_in_anonymously()
        .await
        .unwrap();
}
