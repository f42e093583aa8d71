//! Anonymous users: sign-in, idle expiry on refresh, upgrade in place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use uuid::Uuid;

use super::anonymous::{self, Activity, Upgrade};
use crate::domain::audit::{self, AuditOrigin};
use crate::domain::keyspace;
use crate::domain::sessions::{self, AuthMethod, ClientInfo, RefreshOutcome, RefreshToken};
use crate::domain::sign_in::NewSession;
use crate::domain::teams;
use crate::domain::test_world::TestWorld as World;
use crate::domain::users::{self, UserChanges, parse_email};
use crate::error::DomainError;

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn anonymous_sign_in(world: &World) -> NewSession {
    let (context, tenant) = (&world.context, &world.tenant);
    let client = ClientInfo::default();
    let client = &client;
    world
        .db
        .run(|tx| async move { anonymous::sign_in_anonymously(&tx, context, tenant, client).await })
        .await
        .unwrap()
}

/// A refresh as the session actor runs it: the idle check, the rotation, the activity.
async fn refresh(world: &World, token: &str) -> Result<(Activity, Option<String>), DomainError> {
    let parsed = RefreshToken::parse(token).unwrap();
    let (context, settings, parsed) = (&world.context, &world.tenant.record.settings, &parsed);
    world
        .db
        .run(|tx| async move {
            let found = sessions::find_session(&tx, "acme", parsed.session_id)
                .await?
                .unwrap();
            let activity =
                anonymous::expire_if_idle(&tx, context, "acme", settings, found.user_id).await?;
            if activity == Activity::Expired {
                return Ok((activity, None));
            }
            let outcome = sessions::refresh(&tx, context, "acme", parsed, None).await?;
            let RefreshOutcome::Rotated {
                session,
                refresh_token,
                ..
            } = outcome
            else {
                panic!("reused");
            };
            anonymous::touch(&tx, context, "acme", session.user_id).await?;
            Ok::<_, DomainError>((activity, Some(refresh_token)))
        })
        .await
}

#[tokio::test]
async fn anonymous_users_have_no_email_and_are_listed_only_on_request() {
    let world = World::new().await;
    world.add_user("ada@example.com", true).await;
    let new = anonymous_sign_in(&world).await;
    assert!(new.user.is_anonymous);
    assert!(new.user.email.is_empty());
    assert!(new.session.anonymous);
    let list = |include| {
        let db = &world.db;
        async move {
            db.run(
                |tx| async move { users::list_users(&tx, "acme", None, None, 50, include).await },
            )
            .await
            .unwrap()
            .0
        }
    };
    assert_eq!(list(false).await.len(), 1);
    let all = list(true).await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|user| user.user_id == new.user.user_id));
    // No index entry was written for it: the empty address belongs to nobody.
    let found =
        world
            .db
            .run(|tx| async move {
                Ok::<_, DomainError>(tx.get(&keyspace::email_index("acme", "")).await?)
            })
            .await
            .unwrap();
    assert!(found.is_none());
}

#[tokio::test]
async fn idle_anonymous_users_cannot_refresh_and_are_deleted() {
    let world = World::new().await;
    let new = anonymous_sign_in(&world).await;
    let user_id = new.user.user_id;
    // Active within the idle lifetime (30 days): each refresh records the activity.
    world.clock.advance(DAY * 29);
    let (activity, token) = refresh(&world, &new.refresh_token).await.unwrap();
    assert_eq!(activity, Activity::Active);
    world.clock.advance(DAY * 29);
    let (activity, token) = refresh(&world, &token.unwrap()).await.unwrap();
    assert_eq!(activity, Activity::Active);
    // Idle past it: the refresh deletes the user and its sessions.
    world.clock.advance(DAY * 31);
    let (activity, _) = refresh(&world, &token.unwrap()).await.unwrap();
    assert_eq!(activity, Activity::Expired);
    let (user, session) = world
        .db
        .run(|tx| async move {
            let user = users::find_user(&tx, "acme", user_id).await?;
            let session = sessions::find_session(&tx, "acme", new.session.session_id).await?;
            Ok::<_, DomainError>((user, session))
        })
        .await
        .unwrap();
    assert!(user.is_none());
    assert!(session.is_none());
    let entries = world
        .db
        .run(|tx| async move { audit::read_entries(&tx, "acme", 0, 100).await })
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|entry| entry.event.action == "user.delete"
                && entry.event.actor == "system"
                && entry.event.target == format!("user:{user_id}"))
    );
}

