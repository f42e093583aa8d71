//! Password attempts through the API: slots reserved before the check hold under
//! concurrency, delays grow with each failure, known devices keep their own limit, lockouts
//! are audited and unlocked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::context::{Context, ManualClock, OsEntropy, Timestamp};
use crate::domain::attempts::{PER_DEVICE, PER_SOURCE, UNKNOWN_SOURCES};
use crate::domain::crypto::MasterKey;
use crate::domain::sessions::ClientInfo;
use crate::{Caller, DomainError, Gatehouse, GatehouseOptions};

const PASSWORD: &str = "correct horse battery";
const EMAIL: &str = "ada@example.com";

async fn gatehouse() -> (Arc<Gatehouse>, Caller, String) {
    gatehouse_in(Context::system()).await
}

async fn gatehouse_in(context: Context) -> (Arc<Gatehouse>, Caller, String) {
    gatehouse_on(gatehouse_storage::Database::memory(), context).await
}

async fn gatehouse_on(
    db: gatehouse_storage::Database,
    context: Context,
) -> (Arc<Gatehouse>, Caller, String) {
    let gatehouse = Gatehouse::start(
        db,
        context,
        MasterKey::from_bytes(&[5; 32]),
        GatehouseOptions {
            password_hash_threads: 2,
            ..GatehouseOptions::default()
        },
    )
    .await
    .unwrap();
    let operator = Caller::Operator { tenant: None };
    gatehouse
        .create_tenant(&operator, "Acme", "acme")
        .await
        .unwrap();
    let caller = Caller::Server {
        tenant: gatehouse.services().tenant("acme").await.unwrap(),
    };
    let user_id = gatehouse
        .sign_up_with_password(&caller, EMAIL, PASSWORD, "", &ClientInfo::default())
        .await
        .unwrap()
        .into_signed_in()
        .expect("a server's sign-up signs in")
        .user
        .user_id
        .to_string();
    (gatehouse, caller, user_id)
}

fn from(address: &str) -> ClientInfo {
    ClientInfo {
        ip_address: address.to_owned(),
        ..ClientInfo::default()
    }
}

async fn sign_in(
    gatehouse: &Gatehouse,
    caller: &Caller,
    password: &str,
    device_token: &str,
    address: &str,
) -> Result<crate::api::SignedIn, DomainError> {
    gatehouse
        .sign_in_with_password(caller, EMAIL, password, device_token, &from(address))
        .await
}

#[tokio::test]
async fn parallel_guesses_are_checked_at_most_the_limit_and_never_sign_in() {
    let (gatehouse, caller, _) = gatehouse().await;
    let mut guesses = tokio::task::JoinSet::new();
    for index in 0..59 {
        let (gatehouse, caller) = (gatehouse.clone(), caller.clone());
        guesses.spawn(async move {
            let guess = format!("guess number {index}");
            sign_in(&gatehouse, &caller, &guess, "", "198.51.100.7").await
        });
    }
    let (mut checked, mut limited) = (0, 0);
    let mut count = |result: Result<crate::api::SignedIn, DomainError>| match result {
        Err(DomainError::InvalidCredentials) => checked += 1,
        Err(DomainError::RateLimitedFor(seconds)) => {
            assert!(seconds >= 1);
            limited += 1;
        }
        other => panic!("unexpected {other:?}"),
    };
    // The right password joins while the wrong ones are in flight, once one was refused:
    // by then every slot is held by a wrong guess, which never gives it back.
    while let Some(result) = guesses.join_next().await {
        let refused = matches!(result, Ok(Err(DomainError::RateLimitedFor(_))));
        count(result.unwrap());
        if refused {
            break;
        }
    }
    let right = sign_in(&gatehouse, &caller, PASSWORD, "", "198.51.100.7").await;
    assert!(
        matches!(right, Err(DomainError::RateLimitedFor(_))),
        "the right password is refused once the guesses used the limit: {right:?}"
    );
    while let Some(result) = guesses.join_next().await {
        count(result.unwrap());
    }
    assert_eq!(checked + limited, 59);
    assert!(
        checked <= PER_SOURCE.free as usize,
        "{checked} guesses were checked; the limit is {}",
        PER_SOURCE.free
    );
}

