//! Unit tests of webhooks over the memory store, with a scripted sender and a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_storage::Database;

use super::deliveries::{self, RetryPolicy};
use super::signing::{self, WebhookSecret};
use super::targets::{check_target, is_private_address, parse_target_url};
use super::*;
use crate::access::Caller;
use crate::context::{Clock, Context, ManualClock, OsEntropy, SystemClock};
use crate::crypto::MasterKey;
use crate::gatehouse::{Gatehouse, GatehouseOptions};
use crate::sessions::ClientInfo;

#[test]
fn signatures_match_the_standard_webhooks_test_vector() {
    // The reference vector published with the Standard Webhooks specification.
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let signature = secret
        .sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

fn header_map(headers: &[(String, String)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn the_reference_library_accepts_our_headers_and_both_secrets_during_rotation() {
    let context = Context::system();
    let current = WebhookSecret::generate(&context);
    let previous = WebhookSecret::generate(&context);
    assert!(current.to_text().starts_with("whsec_"));
    let body = br#"{"type":"user.created","timestamp":"2026-01-01T00:00:00.000Z","data":{}}"#;
    let now = SystemClock.now().as_unix_seconds();
    let headers =
        signing::headers(&[current.clone(), previous.clone()], "msg_1", now, body).unwrap();
    for secret in [&current, &previous] {
        standardwebhooks::Webhook::new(&secret.to_text())
            .unwrap()
            .verify(body, &header_map(&headers))
            .unwrap();
    }
    let stranger = WebhookSecret::generate(&context).to_text();
    assert!(
        standardwebhooks::Webhook::new(&stranger)
            .unwrap()
            .verify(body, &header_map(&headers))
            .is_err()
    );
    assert!(!format!("{current:?}").contains(&current.to_text()[6..]));
}

#[test]
fn backoff_doubles_from_five_seconds_to_an_hour_with_full_jitter() {
    let policy = RetryPolicy::default();
    let expected = [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600];
    for (failures, seconds) in (1..).zip(expected) {
        assert_eq!(policy.ceiling(failures), Duration::from_secs(seconds));
    }
    assert_eq!(policy.ceiling(1000), Duration::from_secs(3600));
    let context = Context::system();
    for failures in 1..20 {
        let mut seen_low = false;
        for _ in 0..200 {
            let delay = policy.delay(failures, u64::from_le_bytes(context.random::<8>()));
            assert!(delay >= policy.min_delay, "{delay:?}");
            assert!(delay <= policy.ceiling(failures), "{delay:?}");
            seen_low |= delay < policy.ceiling(failures) / 2;
        }
        assert!(seen_low, "jitter spreads delays below half the ceiling");
    }
    assert_eq!(policy.delay(3, 0), policy.min_delay);
    assert_eq!(policy.delay(1, 4000), Duration::from_secs(5));
}

#[test]
fn filters_select_exact_types_and_prefix_wildcards() {
    let filter = validate_event_filter(&["user.created".into(), "session.*".into()]).unwrap();
    assert!(filter_matches(&filter, "user.created"));
    assert!(filter_matches(&filter, "session.revoked"));
    assert!(!filter_matches(&filter, "user.deleted"));
    assert!(!filter_matches(&filter, "sessions.x"));
    assert!(
        filter_matches(&[], "team.created"),
        "empty means every event"
    );
    let share = validate_event_filter(&["share.*".into()]).unwrap();
    assert!(filter_matches(&share, "share.proposal.created"));
    for bad in ["user.exploded", "nothing.*", "*", ""] {
        assert!(validate_event_filter(&[bad.into()]).is_err(), "{bad}");
    }
    let deduplicated =
        validate_event_filter(&["user.created".into(), "user.created".into()]).unwrap();
    assert_eq!(deduplicated.len(), 1);
}

#[tokio::test]
async fn private_loopback_and_link_local_targets_are_refused_unless_allowed() {
    for private in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
    ] {
        assert!(
            is_private_address(private.parse::<IpAddr>().unwrap()),
            "{private}"
        );
    }
    for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
        assert!(
            !is_private_address(public.parse::<IpAddr>().unwrap()),
            "{public}"
        );
    }
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9000/hook",
    ] {
        let parsed = parse_target_url(url, false).unwrap();
        let refused = check_target(&parsed, false).await.unwrap_err();
        assert!(
            matches!(refused, DomainError::WebhookTargetNotAllowed(_)),
            "{url}: {refused}"
        );
        assert!(check_target(&parsed, true).await.is_ok(), "{url}");
    }
    let public = parse_target_url("http://93.184.216.34/hook", false).unwrap();
    assert!(check_target(&public, false).await.is_ok());
    for bad in [
        "",
        "ftp://example.com/",
        "http://user:pw@example.com/",
        "not a url",
    ] {
        assert!(parse_target_url(bad, false).is_err(), "{bad}");
    }
    assert!(parse_target_url("https://example.com/", false).is_err());
    assert!(parse_target_url("https://example.com/", true).is_ok());
}

