//! Unit tests of OpenID clients over the in-memory store: ids and secrets, the secret stored
//! only hashed and checked in constant time, rotation, updates and deletion with their
//! audit entries, and tenant isolation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;
use crate::domain::audit::{self, AuditOrigin};
use crate::domain::test_world::TestWorld as World;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn new_client(kind: ClientKind) -> NewOidcClient {
    NewOidcClient {
        name: "Billing portal".to_owned(),
        kind,
        redirect_uris: strings(&["https://billing.example.com/callback"]),
        post_logout_redirect_uris: Vec::new(),
        allowed_scopes: Vec::new(),
        first_party: false,
    }
}

impl World {
    async fn create_client_in(
        &self,
        tenant: &str,
        new: NewOidcClient,
    ) -> DomainResult<IssuedClient> {
        let (context, new) = (&self.context, &new);
        self.db
            .run(|tx| async move {
                create(&tx, context, tenant, new.clone(), &AuditOrigin::system()).await
            })
            .await
    }

    async fn confidential(&self) -> IssuedClient {
        self.create_client_in("acme", new_client(ClientKind::Confidential))
            .await
            .unwrap()
    }

    async fn authenticate_in(
        &self,
        tenant: &str,
        client_id: &str,
        secret: &str,
    ) -> DomainResult<OidcClientRecord> {
        self.db
            .run(|tx| async move { authenticate_client(&tx, tenant, client_id, secret).await })
            .await
    }

    async fn read_in(&self, tenant: &str, client_id: &str) -> DomainResult<OidcClientRecord> {
        self.db
            .run(|tx| async move { read(&tx, tenant, client_id).await })
            .await
    }

    async fn rotate(&self, client_id: &str) -> DomainResult<IssuedClient> {
        let context = &self.context;
        self.db
            .run(|tx| async move {
                rotate_secret(&tx, context, "acme", client_id, &AuditOrigin::system()).await
            })
            .await
    }

    async fn change(
        &self,
        client_id: &str,
        changes: OidcClientChanges,
    ) -> DomainResult<OidcClientRecord> {
        let (context, changes) = (&self.context, &changes);
        self.db
            .run(|tx| async move {
                update(
                    &tx,
                    context,
                    "acme",
                    client_id,
                    changes.clone(),
                    &AuditOrigin::system(),
                )
                .await
            })
            .await
    }

    async fn actions(&self) -> Vec<(String, String)> {
        self.db
            .run(|tx| async move { audit::read_entries(&tx, "acme", 0, 100).await })
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.event.action, entry.event.target))
            .collect()
    }
}

#[tokio::test]
async fn a_confidential_client_gets_a_secret_shown_once_and_stored_hashed() {
    let world = World::new().await;
    let issued = world.confidential().await;
    let record = &issued.record;
    assert!(is_client_id(&record.client_id), "{}", record.client_id);
    assert_eq!(record.client_id.len(), 4 + 22);
    let secret = issued.secret.clone().unwrap();
    assert!(secret.starts_with("gcs_"), "{secret}");
    assert_eq!(secret.len(), 4 + 43);
    assert_eq!(record.secret_hash, sha256(secret.as_bytes()).to_vec());
    assert_eq!(
        record.allowed_scopes,
        strings(&["openid", "profile", "email"])
    );
    assert_eq!(record.created_by, "system");
    assert_eq!(record.created_at, record.updated_at);
    assert!(!format!("{issued:?}").contains(&secret[4..]));

    // Neither the stored record nor the audit entry holds the secret.
    let client_id = record.client_id.clone();
    let stored = world
        .db
        .run(|tx| {
            let client_id = client_id.clone();
            async move {
                Ok::<_, DomainError>(tx.get(&keyspace::oidc_client("acme", &client_id)).await?)
            }
        })
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored
            .windows(secret.len())
            .any(|window| window == secret.as_bytes())
    );
    let entries = world
        .db
        .run(|tx| async move { audit::read_entries(&tx, "acme", 0, 100).await })
        .await
        .unwrap();
    let created = entries
        .iter()
        .find(|entry| entry.event.action == "oidc_client.create")
        .expect("oidc_client.create is audited");
    assert_eq!(created.event.target, format!("oidc_client:{client_id}"));
    assert!(!created.event.details.to_string().contains(&secret[4..]));

    // Two clients never share an id or a secret.
    let other = world.confidential().await;
    assert_ne!(other.record.client_id, record.client_id);
    assert_ne!(other.secret, issued.secret);
}