#[tokio::test]
async fn each_failure_past_the_free_ones_doubles_the_wait_and_a_quiet_day_forgets_them() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let (gatehouse, caller, _) = gatehouse_in(Context {
        clock: clock.clone(),
        entropy: Arc::new(OsEntropy),
        live_sessions: Arc::default(),
    })
    .await;
    let address = "198.51.100.9";
    let guess = || sign_in(&gatehouse, &caller, "a wrong guess", "", address);
    for _ in 0..PER_SOURCE.free {
        assert!(matches!(
            guess().await,
            Err(DomainError::InvalidCredentials)
        ));
    }
    let mut waits = Vec::new();
    for _ in 0..4 {
        let Err(DomainError::RateLimitedFor(seconds)) = guess().await else {
            panic!("a failure past the free ones waits");
        };
        waits.push(seconds);
        // Only after the whole wait is one more guess checked.
        clock.advance(Duration::from_secs(seconds - 1));
        assert!(matches!(guess().await, Err(DomainError::RateLimitedFor(1))));
        clock.advance(Duration::from_secs(1));
        assert!(matches!(
            guess().await,
            Err(DomainError::InvalidCredentials)
        ));
    }
    assert_eq!(waits, [30, 60, 120, 240]);
    // The right password waits too, then ends the streak.
    let Err(DomainError::RateLimitedFor(seconds)) =
        sign_in(&gatehouse, &caller, PASSWORD, "", address).await
    else {
        panic!("the right password waits like a guess");
    };
    assert_eq!(seconds, 480);
    clock.advance(Duration::from_secs(seconds));
    sign_in(&gatehouse, &caller, PASSWORD, "", address)
        .await
        .unwrap();
    assert!(matches!(
        guess().await,
        Err(DomainError::InvalidCredentials)
    ));

    // Another address has its own streak; twelve quiet hours forget a streak.
    let other = "198.51.100.10";
    for _ in 0..PER_SOURCE.free {
        let result = sign_in(&gatehouse, &caller, "another guess", "", other).await;
        assert!(matches!(result, Err(DomainError::InvalidCredentials)));
    }
    let result = sign_in(&gatehouse, &caller, "another guess", "", other).await;
    assert!(matches!(result, Err(DomainError::RateLimitedFor(30))));
    clock.advance(Duration::from_millis(
        u64::try_from(PER_SOURCE.forget_after_millis).unwrap(),
    ));
    for _ in 0..PER_SOURCE.free {
        let result = sign_in(&gatehouse, &caller, "another guess", "", other).await;
        assert!(matches!(result, Err(DomainError::InvalidCredentials)));
    }
}

