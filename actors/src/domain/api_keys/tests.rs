//! Unit tests of API keys over the in-memory store with a manual clock: the shape and hashing
//! of a key, scope validation against the graph, a user key bounded by its user, expiry,
//! revocation, the last-used resolution, audit and events, and deletion with the owner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gatehouse_storage::{RangeOptions, codec};

use super::*;
use crate::domain::audit::{self, AuditOrigin};
use crate::domain::outbox::OutboxEvent;
use crate::domain::permissions::{PermissionDefinition, PermissionScope};
use crate::domain::test_world::TestWorld as World;
use crate::domain::users::UserRecord;

fn graph() -> PermissionGraph {
    let definition = |id: &str, contains: &[&str]| PermissionDefinition {
        permission_id: id.to_owned(),
        description: String::new(),
        contains: contains.iter().map(|c| (*c).to_owned()).collect(),
        scope: PermissionScope::Tenant,
    };
    PermissionGraph::new(vec![
        definition("invoices:write", &["invoices:read"]),
        definition("invoices:read", &[]),
        definition("reports:read", &[]),
    ])
    .unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

impl World {
    async fn create_key(&self, new_key: NewKey) -> DomainResult<CreatedKey> {
        let (context, graph, new_key) = (&self.context, &graph(), &new_key);
        self.db
            .run(|tx| async move {
                create(
                    &tx,
                    context,
                    graph,
                    "acme",
                    new_key.clone(),
                    &AuditOrigin::system(),
                )
                .await
            })
            .await
    }

    async fn tenant_key(&self, scopes: &[&str], expires_at: Option<Timestamp>) -> CreatedKey {
        self.create_key(NewKey {
            owner: KeyOwner::Tenant,
            name: "billing backend".to_owned(),
            scopes: strings(scopes),
            expires_at,
        })
        .await
        .unwrap()
    }

    async fn exchange(&self, presented: &str) -> DomainResult<(KeyRecord, Vec<String>)> {
        let (context, graph) = (&self.context, &graph());
        self.db
            .run(|tx| async move {
                let record = authenticate(&tx, context, "acme", presented).await?;
                let perms = token_permissions(&tx, graph, "acme", &record).await?;
                Ok((record, perms))
            })
            .await
    }

    async fn revoke_key(&self, key_id: Uuid) -> KeyRecord {
        let context = &self.context;
        self.db
            .run(|tx| async move {
                revoke(&tx, context, "acme", key_id, &AuditOrigin::system()).await
            })
            .await
            .unwrap()
    }

    async fn grant(&self, user: &UserRecord, permission: &str) {
        let user_id = user.user_id;
        self.db
            .run(|tx| async move {
                permissions::grant(&tx, "acme", None, user_id, permission).await
            })
            .await
            .unwrap();
    }

    async fn view_of(&self, key_id: Uuid) -> KeyView {
        self.db
            .run(|tx| async move { view(&tx, "acme", key_id).await })
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_exchanged_with_its_scopes() {
    let world = World::new().await;
    let created = world
        .tenant_key(&["reports:read", "invoices:read", "reports:read"], None)
        .await;
    let secret = &created.secret;
    assert!(secret.starts_with("gak_"), "{secret}");
    assert_eq!(secret.len(), 4 + 32 + 1 + 43);
    assert_eq!(created.record.prefix, secret[..SHOWN_PREFIX_LEN]);
    assert_eq!(
        created.record.scopes,
        strings(&["invoices:read", "reports:read"]),
        "sorted, without duplicates"
    );
    // Neither the stored record nor its Debug output holds the secret.
    let key_id = created.record.key_id;
    let stored =
        world
            .db
            .run(|tx| async move {
                Ok::<_, DomainError>(tx.get(&keyspace::api_key("acme", key_id)).await?)
            })
            .await
            .unwrap()
            .unwrap();
    let random = &secret[4 + 32 + 1..];
    assert!(
        !stored
            .windows(random.len())
            .any(|window| window == random.as_bytes()),
        "the secret is not stored"
    );
    assert_eq!(
        created.record.secret_hash,
        sha256(random.as_bytes()).to_vec()
    );
    assert!(!format!("{created:?}").contains(random));

    let (record, perms) = world.exchange(secret).await.unwrap();
    assert_eq!(record.key_id, key_id);
    assert_eq!(perms, strings(&["invoices:read", "reports:read"]));

    // One character off, another id, a foreign shape: the same error.
    let mut wrong = secret.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    let other_id = format!(
        "gak_{}_{}",
        Uuid::from_bytes([9; 16]).simple(),
        &secret[4 + 32 + 1..]
    );
    for presented in [wrong.as_str(), &other_id, "gak_short", "", "sk_live_1234"] {
        assert!(
            matches!(
                world.exchange(presented).await,
                Err(DomainError::ApiKeyInvalid)
            ),
            "{presented}"
        );
    }
}

#[tokio::test]
async fn scopes_must_be_in_the_graph_names_are_checked_and_expiry_is_in_the_future() {
    let world = World::new().await;
    let new_key = |scopes: &[&str]| NewKey {
        owner: KeyOwner::Tenant,
        name: "ci".to_owned(),
        scopes: strings(scopes),
        expires_at: None,
    };
    for scopes in [&["invoices:delete"][..], &[], &["invoices:read", "nope"]] {
        let refused = world.create_key(new_key(scopes)).await.unwrap_err();
        assert!(
            matches!(
                refused,
                DomainError::InvalidArgument {
                    field: "scopes",
                    ..
                }
            ),
            "{scopes:?}: {refused:?}"
        );
    }
    // System permissions are part of the graph.
    world.create_key(new_key(&["$read_members"])).await.unwrap();
    let unnamed = NewKey {
        name: " ".to_owned(),
        ..new_key(&["invoices:read"])
    };
    assert!(matches!(
        world.create_key(unnamed).await,
        Err(DomainError::InvalidArgument { field: "name", .. })
    ));
    let past = NewKey {
        expires_at: Some(world.context.now()),
        ..new_key(&["invoices:read"])
    };
    assert!(matches!(
        world.create_key(past).await,
        Err(DomainError::InvalidArgument {
            field: "expires_at",
            ..
        })
    ));
}

#[tokio::test]
async fn an_expired_key_and_a_revoked_key_are_refused_like_an_unknown_one() {
    let world = World::new().await;
    let expiring = world
        .tenant_key(
            &["invoices:read"],
            Some(world.context.now().plus(Duration::from_secs(60))),
        )
        .await;
    let revoked = world.tenant_key(&["invoices:read"], None).await;
    world.exchange(&expiring.secret).await.unwrap();
    world.exchange(&revoked.secret).await.unwrap();

    world.clock.advance(Duration::from_secs(60));
    assert!(matches!(
        world.exchange(&expiring.secret).await,
        Err(DomainError::ApiKeyInvalid)
    ));
    let record = world.revoke_key(revoked.record.key_id).await;
    assert!(record.revoked_at.is_some());
    assert!(matches!(
        world.exchange(&revoked.secret).await,
        Err(DomainError::ApiKeyInvalid)
    ));
    // A second revocation changes nothing.
    let again = world.revoke_key(revoked.record.key_id).await;
    assert_eq!(again.revoked_at, record.revoked_at);
}

#[tokio::test]
async fn a_user_key_carries_only_what_the_user_holds() {
    let world = World::new().await;
    let user = world.add_user("ada@example.com", true).await;
    world.grant(&user, "invoices:write").await;
    let user_key = |scopes: &[&str]| NewKey {
        owner: KeyOwner::User(user.user_id),
        name: "laptop script".to_owned(),
        scopes: strings(scopes),
        expires_at: None,
    };
    assert!(matches!(
        world.create_key(user_key(&["reports:read"])).await,
        Err(DomainError::PermissionDenied(_))
    ));
    // Contained permissions count as held.
    let created = world
        .create_key(user_key(&["invoices:read", "invoices:write"]))
        .await
        .unwrap();
    let (_, perms) = world.exchange(&created.secret).await.unwrap();
    assert_eq!(perms, strings(&["invoices:read", "invoices:write"]));

    // The grant goes: the key keeps nothing the user lost.
    let user_id = user.user_id;
    world
        .db
        .run(|tx| async move {
            permissions::revoke(&tx, "acme", None, user_id, "invoices:write").await
        })
        .await
        .unwrap();
    let (_, perms) = world.exchange(&created.secret).await.unwrap();
    assert!(perms.is_empty(), "{perms:?}");

    // Another tenant's user is unknown here.
    let stranger = NewKey {
        owner: KeyOwner::User(Uuid::from_bytes([1; 16])),
        ..user_key(&["invoices:read"])
    };
    assert!(matches!(
        world.create_key(stranger).await,
        Err(DomainError::UserNotFound)
    ));
}

#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    let world = World::new().await;
    let created = world.tenant_key(&["invoices:read"], None).await;
    let key_id = created.record.key_id;
    assert_eq!(world.view_of(key_id).await.last_used_at, None);
    let first = world.context.now();
    world.exchange(&created.secret).await.unwrap();
    assert_eq!(world.view_of(key_id).await.last_used_at, Some(first));
    world.clock.advance(Duration::from_secs(30));
    world.exchange(&created.secret).await.unwrap();
    assert_eq!(
        world.view_of(key_id).await.last_used_at,
        Some(first),
        "within the minute nothing is written"
    );
    world.clock.advance(Duration::from_secs(30));
    world.exchange(&created.secret).await.unwrap();
    assert_eq!(
        world.view_of(key_id).await.last_used_at,
        Some(world.context.now())
    );
}

#[tokio::test]
async fn create_and_revoke_are_audited_and_emitted_without_the_secret() {
    let world = World::new().await;
    let created = world.tenant_key(&["invoices:read"], None).await;
    world.revoke_key(created.record.key_id).await;
    let (events, entries) = world
        .db
        .run(|tx| async move {
            let (begin, end) = keyspace::outbox_subspace("acme").range();
            let events: Vec<OutboxEvent> = tx
                .get_range(&begin, &end, RangeOptions::default())
                .await?
                .into_iter()
                .map(|(_, value)| codec::decode(&value).unwrap())
                .collect();
            let entries = audit::read_entries(&tx, "acme", 0, 100).await?;
            Ok::<_, DomainError>((events, entries))
        })
        .await
        .unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert!(types.contains(&"api_key.created"), "{types:?}");
    assert!(types.contains(&"api_key.revoked"), "{types:?}");
    let actions: Vec<&str> = entries
        .iter()
        .map(|entry| entry.event.action.as_str())
        .collect();
    assert!(actions.contains(&"api_key.create"), "{actions:?}");
    assert!(actions.contains(&"api_key.revoke"), "{actions:?}");
    let target = format!("api_key:{}", created.record.key_id);
    assert!(entries.iter().any(|entry| entry.event.target == target));
    let random = &created.secret[4 + 32 + 1..];
    for event in &events {
        assert!(!event.data.to_string().contains(random));
    }
    for entry in &entries {
        assert!(!entry.event.details.to_string().contains(random));
    }
}

#[tokio::test]
async fn keys_are_listed_by_owner_and_deleted_with_it() {
    let world = World::new().await;
    let user = world.add_user("ada@example.com", true).await;
    world.grant(&user, "invoices:read").await;
    let tenant_key = world.tenant_key(&["invoices:read"], None).await;
    let user_key = world
        .create_key(NewKey {
            owner: KeyOwner::User(user.user_id),
            name: "mine".to_owned(),
            scopes: strings(&["invoices:read"]),
            expires_at: None,
        })
        .await
        .unwrap();
    let owner = KeyOwner::User(user.user_id);
    let (all, mine) = world
        .db
        .run(|tx| async move {
            Ok::<_, DomainError>((
                list(&tx, "acme", None).await?,
                list(&tx, "acme", Some(owner)).await?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].record.key_id, user_key.record.key_id);

    world
        .db
        .run(|tx| async move { delete_owner_keys(&tx, "acme", owner).await })
        .await
        .unwrap();
    let (all, mine) = world
        .db
        .run(|tx| async move {
            Ok::<_, DomainError>((
                list(&tx, "acme", None).await?,
                list(&tx, "acme", Some(owner)).await?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|view| view.record.key_id)
            .collect::<Vec<_>>(),
        vec![tenant_key.record.key_id]
    );
    assert!(mine.is_empty());
    assert!(matches!(
        world.exchange(&user_key.secret).await,
        Err(DomainError::ApiKeyInvalid)
    ));
}

#[tokio::test]
async fn a_suspended_users_key_is_refused_until_the_user_is_reactivated() {
    use crate::domain::users::UserState;

    let world = World::new().await;
    let user = world.add_user("ada@example.com", true).await;
    world.grant(&user, "reports:read").await;
    let created = world
        .create_key(NewKey {
            owner: KeyOwner::User(user.user_id),
            name: "mine".to_owned(),
            scopes: strings(&["reports:read"]),
            expires_at: None,
        })
        .await
        .unwrap();
    let (user_id, context, db) = (user.user_id, &world.context, &world.db);
    let set_state = |state: UserState| async move {
        db.run(|tx| async move {
            users::set_user_state(&tx, context, "acme", user_id, state, None).await
        })
        .await
        .unwrap();
    };
    set_state(UserState::Suspended).await;
    assert!(matches!(
        world.exchange(&created.secret).await,
        Err(DomainError::ApiKeyInvalid)
    ));
    set_state(UserState::Active).await;
    let (_, perms) = world.exchange(&created.secret).await.unwrap();
    assert_eq!(perms, strings(&["reports:read"]));
}
