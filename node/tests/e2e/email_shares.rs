//! Shares to an email address end to end, read from the messages a real SMTP server
//! received: a client's share is emailed with a link on a trusted domain and its reply carries
//! no token, the link's token reads through the share, a server may also ask for the token,
//! the CLI emails with `--redirect-url`, and redirects that are missing, off the trusted
//! domains or for a recipient that is not emailed are refused on `redirect_url`.

use std::time::{Duration, SystemTime};

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_protocol::v1::{self, create_share_request::Recipient, use_share_request};
use gatehouse_protocol::{ApiError, ErrorCode};
use serde_json::Value;

use crate::mail::{
    REDIRECT, count_for, email_tenant, link_of, next_message, node_with_smtp, token_of,
};
use crate::testkit::{PASSWORD, unique_email};

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ApiError {
    result.expect_err("the call must be refused")
}

/// `owner_user_id` shares their own email address (read only) with `recipient`.
fn share_of_email(owner_user_id: &str, recipient: Recipient) -> v1::CreateShareRequest {
    v1::CreateShareRequest {
        recipient: Some(recipient),
        resource_type: "user".to_owned(),
        resource_id: owner_user_id.to_owned(),
        permissions: vec!["read".to_owned()],
        field_mask: vec!["email".to_owned()],
        mode: v1::ShareMode::ReadOnly as i32,
        ..v1::CreateShareRequest::default()
    }
}

fn by_token(token: &str) -> v1::UseShareRequest {
    v1::UseShareRequest {
        share: Some(use_share_request::Share::ShareToken(token.to_owned())),
    }
}

fn in_two_days() -> prost_types::Timestamp {
    let at = SystemTime::now() + Duration::from_secs(2 * 24 * 3600);
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap(),
        nanos: 0,
    }
}

#[tokio::test]
async fn a_client_share_to_an_address_is_emailed_and_its_link_reads_through_the_share() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let client = node.client(&tenant).await;
    let owner_email = unique_email("owner");
    let signed_up = client
        .sign_up_with_password(&owner_email, PASSWORD)
        .await
        .unwrap();
    let owner = client.with_access_token(&signed_up.access_token);
    let invitee_email = unique_email("guest");

    let mut request = share_of_email(
        &signed_up.user_id,
        Recipient::RecipientEmail(invitee_email.to_uppercase()),
    );
    request.owner_user_id = String::new();
    request.expires_at = Some(in_two_days());
    request.redirect_url = REDIRECT.to_owned();
    // A client asking for the token does not get it either way.
    request.return_token = true;
    let reply = owner.create_share(request).await.unwrap();
    assert!(
        reply.share_token.is_empty(),
        "a client never sees the token"
    );
    let share_id = reply.share.unwrap().share_id;

    let message = next_message(&smtp, &invitee_email, 0).await;
    let link = link_of(&message);
    assert_eq!(link.host_str(), Some("app.example.com"), "{link}");
    assert!(link.as_str().starts_with(REDIRECT), "{link}");
    assert!(
        message.subject.contains(&owner_email),
        "the owner, named by address, shared it: {}",
        message.subject
    );
    assert!(
        message.text.contains("expires in 2 days"),
        "{}",
        message.text
    );
    let token = token_of(&message);
    assert!(token.starts_with("gsh_"), "{token}");

    // Whoever holds the emailed token reads through the share, without signing in.
    let read = node
        .client(&tenant)
        .await
        .read_through_share(by_token(&token))
        .await
        .unwrap();
    assert_eq!(read.share.unwrap().share_id, share_id);
    let resource: Value = serde_json::from_str(&read.resource_json).unwrap();
    assert_eq!(resource, serde_json::json!({ "email": owner_email }));

    // No link, a link off the trusted domains, or a link for a recipient that is not emailed:
    // refused on the field, and nothing is sent.
    let unlinked = unique_email("unlinked");
    let request = share_of_email(
        &signed_up.user_id,
        Recipient::RecipientEmail(unlinked.clone()),
    );
    let error = refused(owner.create_share(request).await);
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert_eq!(error.field.as_deref(), Some("redirect_url"));
    let stolen = unique_email("stolen");
    for redirect in [
        "https://evil.example.net/steal",
        "https://app.example.com.evil.net/",
    ] {
        let mut request = share_of_email(
            &signed_up.user_id,
            Recipient::RecipientEmail(stolen.clone()),
        );
        request.redirect_url = redirect.to_owned();
        let error = refused(owner.create_share(request).await);
        assert_eq!(error.code, ErrorCode::InvalidArgument, "{redirect}");
        assert_eq!(error.field.as_deref(), Some("redirect_url"), "{redirect}");
    }
    let mut request = share_of_email(
        &signed_up.user_id,
        Recipient::RecipientService("reports".to_owned()),
    );
    request.redirect_url = REDIRECT.to_owned();
    let error = refused(owner.create_share(request).await);
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert_eq!(error.field.as_deref(), Some("redirect_url"));
    // Anything the refused calls had sent would be behind this one.
    let mut request = share_of_email(
        &signed_up.user_id,
        Recipient::RecipientEmail(invitee_email.clone()),
    );
    request.redirect_url = REDIRECT.to_owned();
    owner.create_share(request).await.unwrap();
    next_message(&smtp, &invitee_email, 1).await;
    assert_eq!(count_for(&smtp, &unlinked), 0);
    assert_eq!(count_for(&smtp, &stolen), 0);
}