#[tokio::test]
async fn a_right_password_gives_its_slot_back() {
    let (gatehouse, caller, _) = gatehouse().await;
    for _ in 0..2 * PER_SOURCE.free {
        sign_in(&gatehouse, &caller, PASSWORD, "", "198.51.100.8")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_known_device_signs_in_while_unknown_sources_are_locked_out() {
    let (gatehouse, caller, user_id) = gatehouse().await;
    let device_token = sign_in(&gatehouse, &caller, PASSWORD, "", "192.0.2.1")
        .await
        .unwrap()
        .device_token
        .unwrap();
    // An attacker spreads wrong guesses over addresses until the account-wide ceiling of
    // unknown sources is empty.
    let mut checked = 0;
    for index in 0..UNKNOWN_SOURCES.capacity {
        let address = format!("203.0.113.{}", index / PER_SOURCE.free);
        match sign_in(&gatehouse, &caller, "not the password", "", &address).await {
            Err(DomainError::InvalidCredentials) => checked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(checked, UNKNOWN_SOURCES.capacity);
    let fresh = sign_in(&gatehouse, &caller, PASSWORD, "", "203.0.113.200").await;
    assert!(
        matches!(fresh, Err(DomainError::RateLimitedFor(_))),
        "{fresh:?}"
    );
    // The owner's device still gets in, from any address, and keeps its token.
    let owner = sign_in(&gatehouse, &caller, PASSWORD, &device_token, "203.0.113.0")
        .await
        .unwrap();
    assert_eq!(owner.device_token.as_deref(), Some(device_token.as_str()));
    // A token of another user or a forged one is an unknown source.
    // The last character changed (to one it is not), so the MAC no longer matches.
    let (kept, last) = device_token.split_at(device_token.len() - 1);
    let forged = format!("{kept}{}", if last == "A" { "B" } else { "A" });
    let refused = sign_in(&gatehouse, &caller, PASSWORD, &forged, "192.0.2.1").await;
    assert!(
        matches!(refused, Err(DomainError::RateLimitedFor(_))),
        "{refused:?}"
    );

    // Operators see the lock, and it was audited once.
    let summary = gatehouse.list_factors(&caller, &user_id).await.unwrap();
    assert!(summary.password_locked_until.is_some());
    let audit = gatehouse
        .list_audit_entries(&caller, 500, "")
        .await
        .unwrap();
    let lockouts = audit
        .entries
        .iter()
        .filter(|entry| entry.event.action == "user.lockout")
        .count();
    assert_eq!(lockouts, 1);

    let unlocked = gatehouse.unlock_user(&caller, &user_id).await.unwrap();
    assert!(unlocked.cleared_password_limits >= 2, "{unlocked:?}");
    sign_in(&gatehouse, &caller, PASSWORD, "", "203.0.113.200")
        .await
        .unwrap();
    let summary = gatehouse.list_factors(&caller, &user_id).await.unwrap();
    assert_eq!(summary.password_locked_until, None);
    let audit = gatehouse
        .list_audit_entries(&caller, 500, "")
        .await
        .unwrap();
    let unlock = audit
        .entries
        .iter()
        .find(|entry| entry.event.action == "user.unlock")
        .unwrap();
    assert!(
        unlock.event.details["cleared_password_limits"]
            .as_u64()
            .unwrap()
            >= 2
    );
}

#[tokio::test]
async fn a_device_has_its_own_limit() {
    let (gatehouse, caller, _) = gatehouse().await;
    let device_token = sign_in(&gatehouse, &caller, PASSWORD, "", "192.0.2.1")
        .await
        .unwrap()
        .device_token
        .unwrap();
    let mut results = Vec::new();
    for _ in 0..=PER_DEVICE.free {
        results.push(sign_in(&gatehouse, &caller, "typo", &device_token, "192.0.2.1").await);
    }
    assert!(matches!(
        results.last(),
        Some(Err(DomainError::RateLimitedFor(_)))
    ));
    // Unknown sources were not charged for the device's mistakes.
    sign_in(&gatehouse, &caller, PASSWORD, "", "192.0.2.1")
        .await
        .unwrap();
}

#[tokio::test]
async fn failed_passkey_sign_ins_are_limited_per_source_on_every_node() {
    let db = gatehouse_storage::Database::memory();
    let context = Context {
        clock: Arc::new(ManualClock::new(Timestamp(1_800_000_000_000))),
        entropy: Arc::new(OsEntropy),
        live_sessions: Arc::default(),
    };
    let (first, caller, _) = gatehouse_on(db.clone(), context.clone()).await;
    let second = Gatehouse::start(
        db,
        context,
        MasterKey::from_bytes(&[5; 32]),
        GatehouseOptions {
            password_hash_threads: 2,
            ..GatehouseOptions::default()
        },
    )
    .await
    .unwrap();
    let caller_on_second = Caller::Server {
        tenant: second.services().tenant("acme").await.unwrap(),
    };
    let attempt = |gatehouse: Arc<Gatehouse>, caller: Caller, address: &'static str| async move {
        let ceremony = gatehouse.begin_passkey_sign_in(&caller, "").await.unwrap();
        let ceremony_id = ceremony.ceremony_id.to_string();
        let assertion = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}"#;
        gatehouse
            .finish_passkey_sign_in(&caller, &ceremony_id, assertion, &from(address))
            .await
    };
    for _ in 0..crate::domain::attempts::SOURCE_PER_WINDOW {
        let result = attempt(first.clone(), caller.clone(), "198.51.100.20").await;
        assert!(
            matches!(result, Err(DomainError::InvalidCredentials)),
            "{result:?}"
        );
    }
    // The other node refuses the same source, and still serves another one.
    let refused = attempt(second.clone(), caller_on_second.clone(), "198.51.100.20").await;
    assert!(
        matches!(refused, Err(DomainError::RateLimitedFor(seconds)) if seconds >= 1),
        "{refused:?}"
    );
    let other = attempt(second, caller_on_second, "198.51.100.21").await;
    assert!(
        matches!(other, Err(DomainError::InvalidCredentials)),
        "{other:?}"
    );
}