/// A sender that answers from a script (then 200) and records every request.
#[derive(Debug, Default)]
struct ScriptedSender {
    script: Mutex<VecDeque<SendOutcome>>,
    seen: Mutex<Vec<WebhookRequest>>,
}

#[async_trait::async_trait]
impl WebhookSender for ScriptedSender {
    async fn send(&self, request: WebhookRequest) -> SendOutcome {
        self.seen.lock().unwrap().push(request);
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(SendOutcome::Answered(200))
    }
}

impl ScriptedSender {
    fn answer(&self, outcomes: impl IntoIterator<Item = SendOutcome>) {
        self.script.lock().unwrap().extend(outcomes);
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

struct Fixture {
    gatehouse: Arc<Gatehouse>,
    clock: Arc<ManualClock>,
    sender: Arc<ScriptedSender>,
    server: Caller,
}

async fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let sender = Arc::new(ScriptedSender::default());
    let context = Context {
        clock: clock.clone(),
        entropy: Arc::new(OsEntropy),
    };
    let gatehouse = Gatehouse::start(
        Database::memory(),
        context,
        MasterKey::from_bytes(&[5; 32]),
        GatehouseOptions {
            password_hash_threads: 1,
            webhooks: WebhookSettings {
                sender: Some(sender.clone()),
                allow_private_targets: true,
                poll_interval: Duration::from_millis(20),
                ..WebhookSettings::default()
            },
            ..GatehouseOptions::default()
        },
    )
    .await
    .unwrap();
    gatehouse
        .create_tenant(&Caller::Operator { tenant: None }, "Acme", "acme")
        .await
        .unwrap();
    let server = Caller::Server {
        tenant: gatehouse.core().tenant("acme").await.unwrap(),
    };
    Fixture {
        gatehouse,
        clock,
        sender,
        server,
    }
}

/// Polls `check` for up to five seconds.
async fn eventually(mut check: impl FnMut() -> bool) {
    for _ in 0..250 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(check(), "condition not met within 5 s");
}

impl Fixture {
    async fn endpoint(&self, event_types: &[&str]) -> CreatedEndpoint {
        let types: Vec<String> = event_types.iter().map(|t| (*t).to_owned()).collect();
        self.gatehouse
            .create_webhook_endpoint(&self.server, "http://127.0.0.1:9/hook", "test", &types)
            .await
            .unwrap()
    }

    async fn sign_up(&self, email: &str) {
        self.gatehouse
            .sign_up_with_password(
                &self.server,
                email,
                "correct horse battery",
                "",
                &ClientInfo::default(),
            )
            .await
            .unwrap();
    }

