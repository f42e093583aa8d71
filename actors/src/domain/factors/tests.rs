//! Unit tests of second factors over the in-memory store with a manual clock: TOTP skew and
//! replay, recovery codes, MFA tickets (single use, expiry, tries), the failed-try window and
//! what a factor change does to sessions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use totp_rs::{Algorithm, Secret, TOTP};

use super::mfa::{self, Completion, SecondProof};
use super::recovery::RecoveryCodes;
use super::totp::TotpFactor;
use super::{FactorsRecord, MAX_FAILURES, SecondFactor, read_factors, write_factors};
use crate::context::Timestamp;
use crate::domain::sessions::{AuthMethod, ClientInfo};
use crate::domain::sign_in::{self, SignInOutcome};
use crate::domain::users::UserRecord;
use crate::error::DomainError;

use crate::domain::test_world::TestWorld as World;

impl World {
    /// On a step boundary, so "one step back" is a whole step.
    async fn at_a_step() -> World {
        World::starting_at(Timestamp(1_700_000_010_000)).await
    }

    async fn user(&self) -> UserRecord {
        self.add_user("ada@example.com", true).await
    }

    /// Enrols and confirms TOTP for `user`; returns the generator.
    async fn with_totp(&self, user: &UserRecord) -> TOTP {
        let (mut factor, enrolment) = TotpFactor::enrol(
            &self.context,
            &self.master,
            "acme",
            user.user_id,
            "Acme",
            "ada",
        )
        .unwrap();
        let secret = Secret::Encoded(enrolment.secret).to_bytes().unwrap();
        let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, secret, None, String::new()).unwrap();
        factor.confirmed_at = Some(self.context.now());
        let (recovery, _) =
            RecoveryCodes::generate(&self.context, &self.master, "acme", user.user_id);
        let record = FactorsRecord {
            totp: Some(factor),
            recovery: Some(recovery),
            ..FactorsRecord::default()
        };
        let user_id = user.user_id;
        let record = &record;
        self.db
            .run(|tx| async move { write_factors(&tx, "acme", user_id, record) })
            .await
            .unwrap();
        totp
    }

    fn now_seconds(&self) -> u64 {
        u64::try_from(self.context.now().as_unix_seconds()).unwrap()
    }

    async fn sign_in(&self, user: &UserRecord) -> SignInOutcome {
        let (context, tenant, user_id) = (&self.context, &self.tenant, user.user_id);
        let client = &ClientInfo::default();
        self.db
            .run(|tx| async move {
                sign_in::sign_in(
                    &tx,
                    context,
                    tenant,
                    user_id,
                    None,
                    client,
                    AuthMethod::Password,
                )
                .await
            })
            .await
            .unwrap()
    }

    async fn complete(&self, ticket: &str, proof: SecondProof<'_>) -> Completion {
        let (context, master, tenant) = (&self.context, &self.master, &self.tenant);
        let client = &ClientInfo::default();
        self.db
            .run(|tx| async move {
                mfa::complete(&tx, context, master, tenant, ticket, proof, client).await
            })
            .await
            .unwrap()
    }

    async fn ticket(&self, user: &UserRecord) -> String {
        match self.sign_in(user).await {
            SignInOutcome::MfaRequired(challenge) => challenge.ticket,
            SignInOutcome::Session(_) => panic!("a user with TOTP must give a second factor"),
        }
    }
}

fn failed(completion: &Completion) -> Option<String> {
    match completion {
        Completion::Failed(error) => Some(error.code().as_str().to_owned()),
        Completion::Session(_) => None,
    }
}

