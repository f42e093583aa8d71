//! Changing one's email through further addresses: add, verify by the emailed code, make
//! primary, remove the old one; the tenant's email index stays unique across primary and
//! further addresses, and a further address never signs anyone in.

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_protocol::sdk::EmailProof;
use gatehouse_protocol::{ErrorCode, v1};

use crate::mail::{code_of, email_tenant, next_message, node_with_smtp};
use crate::testkit::{PASSWORD, unique_email};

#[tokio::test]
async fn a_user_changes_email_through_a_verified_further_address() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", v1::UpdateTenantConfigRequest::default()).await;
    let client = node.client(&tenant).await;
    let old = unique_email("old");
    let new = unique_email("new");
    let signed_up = client.sign_up_with_password(&old, PASSWORD).await.unwrap();
    let user = client.with_access_token(&signed_up.access_token);

    let added = user.add_user_email("", &new).await.unwrap();
    assert_eq!(added.secondary_emails.len(), 1);
    assert!(!added.secondary_emails[0].verified);
    // Taken for everyone else now, and not a sign-in name.
    let taken = client
        .sign_up_with_password(&new, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(taken.code, ErrorCode::UserEmailAlreadyExists);
    let by_further = client
        .sign_in_with_password(&new, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(by_further.code, ErrorCode::InvalidCredentials);
    let again = user
        .add_user_email("", &new.to_uppercase())
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::UserEmailAlreadyExists);
    // Unverified, it cannot become primary.
    let early = user.make_user_email_primary("", &new).await.unwrap_err();
    assert_eq!(early.code, ErrorCode::InvalidArgument);
    // A password reset or sign-in code is never sent to a further address.
    client.send_password_reset(&new, "").await.unwrap();
    client.send_sign_in_code(&new, "").await.unwrap();

    user.send_email_verification(&new, "").await.unwrap();
    let message = next_message(&smtp, &new, 0).await;
    assert!(
        message.subject.to_lowercase().contains("verify"),
        "{}",
        message.subject
    );
    let verified = user
        .verify_email(EmailProof::Code {
            email: &new,
            code: &code_of(&message),
        })
        .await
        .unwrap();
    assert!(verified.secondary_emails[0].verified);
    assert_eq!(
        verified.email, old,
        "verifying does not change the primary address"
    );

    let switched = user.make_user_email_primary("", &new).await.unwrap();
    assert_eq!(switched.email, new);
    assert!(switched.email_verified);
    assert_eq!(switched.secondary_emails[0].email, old);
    client.sign_in_with_password(&new, PASSWORD).await.unwrap();
    let by_old = client
        .sign_in_with_password(&old, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(by_old.code, ErrorCode::InvalidCredentials);
    // Users are listed under their primary address only.
    let server = node.server(&tenant).await;
    let listed = |prefix: String| {
        let server = server.clone();
        async move {
            server
                .list_users(v1::ListUsersRequest {
                    email_prefix: prefix,
                    ..v1::ListUsersRequest::default()
                })
                .await
                .unwrap()
                .users
        }
    };
    assert!(
        listed(old.clone()).await.is_empty(),
        "listed under a further address"
    );
    assert_eq!(listed(new.clone()).await.len(), 1);
    let primary = user.remove_user_email("", &new).await.unwrap_err();
    assert_eq!(primary.code, ErrorCode::InvalidArgument);
    let removed = user.remove_user_email("", &old).await.unwrap();
    assert!(removed.secondary_emails.is_empty());
    // Nothing but the verification message reached the further address.
    assert_eq!(crate::mail::count_for(&smtp, &new), 1);

    // The freed address can be used again; deleting the user frees its addresses too.
    client.sign_up_with_password(&old, PASSWORD).await.unwrap();
    let third = unique_email("third");
    server
        .add_user_email(&signed_up.user_id, &third)
        .await
        .unwrap();
    let other = client
        .sign_up_with_password(&unique_email("other"), PASSWORD)
        .await
        .unwrap();
    let stolen = client
        .with_access_token(&other.access_token)
        .add_user_email(&signed_up.user_id, &unique_email("x"))
        .await
        .unwrap_err();
    assert_eq!(stolen.code, ErrorCode::PermissionDenied);
    server.delete_user(&signed_up.user_id).await.unwrap();
    client
        .sign_up_with_password(&third, PASSWORD)
        .await
        .unwrap();
    client.sign_up_with_password(&new, PASSWORD).await.unwrap();
}
