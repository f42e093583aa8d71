//! The email flows end to end, read from the messages a real SMTP server received:
//! verification (and the restricted tokens before it), password reset, sign-in and sign-up by
//! code and magic link, password change, team invitations, and the refusals (wrong, reused
//! and expired codes, attempt and send limits, untrusted redirects).

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_protocol::sdk::EmailProof;
use gatehouse_protocol::{ApiError, ErrorCode, v1};

use crate::mail::{
    REDIRECT, code_of, count_for, email_tenant, next_message, node_with_smtp, token_of,
};
use crate::testkit::{PASSWORD, unique_email};

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ApiError {
    result.expect_err("the call must be refused")
}

#[tokio::test]
async fn verification_gates_a_restricted_user_until_the_emailed_code_is_entered() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let changes = v1::UpdateTenantConfigRequest {
        email_verification_required: Some(true),
        ..v1::UpdateTenantConfigRequest::default()
    };
    let tenant = email_tenant(&node, "Acme", changes).await;
    let client = node.client(&tenant).await;
    let email = unique_email("ada");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);

    // Restricted: the user may read themselves but not act.
    assert!(!user.get_current_user().await.unwrap().email_verified);
    let blocked = user
        .create_team(v1::CreateTeamRequest {
            display_name: "Early".to_owned(),
            ..v1::CreateTeamRequest::default()
        })
        .await;
    assert_eq!(refused(blocked).code, ErrorCode::EmailNotVerified);

    user.send_email_verification("", REDIRECT).await.unwrap();
    let message = next_message(&smtp, &email, 0).await;
    assert_eq!(message.from_address, "auth@acme.example");
    assert_eq!(message.from_name, "Acme");
    assert!(message.subject.contains("Acme"), "{}", message.subject);
    assert!(message.html.contains(&code_of(&message)));
    let code = code_of(&message);
    let wrong = if code == "111111" { "222222" } else { "111111" };
    let bad = user
        .verify_email(EmailProof::Code {
            email: "",
            code: wrong,
        })
        .await;
    assert_eq!(refused(bad).code, ErrorCode::InvalidCode);
    let verified = user
        .verify_email(EmailProof::Code {
            email: "",
            code: &code,
        })
        .await
        .unwrap();
    assert!(verified.email_verified);
    let again = user
        .verify_email(EmailProof::Code {
            email: "",
            code: &code,
        })
        .await;
    assert_eq!(
        refused(again).code,
        ErrorCode::InvalidCode,
        "a code works once"
    );

    // The next token is no longer restricted.
    let refreshed = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
    let user = client.with_access_token(&refreshed.access_token);
    user.create_team(v1::CreateTeamRequest {
        display_name: "Now".to_owned(),
        ..v1::CreateTeamRequest::default()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_revokes_every_session_and_sends_a_notice() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let client = node.client(&tenant).await;
    let email = unique_email("grace");
    let first = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();

    client
        .send_password_reset(&email.to_uppercase(), REDIRECT)
        .await
        .unwrap();
    let message = next_message(&smtp, &email, 0).await;
    let link = crate::mail::link_of(&message);
    assert_eq!(link.host_str(), Some("app.example.com"));
    assert_eq!(link.path(), "/auth/callback");
    let token = token_of(&message);
    let weak = client
        .reset_password(EmailProof::Token(&token), "short")
        .await;
    assert_eq!(refused(weak).code, ErrorCode::InvalidPassword);
    client
        .reset_password(EmailProof::Token(&token), "a brand new passphrase")
        .await
        .unwrap();
    let reused = client
        .reset_password(EmailProof::Token(&token), "another new passphrase")
        .await;
    assert_eq!(refused(reused).code, ErrorCode::InvalidCode);

    let old = client.refresh_session(&first.refresh_token).await;
    assert_eq!(refused(old).code, ErrorCode::SessionRevoked);
    let old_password = client.sign_in_with_password(&email, PASSWORD).await;
    assert_eq!(refused(old_password).code, ErrorCode::InvalidCredentials);
    client
        .sign_in_with_password(&email, "a brand new passphrase")
        .await
        .unwrap();
    let notice = next_message(&smtp, &email, 1).await;
    assert!(
        notice.subject.to_lowercase().contains("password"),
        "{}",
        notice.subject
    );
    assert_ne!(notice.message_id, message.message_id);

    // A suspended user cannot reset.
    let server = node.server(&tenant).await;
    client.send_password_reset(&email, "").await.unwrap();
    let message = next_message(&smtp, &email, 2).await;
    assert!(
        message.text.find(REDIRECT).is_none(),
        "no redirect given, no link"
    );
    server.suspend_user(&first.user_id).await.unwrap();
    let suspended = client
        .reset_password(
            EmailProof::Code {
                email: &email,
                code: &code_of(&message),
            },
            "yet another passphrase",
        )
        .await;
    assert_eq!(refused(suspended).code, ErrorCode::UserSuspended);
}

#[tokio::test]
async fn one_message_carries_a_sign_in_code_and_a_magic_link_and_unknown_addresses_sign_up() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let client = node.client(&tenant).await;
    let email = unique_email("known");
    let known = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();

    client.send_sign_in_code(&email, REDIRECT).await.unwrap();
    let message = next_message(&smtp, &email, 0).await;
    let code = code_of(&message);
    assert!(message.subject.contains(&code) || message.text.contains(&code));
    let signed_in = client
        .sign_in_with_code(EmailProof::Code {
            email: &email,
            code: &code,
        })
        .await
        .unwrap();
    assert_eq!(signed_in.user_id, known.user_id);
    assert!(
        signed_in.user.unwrap().email_verified,
        "a code proves the address"
    );
    // The link from the same message was spent with its code.
    let link = client
        .sign_in_with_code(EmailProof::Token(&token_of(&message)))
        .await;
    assert_eq!(refused(link).code, ErrorCode::InvalidCode);

    // A new address signs up through the magic link.
    let newcomer = unique_email("new");
    client.send_sign_in_code(&newcomer, REDIRECT).await.unwrap();
    let message = next_message(&smtp, &newcomer, 0).await;
    let signed_up = client
        .sign_in_with_code(EmailProof::Token(&token_of(&message)))
        .await
        .unwrap();
    assert_eq!(signed_up.user.unwrap().email, newcomer);
    let session = client.with_access_token(&signed_up.access_token);
    assert_eq!(
        session.get_current_user().await.unwrap().user_id,
        signed_up.user_id
    );

    // A tenant that turns sign-in by code off refuses both halves.
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            sign_in_code_enabled: Some(false),
            ..v1::UpdateTenantConfigRequest::default()
        })
        .await
        .unwrap();
    let off = client.send_sign_in_code(&email, "").await;
    assert_eq!(refused(off).code, ErrorCode::PermissionDenied);
    let off = client
        .sign_in_with_code(EmailProof::Code {
            email: &email,
            code: "123456",
        })
        .await;
    assert_eq!(refused(off).code, ErrorCode::PermissionDenied);
}

