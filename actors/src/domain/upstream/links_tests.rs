//! Unit tests of links through the facade: a signed-in user's link flow, an account linked
//! elsewhere, anonymous upgrades, the code's tenant and lifetime, suspended users, unlinking
//! and deleting a user with its links.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use url::Url;

use super::ProviderKind;
use super::tests::{APP, Outcome, World};
use crate::access::{Caller, Credentials};
use crate::api::oauth::ProviderUpdate;
use crate::domain::sessions::ClientInfo;
use crate::error::DomainError;

/// The link ticket and redirect URL of a start URL.
pub(super) fn ticket_of(start_url: &str) -> String {
    let url = Url::parse(start_url).unwrap();
    assert_eq!(url.path(), "/t/acme/oauth/google/start");
    let pairs: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs["redirect_url"], APP);
    pairs["link"].clone()
}

#[tokio::test]
async fn a_signed_in_user_links_but_not_an_account_linked_elsewhere() {
    let world = World::new().await;
    let client = world.client().await;
    let signed = world
        .gatehouse
        .sign_up_with_password(
            &client,
            "grace@example.com",
            "correct horse battery",
            "Grace",
            &ClientInfo::default(),
        )
        .await
        .unwrap()
        .into_signed_in()
        .unwrap();
    let grace = world.user(&signed).await;
    let start = world
        .gatehouse
        .begin_oauth_link(&grace, "google", APP, Vec::new())
        .await
        .unwrap();
    let ticket = ticket_of(&start.start_url);
    world.answer("g-grace", Some("grace@gmail.example"), false);
    assert_eq!(
        world.flow("google", Some(&ticket)).await,
        Outcome::Linked("google".to_owned())
    );
    // The ticket was single use.
    assert!(matches!(
        world.start("google", Some(&ticket)).await,
        Err(DomainError::OAuthStateInvalid)
    ));
    // Grace now signs in through the link.
    let again = world.signed_in("g-grace", "grace@gmail.example").await;
    assert_eq!(again.user.user_id, signed.user.user_id);
    // Someone else's upstream account cannot be linked to Grace.
    let other = world.signed_in("g-other", "other@example.com").await;
    let start = world
        .gatehouse
        .begin_oauth_link(&grace, "google", APP, Vec::new())
        .await
        .unwrap();
    world.answer("g-other", Some("other@example.com"), true);
    assert_eq!(
        world
            .flow("google", Some(&ticket_of(&start.start_url)))
            .await,
        Outcome::Error("OAUTH_ACCOUNT_LINKED_ELSEWHERE".to_owned())
    );
    let other_id = other.user.user_id.to_string();
    let links = world
        .gatehouse
        .list_linked_accounts(&world.server, Some(&other_id))
        .await
        .unwrap();
    assert_eq!(links[0].subject, "g-other");
    // A step-up is needed to begin a link.
    world.clock.advance(Duration::from_secs(3 * 3600));
    let refreshed = world
        .gatehouse
        .refresh_session(&client, &signed.refresh_token)
        .await
        .unwrap();
    let stale = world
        .authenticate(Some(refreshed.access_token.clone()))
        .await;
    assert!(matches!(
        world
            .gatehouse
            .begin_oauth_link(&stale, "google", APP, Vec::new())
            .await,
        Err(DomainError::ReauthenticationRequired)
    ));
}

