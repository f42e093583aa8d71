//! Dispatcher tests over the memory store: a scripted sender, a manual clock, and the
//! Gatehouse API driving real fan-out, retries, 410, replay and lease takeover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_storage::Database;

use super::deliveries;
use super::tests::header_map;
use super::*;
use crate::access::Caller;
use crate::context::{Clock, Context, ManualClock, OsEntropy, SystemClock};
use crate::domain::crypto::MasterKey;
use crate::domain::sessions::ClientInfo;
use crate::gatehouse::{Gatehouse, GatehouseOptions};

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
        live_sessions: Default::default(),
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
        tenant: gatehouse.services().tenant("acme").await.unwrap(),
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
        live_sessions: Default::default(),
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
        crate::domain::outbox::emit(
            &tx,
            ctx,
            "acme",
            crate::domain::outbox::EventType::UserCreated,
            serde_json::json!({}),
        )?;
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
        tenant: fixture.gatehouse.services().tenant("acme").await.unwrap(),
        user: None,
    };
    assert!(matches!(
        gatehouse.list_webhook_endpoints(&client).await,
        Err(DomainError::PermissionDenied(_))
    ));
}