#[tokio::test]
async fn the_secret_is_verified_and_unknown_clients_and_wrong_secrets_fail_alike() {
    let world = World::new().await;
    let issued = world.confidential().await;
    let (client_id, secret) = (&issued.record.client_id, issued.secret.as_deref().unwrap());
    let record = world
        .authenticate_in("acme", client_id, secret)
        .await
        .unwrap();
    assert_eq!(record.client_id, *client_id);

    let mut wrong = secret.to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    let unknown = format!("gci_{}", base64url(&[9; 16]));
    let public = world
        .create_client_in("acme", new_client(ClientKind::Public))
        .await
        .unwrap();
    assert!(public.secret.is_none());
    assert!(public.record.secret_hash.is_empty());
    for (id, presented) in [
        (client_id.as_str(), wrong.as_str()),
        (client_id, ""),
        (client_id, &secret[..secret.len() - 1]),
        (&unknown, secret),
        ("gci_short", secret),
        ("", secret),
        (&public.record.client_id, ""),
        (&public.record.client_id, secret),
    ] {
        assert!(
            matches!(
                world.authenticate_in("acme", id, presented).await,
                Err(DomainError::OidcClientInvalid)
            ),
            "{id} / {presented}"
        );
    }
}

#[tokio::test]
async fn rotation_stops_the_old_secret_at_once_and_public_clients_have_none() {
    let world = World::new().await;
    let issued = world.confidential().await;
    let client_id = issued.record.client_id.clone();
    let old = issued.secret.unwrap();
    world.clock.advance(Duration::from_secs(5));
    let rotated = world.rotate(&client_id).await.unwrap();
    let new = rotated.secret.unwrap();
    assert_ne!(new, old);
    assert!(rotated.record.updated_at > rotated.record.created_at);
    assert!(matches!(
        world.authenticate_in("acme", &client_id, &old).await,
        Err(DomainError::OidcClientInvalid)
    ));
    world
        .authenticate_in("acme", &client_id, &new)
        .await
        .unwrap();

    let public = world
        .create_client_in("acme", new_client(ClientKind::Public))
        .await
        .unwrap();
    assert!(matches!(
        world.rotate(&public.record.client_id).await,
        Err(DomainError::OidcClientPublic)
    ));
    assert!(matches!(
        world.rotate(&format!("gci_{}", base64url(&[3; 16]))).await,
        Err(DomainError::OidcClientNotFound)
    ));
    let actions = world.actions().await;
    let rotations = actions
        .iter()
        .filter(|(action, _)| action == "oidc_client.rotate_secret")
        .count();
    assert_eq!(rotations, 1, "{actions:?}");
}