#[tokio::test]
async fn an_anonymous_user_is_upgraded_in_place_or_signs_in_as_the_linked_user() {
    let world = World::new().await;
    let client = world.client().await;
    let anonymous = world
        .gatehouse
        .sign_in_anonymously(&client, &ClientInfo::default())
        .await
        .unwrap();
    let caller = world.user(&anonymous).await;
    let start = world
        .gatehouse
        .begin_oauth_link(&caller, "google", APP, Vec::new())
        .await
        .unwrap();
    world.answer("g-anon", Some("anon@example.com"), true);
    let Outcome::Code(code) = world
        .flow("google", Some(&ticket_of(&start.start_url)))
        .await
    else {
        panic!("no code");
    };
    let signed = world.exchange(&code).await.unwrap();
    assert_eq!(signed.user.user_id, anonymous.user.user_id);
    assert!(!signed.user.is_anonymous);
    assert_eq!(signed.user.email, "anon@example.com");
    assert!(signed.user.email_verified);
    assert!(!signed.session.anonymous);
    // Another anonymous user whose upstream account is linked: signs in as its user.
    let second = world
        .gatehouse
        .sign_in_anonymously(&client, &ClientInfo::default())
        .await
        .unwrap();
    let caller = world.user(&second).await;
    let start = world
        .gatehouse
        .begin_oauth_link(&caller, "google", APP, Vec::new())
        .await
        .unwrap();
    let Outcome::Code(code) = world
        .flow("google", Some(&ticket_of(&start.start_url)))
        .await
    else {
        panic!("no code");
    };
    let signed = world.exchange(&code).await.unwrap();
    assert_eq!(signed.user.user_id, anonymous.user.user_id);
}

#[tokio::test]
async fn the_code_belongs_to_its_tenant() {
    let world = World::new().await;
    let operator = Caller::Operator { tenant: None };
    let beta = world
        .gatehouse
        .create_tenant(&operator, "Beta", "beta")
        .await
        .unwrap();
    world.answer("g-1", Some("ada@example.com"), true);
    let Outcome::Code(code) = world.flow("google", None).await else {
        panic!("no code");
    };
    let beta_client = world
        .gatehouse
        .authenticate(&Credentials {
            tenant: Some("beta".to_owned()),
            client_key: Some(beta.publishable_client_key.clone()),
            ..Credentials::default()
        })
        .await
        .unwrap();
    assert!(matches!(
        world
            .gatehouse
            .exchange_oauth_code(&beta_client, &code, &ClientInfo::default())
            .await,
        Err(DomainError::OAuthCodeInvalid)
    ));
    for bad in ["", "goc_unknown", "grt_something"] {
        assert!(matches!(
            world.exchange(bad).await,
            Err(DomainError::OAuthCodeInvalid)
        ));
    }
    // The code lives two minutes.
    world.clock.advance(Duration::from_secs(121));
    assert!(matches!(
        world.exchange(&code).await,
        Err(DomainError::OAuthCodeInvalid)
    ));
}

#[tokio::test]
async fn suspended_users_get_no_session_from_a_code() {
    let world = World::new().await;
    let signed = world.signed_in("g-1", "ada@example.com").await;
    let user_id = signed.user.user_id.to_string();
    world
        .gatehouse
        .suspend_user(&world.server, &user_id)
        .await
        .unwrap();
    world.answer("g-1", Some("ada@example.com"), true);
    let Outcome::Code(code) = world.flow("google", None).await else {
        panic!("no code");
    };
    assert!(matches!(
        world.exchange(&code).await,
        Err(DomainError::UserSuspended)
    ));
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let world = World::new().await;
    world
        .add_provider("github", ProviderKind::Github, false)
        .await;
    let signed = world.signed_in("g-1", "ada@example.com").await;
    let ada = world.user(&signed).await;
    assert!(matches!(
        world
            .gatehouse
            .unlink_oauth_account(&ada, None, "google")
            .await,
        Err(DomainError::OAuthLastSignInMethod)
    ));
    assert!(matches!(
        world
            .gatehouse
            .unlink_oauth_account(&ada, None, "github")
            .await,
        Err(DomainError::OAuthAccountNotLinked)
    ));
    let start = world
        .gatehouse
        .begin_oauth_link(&ada, "github", APP, Vec::new())
        .await
        .unwrap();
    let url = Url::parse(&start.start_url).unwrap();
    let pairs: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    world.answer("12345", Some("ada@example.com"), true);
    assert_eq!(
        world.flow("github", Some(&pairs["link"])).await,
        Outcome::Linked("github".to_owned())
    );
    world
        .gatehouse
        .unlink_oauth_account(&ada, None, "google")
        .await
        .unwrap();
    let user_id = signed.user.user_id.to_string();
    assert!(matches!(
        world
            .gatehouse
            .connected_account_token(&world.server, &user_id, "google", Vec::new(), false)
            .await,
        Err(DomainError::OAuthAccountNotLinked)
    ));
    let links = world
        .gatehouse
        .list_linked_accounts(&ada, None)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].provider_id, "github");
    // Google's subject is free again: it signs up a new user.
    world.answer("g-1", Some("fresh@example.com"), true);
    let Outcome::Code(code) = world.flow("google", None).await else {
        panic!("no code");
    };
    let fresh = world.exchange(&code).await.unwrap();
    assert_ne!(fresh.user.user_id, signed.user.user_id);
    // Deleting a user deletes its links: its GitHub account signs up anew.
    world
        .gatehouse
        .delete_user(&world.server, &user_id)
        .await
        .unwrap();
    world.answer("12345", Some("ada@example.com"), true);
    let Outcome::Code(code) = world.flow("github", None).await else {
        panic!("no code");
    };
    let reborn = world.exchange(&code).await.unwrap();
    assert_ne!(reborn.user.user_id, signed.user.user_id);
    let actions = world.audit_actions().await;
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    assert!(actions.contains(&"user.oauth_link") && actions.contains(&"user.oauth_unlink"));
}

