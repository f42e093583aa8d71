//! The refresh grace window: off by default (a spent token revokes at once); when a tenant
//! turns it on, the token the latest rotation spent answers with that rotation's token, from
//! any node, inside the window only; older tokens and late retries still revoke.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gatehouse_storage::Database;

use crate::access::Caller;
use crate::context::{Context, ManualClock, OsEntropy, Timestamp};
use crate::domain::crypto::MasterKey;
use crate::domain::passwords::Argon2Params;
use crate::domain::sessions::ClientInfo;
use crate::domain::tenants::SettingsChanges;
use crate::error::DomainError;
use crate::gatehouse::{Gatehouse, GatehouseOptions};

struct World {
    nodes: [Arc<Gatehouse>; 2],
    clock: Arc<ManualClock>,
    server: [Caller; 2],
}

async fn node(db: Database, clock: Arc<ManualClock>) -> Arc<Gatehouse> {
    let context = Context {
        clock,
        entropy: Arc::new(OsEntropy),
        live_sessions: Arc::default(),
    };
    let options = GatehouseOptions {
        password_hash_threads: 1,
        argon2: Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..GatehouseOptions::default()
    };
    Gatehouse::start(db, context, MasterKey::from_bytes(&[9; 32]), options)
        .await
        .unwrap()
}

/// Tenant `acme` with the grace window `grace` (`None`: the default) on two nodes.
async fn world(grace: Option<u32>) -> World {
    let db = Database::memory();
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    let first = node(db.clone(), clock.clone()).await;
    let operator = Caller::Operator { tenant: None };
    first
        .create_tenant(&operator, "Acme", "acme")
        .await
        .unwrap();
    let changes = SettingsChanges {
        refresh_grace_seconds: grace,
        ..SettingsChanges::default()
    };
    first
        .update_tenant_settings(&operator, "acme", changes)
        .await
        .unwrap();
    let second = node(db, clock.clone()).await;
    let server = |gatehouse: &Arc<Gatehouse>| {
        let gatehouse = gatehouse.clone();
        async move {
            Caller::Server {
                tenant: gatehouse.services().tenant("acme").await.unwrap(),
            }
        }
    };
    let server = [server(&first).await, server(&second).await];
    World {
        nodes: [first, second],
        clock,
        server,
    }
}

impl World {
    async fn sign_up(&self) -> String {
        self.nodes[0]
            .sign_up_with_password(
                &self.server[0],
                "ada@example.com",
                "correct horse battery",
                "",
                &ClientInfo::default(),
            )
            .await
            .unwrap()
            .into_signed_in()
            .unwrap()
            .refresh_token
    }

    async fn refresh(&self, node: usize, token: &str) -> Result<String, DomainError> {
        self.nodes[node]
            .refresh_session(&self.server[node], token)
            .await
            .map(|refreshed| refreshed.refresh_token)
    }
}

#[tokio::test]
async fn without_a_window_a_spent_token_revokes_the_session() {
    let world = world(None).await;
    let first = world.sign_up().await;
    let second = world.refresh(0, &first).await.unwrap();
    assert!(matches!(
        world.refresh(0, &first).await,
        Err(DomainError::RefreshTokenReused)
    ));
    assert!(matches!(
        world.refresh(0, &second).await,
        Err(DomainError::SessionRevoked)
    ));
}

#[tokio::test]
async fn inside_the_window_the_spent_token_answers_the_same_new_token_on_every_node() {
    let world = world(Some(30)).await;
    let first = world.sign_up().await;
    let second = world.refresh(0, &first).await.unwrap();
    world.clock.advance(Duration::from_secs(29));
    // A retry on this node and a parallel tab on the other get the same token.
    assert_eq!(world.refresh(0, &first).await.unwrap(), second);
    assert_eq!(world.refresh(1, &first).await.unwrap(), second);
    // The session goes on from that token.
    let third = world.refresh(1, &second).await.unwrap();
    assert_ne!(third, second);
    // A token two rotations old is a reuse, window or not.
    assert!(matches!(
        world.refresh(0, &first).await,
        Err(DomainError::RefreshTokenReused)
    ));
    assert!(matches!(
        world.refresh(1, &third).await,
        Err(DomainError::SessionRevoked)
    ));
}

#[tokio::test]
async fn after_the_window_the_spent_token_revokes() {
    let world = world(Some(30)).await;
    let first = world.sign_up().await;
    let second = world.refresh(0, &first).await.unwrap();
    world.clock.advance(Duration::from_millis(30_001));
    assert!(matches!(
        world.refresh(1, &first).await,
        Err(DomainError::RefreshTokenReused)
    ));
    assert!(matches!(
        world.refresh(0, &second).await,
        Err(DomainError::SessionRevoked)
    ));
}

#[tokio::test]
async fn the_window_is_bounded() {
    let world = world(None).await;
    let operator = Caller::Operator { tenant: None };
    let refused = world.nodes[0]
        .update_tenant_settings(
            &operator,
            "acme",
            SettingsChanges {
                refresh_grace_seconds: Some(301),
                ..SettingsChanges::default()
            },
        )
        .await;
    assert!(
        matches!(&refused, Err(DomainError::InvalidArgument { field, .. }) if *field == "refresh_grace_seconds"),
        "{refused:?}"
    );
}