#[tokio::test]
async fn totp_accepts_one_step_of_skew_and_refuses_two() {
    let world = World::at_a_step().await;
    let user = world.user().await;
    let (mut factor, enrolment) = TotpFactor::enrol(
        &world.context,
        &world.master,
        "acme",
        user.user_id,
        "Acme",
        "ada",
    )
    .unwrap();
    assert!(enrolment.uri.starts_with("otpauth://totp/"));
    assert!(enrolment.qr_svg.contains("<svg"));
    let secret = Secret::Encoded(enrolment.secret).to_bytes().unwrap();
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, secret, None, String::new()).unwrap();
    let now = world.context.now();
    let seconds = world.now_seconds();
    for (offset, accepted) in [(-60i64, false), (60, false), (-30, true), (30, true)] {
        let at = seconds.checked_add_signed(offset).unwrap();
        let mut fresh = factor.clone();
        let code = totp.generate(at);
        let result = fresh
            .verify(&world.master, "acme", user.user_id, &code, now)
            .unwrap();
        assert_eq!(result, accepted, "offset {offset}");
    }
    let code = totp.generate(seconds);
    assert!(
        factor
            .verify(&world.master, "acme", user.user_id, &code, now)
            .unwrap()
    );
    assert!(
        !factor
            .verify(&world.master, "acme", user.user_id, &code, now)
            .unwrap(),
        "a code is accepted once per step"
    );
    let previous = totp.generate(seconds - 30);
    assert!(
        !factor
            .verify(&world.master, "acme", user.user_id, &previous, now)
            .unwrap(),
        "an older step after a newer one is a replay"
    );
    for bad in ["", "12345", "1234567", "abcdef"] {
        assert!(
            !factor
                .verify(&world.master, "acme", user.user_id, bad, now)
                .unwrap()
        );
    }
    // The seed is sealed: another user's label does not open it.
    let other = uuid::Uuid::nil();
    assert!(
        factor
            .verify(&world.master, "acme", other, &code, now)
            .is_err()
    );
}

#[tokio::test]
async fn a_user_with_totp_gets_a_ticket_that_completes_once() {
    let world = World::at_a_step().await;
    let user = world.user().await;
    let totp = world.with_totp(&user).await;
    let ticket = world.ticket(&user).await;
    let code = totp.generate(world.now_seconds());
    let completion = world.complete(&ticket, SecondProof::Totp(&code)).await;
    let Completion::Session(session) = completion else {
        panic!("the right code completes the sign-in");
    };
    assert_eq!(session.session.amr, vec!["pwd", "otp", "mfa"]);
    world.clock.advance(Duration::from_secs(30));
    let next = totp.generate(world.now_seconds());
    let next = &next;
    let (context, master, tenant) = (&world.context, &world.master, &world.tenant);
    let (ticket_ref, client) = (&ticket, &ClientInfo::default());
    let reused = world
        .db
        .run(|tx| async move {
            mfa::complete(
                &tx,
                context,
                master,
                tenant,
                ticket_ref,
                SecondProof::Totp(next),
                client,
            )
            .await
        })
        .await;
    assert!(matches!(reused, Err(DomainError::MfaTicketInvalid)));
}

#[tokio::test]
async fn tickets_expire_and_run_out_of_tries() {
    let world = World::at_a_step().await;
    let user = world.user().await;
    let totp = world.with_totp(&user).await;
    let ticket = world.ticket(&user).await;
    world
        .clock
        .advance(mfa::TICKET_TTL + Duration::from_secs(1));
    let code = totp.generate(world.now_seconds());
    let expired = world.complete(&ticket, SecondProof::Totp(&code)).await;
    assert_eq!(failed(&expired).as_deref(), Some("MFA_TICKET_INVALID"));

    let ticket = world.ticket(&user).await;
    for _ in 0..mfa::TICKET_MAX_ATTEMPTS {
        let wrong = world.complete(&ticket, SecondProof::Totp("000000")).await;
        assert_eq!(failed(&wrong).as_deref(), Some("INVALID_CODE"));
    }
    let code = totp.generate(world.now_seconds());
    let (context, master, tenant) = (&world.context, &world.master, &world.tenant);
    let (ticket_ref, client, code_ref) = (&ticket, &ClientInfo::default(), &code);
    let spent = world
        .db
        .run(|tx| async move {
            let proof = SecondProof::Totp(code_ref);
            mfa::complete(&tx, context, master, tenant, ticket_ref, proof, client).await
        })
        .await;
    assert!(
        matches!(spent, Err(DomainError::MfaTicketInvalid)),
        "a ticket out of tries is gone, even for the right code"
    );
}