#[tokio::test]
async fn an_existing_email_links_only_when_verified_and_allowed() {
    let world = World::new().await;
    let existing = world
        .gatehouse
        .create_user(&world.server, "ada@example.com", None, "Ada", true)
        .await
        .unwrap();
    // Linking by email is off for `google`.
    world.answer("g-1", Some("ada@example.com"), true);
    assert_eq!(
        world.flow("google", None).await,
        Outcome::Error("OAUTH_ACCOUNT_EXISTS".to_owned())
    );
    world
        .gatehouse
        .update_oauth_provider(
            &world.server,
            "google",
            ProviderUpdate {
                allow_email_linking: Some(true),
                ..ProviderUpdate::default()
            },
        )
        .await
        .unwrap();
    world.answer("g-1", Some("ADA@example.com"), false);
    assert_eq!(
        world.flow("google", None).await,
        Outcome::Error("OAUTH_ACCOUNT_EXISTS".to_owned())
    );
    let signed = world.signed_in("g-1", "ada@example.com").await;
    assert_eq!(signed.user.user_id, existing.user_id);

    // An address registered here but never verified is not proof of ownership: the real
    // owner coming from the provider must not land in the account of whoever registered it.
    world
        .gatehouse
        .create_user(
            &world.server,
            "eve-registered@example.com",
            None,
            "Pre",
            false,
        )
        .await
        .unwrap();
    world.answer("g-2", Some("eve-registered@example.com"), true);
    assert_eq!(
        world.flow("google", None).await,
        Outcome::Error("OAUTH_ACCOUNT_EXISTS".to_owned())
    );
}

#[tokio::test]
async fn a_provider_pointed_at_another_issuer_keeps_none_of_its_links() {
    let world = World::new().await;
    let first = world.signed_in("12345", "ada@example.com").await;
    // The same subject at the same issuer is the same user.
    let again = world.signed_in("12345", "ada@example.com").await;
    assert_eq!(again.user.user_id, first.user.user_id);

    // The tenant points the provider id at another identity provider, where subject
    // `12345` is someone else entirely.
    world
        .gatehouse
        .update_oauth_provider(
            &world.server,
            "google",
            ProviderUpdate {
                issuer: Some("https://other-idp.example.com".to_owned()),
                ..ProviderUpdate::default()
            },
        )
        .await
        .unwrap();
    let stranger = world.signed_in("12345", "mallory@example.com").await;
    assert_ne!(stranger.user.user_id, first.user.user_id);

    // Deleted and created again at that other issuer: still not Ada.
    world
        .gatehouse
        .delete_oauth_provider(&world.server, "google")
        .await
        .unwrap();
    let mut spec = super::tests::spec("google", ProviderKind::Google, false);
    spec.issuer = "https://third-idp.example.com".to_owned();
    world
        .gatehouse
        .create_oauth_provider(&world.server, spec)
        .await
        .unwrap();
    let other = world.signed_in("12345", "eve@example.com").await;
    assert_ne!(other.user.user_id, first.user.user_id);
    assert_ne!(other.user.user_id, stranger.user.user_id);
}