#[tokio::test]
async fn wrong_reused_and_expired_codes_are_refused_alike_and_limits_hold() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let changes = v1::UpdateTenantConfigRequest {
        email_code_max_attempts: Some(2),
        email_code_ttl_seconds: Some(5),
        email_sends_per_address: Some(3),
        ..v1::UpdateTenantConfigRequest::default()
    };
    let tenant = email_tenant(&node, "Acme", changes).await;
    let client = node.client(&tenant).await;
    let email = unique_email("limits");
    client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();

    // Two wrong tries spend the code: the right one no longer works.
    client.send_sign_in_code(&email, "").await.unwrap();
    let code = code_of(&next_message(&smtp, &email, 0).await);
    let wrong = if code == "000000" { "999999" } else { "000000" };
    for _ in 0..2 {
        let attempt = client
            .sign_in_with_code(EmailProof::Code {
                email: &email,
                code: wrong,
            })
            .await;
        assert_eq!(refused(attempt).code, ErrorCode::InvalidCode);
    }
    let spent = client
        .sign_in_with_code(EmailProof::Code {
            email: &email,
            code: &code,
        })
        .await;
    assert_eq!(refused(spent).code, ErrorCode::InvalidCode);

    // An expired code is refused the same way.
    client.send_sign_in_code(&email, "").await.unwrap();
    let code = code_of(&next_message(&smtp, &email, 1).await);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let expired = client
        .sign_in_with_code(EmailProof::Code {
            email: &email,
            code: &code,
        })
        .await;
    assert_eq!(refused(expired).code, ErrorCode::InvalidCode);

    // The third send in the window was the last; known and unknown addresses alike.
    client.send_sign_in_code(&email, "").await.unwrap();
    let over = client.send_sign_in_code(&email, "").await;
    assert_eq!(refused(over).code, ErrorCode::RateLimited);
    let stranger = unique_email("stranger");
    for _ in 0..3 {
        client.send_password_reset(&stranger, "").await.unwrap();
    }
    let over = client.send_password_reset(&stranger, "").await;
    assert_eq!(refused(over).code, ErrorCode::RateLimited);
    assert_eq!(
        count_for(&smtp, &stranger),
        0,
        "an unknown address gets no reset message"
    );

    // A redirect off the trusted domains is refused on the field, never followed.
    let open = client
        .send_sign_in_code(&email, "https://evil.example.net/steal")
        .await;
    let error = refused(open);
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert_eq!(error.field.as_deref(), Some("redirect_url"));
    let lookalike = client
        .send_password_reset(&email, "https://app.example.com.evil.net/")
        .await;
    assert_eq!(refused(lookalike).code, ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_the_other_sessions() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let client = node.client(&tenant).await;
    let email = unique_email("changer");
    let here = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let elsewhere = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&here.access_token);

    let wrong = user
        .change_password("not the password", "a different passphrase")
        .await;
    assert_eq!(refused(wrong).code, ErrorCode::InvalidCredentials);
    assert_eq!(
        user.change_password(PASSWORD, "a different passphrase")
            .await
            .unwrap(),
        1
    );
    let other = client.refresh_session(&elsewhere.refresh_token).await;
    assert_eq!(refused(other).code, ErrorCode::SessionRevoked);
    client.refresh_session(&here.refresh_token).await.unwrap();
    let notice = next_message(&smtp, &email, 0).await;
    assert!(
        notice.subject.to_lowercase().contains("password"),
        "{}",
        notice.subject
    );
}

