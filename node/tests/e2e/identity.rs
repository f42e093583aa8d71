//! Identities against a real node: addresses that look the same are one address (or are
//! refused), hidden characters are refused, and a tenant that protects sign-up answers the
//! same for a taken address as for a new one, mailing the owner instead (read from a real
//! SMTP server); sign-up attempts are limited per source.

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_protocol::sdk::{Client, EmailProof};
use gatehouse_protocol::{ApiError, ErrorCode, v1};

use crate::mail::{code_of, count_for, email_tenant, next_message, node_with_smtp};
use crate::testkit::{PASSWORD, TestNode};

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn code(result: Result<v1::SignInReply, ApiError>) -> ErrorCode {
    result.expect_err("the sign-up must be refused").code
}

async fn sign_up_named(client: &Client, email: &str, name: &str) -> Result<(), ApiError> {
    let request = v1::SignUpWithPasswordRequest {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
        display_name: name.to_owned(),
    };
    client
        .auth()
        .sign_up_with_password(request)
        .await
        .map(|_| ())
        .map_err(ApiError::from)
}

#[tokio::test]
async fn lookalike_addresses_are_one_account_or_refused() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let id = unique();

    // The Kelvin sign is the ASCII K: the ASCII account's address, not a second account.
    let ascii = format!("kelvin-{id}@example.com");
    let first = client
        .sign_up_with_password(&ascii, PASSWORD)
        .await
        .unwrap();
    let kelvin = format!("\u{212A}elvin-{id}@example.com");
    assert_eq!(
        code(client.sign_up_with_password(&kelvin, PASSWORD).await),
        ErrorCode::UserEmailAlreadyExists
    );
    let signed_in = client
        .sign_in_with_password(&kelvin, PASSWORD)
        .await
        .unwrap();
    assert_eq!(signed_in.user_id, first.user_id, "the same account");

    // Composed and decomposed forms of one name.
    let composed = format!("jos\u{e9}-{id}@example.com");
    let decomposed = format!("jose\u{301}-{id}@example.com");
    let jose = client
        .sign_up_with_password(&composed, PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        code(client.sign_up_with_password(&decomposed, PASSWORD).await),
        ErrorCode::UserEmailAlreadyExists
    );
    let again = client
        .sign_in_with_password(&decomposed, PASSWORD)
        .await
        .unwrap();
    assert_eq!(again.user_id, jose.user_id);

    // An internationalised domain and its ASCII form.
    let unicode = format!("ada-{id}@b\u{fc}cher.example");
    let punycode = format!("ada-{id}@xn--bcher-kva.example");
    client
        .sign_up_with_password(&unicode, PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        code(client.sign_up_with_password(&punycode, PASSWORD).await),
        ErrorCode::UserEmailAlreadyExists
    );

    // Lookalikes that are not the same character, and hidden characters, are refused.
    for refused in [
        format!("\u{ff4b}elvin-{id}@example.com"),
        format!("kelvin-{id}\u{200b}@example.com"),
        format!("\u{feff}kelvin-{id}@example.com"),
        format!("kelvin-{id}\u{202e}@example.com"),
    ] {
        assert_eq!(
            code(client.sign_up_with_password(&refused, PASSWORD).await),
            ErrorCode::InvalidArgument,
            "{refused:?}"
        );
    }
    for name in ["Ada\u{202e}ecalevoL", "Ada\u{200b}", "\u{feff}Ada"] {
        let refused = sign_up_named(&client, &format!("named-{}@example.com", unique()), name)
            .await
            .expect_err("a hidden character in the name is refused");
        assert_eq!(refused.code, ErrorCode::InvalidArgument, "{name:?}");
    }
}

#[tokio::test]
async fn a_protected_sign_up_answers_the_same_for_a_taken_address_and_mails_its_owner() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let changes = v1::UpdateTenantConfigRequest {
        email_verification_required: Some(true),
        sign_up_enumeration_protection: Some(true),
        ..v1::UpdateTenantConfigRequest::default()
    };
    let tenant = email_tenant(&node, "Acme", changes).await;
    let client = node.client(&tenant).await;
    let owner = format!("owner-{}@example.com", unique());
    let newcomer = format!("new-{}@example.com", unique());

    let new_reply = client
        .sign_up_with_password(&newcomer, PASSWORD)
        .await
        .unwrap();
    assert!(new_reply.verification_required);
    assert!(new_reply.access_token.is_empty() && new_reply.refresh_token.is_empty());
    assert!(new_reply.tokens.is_none() && new_reply.user.is_none());
    assert!(new_reply.user_id.is_empty() && new_reply.session_id.is_empty());

    // The newcomer verifies with the emailed code, then signs in.
    let verification = next_message(&smtp, &newcomer, 0).await;
    let verified = client
        .verify_email(EmailProof::Code {
            email: &newcomer,
            code: &code_of(&verification),
        })
        .await
        .unwrap();
    assert!(verified.email_verified);
    client
        .sign_in_with_password(&newcomer, PASSWORD)
        .await
        .unwrap();

    // An existing account: the same reply, and its owner is told instead.
    client
        .sign_up_with_password(&owner, PASSWORD)
        .await
        .unwrap();
    let owner_verification = next_message(&smtp, &owner, 0).await;
    assert!(owner_verification.subject.to_lowercase().contains("verif"));
    let taken_reply = client
        .sign_up_with_password(&owner.to_uppercase(), "another long passphrase")
        .await
        .unwrap();
    assert_eq!(
        taken_reply, new_reply,
        "nothing tells a taken address from a new one"
    );
    let notice = next_message(&smtp, &owner, 1).await;
    assert!(
        notice.subject.to_lowercase().contains("sign up"),
        "{}",
        notice.subject
    );
    assert!(
        notice.envelope_recipients.iter().any(|to| to == &owner),
        "sent to the stored address: {:?}",
        notice.envelope_recipients
    );
    assert_eq!(count_for(&smtp, &owner), 2);
    // Nothing about the account changed.
    let wrong = client
        .sign_in_with_password(&owner, "another long passphrase")
        .await;
    assert_eq!(wrong.unwrap_err().code, ErrorCode::InvalidCredentials);
}

#[tokio::test]
async fn sign_up_attempts_from_one_source_are_limited() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    // Every attempt counts, refused ones too, so the limit is reached without hashing.
    let mut limited = None;
    for attempt in 0..200 {
        match client
            .sign_up_with_password("not-an-address", PASSWORD)
            .await
        {
            Err(error) if error.code == ErrorCode::RateLimited => {
                limited = Some(attempt);
                break;
            }
            Err(error) => assert_eq!(error.code, ErrorCode::InvalidArgument),
            Ok(_) => panic!("an invalid address signed up"),
        }
    }
    let limited = limited.expect("sign-ups from one source are limited");
    assert!(
        limited >= 50,
        "the limit leaves room for a busy source: {limited}"
    );
    let valid = format!("late-{}@example.com", unique());
    assert_eq!(
        code(client.sign_up_with_password(&valid, PASSWORD).await),
        ErrorCode::RateLimited
    );
    // Another tenant's sign-ups are counted apart.
    let other = node.tenant("Other").await;
    node.client(&other)
        .await
        .sign_up_with_password(&valid, PASSWORD)
        .await
        .unwrap();
}
