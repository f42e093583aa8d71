//! Brute-force limits against a real node: parallel password guesses are checked at most
//! the limit (slots are reserved before the check) and never sign in, a known device signs
//! in while its address is throttled for unknown devices, and parallel second-factor guesses
//! stay within the user's failed-try limit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_cluster_tests::totp::{secret_from_otpauth, totp_sha1};
use gatehouse_protocol::sdk::SecondFactor;
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use tokio::task::JoinSet;

use crate::testkit::{PASSWORD, TestNode, unique_email};

/// Wrong passwords one account may have checked from one unknown source at once.
const PER_SOURCE: usize = 10;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn parallel_password_guesses_are_checked_at_most_the_limit_and_never_sign_in() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("ada");
    client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let mut guesses = JoinSet::new();
    for index in 0..59 {
        let (client, email) = (client.clone(), email.clone());
        guesses.spawn(async move {
            client
                .sign_in_with_password(&email, &format!("guess number {index}"))
                .await
        });
    }
    let (mut checked, mut limited) = (0, 0);
    let mut count = |result: Result<v1::SignInReply, ApiError>| {
        let error = result.expect_err("a wrong password never signs in");
        match error.code {
            ErrorCode::InvalidCredentials => checked += 1,
            ErrorCode::RateLimited => {
                assert!(error.retry_after_seconds().unwrap() >= 1, "{error:?}");
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    // The right password joins while wrong ones are in flight, once one was refused: every
    // slot is then held by a wrong guess, which never gives it back.
    while let Some(result) = guesses.join_next().await {
        let result = result.unwrap();
        let refused = matches!(&result, Err(error) if error.code == ErrorCode::RateLimited);
        count(result);
        if refused {
            break;
        }
    }
    let right = client.sign_in_with_password(&email, PASSWORD).await;
    assert_eq!(
        right.expect_err("the limit is used up").code,
        ErrorCode::RateLimited
    );
    while let Some(result) = guesses.join_next().await {
        count(result.unwrap());
    }
    assert_eq!(checked + limited, 59);
    assert!(
        checked <= PER_SOURCE,
        "{checked} of 59 parallel guesses were checked"
    );
}

#[tokio::test]
async fn the_owner_signs_in_from_a_known_device_while_unknown_sources_are_throttled() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("grace");
    client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let earlier = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    assert!(earlier.device_token.starts_with("gdt_"), "{earlier:?}");

    // An attacker at the same address, without the device's token, runs out of tries.
    let mut attacker = Vec::new();
    for _ in 0..=PER_SOURCE {
        attacker.push(
            client
                .sign_in_with_password(&email, "guessing the password")
                .await
                .unwrap_err()
                .code,
        );
    }
    assert_eq!(attacker.last(), Some(&ErrorCode::RateLimited));
    let unknown = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(unknown.code, ErrorCode::RateLimited);

    // The owner's device has its own limit and gets in.
    let owner = client
        .sign_in_with_password_on_device(&email, PASSWORD, &earlier.device_token)
        .await
        .unwrap();
    assert_eq!(owner.user_id, earlier.user_id);
    assert_eq!(owner.device_token, earlier.device_token);
    // Another user's device token is no known device for this account.
    let other_email = unique_email("mallory");
    client
        .sign_up_with_password(&other_email, PASSWORD)
        .await
        .unwrap();
    let other = client
        .sign_in_with_password(&other_email, PASSWORD)
        .await
        .unwrap();
    let borrowed = client
        .sign_in_with_password_on_device(&email, PASSWORD, &other.device_token)
        .await
        .unwrap_err();
    assert_eq!(borrowed.code, ErrorCode::RateLimited);

    // An operator's unlock clears the account's limits.
    let server = node.server(&tenant).await;
    let unlocked = server.unlock_user(&earlier.user_id).await.unwrap();
    assert!(unlocked.cleared_password_limits >= 1, "{unlocked:?}");
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn parallel_second_factor_guesses_stay_within_the_users_limit() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let email = unique_email("hopper");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    let secret = secret_from_otpauth(&user.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    while !(2..=24).contains(&(now() % 30)) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    user.confirm_totp(&totp_sha1(&secret, now(), 6, 30))
        .await
        .unwrap();
    let mut tickets = Vec::new();
    for _ in 0..6 {
        let error = client
            .sign_in_with_password(&email, PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::MfaRequired);
        tickets.push(error.mfa_ticket().unwrap().to_owned());
    }
    let current = totp_sha1(&secret, now(), 6, 30);
    let mut guesses = JoinSet::new();
    for index in 0..60 {
        let client = client.clone();
        let ticket = tickets[index % tickets.len()].clone();
        let mut guess = format!("{:06}", 100_000 + index * 7);
        if guess == current {
            guess = format!("{:06}", 100_000 + index * 7 + 1);
        }
        guesses.spawn(async move {
            let factor = if index % 4 == 0 {
                SecondFactor::RecoveryCode("aaaaa-bbbbb")
            } else {
                SecondFactor::Totp(&guess)
            };
            client.complete_mfa(&ticket, factor).await.map(drop)
        });
    }
    let mut checked = 0;
    while let Some(result) = guesses.join_next().await {
        let error = result.unwrap().expect_err("no guess is right");
        match error.code {
            ErrorCode::InvalidCode => checked += 1,
            ErrorCode::RateLimited | ErrorCode::MfaTicketInvalid => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(checked <= 10, "{checked} wrong second factors were checked");
    let server = node.server(&tenant).await;
    let factors = server.list_factors(&signed_up.user_id).await.unwrap();
    assert_eq!(factors.recent_failures as usize, checked);
}