#[tokio::test]
async fn a_client_team_invitation_is_emailed_and_its_link_joins_the_team() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let client = node.client(&tenant).await;
    let owner_email = unique_email("owner");
    let owner = client
        .sign_up_with_password(&owner_email, PASSWORD)
        .await
        .unwrap();
    let owner = client.with_access_token(&owner.access_token);
    let team = owner
        .create_team(v1::CreateTeamRequest {
            display_name: "Rocket <Lab>".to_owned(),
            ..v1::CreateTeamRequest::default()
        })
        .await
        .unwrap();
    let invitee_email = unique_email("invitee");
    let reply = owner
        .create_team_invitation(v1::CreateTeamInvitationRequest {
            team_id: team.team_id.clone(),
            email: invitee_email.clone(),
            redirect_url: REDIRECT.to_owned(),
            return_token: true,
        })
        .await
        .unwrap();
    assert!(reply.token.is_empty(), "a client never sees the token");
    let message = next_message(&smtp, &invitee_email, 0).await;
    assert!(
        message.html.contains("Rocket &lt;Lab&gt;"),
        "team name escaped in HTML"
    );
    assert!(message.text.contains("Rocket <Lab>"));
    let invitee = client
        .sign_up_with_password(&invitee_email, PASSWORD)
        .await
        .unwrap();
    client
        .with_access_token(&invitee.access_token)
        .accept_team_invitation(v1::AcceptTeamInvitationRequest {
            token: token_of(&message),
            user_id: String::new(),
        })
        .await
        .unwrap();
    let members = owner
        .list_team_members(v1::ListTeamMembersRequest {
            team_id: team.team_id,
        })
        .await
        .unwrap();
    assert_eq!(members.members.len(), 2);
}

#[tokio::test]
async fn a_sign_in_from_a_new_user_agent_is_notified_when_the_tenant_asks() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let changes = v1::UpdateTenantConfigRequest {
        email_new_sign_in_notice: Some(true),
        ..v1::UpdateTenantConfigRequest::default()
    };
    let tenant = email_tenant(&node, "Acme", changes).await;
    let client = node.client(&tenant).await;
    let email = unique_email("notice");
    client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    // The same source and user agent as the sign-up's session: nothing to notify.
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();

    let channel = tonic::transport::Endpoint::from_shared(node.endpoint())
        .unwrap()
        .user_agent("Elsewhere/1.0")
        .unwrap()
        .connect()
        .await
        .unwrap();
    let elsewhere = gatehouse_protocol::sdk::Client::from_channel(channel)
        .with_tenant(&tenant.id)
        .with_credentials(gatehouse_protocol::sdk::Credentials::Client {
            publishable_key: tenant.client_key.clone(),
        });
    elsewhere
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let notice = next_message(&smtp, &email, 0).await;
    assert!(
        notice.subject.to_lowercase().contains("sign-in"),
        "{}",
        notice.subject
    );
    assert!(notice.text.contains("Elsewhere/1.0"), "{}", notice.text);
    // Known from now on.
    elsewhere
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(count_for(&smtp, &email), 1);
}
