//! Unit tests of providers through the facade: the kinds' defaults, validation, who may
//! manage them, the sealed client secret and the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::ProviderKind;
use super::tests::{World, spec};
use crate::api::oauth::ProviderUpdate;
use crate::error::DomainError;

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn providers_take_their_kind_s_defaults_and_keep_the_secret_sealed() {
    let world = World::new().await;
    let google = world
        .gatehouse
        .get_oauth_provider(&world.server, "google")
        .await
        .unwrap();
    assert_eq!(google.issuer, "https://accounts.google.com");
    assert_eq!(google.display_name, "Google");
    assert_eq!(google.scopes, ["openid", "email", "profile"]);
    assert!(google.allow_sign_up && !google.allow_email_linking);
    assert_eq!(
        google.redirect_uri,
        "http://127.0.0.1:8080/t/acme/oauth/google/callback"
    );
    world
        .add_provider("github", ProviderKind::Github, false)
        .await;
    let github = world
        .gatehouse
        .get_oauth_provider(&world.server, "github")
        .await
        .unwrap();
    assert_eq!(
        (github.issuer.as_str(), github.scopes),
        (
            "https://github.com",
            vec!["read:user".to_owned(), "user:email".to_owned()]
        )
    );
    for (id, issuer) in [
        ("no-issuer", ""),
        ("plain-http", "http://idp.example.com"),
        ("not-a-url", "idp.example.com"),
    ] {
        let mut bad = spec(id, ProviderKind::Oidc, false);
        bad.issuer = issuer.to_owned();
        let error = world
            .gatehouse
            .create_oauth_provider(&world.server, bad)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                DomainError::InvalidArgument {
                    field: "issuer",
                    ..
                }
            ),
            "{issuer}: {error}"
        );
    }
    let mut local = spec("local", ProviderKind::Oidc, false);
    local.issuer = "http://127.0.0.1:9000/realms/x".to_owned();
    world
        .gatehouse
        .create_oauth_provider(&world.server, local)
        .await
        .unwrap();
    for bad_id in ["", "Google", "a_b", &"x".repeat(41)] {
        let error = world
            .gatehouse
            .create_oauth_provider(&world.server, spec(bad_id, ProviderKind::Google, false))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            DomainError::InvalidArgument {
                field: "provider_id",
                ..
            }
        ));
    }
    let duplicate = world
        .gatehouse
        .create_oauth_provider(&world.server, spec("google", ProviderKind::Google, false))
        .await;
    assert!(matches!(
        duplicate,
        Err(DomainError::OAuthProviderAlreadyExists)
    ));
    let client = world.client().await;
    assert!(matches!(
        world.gatehouse.list_oauth_providers(&client).await,
        Err(DomainError::PermissionDenied(_))
    ));
    let updated = world
        .gatehouse
        .update_oauth_provider(
            &world.server,
            "google",
            ProviderUpdate {
                client_secret: Some("rotated-secret-value".to_owned()),
                allow_email_linking: Some(true),
                ..ProviderUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(updated.allow_email_linking);
    let values = world.stored_values().await;
    for secret in [
        "very-secret-google",
        "very-secret-github",
        "rotated-secret-value",
    ] {
        assert!(
            !values.iter().any(|value| contains(value, secret)),
            "{secret}"
        );
    }
    // The node's client gets the secret opened.
    world.start("google", None).await.unwrap();
    let (endpoint, _) = world.fake.authorize.lock().unwrap().clone().unwrap();
    assert_eq!(endpoint.client_secret, "rotated-secret-value");
    world
        .gatehouse
        .delete_oauth_provider(&world.server, "github")
        .await
        .unwrap();
    let listed = world
        .gatehouse
        .list_oauth_providers(&world.server)
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|p| p.provider_id.as_str()).collect();
    assert_eq!(ids, ["google", "local"]);
    let actions = world.audit_actions().await;
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    for action in [
        "oauth_provider.create",
        "oauth_provider.update",
        "oauth_provider.delete",
    ] {
        assert!(actions.contains(&action), "{actions:?}");
    }
}
