//! Passkeys against a real node, driven by an independent software authenticator
//! (`gatehouse_cluster_tests::passkey::SoftPasskey`): registration, discoverable sign-in,
//! sign-in with a given email, the same answer for an address without passkeys, replayed
//! assertions, counter regression and removed credentials refused, and a passkey completing
//! a password sign-in as the second factor.

use gatehouse_cluster_tests::passkey::SoftPasskey;
use gatehouse_protocol::sdk::{Client, SecondFactor};
use gatehouse_protocol::{ApiError, ErrorCode};
use serde_json::Value;

use crate::factors::verified_claims;
use crate::testkit::{PASSWORD, unique_email};

/// The origin the tests' pages run on; a tenant without trusted domains allows
/// `http://localhost` on any port.
const ORIGIN: &str = "http://localhost:3000";

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ApiError {
    result.expect_err("the call must be refused")
}

async fn register(user: &Client, authenticator: &mut SoftPasskey, name: &str) -> String {
    let ceremony = user.begin_passkey_registration().await.unwrap();
    let options: Value = serde_json::from_str(&ceremony.options_json).unwrap();
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let credential = authenticator
        .register(ORIGIN, &ceremony.options_json)
        .unwrap();
    let passkey = user
        .finish_passkey_registration(&ceremony.ceremony_id, &credential, name)
        .await
        .unwrap();
    assert_eq!(passkey.name, name);
    passkey.passkey_id
}

/// Signs in with the authenticator: the ceremony id and the assertion JSON it produced.
async fn assert_with(
    client: &Client,
    authenticator: &mut SoftPasskey,
    email: &str,
) -> (String, String) {
    let ceremony = client.begin_passkey_sign_in(email).await.unwrap();
    let assertion = authenticator
        .sign_in(ORIGIN, &ceremony.options_json)
        .unwrap();
    (ceremony.ceremony_id, assertion)
}

#[tokio::test]
async fn passkeys_register_and_sign_in_with_or_without_an_email() {
    let node = crate::testkit::TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("ada");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    let mut authenticator = SoftPasskey::new();
    let passkey_id = register(&user, &mut authenticator, "Laptop").await;

    // Usernameless (discoverable credential).
    let (ceremony, assertion) = assert_with(&client, &mut authenticator, "").await;
    let signed_in = client
        .finish_passkey_sign_in(&ceremony, &assertion)
        .await
        .unwrap();
    assert_eq!(signed_in.user_id, signed_up.user_id);
    let claims = verified_claims(&node, &tenant, &signed_in.access_token).await;
    assert_eq!(claims["amr"], serde_json::json!(["hwk", "user", "mfa"]));

    // Replaying the same assertion: the ceremony is spent, and a new ceremony's challenge
    // does not match.
    assert_eq!(
        refused(client.finish_passkey_sign_in(&ceremony, &assertion).await).code,
        ErrorCode::InvalidCredentials
    );
    let fresh = client.begin_passkey_sign_in("").await.unwrap();
    assert_eq!(
        refused(
            client
                .finish_passkey_sign_in(&fresh.ceremony_id, &assertion)
                .await
        )
        .code,
        ErrorCode::InvalidCredentials
    );

    // With an email: the options name the user's credential; an address without passkeys
    // gets options of the same shape.
    let named = client.begin_passkey_sign_in(&email).await.unwrap();
    let unknown = client
        .begin_passkey_sign_in(&unique_email("nobody"))
        .await
        .unwrap();
    let allowed = |json: &str| -> usize {
        let options: Value = serde_json::from_str(json).unwrap();
        options["publicKey"]["allowCredentials"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(allowed(&named.options_json), 1);
    assert_eq!(allowed(&unknown.options_json), 1);
    let assertion = authenticator.sign_in(ORIGIN, &named.options_json).unwrap();
    let by_email = client
        .finish_passkey_sign_in(&named.ceremony_id, &assertion)
        .await
        .unwrap();
    assert_eq!(by_email.user_id, signed_up.user_id);

    // Another user's email does not accept this user's passkey.
    let other = unique_email("ben");
    client
        .sign_up_with_password(&other, PASSWORD)
        .await
        .unwrap();
    let theirs = client.begin_passkey_sign_in(&other).await.unwrap();
    let mut discoverable = theirs.options_json.clone();
    if let Ok(mut options) = serde_json::from_str::<Value>(&discoverable) {
        options["publicKey"]["allowCredentials"] = Value::Array(Vec::new());
        discoverable = options.to_string();
    }
    let assertion = authenticator.sign_in(ORIGIN, &discoverable).unwrap();
    assert_eq!(
        refused(
            client
                .finish_passkey_sign_in(&theirs.ceremony_id, &assertion)
                .await
        )
        .code,
        ErrorCode::InvalidCredentials
    );

    let renamed = user
        .rename_passkey(&passkey_id, "Work laptop")
        .await
        .unwrap();
    assert_eq!(renamed.name, "Work laptop");
    let listed = user.list_passkeys("").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "Work laptop");
    assert!(listed[0].counter > 0, "the counter is stored");
    assert!(listed[0].last_used_at.is_some());

    // Counter regression (a cloned authenticator) is refused.
    let credential = authenticator.credential_ids()[0].clone();
    authenticator.set_counter(&credential, 0).unwrap();
    let (ceremony, assertion) = assert_with(&client, &mut authenticator, "").await;
    assert_eq!(
        refused(client.finish_passkey_sign_in(&ceremony, &assertion).await).code,
        ErrorCode::InvalidCredentials
    );

    // A removed credential gets the same answer as any failed sign-in.
    authenticator.set_counter(&credential, 1000).unwrap();
    user.remove_passkey(&passkey_id).await.unwrap();
    let (ceremony, assertion) = assert_with(&client, &mut authenticator, "").await;
    assert_eq!(
        refused(client.finish_passkey_sign_in(&ceremony, &assertion).await).code,
        ErrorCode::InvalidCredentials
    );
}

#[tokio::test]
async fn a_passkey_completes_a_password_sign_in_as_the_second_factor() {
    let node = crate::testkit::TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("cy");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    let mut authenticator = SoftPasskey::new();
    register(&user, &mut authenticator, "Phone").await;

    let error = refused(client.sign_in_with_password(&email, PASSWORD).await);
    assert_eq!(error.code, ErrorCode::MfaRequired);
    assert_eq!(error.mfa_factors(), vec!["passkey"]);
    let ticket = error.mfa_ticket().unwrap().to_owned();
    let (ceremony, assertion) = assert_with(&client, &mut authenticator, &email).await;
    let signed_in = client
        .complete_mfa(
            &ticket,
            SecondFactor::Passkey {
                ceremony_id: &ceremony,
                assertion_json: &assertion,
            },
        )
        .await
        .unwrap();
    let claims = verified_claims(&node, &tenant, &signed_in.access_token).await;
    assert_eq!(
        claims["amr"],
        serde_json::json!(["pwd", "hwk", "user", "mfa"])
    );
}
