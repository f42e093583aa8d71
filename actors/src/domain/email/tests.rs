//! Unit tests of the email domain over the in-memory store with a manual clock: codes and
//! link tokens, send limits, the outbox's claim/record cycle, and the flows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use url::Url;

use super::codes::{self, CodePurpose, Redemption};
use super::flows::{self, CodeRequest, Proof};
use super::outbox::{self, EmailStatus};
use super::{EmailKind, SmtpOutcome};
use crate::domain::keyspace;
use crate::domain::sessions::ClientInfo;
use crate::domain::users::parse_email;
use crate::domain::webhooks::RetryPolicy;
use crate::error::DomainError;

use crate::domain::test_world::TestWorld as World;

impl World {
    /// Sends a code a millisecond after the last send, so message ids (time-ordered) order
    /// the sends.
    async fn send(&self, purpose: CodePurpose, email: &str, ip: &str) -> Result<bool, DomainError> {
        self.clock.advance(Duration::from_millis(1));
        let email = parse_email(email).unwrap();
        let redirect = Url::parse("https://app.example.com/cb?x=1").unwrap();
        let client = ClientInfo {
            ip_address: ip.to_owned(),
            user_agent: "test".to_owned(),
        };
        let request = CodeRequest {
            purpose,
            email: &email,
            redirect: Some(&redirect),
            client: &client,
            allow_sign_up: true,
        };
        let (keys, tenant, request) = (self.keys(), &self.tenant, &request);
        self.db
            .run(|tx| async move { flows::send_code(&tx, keys, tenant, request).await })
            .await
    }

    async fn deliveries(&self) -> Vec<outbox::EmailDelivery> {
        self.db
            .run(|tx| async move { outbox::list_deliveries(&tx, "acme", None, 100).await })
            .await
            .unwrap()
            .0
    }

    /// Claims the newest message and returns its rendered text.
    async fn claim_newest(&self) -> outbox::EmailClaim {
        let newest = self.deliveries().await.remove(0);
        let (context, master) = (&self.context, &self.master);
        let now = self.context.now();
        let due = self
            .db
            .run(|tx| async move { outbox::due_messages(&tx, "acme", now, 100).await })
            .await
            .unwrap();
        let (due_at, _) = *due.iter().find(|(_, id)| *id == newest.message_id).unwrap();
        self.db
            .run(|tx| async move {
                outbox::claim(
                    &tx,
                    context,
                    master,
                    "acme",
                    due_at,
                    newest.message_id,
                    Duration::from_secs(30),
                )
                .await
            })
            .await
            .unwrap()
            .expect("claimed")
    }

    async fn redeem_code(&self, purpose: CodePurpose, email: &str, code: &str) -> Redemption {
        let (context, master) = (&self.context, &self.master);
        self.db
            .run(|tx| async move {
                codes::redeem_code(&tx, context, master, "acme", purpose, email, code, 3).await
            })
            .await
            .unwrap()
    }
}

fn code_in(text: &str) -> String {
    text.split_whitespace()
        .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .find(|word| word.len() == 6 && word.chars().all(|c| c.is_ascii_digit()))
        .expect("a six-digit code")
        .to_owned()
}

