//! Strong authentication across a 3-node cluster on PostgreSQL: a passkey ceremony begun on
//! one node is finished on another (its state is stored, not held in memory), and wrong
//! second factors spread over all three nodes still hit one limit, because the failed-try
//! window lives in the user's factor record.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_cluster_tests::passkey::SoftPasskey;
use gatehouse_cluster_tests::totp::{secret_from_otpauth, totp_sha1};
use gatehouse_cluster_tests::{ClusterSandbox, SandboxStorage};
use gatehouse_protocol::ErrorCode;
use gatehouse_protocol::sdk::SecondFactor;

use crate::support::unique_email;

const PASSWORD: &str = "correct horse battery staple";
const ORIGIN: &str = "http://localhost:5173";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceremonies_finish_on_any_node_and_second_factor_limits_hold_across_nodes() {
    let sandbox = ClusterSandbox::builder()
        .nodes(3)
        .storage(SandboxStorage::Postgres)
        .build()
        .await
        .unwrap();
    let tenant = sandbox.create_tenant("Strong").await.unwrap();
    let clients: Vec<_> = (0..3)
        .map(|index| sandbox.node(index).client(&tenant).unwrap())
        .collect();
    let email = unique_email("ada");
    let signed_up = clients[0]
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();

    // Register: begun on node 0, finished on node 1.
    let mut authenticator = SoftPasskey::new();
    let ceremony = clients[0]
        .with_access_token(&signed_up.access_token)
        .begin_passkey_registration()
        .await
        .unwrap();
    let credential = authenticator
        .register(ORIGIN, &ceremony.options_json)
        .unwrap();
    clients[1]
        .with_access_token(&signed_up.access_token)
        .finish_passkey_registration(&ceremony.ceremony_id, &credential, "Key")
        .await
        .unwrap();

    // Sign in: begun on node 1, finished on node 2; the spent ceremony is refused on node 0.
    let ceremony = clients[1].begin_passkey_sign_in("").await.unwrap();
    let assertion = authenticator
        .sign_in(ORIGIN, &ceremony.options_json)
        .unwrap();
    let signed_in = clients[2]
        .finish_passkey_sign_in(&ceremony.ceremony_id, &assertion)
        .await
        .unwrap();
    assert_eq!(signed_in.user_id, signed_up.user_id);
    let replay = clients[0]
        .finish_passkey_sign_in(&ceremony.ceremony_id, &assertion)
        .await
        .unwrap_err();
    assert_eq!(replay.code, ErrorCode::InvalidCredentials);

    // TOTP for the same user, then wrong codes spread over the three nodes.
    let user = clients[2].with_access_token(&signed_in.access_token);
    let secret = secret_from_otpauth(&user.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    while !(2..=24).contains(&(now() % 30)) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    user.confirm_totp(&totp_sha1(&secret, now(), 6, 30))
        .await
        .unwrap();
    let mut refused_wrong = 0;
    let mut limited_at = None;
    for attempt in 0..15 {
        let client = &clients[attempt % 3];
        let error = client
            .sign_in_with_password(&email, PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::MfaRequired);
        let ticket = error.mfa_ticket().unwrap().to_owned();
        let wrong = client
            .complete_mfa(&ticket, SecondFactor::RecoveryCode("wrong-guess"))
            .await
            .unwrap_err();
        match wrong.code {
            ErrorCode::InvalidCode => refused_wrong += 1,
            ErrorCode::RateLimited => {
                limited_at = Some(attempt);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        refused_wrong, 10,
        "ten wrong tries are counted across the nodes"
    );
    assert_eq!(limited_at, Some(10));
    // The right code is refused too while the user is locked, on every node.
    for client in &clients {
        let error = client
            .sign_in_with_password(&email, PASSWORD)
            .await
            .unwrap_err();
        let ticket = error.mfa_ticket().unwrap().to_owned();
        let code = totp_sha1(&secret, now() + 30, 6, 30);
        let locked = client
            .complete_mfa(&ticket, SecondFactor::Totp(&code))
            .await
            .unwrap_err();
        assert_eq!(locked.code, ErrorCode::RateLimited);
    }
    // An operator unlocks the user from any node.
    let server = sandbox.node(1).server(&tenant).unwrap();
    server.unlock_user(&signed_up.user_id).await.unwrap();
    assert_eq!(
        server
            .list_factors(&signed_up.user_id)
            .await
            .unwrap()
            .recent_failures,
        0
    );
}
