//! TOTP, recovery codes, MFA tickets and step-up against a real node, with codes computed by
//! an independent RFC 6238 implementation (`gatehouse_cluster_tests::totp`): enrolment,
//! skew of one step accepted and two refused, replay within a step refused, single-use
//! recovery codes and tickets, `amr` and `auth_time` in verified tokens, a factor change
//! revoking the other sessions and mailing a notice, banned users refused, and sensitive
//! operations refused once the sign-in is older than the tenant's step-up window.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_cluster_tests::totp::{secret_from_otpauth, totp_sha1};
use gatehouse_protocol::sdk::{Client, SecondFactor};
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::mail::{email_tenant, next_message, node_with_smtp};
use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ApiError {
    result.expect_err("the call must be refused")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits until the current 30-second step has at least five seconds left (and began at least
/// two ago), so "one step away" stays one step away while the node checks it.
async fn away_from_a_step_boundary() {
    loop {
        let into = now() % 30;
        if (2..=24).contains(&into) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn code(secret: &[u8], offset_steps: i64) -> String {
    let at = now().checked_add_signed(offset_steps * 30).unwrap();
    totp_sha1(secret, at, 6, 30)
}

/// The verified claims of an access token, checked against the tenant's JWKS over HTTP.
pub async fn verified_claims(node: &TestNode, tenant: &TestTenant, token: &str) -> Value {
    let jwks: JwkSet = reqwest::get(format!(
        "{}/t/{}/.well-known/jwks.json",
        node.http_url(),
        tenant.id
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[tenant.id.as_str()]);
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

/// A tenant with `changes` applied.
async fn configured_tenant(node: &TestNode, changes: v1::UpdateTenantConfigRequest) -> TestTenant {
    let tenant = node.tenant("Acme").await;
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            ..changes
        })
        .await
        .unwrap();
    tenant
}

/// Signs a user up and enrols TOTP; returns the client, the seed and the recovery codes.
pub async fn user_with_totp(client: &Client, email: &str) -> (Client, Vec<u8>, Vec<String>) {
    let signed_up = client.sign_up_with_password(email, PASSWORD).await.unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    let enrolment = user.enroll_totp().await.unwrap();
    assert!(enrolment.qr_svg.starts_with("<?xml") || enrolment.qr_svg.contains("<svg"));
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
    assert!(enrolment.otpauth_uri.contains("issuer=Acme"));
    let secret = secret_from_otpauth(&enrolment.otpauth_uri).unwrap();
    away_from_a_step_boundary().await;
    let codes = user.confirm_totp(&code(&secret, 0)).await.unwrap();
    (user, secret, codes)
}

async fn ticket(client: &Client, email: &str) -> (String, Vec<String>) {
    let error = refused(client.sign_in_with_password(email, PASSWORD).await);
    assert_eq!(error.code, ErrorCode::MfaRequired, "{error}");
    let factors = error
        .mfa_factors()
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    (error.mfa_ticket().expect("a ticket").to_owned(), factors)
}

#[tokio::test]
async fn totp_accepts_one_step_of_skew_refuses_two_and_each_step_once() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;

    // Before confirmation: two steps away is refused, one step back confirms.
    let email = unique_email("ada");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let ada = client.with_access_token(&signed_up.access_token);
    let secret = secret_from_otpauth(&ada.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    away_from_a_step_boundary().await;
    for offset in [-2, 2] {
        let error = refused(ada.confirm_totp(&code(&secret, offset)).await);
        assert_eq!(error.code, ErrorCode::InvalidCode, "offset {offset}");
    }
    let recovery = ada.confirm_totp(&code(&secret, -1)).await.unwrap();
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        refused(ada.enroll_totp().await).code,
        ErrorCode::FactorAlreadyEnrolled
    );

    // One step ahead confirms too.
    let other = unique_email("ben");
    let signed_up = client
        .sign_up_with_password(&other, PASSWORD)
        .await
        .unwrap();
    let ben = client.with_access_token(&signed_up.access_token);
    let ben_secret = secret_from_otpauth(&ben.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    away_from_a_step_boundary().await;
    ben.confirm_totp(&code(&ben_secret, 1)).await.unwrap();

    // A password sign-in now needs the second factor.
    let (first, factors) = ticket(&client, &email).await;
    assert_eq!(factors, vec!["totp", "recovery_code"]);
    away_from_a_step_boundary().await;
    let replayed = refused(
        client
            .complete_mfa(&first, SecondFactor::Totp(&code(&secret, -1)))
            .await,
    );
    assert_eq!(
        replayed.code,
        ErrorCode::InvalidCode,
        "the confirming code is spent"
    );
    let current = code(&secret, 0);
    let signed_in = client
        .complete_mfa(&first, SecondFactor::Totp(&current))
        .await
        .unwrap();
    let claims = verified_claims(&node, &tenant, &signed_in.access_token).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!((auth_time - i64::try_from(now()).unwrap()).abs() < 30);
    assert_eq!(
        refused(
            client
                .complete_mfa(&first, SecondFactor::Totp(&current))
                .await
        )
        .code,
        ErrorCode::MfaTicketInvalid,
        "a ticket completes one sign-in"
    );
    let (second, _) = ticket(&client, &email).await;
    assert_eq!(
        refused(
            client
                .complete_mfa(&second, SecondFactor::Totp(&current))
                .await
        )
        .code,
        ErrorCode::InvalidCode,
        "the same step's code is accepted once"
    );

    // Recovery codes: single use, any case.
    let upper = recovery[0].to_uppercase();
    client
        .complete_mfa(&second, SecondFactor::RecoveryCode(&upper))
        .await
        .unwrap();
    let (third, _) = ticket(&client, &email).await;
    assert_eq!(
        refused(
            client
                .complete_mfa(&third, SecondFactor::RecoveryCode(&recovery[0]))
                .await
        )
        .code,
        ErrorCode::InvalidCode
    );
    let factors = node
        .server(&tenant)
        .await
        .list_factors(&signed_in.user_id)
        .await
        .unwrap();
    assert!(factors.totp_confirmed);
    assert_eq!(factors.recovery_codes_remaining, 9);
    // The replayed code, the code of a spent step and the spent recovery code.
    assert_eq!(factors.recent_failures, 3);

    // A banned user cannot complete a ticket already issued.
    let (fourth, _) = ticket(&client, &email).await;
    node.server(&tenant)
        .await
        .ban_user(&signed_in.user_id, "chargebacks")
        .await
        .unwrap();
    away_from_a_step_boundary().await;
    assert_eq!(
        refused(
            client
                .complete_mfa(&fourth, SecondFactor::Totp(&code(&secret, 1)))
                .await
        )
        .code,
        ErrorCode::UserBanned
    );
    assert_eq!(
        refused(client.sign_in_with_password(&email, PASSWORD).await).code,
        ErrorCode::UserBanned
    );
}

#[tokio::test]
async fn a_factor_change_revokes_other_sessions_and_mails_a_notice() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", v1::UpdateTenantConfigRequest::default()).await;
    let client = node.client(&tenant).await;
    let email = unique_email("cy");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let elsewhere = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    let secret = secret_from_otpauth(&user.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    away_from_a_step_boundary().await;
    user.confirm_totp(&code(&secret, 0)).await.unwrap();

    let notice = next_message(&smtp, &email, 0).await;
    assert!(
        notice.text.contains("authenticator app"),
        "factor notice: {}",
        notice.text
    );
    assert_eq!(
        refused(client.refresh_session(&elsewhere.refresh_token).await).code,
        ErrorCode::SessionRevoked,
        "the other session is revoked"
    );
    client
        .refresh_session(&signed_up.refresh_token)
        .await
        .expect("the session that made the change stays");

    user.disable_totp().await.unwrap();
    let removed = next_message(&smtp, &email, 1).await;
    assert!(removed.subject.to_lowercase().contains("removed") || removed.text.contains("removed"));
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .expect("no second factor left");
}

#[tokio::test]
async fn the_tenant_can_require_mfa_and_restrict_users_without_a_factor() {
    let node = TestNode::start().await;
    let changes = v1::UpdateTenantConfigRequest {
        mfa_required: Some(true),
        mfa_grace_period_seconds: Some(0),
        ..v1::UpdateTenantConfigRequest::default()
    };
    let tenant = configured_tenant(&node, changes).await;
    let client = node.client(&tenant).await;
    let email = unique_email("dee");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let claims = verified_claims(&node, &tenant, &signed_up.access_token).await;
    assert_eq!(claims["is_restricted"], true);
    assert_eq!(claims["restricted_reason"], "mfa_enrolment_required");
    let user = client.with_access_token(&signed_up.access_token);
    let blocked = user
        .create_team(v1::CreateTeamRequest {
            display_name: "Early".to_owned(),
            ..v1::CreateTeamRequest::default()
        })
        .await;
    assert_eq!(refused(blocked).code, ErrorCode::MfaEnrolmentRequired);
    let secret = secret_from_otpauth(&user.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    away_from_a_step_boundary().await;
    user.confirm_totp(&code(&secret, 0)).await.unwrap();
    let refreshed = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
    let claims = verified_claims(&node, &tenant, &refreshed.access_token).await;
    assert_eq!(
        claims["is_restricted"], false,
        "enrolled: no longer restricted"
    );
}

#[tokio::test]
async fn sensitive_operations_need_a_sign_in_inside_the_step_up_window() {
    let node = TestNode::start().await;
    let changes = v1::UpdateTenantConfigRequest {
        step_up_window_seconds: Some(60),
        ..v1::UpdateTenantConfigRequest::default()
    };
    let tenant = configured_tenant(&node, changes).await;
    let client = node.client(&tenant).await;
    let email = unique_email("eve");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(62)).await;
    // A refreshed token keeps the time of the sign-in.
    let refreshed = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
    let stale = client.with_access_token(&refreshed.access_token);
    for error in [
        refused(stale.enroll_totp().await),
        refused(stale.begin_passkey_registration().await),
        refused(
            stale
                .change_password(PASSWORD, "another horse battery staple")
                .await,
        ),
        refused(stale.add_user_email("", &unique_email("eve2")).await),
    ] {
        assert_eq!(error.code, ErrorCode::ReauthenticationRequired, "{error}");
    }
    let fresh = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let fresh = client.with_access_token(&fresh.access_token);
    fresh.enroll_totp().await.expect("a fresh sign-in may");
}

#[tokio::test]
async fn operators_remove_a_lost_factor() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("fay");
    let (user, _secret, codes) = user_with_totp(&client, &email).await;
    let me = user.get_current_user().await.unwrap();
    let server = node.server(&tenant).await;

    // Regenerating replaces every recovery code: an old one no longer completes a sign-in.
    let fresh = user.regenerate_recovery_codes().await.unwrap();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|code| !codes.contains(code)));
    let (old, _) = ticket(&client, &email).await;
    assert_eq!(
        refused(
            client
                .complete_mfa(&old, SecondFactor::RecoveryCode(&codes[0]))
                .await
        )
        .code,
        ErrorCode::InvalidCode
    );
    client
        .complete_mfa(&old, SecondFactor::RecoveryCode(&fresh[0]))
        .await
        .expect("a new code completes it");
    let error = refused(user.remove_factor(&me.user_id, "totp", "").await);
    assert_eq!(error.code, ErrorCode::PermissionDenied, "clients may not");
    server.remove_factor(&me.user_id, "totp", "").await.unwrap();
    assert!(
        !server
            .list_factors(&me.user_id)
            .await
            .unwrap()
            .totp_confirmed
    );
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .expect("a password is enough again");
}