fn token_in(text: &str) -> String {
    let start = text.find("token=").expect("a link token") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

#[tokio::test]
async fn a_code_is_single_use_and_wrong_tries_spend_it() {
    let world = World::new().await;
    world.add_user("ada@example.com", false).await;
    assert!(
        world
            .send(CodePurpose::Verification, "ada@example.com", "1.1.1.1")
            .await
            .unwrap()
    );
    let claim = world.claim_newest().await;
    let code = code_in(&claim.email.text);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(
        world
            .redeem_code(CodePurpose::Verification, "ada@example.com", wrong)
            .await,
        Redemption::Invalid
    );
    // Another purpose's code is not this one.
    assert_eq!(
        world
            .redeem_code(CodePurpose::SignIn, "ada@example.com", &code)
            .await,
        Redemption::Invalid
    );
    assert!(matches!(
        world
            .redeem_code(CodePurpose::Verification, "ada@example.com", &code)
            .await,
        Redemption::Valid(_)
    ));
    assert_eq!(
        world
            .redeem_code(CodePurpose::Verification, "ada@example.com", &code)
            .await,
        Redemption::Invalid
    );

    // A fresh code dies after three wrong tries (the limit passed above), even if right after.
    assert!(
        world
            .send(CodePurpose::Verification, "ada@example.com", "1.1.1.1")
            .await
            .unwrap()
    );
    let code = code_in(&world.claim_newest().await.email.text);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..3 {
        assert_eq!(
            world
                .redeem_code(CodePurpose::Verification, "ada@example.com", wrong)
                .await,
            Redemption::Invalid
        );
    }
    assert_eq!(
        world
            .redeem_code(CodePurpose::Verification, "ada@example.com", &code)
            .await,
        Redemption::Invalid
    );
}

#[tokio::test]
async fn codes_and_links_expire() {
    let world = World::new().await;
    world.add_user("ada@example.com", false).await;
    world
        .send(CodePurpose::SignIn, "ada@example.com", "1.1.1.1")
        .await
        .unwrap();
    let text = world.claim_newest().await.email.text;
    world.clock.advance(Duration::from_secs(601));
    assert_eq!(
        world
            .redeem_code(CodePurpose::SignIn, "ada@example.com", &code_in(&text))
            .await,
        Redemption::Invalid
    );
    world
        .send(CodePurpose::SignIn, "ada@example.com", "1.1.1.1")
        .await
        .unwrap();
    let token = token_in(&world.claim_newest().await.email.text);
    world.clock.advance(Duration::from_secs(601));
    let context = &world.context;
    let token = &token;
    let redeemed = world
        .db
        .run(|tx| async move {
            codes::redeem_token(&tx, context, "acme", CodePurpose::SignIn, token).await
        })
        .await
        .unwrap();
    assert_eq!(redeemed, Redemption::Invalid);
}

#[tokio::test]
async fn unknown_addresses_get_no_message_but_spend_the_same_allowance() {
    let world = World::new().await;
    world.add_user("ada@example.com", false).await;
    for _ in 0..5 {
        assert!(
            !world
                .send(CodePurpose::PasswordReset, "nobody@example.com", "1.1.1.1")
                .await
                .unwrap()
        );
        assert!(
            world
                .send(CodePurpose::PasswordReset, "ada@example.com", "1.1.1.2")
                .await
                .unwrap()
        );
    }
    assert_eq!(world.deliveries().await.len(), 5);
    // The sixth send per address is refused, known or not, with the same error.
    let unknown = world
        .send(CodePurpose::PasswordReset, "nobody@example.com", "1.1.1.3")
        .await;
    let known = world
        .send(CodePurpose::PasswordReset, "ada@example.com", "1.1.1.3")
        .await;
    assert!(matches!(unknown, Err(DomainError::RateLimited)));
    assert!(matches!(known, Err(DomainError::RateLimited)));
    // A new window lets it through again.
    world.clock.advance(Duration::from_secs(901));
    assert!(
        world
            .send(CodePurpose::PasswordReset, "ada@example.com", "1.1.1.3")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_source_limit_holds_across_addresses() {
    let world = World::new().await;
    for index in 0..50 {
        world
            .send(
                CodePurpose::SignIn,
                &format!("u{index}@example.com"),
                "9.9.9.9",
            )
            .await
            .unwrap();
    }
    let over = world
        .send(CodePurpose::SignIn, "u50@example.com", "9.9.9.9")
        .await;
    assert!(matches!(over, Err(DomainError::RateLimited)));
    assert!(
        world
            .send(CodePurpose::SignIn, "u50@example.com", "9.9.9.8")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn bodies_are_sealed_escaped_and_dropped_once_sent() {
    let world = World::new().await;
    world.add_user("ada@example.com", false).await;
    world
        .send(CodePurpose::Verification, "ada@example.com", "1.1.1.1")
        .await
        .unwrap();
    let claim = world.claim_newest().await;
    let code = code_in(&claim.email.text);
    let message_id = claim.delivery.message_id;
    let raw = world
        .db
        .run(|tx| async move {
            Ok::<_, DomainError>(tx.get(&keyspace::email_body("acme", message_id)).await?)
        })
        .await
        .unwrap()
        .expect("sealed body");
    assert!(
        !String::from_utf8_lossy(&raw).contains(&code),
        "code stored in clear"
    );
    assert_eq!(claim.email.message_id, format!("{message_id}@localhost"));
    assert!(claim.email.html.contains("token="));
    assert!(
        claim.email.text.contains("x=1"),
        "the redirect's own query is kept"
    );

    let (context, claim_ref) = (&world.context, &claim);
    let recorded = world
        .db
        .run(|tx| async move {
            outbox::record_attempt(
                &tx,
                context,
                "acme",
                claim_ref,
                &SmtpOutcome::Accepted,
                context.now(),
                5,
                &RetryPolicy::default(),
            )
            .await
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.status, EmailStatus::Sent);
    let body = world
        .db
        .run(|tx| async move {
            Ok::<_, DomainError>(tx.get(&keyspace::email_body("acme", message_id)).await?)
        })
        .await
        .unwrap();
    assert!(body.is_none(), "the body outlived its delivery");
}

#[tokio::test]
async fn rejections_fail_for_good_and_deferrals_retry_after_the_lease() {
    let world = World::new().await;
    world.add_user("ada@example.com", false).await;
    world
        .send(CodePurpose::Verification, "ada@example.com", "1.1.1.1")
        .await
        .unwrap();
    let claim = world.claim_newest().await;
    let (context, claim_ref) = (&world.context, &claim);
    let deferred = SmtpOutcome::Deferred {
        code: 451,
        message: "later".to_owned(),
    };
    let deferred = &deferred;
    let recorded = world
        .db
        .run(|tx| async move {
            outbox::record_attempt(
                &tx,
                context,
                "acme",
                claim_ref,
                deferred,
                context.now(),
                5,
                &RetryPolicy::default(),
            )
            .await
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.status, EmailStatus::Pending);
    assert!(recorded.next_attempt_at.unwrap() > world.context.now());

    // Claimed again after the retry delay; a node that dies now leaves it due at lease end.
    world.clock.advance(Duration::from_secs(10));
    let claim = world.claim_newest().await;
    let lease_until = claim.lease_until;
    world.clock.advance(Duration::from_secs(31));
    let now = world.context.now();
    let due = world
        .db
        .run(|tx| async move { outbox::due_messages(&tx, "acme", now, 10).await })
        .await
        .unwrap();
    assert_eq!(due, vec![(lease_until, claim.delivery.message_id)]);

    let claim = world.claim_newest().await;
    let claim_ref = &claim;
    let rejected = SmtpOutcome::Rejected {
        code: 550,
        message: "no such user".to_owned(),
    };
    let rejected = &rejected;
    let recorded = world
        .db
        .run(|tx| async move {
            outbox::record_attempt(
                &tx,
                context,
                "acme",
                claim_ref,
                rejected,
                context.now(),
                5,
                &RetryPolicy::default(),
            )
            .await
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.status, EmailStatus::Failed);
    assert_eq!(recorded.attempts.len(), 2);
    assert_eq!(recorded.attempts[1].smtp_code, 550);
    let now = world.context.now();
    let due = world
        .db
        .run(|tx| async move {
            outbox::due_messages(&tx, "acme", now.plus(Duration::from_secs(86_400 * 2)), 10).await
        })
        .await
        .unwrap();
    assert!(due.is_empty(), "a rejected message is not retried");
}

#[tokio::test]
async fn a_sign_in_code_for_an_unknown_address_signs_it_up_verified() {
    let world = World::new().await;
    assert!(
        world
            .send(CodePurpose::SignIn, "new@example.com", "1.1.1.1")
            .await
            .unwrap()
    );
    let claim = world.claim_newest().await;
    assert_eq!(claim.delivery.kind, EmailKind::SignInCode);
    let token = token_in(&claim.email.text);
    let client = ClientInfo::default();
    let (keys, tenant, token_ref, client_ref) = (world.keys(), &world.tenant, &token, &client);
    let session = world
        .db
        .run(|tx| async move {
            flows::sign_in_with_code(&tx, keys, tenant, Proof::Token(token_ref), client_ref).await
        })
        .await
        .unwrap()
        .expect("signed in");
    let crate::domain::sign_in::SignInOutcome::Session(session) = session else {
        panic!("no second factor was needed");
    };
    assert_eq!(session.user.email, "new@example.com");
    assert!(session.user.email_verified);
    let again = world
        .db
        .run(|tx| async move {
            flows::sign_in_with_code(&tx, keys, tenant, Proof::Token(token_ref), client_ref).await
        })
        .await
        .unwrap();
    assert!(again.is_none(), "a magic link works once");
}

#[tokio::test]
async fn tenants_do_not_share_codes() {
    let world = World::new().await;
    world.add_user("ada@example.com", false).await;
    world
        .send(CodePurpose::Verification, "ada@example.com", "1.1.1.1")
        .await
        .unwrap();
    let code = code_in(&world.claim_newest().await.email.text);
    let (context, master, code_ref) = (&world.context, &world.master, &code);
    let elsewhere = world
        .db
        .run(|tx| async move {
            codes::redeem_code(
                &tx,
                context,
                master,
                "other",
                CodePurpose::Verification,
                "ada@example.com",
                code_ref,
                5,
            )
            .await
        })
        .await
        .unwrap();
    assert_eq!(elsewhere, Redemption::Invalid);
}