#[tokio::test]
async fn create_and_update_check_every_field_and_name_it() {
    let world = World::new().await;
    let field_of = |result: DomainResult<_>| match result {
        Err(DomainError::InvalidArgument { field, .. }) => field,
        other => panic!("{:?}", other.map(|_: IssuedClient| ())),
    };
    let cases: [(NewOidcClient, &str); 5] = [
        (
            NewOidcClient {
                name: " ".to_owned(),
                ..new_client(ClientKind::Public)
            },
            "name",
        ),
        (
            NewOidcClient {
                name: "x".repeat(201),
                ..new_client(ClientKind::Public)
            },
            "name",
        ),
        (
            NewOidcClient {
                redirect_uris: strings(&["https://*.example.com/cb"]),
                ..new_client(ClientKind::Public)
            },
            "redirect_uris",
        ),
        (
            NewOidcClient {
                post_logout_redirect_uris: strings(&["http://example.com/bye"]),
                ..new_client(ClientKind::Public)
            },
            "post_logout_redirect_uris",
        ),
        (
            NewOidcClient {
                allowed_scopes: strings(&["two words"]),
                ..new_client(ClientKind::Public)
            },
            "allowed_scopes",
        ),
    ];
    for (new, field) in cases {
        assert_eq!(field_of(world.create_client_in("acme", new).await), field);
    }

    let issued = world.confidential().await;
    let client_id = issued.record.client_id.clone();
    world.clock.advance(Duration::from_secs(1));
    let changed = world
        .change(
            &client_id,
            OidcClientChanges {
                name: Some("Billing".to_owned()),
                redirect_uris: Some(strings(&[
                    "https://billing.example.com/cb",
                    "http://127.0.0.1:8080/cb",
                ])),
                post_logout_redirect_uris: Some(strings(&["https://billing.example.com/bye"])),
                allowed_scopes: Some(strings(&["email"])),
                first_party: Some(true),
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.name, "Billing");
    assert_eq!(changed.redirect_uris.len(), 2);
    assert_eq!(changed.allowed_scopes, strings(&["openid", "email"]));
    assert!(changed.first_party);
    assert!(changed.updated_at > changed.created_at);
    assert_eq!(
        changed.secret_hash, issued.record.secret_hash,
        "the secret stays"
    );

    // Fields not given keep their value; a refused change changes nothing.
    let renamed = world
        .change(
            &client_id,
            OidcClientChanges {
                name: Some("Billing 2".to_owned()),
                ..OidcClientChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.redirect_uris, changed.redirect_uris);
    assert!(renamed.first_party);
    let refused = world
        .change(
            &client_id,
            OidcClientChanges {
                name: Some("Billing 3".to_owned()),
                redirect_uris: Some(Vec::new()),
                ..OidcClientChanges::default()
            },
        )
        .await;
    assert!(matches!(
        refused,
        Err(DomainError::InvalidArgument {
            field: "redirect_uris",
            ..
        })
    ));
    assert_eq!(
        world.read_in("acme", &client_id).await.unwrap().name,
        "Billing 2"
    );
    // An empty post-logout list clears it.
    let cleared = world
        .change(
            &client_id,
            OidcClientChanges {
                post_logout_redirect_uris: Some(Vec::new()),
                ..OidcClientChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(cleared.post_logout_redirect_uris.is_empty());
    let updates = world
        .actions()
        .await
        .into_iter()
        .filter(|(action, _)| action == "oidc_client.update")
        .count();
    assert_eq!(updates, 3);
}

#[tokio::test]
async fn clients_are_listed_oldest_first_and_deleted_for_good() {
    let world = World::new().await;
    let first = world.confidential().await;
    world.clock.advance(Duration::from_secs(1));
    let second = world
        .create_client_in("acme", new_client(ClientKind::Public))
        .await
        .unwrap();
    let listed = world
        .db
        .run(|tx| async move { list(&tx, "acme").await })
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.client_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            first.record.client_id.as_str(),
            second.record.client_id.as_str()
        ]
    );

    let (context, client_id) = (&world.context, first.record.client_id.as_str());
    let delete_it = || {
        world.db.run(|tx| async move {
            delete(&tx, context, "acme", client_id, &AuditOrigin::system()).await
        })
    };
    delete_it().await.unwrap();
    assert!(matches!(
        delete_it().await,
        Err(DomainError::OidcClientNotFound)
    ));
    assert!(matches!(
        world.read_in("acme", client_id).await,
        Err(DomainError::OidcClientNotFound)
    ));
    assert!(matches!(
        world
            .authenticate_in("acme", client_id, first.secret.as_deref().unwrap())
            .await,
        Err(DomainError::OidcClientInvalid)
    ));
    let actions = world.actions().await;
    assert!(
        actions.contains(&(
            "oidc_client.delete".to_owned(),
            format!("oidc_client:{client_id}")
        )),
        "{actions:?}"
    );
}

#[tokio::test]
async fn another_tenants_client_is_not_found_and_its_secret_does_not_authenticate() {
    let world = World::new().await;
    let issued = world.confidential().await;
    let (client_id, secret) = (&issued.record.client_id, issued.secret.as_deref().unwrap());
    assert!(matches!(
        world.read_in("globex", client_id).await,
        Err(DomainError::OidcClientNotFound)
    ));
    assert!(matches!(
        world.authenticate_in("globex", client_id, secret).await,
        Err(DomainError::OidcClientInvalid)
    ));
    let theirs = world
        .create_client_in("globex", new_client(ClientKind::Public))
        .await
        .unwrap();
    let acme = world
        .db
        .run(|tx| async move { list(&tx, "acme").await })
        .await
        .unwrap();
    assert_eq!(acme.len(), 1);
    assert!(matches!(
        world.read_in("acme", &theirs.record.client_id).await,
        Err(DomainError::OidcClientNotFound)
    ));
    world
        .authenticate_in("acme", client_id, secret)
        .await
        .unwrap();
}