#[tokio::test]
async fn failed_tries_lock_the_user_across_tickets_until_the_window_passes() {
    let world = World::at_a_step().await;
    let user = world.user().await;
    let totp = world.with_totp(&user).await;
    let mut wrong_tries = 0;
    while wrong_tries < MAX_FAILURES {
        let ticket = world.ticket(&user).await;
        for _ in 0..2 {
            let wrong = world
                .complete(&ticket, SecondProof::RecoveryCode("aaaaa-bbbbb"))
                .await;
            assert_eq!(failed(&wrong).as_deref(), Some("INVALID_CODE"));
            wrong_tries += 1;
        }
    }
    let ticket = world.ticket(&user).await;
    let code = totp.generate(world.now_seconds());
    let (context, master, tenant) = (&world.context, &world.master, &world.tenant);
    let (ticket_ref, client, code_ref) = (&ticket, &ClientInfo::default(), &code);
    let locked = world
        .db
        .run(|tx| async move {
            let proof = SecondProof::Totp(code_ref);
            mfa::complete(&tx, context, master, tenant, ticket_ref, proof, client).await
        })
        .await;
    assert!(matches!(locked, Err(DomainError::RateLimited)));
    world.clock.advance(Duration::from_secs(
        super::FAILURE_WINDOW_SECONDS as u64 + 1,
    ));
    let code = totp.generate(world.now_seconds());
    let ticket = world.ticket(&user).await;
    let completion = world.complete(&ticket, SecondProof::Totp(&code)).await;
    assert!(failed(&completion).is_none(), "the window passed");
}

#[tokio::test]
async fn parallel_second_factor_guesses_never_pass_the_limits() {
    let world = World::at_a_step().await;
    let user = world.user().await;
    world.with_totp(&user).await;
    let mut tickets = Vec::new();
    for _ in 0..6 {
        tickets.push(world.ticket(&user).await);
    }
    // Eight guesses on each of six tickets, all at once: TOTP codes and recovery codes.
    let guesses: Vec<(usize, String)> = (0..48)
        .map(|index| (index % 6, format!("{:06}", 100_000 + index)))
        .collect();
    let (context, master, tenant) = (&world.context, &world.master, &world.tenant);
    let client = &ClientInfo::default();
    let attempts = guesses.iter().map(|(ticket, guess)| {
        let ticket = tickets[*ticket].as_str();
        let proof = if guess.ends_with('7') {
            SecondProof::RecoveryCode("aaaaa-bbbbb")
        } else {
            SecondProof::Totp(guess)
        };
        let db = world.db.clone();
        async move {
            db.run(|tx| async move {
                mfa::complete(&tx, context, master, tenant, ticket, proof, client).await
            })
            .await
        }
    });
    let results = futures_join_all(attempts).await;
    let mut checked = [0usize; 6];
    for ((ticket, _), result) in guesses.iter().zip(&results) {
        match result {
            Ok(Completion::Failed(DomainError::InvalidCode)) => checked[*ticket] += 1,
            Ok(Completion::Failed(DomainError::MfaTicketInvalid))
            | Err(DomainError::MfaTicketInvalid | DomainError::RateLimited) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        checked
            .iter()
            .all(|n| *n <= mfa::TICKET_MAX_ATTEMPTS as usize),
        "per ticket: {checked:?}"
    );
    assert_eq!(
        checked.iter().sum::<usize>(),
        MAX_FAILURES,
        "per user, with more guesses than the limit: {checked:?}"
    );
    let record = world
        .db
        .run(|tx| async move { read_factors(&tx, "acme", user.user_id).await })
        .await
        .unwrap();
    assert_eq!(record.failures.len(), checked.iter().sum::<usize>());
}

/// Runs `futures` concurrently on this task (interleaved at every await), in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn recovery_codes_are_single_use_and_ignore_case_and_dashes() {
    let world = World::at_a_step().await;
    let (mut set, codes) =
        RecoveryCodes::generate(&world.context, &world.master, "acme", uuid::Uuid::nil());
    assert_eq!(codes.len(), 10);
    assert_eq!(set.remaining(), 10);
    let typed = codes[3].to_uppercase().replace('-', " ");
    assert!(set.spend(&world.master, "acme", uuid::Uuid::nil(), &typed));
    assert!(!set.spend(&world.master, "acme", uuid::Uuid::nil(), &codes[3]));
    assert_eq!(set.remaining(), 9);
    assert!(!set.spend(&world.master, "other", uuid::Uuid::nil(), &codes[4]));
    let user = world.user().await;
    let _ = world.with_totp(&user).await;
    let stored = {
        let user_id = user.user_id;
        world
            .db
            .run(|tx| async move { read_factors(&tx, "acme", user_id).await })
            .await
            .unwrap()
    };
    let bytes = gatehouse_storage::codec::encode(&stored).unwrap();
    for code in &codes {
        let plain = code.replace('-', "");
        assert!(
            !bytes
                .windows(plain.len())
                .any(|window| window == plain.as_bytes()),
            "recovery codes are never stored in clear"
        );
    }
}

