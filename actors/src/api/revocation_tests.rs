//! Revocation is in force for access tokens inside Gatehouse: once a session ends or its user
//! is blocked, the session's still-unexpired access token is refused by `authenticate`, on
//! this node at once and on other nodes once they poll the revocation feed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gatehouse_storage::Database;

use crate::access::{Caller, Credentials};
use crate::api::SignedIn;
use crate::api::shares::{RecipientSpec, ShareSpec};
use crate::api::teams::InvitationRequest;
use crate::api::users::UserUpdate;
use crate::context::Context;
use crate::domain::crypto::MasterKey;
use crate::domain::passwords::Argon2Params;
use crate::domain::sessions::ClientInfo;
use crate::domain::tenants::SettingsChanges;
use crate::domain::tenants::anonymous::AnonymousSettingsChanges;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::{Gatehouse, GatehouseOptions};

const PASSWORD: &str = "correct horse battery";

async fn node(db: Database) -> Arc<Gatehouse> {
    Gatehouse::start(
        db,
        Context::system(),
        MasterKey::from_bytes(&[5; 32]),
        GatehouseOptions {
            password_hash_threads: 1,
            revocation_poll: Duration::from_millis(50),
            argon2: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            ..GatehouseOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Tenant `acme` (trusting `app.example.com`, anonymous users on) on one or more nodes.
struct World {
    nodes: Vec<Arc<Gatehouse>>,
    client_key: String,
    server: Caller,
}

impl World {
    async fn new(nodes: usize) -> World {
        let db = Database::memory();
        let mut started = Vec::new();
        for _ in 0..nodes {
            started.push(node(db.clone()).await);
        }
        let first = &started[0];
        let operator = Caller::Operator { tenant: None };
        let created = first
            .create_tenant(&operator, "Acme", "acme")
            .await
            .unwrap();
        first
            .update_tenant_settings(
                &operator,
                "acme",
                SettingsChanges {
                    trusted_domains: Some(vec!["app.example.com".to_owned()]),
                    anonymous: AnonymousSettingsChanges {
                        enabled: Some(true),
                        idle_ttl_seconds: None,
                    },
                    ..SettingsChanges::default()
                },
            )
            .await
            .unwrap();
        let server = Caller::Server {
            tenant: first.services().tenant("acme").await.unwrap(),
        };
        World {
            nodes: started,
            client_key: created.publishable_client_key,
            server,
        }
    }

    fn gatehouse(&self) -> &Gatehouse {
        &self.nodes[0]
    }

    async fn sign_up(&self, name: &str) -> SignedIn {
        self.gatehouse()
            .sign_up_with_password(
                &self.server,
                &format!("{name}@example.com"),
                PASSWORD,
                "",
                &ClientInfo::default(),
            )
            .await
            .unwrap()
            .into_signed_in()
            .unwrap()
    }

    /// The client caller of `token` on node `index`, as `authenticate` makes it.
    async fn caller_on(
        &self,
        index: usize,
        token: &str,
        ending_session: bool,
    ) -> DomainResult<Caller> {
        self.nodes[index]
            .authenticate(&Credentials {
                tenant: Some("acme".to_owned()),
                client_key: Some(self.client_key.clone()),
                access_token: Some(token.to_owned()),
                ending_session,
                ..Credentials::default()
            })
            .await
    }

    /// Authenticates `signed`'s access token and makes the user calls Gatehouse serves with
    /// it: reading and changing the user, creating a team, an invitation and a share.
    async fn user_calls(&self, signed: &SignedIn) -> DomainResult<()> {
        let gatehouse = self.gatehouse();
        let caller = self.caller_on(0, &signed.access_token.token, false).await?;
        let me = gatehouse.get_current_user(&caller).await?;
        let update = UserUpdate {
            client_metadata: Some(r#"{"theme":"dark"}"#.to_owned()),
            ..UserUpdate::default()
        };
        gatehouse.update_user(&caller, "", update).await?;
        let team = gatehouse.create_team(&caller, "Rocket", None).await?;
        let team_id = team.team_id.to_string();
        let invitation = InvitationRequest {
            team_id: &team_id,
            email: "guest@example.com",
            redirect_url: "https://app.example.com/invite",
            return_token: false,
        };
        gatehouse
            .create_team_invitation(&caller, invitation, &ClientInfo::default())
            .await?;
        let share = ShareSpec {
            owner_user_id: String::new(),
            recipient: Some(RecipientSpec::Service("billing".to_owned())),
            resource_type: "user".to_owned(),
            resource_id: me.user_id.to_string(),
            permissions: vec!["read".to_owned()],
            field_mask: Vec::new(),
            proposal_mode: false,
            expires_at: None,
            max_uses: 0,
            rate_limit_per_minute: 0,
            redirect_url: String::new(),
            return_token: false,
        };
        gatehouse
            .create_share(&caller, share, &ClientInfo::default())
            .await?;
        Ok(())
    }
}

fn refusal(result: DomainResult<impl std::fmt::Debug>) -> DomainError {
    result.expect_err("the old access token still acts")
}

#[tokio::test]
async fn a_suspended_users_token_is_refused_and_get_current_user_says_so() {
    let world = World::new(1).await;
    let ada = world.sign_up("ada").await;
    world.user_calls(&ada).await.unwrap();

    let user_id = ada.user.user_id.to_string();
    world
        .gatehouse()
        .suspend_user(&world.server, &user_id)
        .await
        .unwrap();
    let refused = refusal(world.user_calls(&ada).await);
    assert!(matches!(refused, DomainError::UserSuspended), "{refused:?}");
    let caller = world.caller_on(0, &ada.access_token.token, false).await;
    assert!(matches!(refusal(caller), DomainError::UserSuspended));

    // Reactivation lets the user sign in again; the sessions suspension ended stay ended.
    world
        .gatehouse()
        .reactivate_user(&world.server, &user_id)
        .await
        .unwrap();
    let refused = refusal(world.user_calls(&ada).await);
    assert!(
        matches!(refused, DomainError::SessionRevoked),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_banned_users_token_is_refused() {
    let world = World::new(1).await;
    let ada = world.sign_up("ada").await;
    world.user_calls(&ada).await.unwrap();
    world
        .gatehouse()
        .ban_user(&world.server, &ada.user.user_id.to_string(), "spam")
        .await
        .unwrap();
    let refused = refusal(world.user_calls(&ada).await);
    assert!(matches!(refused, DomainError::UserBanned), "{refused:?}");
}

#[tokio::test]
async fn a_revoked_sessions_token_is_refused_and_other_sessions_go_on() {
    let world = World::new(1).await;
    let ada = world.sign_up("ada").await;
    let other = world
        .gatehouse()
        .sign_in_with_password(
            &world.server,
            "ada@example.com",
            PASSWORD,
            "",
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    world.user_calls(&ada).await.unwrap();
    world
        .gatehouse()
        .revoke_session(&world.server, &ada.session.session_id.to_string())
        .await
        .unwrap();
    let refused = refusal(world.user_calls(&ada).await);
    assert!(
        matches!(refused, DomainError::SessionRevoked),
        "{refused:?}"
    );
    world.user_calls(&other).await.unwrap();
}

/// The hosted pages name a session by its ids (from their sealed cookie), not by a token;
/// the check is the same.
#[tokio::test]
async fn the_pages_session_check_refuses_ended_sessions_and_blocked_users() {
    let world = World::new(1).await;
    let gatehouse = world.gatehouse();
    let ada = world.sign_up("ada").await;
    let (session_id, user_id) = (ada.session.session_id, ada.user.user_id);
    let user = gatehouse
        .live_session_user("acme", session_id, user_id)
        .await
        .unwrap();
    assert_eq!(user.email, "ada@example.com");
    let bob = world.sign_up("bob").await;
    let refused = gatehouse
        .live_session_user("acme", session_id, bob.user.user_id)
        .await;
    assert!(matches!(refusal(refused), DomainError::InvalidAccessToken));

    gatehouse
        .suspend_user(&world.server, &bob.user.user_id.to_string())
        .await
        .unwrap();
    let refused = gatehouse
        .live_session_user("acme", bob.session.session_id, bob.user.user_id)
        .await;
    assert!(matches!(refusal(refused), DomainError::UserSuspended));

    gatehouse
        .sign_out(&world.server, Some(&ada.refresh_token))
        .await
        .unwrap();
    let refused = gatehouse
        .live_session_user("acme", session_id, user_id)
        .await;
    assert!(matches!(refusal(refused), DomainError::SessionRevoked));
}

#[tokio::test]
async fn signing_out_everywhere_refuses_every_sessions_token() {
    let world = World::new(1).await;
    let ada = world.sign_up("ada").await;
    world.user_calls(&ada).await.unwrap();
    let revoked = world
        .gatehouse()
        .revoke_user_sessions(&world.server, &ada.user.user_id.to_string())
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    let refused = refusal(world.user_calls(&ada).await);
    assert!(
        matches!(refused, DomainError::SessionRevoked),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_signed_out_sessions_token_is_refused_but_signing_out_again_is_harmless() {
    let world = World::new(1).await;
    let ada = world.sign_up("ada").await;
    world.user_calls(&ada).await.unwrap();
    let client = world
        .caller_on(0, &ada.access_token.token, false)
        .await
        .unwrap();
    world
        .gatehouse()
        .sign_out(&client, Some(&ada.refresh_token))
        .await
        .unwrap();
    let refused = refusal(world.user_calls(&ada).await);
    assert!(
        matches!(refused, DomainError::SessionRevoked),
        "{refused:?}"
    );

    // Sign-out (the edge marks it `ending_session`) by the bearer token alone stays an OK
    // no-op, as it was before tokens were checked.
    let ending = world
        .caller_on(0, &ada.access_token.token, true)
        .await
        .unwrap();
    world.gatehouse().sign_out(&ending, None).await.unwrap();
}

#[tokio::test]
async fn a_deleted_users_token_is_refused() {
    let world = World::new(1).await;
    let ada = world.sign_up("ada").await;
    world.user_calls(&ada).await.unwrap();
    world
        .gatehouse()
        .delete_user(&world.server, &ada.user.user_id.to_string())
        .await
        .unwrap();
    let refused = refusal(world.user_calls(&ada).await);
    assert!(
        matches!(refused, DomainError::SessionRevoked),
        "{refused:?}"
    );
}

#[tokio::test]
async fn impersonation_and_anonymous_sessions_are_checked_like_any_other() {
    let world = World::new(1).await;
    let ada = world.sign_up("ada").await;
    let user_id = ada.user.user_id.to_string();
    let acting = world
        .gatehouse()
        .impersonate_user(
            &world.server,
            &user_id,
            "ticket 42",
            600,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    world.user_calls(&acting).await.unwrap();
    world
        .gatehouse()
        .revoke_session(&world.server, &acting.session.session_id.to_string())
        .await
        .unwrap();
    let refused = refusal(world.user_calls(&acting).await);
    assert!(
        matches!(refused, DomainError::SessionRevoked),
        "{refused:?}"
    );

    let anonymous = world
        .gatehouse()
        .sign_in_anonymously(&world.server, &ClientInfo::default())
        .await
        .unwrap();
    let caller = world
        .caller_on(0, &anonymous.access_token.token, false)
        .await
        .unwrap();
    world.gatehouse().get_current_user(&caller).await.unwrap();
    world
        .gatehouse()
        .suspend_user(&world.server, &anonymous.user.user_id.to_string())
        .await
        .unwrap();
    let refused = refusal(
        world
            .caller_on(0, &anonymous.access_token.token, false)
            .await,
    );
    assert!(matches!(refused, DomainError::UserSuspended), "{refused:?}");
}

/// Polls `node`'s verdict on `token` until it is a refusal, for at most five seconds.
async fn refused_on(world: &World, node: usize, token: &str) -> DomainError {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match world.caller_on(node, token, false).await {
            Err(error) => return error,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(_) => panic!("node {node} still accepts the token"),
        }
    }
}

#[tokio::test]
async fn a_change_on_one_node_reaches_the_cache_of_another() {
    let world = World::new(2).await;
    let ada = world.sign_up("ada").await;
    let bob = world.sign_up("bob").await;
    for signed in [&ada, &bob] {
        // Twice: the second answer comes from node 1's cache.
        for _ in 0..2 {
            world
                .caller_on(1, &signed.access_token.token, false)
                .await
                .unwrap();
        }
    }
    world
        .gatehouse()
        .suspend_user(&world.server, &ada.user.user_id.to_string())
        .await
        .unwrap();
    let refused = refused_on(&world, 1, &ada.access_token.token).await;
    assert!(matches!(refused, DomainError::UserSuspended), "{refused:?}");

    world
        .gatehouse()
        .revoke_session(&world.server, &bob.session.session_id.to_string())
        .await
        .unwrap();
    let refused = refused_on(&world, 1, &bob.access_token.token).await;
    assert!(
        matches!(refused, DomainError::SessionRevoked),
        "{refused:?}"
    );
}