    async fn deliveries(&self, endpoint: &CreatedEndpoint) -> Vec<DeliveryRecord> {
        self.gatehouse
            .list_webhook_deliveries(
                &self.server,
                &endpoint.endpoint.endpoint_id.to_string(),
                0,
                "",
            )
            .await
            .unwrap()
            .deliveries
    }
}

#[tokio::test]
async fn a_sign_up_delivers_a_signed_user_created_event_to_matching_endpoints_only() {
    let fixture = fixture().await;
    let users = fixture.endpoint(&["user.created"]).await;
    let sessions = fixture.endpoint(&["session.*"]).await;
    fixture.sign_up("ada@example.com").await;
    eventually(|| fixture.sender.count() == 2).await;
    let seen = fixture.sender.seen.lock().unwrap().clone();
    let to_users = seen
        .iter()
        .find(|request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            body["type"] == "user.created"
        })
        .expect("user.created sent");
    let body: serde_json::Value = serde_json::from_slice(&to_users.body).unwrap();
    assert_eq!(body["data"]["email"], "ada@example.com");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(body["data"].get("password_hash").is_none());
    standardwebhooks::Webhook::new(&users.secret)
        .unwrap()
        .verify(&to_users.body, &header_map(&to_users.headers))
        .unwrap();
    let delivered = fixture.deliveries(&users).await;
    assert_eq!(delivered.len(), 1);
    let session_deliveries = fixture.deliveries(&sessions).await;
    assert_eq!(session_deliveries.len(), 1);
    assert_eq!(session_deliveries[0].event_type, "session.created");
    for _ in 0..100 {
        if fixture.deliveries(&users).await[0].status == DeliveryStatus::Delivered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = &fixture.deliveries(&users).await[0];
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.attempts.len(), 1);
    assert_eq!(delivered.attempts[0].http_status, 200);
}