#[tokio::test]
async fn an_upgrade_keeps_the_user_id_teams_and_metadata() {
    let world = World::new().await;
    world.add_user("taken@example.com", true).await;
    let new = anonymous_sign_in(&world).await;
    let user_id = new.user.user_id;
    let context = &world.context;
    let team = world
        .db
        .run(|tx| async move {
            let changes = UserChanges {
                client_metadata: Some("{\"cart\":3}".to_owned()),
                ..UserChanges::default()
            };
            users::update_user(&tx, context, "acme", user_id, changes).await?;
            teams::create_team(&tx, context, "acme", "Mine", Some(user_id), &[]).await
        })
        .await
        .unwrap();
    let upgrade = |email: &str| Upgrade {
        email: parse_email(email).unwrap(),
        email_verified: false,
        password_hash: Some("$argon2id$fake".to_owned()),
        display_name: Some("Ada".to_owned()),
    };
    let tenant = &world.tenant;
    let client = ClientInfo::default();
    let client = &client;
    // An address that belongs to someone is refused, and nothing changes.
    let taken = upgrade("taken@example.com");
    let result = world
        .db
        .run(|tx| {
            let taken = taken.clone();
            async move {
                anonymous::sign_up_in_place(&tx, context, tenant, user_id, taken, client).await
            }
        })
        .await;
    assert!(matches!(result, Err(DomainError::UserEmailAlreadyExists)));

    let fresh = upgrade("Ada@Example.com");
    let signed_up = world
        .db
        .run(|tx| {
            let fresh = fresh.clone();
            async move {
                anonymous::sign_up_in_place(&tx, context, tenant, user_id, fresh, client).await
            }
        })
        .await
        .unwrap();
    assert_eq!(signed_up.user.user_id, user_id);
    assert!(!signed_up.user.is_anonymous);
    assert!(!signed_up.session.anonymous);
    assert_eq!(
        signed_up.session.amr,
        AuthMethod::amr_of(&[AuthMethod::Password])
    );
    let (user, by_email, member, old_session) = world
        .db
        .run(|tx| async move {
            let user = users::read_user(&tx, "acme", user_id).await?;
            let by_email = users::find_user_by_email(&tx, "acme", "ada@example.com").await?;
            let member = teams::is_member(&tx, "acme", team.team_id, user_id).await?;
            let old = sessions::find_session(&tx, "acme", new.session.session_id).await?;
            Ok::<_, DomainError>((user, by_email, member, old))
        })
        .await
        .unwrap();
    assert_eq!(user.client_metadata, "{\"cart\":3}");
    assert_eq!(user.email, "Ada@Example.com");
    assert!(user.password_hash.is_some());
    assert_eq!(by_email.map(|user| user.user_id), Some(user_id));
    assert!(member);
    let revoked = old_session.unwrap().revoked.unwrap();
    assert_eq!(revoked.reason, "anonymous_upgraded");
    // The old anonymous refresh token is dead; a second upgrade is refused.
    assert!(matches!(
        refresh(&world, &new.refresh_token).await,
        Err(DomainError::SessionRevoked)
    ));
    let again = world
        .db
        .run(|tx| {
            let fresh = upgrade("other@example.com");
            let origin = AuditOrigin::system();
            let settings = &tenant.record.settings;
            async move {
                anonymous::upgrade_anonymous(
                    &tx, context, "acme", settings, user_id, fresh, &origin,
                )
                .await
            }
        })
        .await;
    assert!(matches!(again, Err(DomainError::InvalidArgument { .. })));
}

#[tokio::test]
async fn an_idle_anonymous_user_cannot_be_upgraded() {
    let world = World::new().await;
    let new = anonymous_sign_in(&world).await;
    world.clock.advance(DAY * 31);
    let (context, tenant) = (&world.context, &world.tenant);
    let result = world
        .db
        .run(|tx| async move {
            let upgrade = Upgrade {
                email: parse_email("late@example.com").unwrap(),
                email_verified: true,
                password_hash: None,
                display_name: None,
            };
            let settings = &tenant.record.settings;
            let origin = AuditOrigin::system();
            let id: Uuid = new.user.user_id;
            anonymous::upgrade_anonymous(&tx, context, "acme", settings, id, upgrade, &origin).await
        })
        .await;
    assert!(matches!(result, Err(DomainError::SessionExpired)));
}