#[tokio::test]
async fn mfa_required_by_the_tenant_restricts_sessions_after_the_grace_period() {
    let world = World::at_a_step().await;
    let user = world.user().await;
    let mut settings = world.tenant.record.settings.clone();
    settings.mfa.required = true;
    settings.mfa.grace_period_seconds = 3600;
    settings.mfa.required_since = Some(world.context.now().as_unix_seconds());
    let (context, db) = (&world.context, &world.db);
    let second = |settings: crate::domain::tenants::TenantSettings, user: UserRecord| async move {
        db.run(|tx| {
            let (settings, user) = (settings.clone(), user.clone());
            async move { super::second_factor(&tx, &settings, "acme", &user, context.now()).await }
        })
        .await
        .unwrap()
    };
    assert_eq!(
        second(settings.clone(), user.clone()).await,
        SecondFactor::NotNeeded
    );
    world.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        second(settings.clone(), user.clone()).await,
        SecondFactor::EnrolmentRequired
    );
    let _ = world.with_totp(&user).await;
    assert_eq!(
        second(settings, user).await,
        SecondFactor::Needed(vec!["totp", "recovery_code"])
    );
}

#[test]
fn amr_names_every_factor_and_mfa_when_more_than_one() {
    assert_eq!(AuthMethod::amr_of(&[AuthMethod::Password]), vec!["pwd"]);
    assert_eq!(
        AuthMethod::amr_of(&[AuthMethod::Passkey]),
        vec!["hwk", "user", "mfa"]
    );
    assert_eq!(
        AuthMethod::amr_of(&[AuthMethod::EmailCode, AuthMethod::RecoveryCode]),
        vec!["email", "recovery", "mfa"]
    );
}

#[tokio::test]
async fn a_factor_change_revokes_other_sessions_audits_emits_and_mails_in_its_transaction() {
    use super::changes::{self, Change, FactorChange};
    use crate::domain::audit::{self, AuditOrigin};
    use crate::domain::email::outbox;
    use crate::domain::keyspace;
    use crate::domain::outbox::OutboxEvent;
    use crate::domain::sessions;

    let world = World::at_a_step().await;
    let user = world.user().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let SignInOutcome::Session(session) = world.sign_in(&user).await else {
            panic!("no factor yet");
        };
        ids.push(session.session.session_id);
    }
    let (keys, tenant, user_ref) = (world.keys(), &world.tenant, &user);
    let keep = ids[0];
    let revoked = world
        .db
        .run(|tx| async move {
            let change = FactorChange {
                change: Change::Added,
                factor: "passkey",
                label: "Laptop",
                passkey_id: None,
                keep_session: Some(keep),
            };
            let origin = AuditOrigin::system();
            let client = ClientInfo::default();
            changes::factor_changed(&tx, keys, tenant, user_ref, &change, &origin, &client).await
        })
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    let (user_id, context) = (user.user_id, &world.context);
    let (live, events, entries, mails) = world
        .db
        .run(|tx| async move {
            let live = sessions::list_user_sessions(&tx, context, "acme", user_id, false).await?;
            let (begin, end) = keyspace::outbox_subspace("acme").range();
            let events: Vec<OutboxEvent> = tx
                .get_range(&begin, &end, gatehouse_storage::RangeOptions::default())
                .await?
                .into_iter()
                .map(|(_, value)| gatehouse_storage::codec::decode(&value).unwrap())
                .collect();
            let entries = audit::read_entries(&tx, "acme", 0, 100).await?;
            let mails = outbox::list_deliveries(&tx, "acme", None, 100).await?.0;
            Ok::<_, DomainError>((live, events, entries, mails))
        })
        .await
        .unwrap();
    assert_eq!(
        live.iter().map(|s| s.session_id).collect::<Vec<_>>(),
        vec![keep]
    );
    assert!(
        events
            .iter()
            .any(|event| event.event_type == "user.factor_added"
                && event.data["factor"] == "passkey"),
        "the webhook event is in the outbox"
    );
    assert_eq!(
        events
            .iter()
            .filter(|event| event.event_type == "session.revoked")
            .count(),
        2
    );
    let entry = entries
        .iter()
        .find(|entry| entry.event.action == "user.factor_add")
        .expect("audited");
    assert_eq!(entry.event.details["revoked_sessions"], 2);
    assert!(
        mails
            .iter()
            .any(|mail| mail.kind == crate::domain::email::EmailKind::FactorAdded),
        "the notice is queued"
    );
}