#[tokio::test]
async fn a_server_may_also_take_the_token_and_the_cli_emails_with_a_redirect_url() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let server = node.server(&tenant).await;
    let owner = server
        .create_user(v1::CreateUserRequest {
            email: unique_email("owner"),
            display_name: "Grace <Hopper>".to_owned(),
            ..v1::CreateUserRequest::default()
        })
        .await
        .unwrap();

    // A server that asks gets the token, and the invitee still gets the email.
    let invitee = unique_email("guest");
    let mut request = share_of_email(&owner.user_id, Recipient::RecipientEmail(invitee.clone()));
    request.owner_user_id = owner.user_id.clone();
    request.redirect_url = REDIRECT.to_owned();
    request.return_token = true;
    let reply = server.create_share(request).await.unwrap();
    let message = next_message(&smtp, &invitee, 0).await;
    assert_eq!(token_of(&message), reply.share_token);
    assert!(
        message.html.contains("Grace &lt;Hopper&gt;"),
        "escaped in HTML"
    );
    assert!(message.text.contains("Grace <Hopper>"));
    assert!(
        !message.text.contains("expires in"),
        "a share without expiry: {}",
        message.text
    );

    // One that does not ask gets no token.
    let quiet = unique_email("quiet");
    let mut request = share_of_email(&owner.user_id, Recipient::RecipientEmail(quiet.clone()));
    request.owner_user_id = owner.user_id.clone();
    request.redirect_url = REDIRECT.to_owned();
    let reply = server.create_share(request).await.unwrap();
    assert!(reply.share_token.is_empty());
    next_message(&smtp, &quiet, 0).await;

    // The CLI emails the share when given a link, and prints no token.
    let by_cli = unique_email("cli");
    let (ok, stdout, stderr) = node.admin(&[
        "share",
        "create",
        "--tenant",
        &tenant.id,
        "--owner",
        &owner.user_id,
        "--to-email",
        &by_cli,
        "--redirect-url",
        REDIRECT,
        "--resource-type",
        "user",
        "--resource-id",
        &owner.user_id,
        "--permission",
        "read",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["share_token"], "", "{stdout}");
    let message = next_message(&smtp, &by_cli, 0).await;
    assert!(token_of(&message).starts_with("gsh_"));
    let (ok, _, stderr) = node.admin(&[
        "share",
        "create",
        "--tenant",
        &tenant.id,
        "--owner",
        &owner.user_id,
        "--to-user",
        &owner.user_id,
        "--redirect-url",
        REDIRECT,
        "--resource-type",
        "user",
        "--resource-id",
        &owner.user_id,
        "--permission",
        "read",
    ]);
    assert!(!ok, "a share to a user is not emailed");
    assert!(stderr.contains("redirect_url"), "{stderr}");
}
