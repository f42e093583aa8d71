//! Impersonation sessions: their hard end, their token expiry, and the audited start and end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::impersonation::{self, access_token_expiry, validate_request};
use super::{ClientInfo, RefreshToken, RevocationReason};
use crate::domain::audit::{self, AuditOrigin};
use crate::domain::keyspace;
use crate::domain::outbox::OutboxEvent;
use crate::domain::sessions;
use crate::domain::sign_in::NewSession;
use crate::domain::test_world::TestWorld as World;
use crate::domain::users::{self, UserState};
use crate::error::{DomainError, DomainResult};

async fn impersonate(world: &World, user_id: uuid::Uuid, seconds: u32) -> DomainResult<NewSession> {
    let (context, tenant) = (&world.context, &world.tenant);
    let client = ClientInfo::default();
    let client = &client;
    world
        .db
        .run(|tx| async move {
            let origin = AuditOrigin {
                actor: "operator".to_owned(),
                source_ip: String::new(),
            };
            impersonation::start(
                &tx,
                context,
                tenant,
                user_id,
                &origin,
                "ticket 42",
                seconds,
                client,
            )
            .await
        })
        .await
}

async fn refresh(world: &World, token: &str) -> DomainResult<String> {
    let parsed = RefreshToken::parse(token).unwrap();
    let (context, parsed) = (&world.context, &parsed);
    world
        .db
        .run(|tx| async move {
            match sessions::refresh(&tx, context, "acme", parsed, None).await? {
                sessions::RefreshOutcome::Rotated { refresh_token, .. } => Ok(refresh_token),
                sessions::RefreshOutcome::Reused => Err(DomainError::RefreshTokenReused),
            }
        })
        .await
}

#[test]
fn requests_need_a_reason_and_a_bounded_length() {
    assert_eq!(
        validate_request(" why ", 0).unwrap(),
        ("why".to_owned(), 1800)
    );
    assert_eq!(validate_request("why", 10).unwrap().1, 10);
    assert_eq!(validate_request("why", 12 * 3600).unwrap().1, 12 * 3600);
    for (reason, seconds) in [("", 60), ("  ", 60), ("why", 9), ("why", 12 * 3600 + 1)] {
        assert!(matches!(
            validate_request(reason, seconds),
            Err(DomainError::InvalidArgument { .. })
        ));
    }
    assert!(validate_request(&"x".repeat(501), 60).is_err());
}

#[tokio::test]
async fn an_impersonation_session_refreshes_until_its_end_and_no_further() {
    let world = World::new().await;
    let user = world.add_user("ada@example.com", true).await;
    let started = world.context.now();
    let new = impersonate(&world, user.user_id, 60).await.unwrap();
    let session = &new.session;
    assert_eq!(session.expires_at, started.plus(Duration::from_secs(60)));
    let impersonation = session.impersonation.as_ref().unwrap();
    assert_eq!(impersonation.impersonator, "operator");
    assert_eq!(impersonation.reason, "ticket 42");
    // Access tokens never outlive the session (the tenant's token lifetime is 600 s).
    assert_eq!(
        access_token_expiry(session, started, Duration::from_secs(600)),
        session.expires_at
    );
    world.clock.advance(Duration::from_secs(30));
    let token = refresh(&world, &new.refresh_token).await.unwrap();
    world.clock.advance(Duration::from_secs(30));
    assert!(matches!(
        refresh(&world, &token).await,
        Err(DomainError::SessionExpired)
    ));
}

#[tokio::test]
async fn start_and_end_are_audited_and_blocked_users_refused() {
    let world = World::new().await;
    let user = world.add_user("ada@example.com", true).await;
    let new = impersonate(&world, user.user_id, 0).await.unwrap();
    let context = &world.context;
    let session_id = new.session.session_id;
    world
        .db
        .run(|tx| async move {
            sessions::revoke_session(&tx, context, "acme", session_id, RevocationReason::Admin)
                .await
        })
        .await
        .unwrap();
    let (entries, events) = world
        .db
        .run(|tx| async move {
            let entries = audit::read_entries(&tx, "acme", 0, 100).await?;
            let (begin, end) = keyspace::outbox_subspace("acme").range();
            let events: Vec<OutboxEvent> = tx
                .get_range(&begin, &end, gatehouse_storage::RangeOptions::default())
                .await?
                .into_iter()
                .map(|(_, value)| gatehouse_storage::codec::decode(&value).unwrap())
                .collect();
            Ok::<_, DomainError>((entries, events))
        })
        .await
        .unwrap();
    // Outbox keys order events by id, not by time within one clock tick.
    let mut sent: Vec<_> = events
        .iter()
        .filter(|event| event.event_type.starts_with("session.impersonation"))
        .map(|event| (event.event_type.as_str(), event.data["ended_by"].clone()))
        .collect();
    sent.sort_by_key(|(event_type, _)| *event_type);
    assert_eq!(
        sent,
        [
            ("session.impersonation_ended", "admin".into()),
            ("session.impersonation_started", serde_json::Value::Null),
        ]
    );
    let actions: Vec<_> = entries
        .iter()
        .filter(|entry| entry.event.target == format!("session:{session_id}"))
        .map(|entry| entry.event.action.as_str())
        .collect();
    assert_eq!(
        actions,
        ["session.impersonation_start", "session.impersonation_end"]
    );
    assert_eq!(entries[0].event.actor, "operator");
    assert_eq!(entries[0].event.details["reason"], "ticket 42");

    let user_id = user.user_id;
    world
        .db
        .run(|tx| async move {
            users::set_user_state(&tx, context, "acme", user_id, UserState::Suspended, None).await
        })
        .await
        .unwrap();
    assert!(matches!(
        impersonate(&world, user_id, 60).await,
        Err(DomainError::UserSuspended)
    ));
}