async fn wait_for_status(
    fixture: &Fixture,
    endpoint: &CreatedEndpoint,
    check: impl Fn(&DeliveryRecord) -> bool,
) -> DeliveryRecord {
    for _ in 0..250 {
        if let Some(delivery) = fixture.deliveries(endpoint).await.into_iter().next()
            && check(&delivery)
        {
            return delivery;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("delivery never reached the expected state");
}

#[tokio::test]
async fn a_500_is_retried_after_a_backoff_and_then_delivered() {
    let fixture = fixture().await;
    let endpoint = fixture.endpoint(&["user.created"]).await;
    fixture.sender.answer([SendOutcome::Answered(500)]);
    fixture.sign_up("bob@example.com").await;
    let pending =
        wait_for_status(&fixture, &endpoint, |delivery| delivery.attempts.len() == 1).await;
    assert_eq!(pending.status, DeliveryStatus::Pending);
    assert_eq!(pending.attempts[0].http_status, 500);
    let first = pending.attempts[0].at;
    let next = pending.next_attempt_at.unwrap();
    assert!(
        next.0 - first.0 >= 1000 && next.0 - first.0 <= 5000,
        "{next:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fixture.sender.count(), 1, "no retry before the backoff");
    fixture.clock.advance(Duration::from_secs(6));
    let delivered = wait_for_status(&fixture, &endpoint, |delivery| {
        delivery.status == DeliveryStatus::Delivered
    })
    .await;
    let codes: Vec<u16> = delivered.attempts.iter().map(|a| a.http_status).collect();
    assert_eq!(codes, [500, 200]);
    assert_eq!(fixture.sender.count(), 2);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_is_audited() {
    let fixture = fixture().await;
    let endpoint = fixture.endpoint(&["user.created"]).await;
    fixture.sender.answer([SendOutcome::Answered(410)]);
    fixture.sign_up("cy@example.com").await;
    let failed = wait_for_status(&fixture, &endpoint, |delivery| {
        delivery.status == DeliveryStatus::Failed
    })
    .await;
    assert_eq!(failed.attempts[0].outcome, "gone");
    let id = endpoint.endpoint.endpoint_id.to_string();
    let stored = fixture
        .gatehouse
        .get_webhook_endpoint(&fixture.server, &id)
        .await
        .unwrap();
    assert!(!stored.enabled);
    assert_eq!(stored.disabled_reason, "gone");
    let entries = fixture
        .gatehouse
        .list_audit_entries(&fixture.server, 0, "")
        .await
        .unwrap()
        .entries;
    assert!(
        entries
            .iter()
            .any(|entry| entry.event.action == "webhook_endpoint.disable"
                && entry.event.actor == "system")
    );
    let verification = fixture
        .gatehouse
        .verify_audit_ledger(&fixture.server)
        .await
        .unwrap();
    assert!(verification.is_ok(), "{verification:?}");
}

#[tokio::test]
async fn retries_stop_a_day_after_the_first_attempt() {
    let fixture = fixture().await;
    let endpoint = fixture.endpoint(&["user.created"]).await;
    fixture.sender.answer(std::iter::repeat_n(
        SendOutcome::Failed("connection refused".into()),
        100,
    ));
    fixture.sign_up("dee@example.com").await;
    wait_for_status(&fixture, &endpoint, |delivery| delivery.attempts.len() == 1).await;
    let mut attempts = 1;
    let failed = loop {
        fixture.clock.advance(Duration::from_secs(3601));
        let delivery = wait_for_status(&fixture, &endpoint, |delivery| {
            delivery.attempts.len() > attempts || delivery.status == DeliveryStatus::Failed
        })
        .await;
        attempts = delivery.attempts.len();
        if delivery.status == DeliveryStatus::Failed {
            break delivery;
        }
        assert!(attempts < 40, "still retrying after {attempts} attempts");
    };
    let first = failed.attempts[0].at;
    let last = failed.attempts.last().unwrap().at;
    assert!(last.0 - first.0 >= 24 * 3600 * 1000 - 3601 * 1000);
    assert!(last.0 - first.0 <= 24 * 3600 * 1000 + 3601 * 1000);
    assert_eq!(failed.attempts.last().unwrap().error, "connection refused");
}

#[tokio::test]
async fn replay_sends_a_past_event_again_with_the_same_id() {
    let fixture = fixture().await;
    let endpoint = fixture.endpoint(&["user.created"]).await;
    fixture.sign_up("eve@example.com").await;
    let first = wait_for_status(&fixture, &endpoint, |delivery| {
        delivery.status == DeliveryStatus::Delivered
    })
    .await;
    let id = endpoint.endpoint.endpoint_id.to_string();
    let replayed = fixture
        .gatehouse
        .replay_webhook_event(&fixture.server, &id, &first.event_id)
        .await
        .unwrap();
    assert!(replayed.replay);
    eventually(|| fixture.sender.count() == 2).await;
    let seen = fixture.sender.seen.lock().unwrap().clone();
    let ids: Vec<&str> = seen
        .iter()
        .map(|request| {
            request
                .headers
                .iter()
                .find(|(name, _)| name == "webhook-id")
                .map(|(_, value)| value.as_str())
                .unwrap()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    let missing = fixture
        .gatehouse
        .replay_webhook_event(&fixture.server, &id, "msg_nope")
        .await
        .unwrap_err();
    assert!(matches!(missing, DomainError::WebhookEventNotFound));
}

#[tokio::test]
async fn a_claim_whose_attempt_never_finished_is_taken_again_after_its_lease() {
    let db = Database::memory();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let context = Context {
        clock: clock.clone(),
        entropy: Arc::new(OsEntropy),
    };
    let master = MasterKey::from_bytes(&[3; 32]);
    let (ctx, key) = (&context, &master);
    db.run(|tx| async move {
        let new_endpoint = endpoints::NewEndpoint {
            url: "http://127.0.0.1:9/".into(),
            description: String::new(),
            event_types: Vec::new(),
        };
        endpoints::create_endpoint(&tx, ctx, key, "acme", new_endpoint).await?;
        crate::outbox::emit(&tx, ctx, "acme", "user.created", serde_json::json!({}))?;
        Ok::<_, DomainError>(())
    })
    .await
    .unwrap();
    let fanned = db
        .run(|tx| async move { deliveries::fan_out(&tx, ctx, "acme", 10).await })
        .await
        .unwrap();
    assert_eq!((fanned.events, fanned.deliveries), (1, 1));
    let now = context.now();
    let due = db
        .run(|tx| async move { deliveries::due_deliveries(&tx, "acme", now, 10).await })
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    let (at, id) = due[0];
    let lease = Duration::from_secs(30);
    let db = &db;
    let claim = |at| async move {
        db.run(|tx| async move { deliveries::claim(&tx, ctx, key, "acme", at, id, lease).await })
            .await
            .unwrap()
    };
    let first = claim(at).await.expect("first claim");
    assert!(
        claim(at).await.is_none(),
        "a claimed delivery is not claimed twice"
    );
    // The claiming node dies here: nothing records the attempt.
    let still_leased = db
        .run(|tx| async move { deliveries::due_deliveries(&tx, "acme", now, 10).await })
        .await
        .unwrap();
    assert!(still_leased.is_empty());
    clock.advance(Duration::from_secs(31));
    let now = context.now();
    let due = db
        .run(|tx| async move { deliveries::due_deliveries(&tx, "acme", now, 10).await })
        .await
        .unwrap();
    assert_eq!(due, vec![(first.lease_until, id)]);
    let second = claim(first.lease_until)
        .await
        .expect("taken again after the lease");
    assert_eq!(second.event.event_id, first.event.event_id);
    assert!(
        !db.run(|tx| async move { deliveries::retire_work_mark_if_idle(&tx, "acme").await })
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn endpoints_are_listed_updated_rotated_and_deleted() {
    let fixture = fixture().await;
    let created = fixture.endpoint(&["user.*"]).await;
    assert!(created.secret.starts_with("whsec_"));
    assert!(!format!("{created:?}").contains(&created.secret));
    let id = created.endpoint.endpoint_id.to_string();
    let gatehouse = &fixture.gatehouse;
    let listed = gatehouse
        .list_webhook_endpoints(&fixture.server)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let update = crate::api::webhooks::WebhookEndpointUpdate {
        event_types: Some(vec!["session.revoked".into()]),
        enabled: Some(false),
        ..Default::default()
    };
    let updated = gatehouse
        .update_webhook_endpoint(&fixture.server, &id, update)
        .await
        .unwrap();
    assert_eq!(updated.event_types, ["session.revoked"]);
    assert_eq!(updated.disabled_reason, "manual");
    let rotated = gatehouse
        .rotate_webhook_secret(&fixture.server, &id)
        .await
        .unwrap();
    assert_ne!(rotated.secret, created.secret);
    assert!(rotated.endpoint.previous_secret.is_some());
    gatehouse
        .delete_webhook_endpoint(&fixture.server, &id)
        .await
        .unwrap();
    let gone = gatehouse
        .get_webhook_endpoint(&fixture.server, &id)
        .await
        .unwrap_err();
    assert!(matches!(gone, DomainError::WebhookEndpointNotFound));
    let actions: Vec<String> = gatehouse
        .list_audit_entries(&fixture.server, 0, "")
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|entry| entry.event.action)
        .collect();
    for action in [
        "tenant.create",
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint.delete",
    ] {
        assert!(
            actions.iter().any(|done| done == action),
            "{action}: {actions:?}"
        );
    }
    let client = Caller::Client {
        tenant: fixture.gatehouse.core().tenant("acme").await.unwrap(),
        user: None,
    };
    assert!(matches!(
        gatehouse.list_webhook_endpoints(&client).await,
        Err(DomainError::PermissionDenied(_))
    ));
}
