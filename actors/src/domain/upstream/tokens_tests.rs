//! Unit tests of connected accounts: a stored token handed out while fresh, refreshed when
//! forced or about to expire (one refresh at a time), a refused refresh token dropped, a
//! provider outage keeping everything, scopes checked, and tokens sealed at rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::tests::{START, World};
use super::{RefreshFailure, TokenSet};
use crate::api::oauth::ConnectedToken;
use crate::context::Timestamp;
use crate::error::{DomainError, DomainResult};

impl World {
    async fn token(
        &self,
        user_id: &str,
        scopes: &[&str],
        force: bool,
    ) -> DomainResult<ConnectedToken> {
        let scopes = scopes.iter().map(|scope| (*scope).to_owned()).collect();
        self.gatehouse
            .connected_account_token(&self.server, user_id, "google", scopes, force)
            .await
    }

    fn refreshes(&self) -> usize {
        self.fake.refreshes.load(Ordering::SeqCst)
    }

    fn next_refresh(&self, answer: Result<TokenSet, RefreshFailure>) {
        self.fake.refresh_answers.lock().unwrap().push_back(answer);
    }
}

fn tokens(access: &str, refresh: Option<&str>, expires_in: Duration) -> TokenSet {
    TokenSet {
        access_token: access.to_owned(),
        refresh_token: refresh.map(str::to_owned),
        expires_at: Some(Timestamp(START).plus(expires_in)),
        scopes: vec!["openid".to_owned(), "email".to_owned()],
    }
}

#[tokio::test]
async fn a_fresh_token_is_handed_out_and_a_forced_one_refreshed() {
    let world = World::new().await;
    let signed = world.signed_in("g-1", "ada@example.com").await;
    let user_id = signed.user.user_id.to_string();
    let token = world.token(&user_id, &["email"], false).await.unwrap();
    assert_eq!(token.access_token, "access-g-1");
    assert_eq!(world.refreshes(), 0);
    world.next_refresh(Ok(tokens("access-2", None, Duration::from_secs(7200))));
    let forced = world.token(&user_id, &[], true).await.unwrap();
    assert_eq!(forced.access_token, "access-2");
    assert_eq!(forced.scopes, ["openid", "email"]);
    // No new refresh token came back: the old one is kept and used again.
    world.next_refresh(Ok(tokens(
        "access-3",
        Some("refresh-3"),
        Duration::from_secs(7200),
    )));
    assert_eq!(
        world.token(&user_id, &[], true).await.unwrap().access_token,
        "access-3"
    );
    world.next_refresh(Ok(tokens("access-4", None, Duration::from_secs(7200))));
    world.token(&user_id, &[], true).await.unwrap();
    assert_eq!(
        *world.fake.refreshed_with.lock().unwrap(),
        ["refresh-g-1", "refresh-g-1", "refresh-3"]
    );
    // A token with less than a minute left is refreshed without being asked.
    world.clock.advance(Duration::from_secs(7200 - 30));
    world.next_refresh(Ok(tokens("access-5", None, Duration::from_secs(3 * 3600))));
    assert_eq!(
        world
            .token(&user_id, &[], false)
            .await
            .unwrap()
            .access_token,
        "access-5"
    );
    assert_eq!(world.refreshes(), 4);
    assert_eq!(
        world
            .token(&user_id, &[], false)
            .await
            .unwrap()
            .access_token,
        "access-5"
    );
    assert_eq!(world.refreshes(), 4);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let world = World::new().await;
    let signed = world.signed_in("g-1", "ada@example.com").await;
    let user_id = signed.user.user_id.to_string();
    world.clock.advance(Duration::from_secs(3600));
    let (first, second, third) = tokio::join!(
        world.token(&user_id, &[], false),
        world.token(&user_id, &[], false),
        world.token(&user_id, &[], false)
    );
    let tokens: Vec<String> = [first, second, third]
        .into_iter()
        .map(|result| result.unwrap().access_token)
        .collect();
    assert_eq!(world.refreshes(), 1);
    assert!(
        tokens.iter().all(|token| token == "refreshed-access-1"),
        "{tokens:?}"
    );
}

#[tokio::test]
async fn a_refused_refresh_token_is_dropped_until_the_user_links_again() {
    let world = World::new().await;
    let signed = world.signed_in("g-1", "ada@example.com").await;
    let user_id = signed.user.user_id.to_string();
    world.next_refresh(Err(RefreshFailure::Revoked));
    assert!(matches!(
        world.token(&user_id, &[], true).await,
        Err(DomainError::OAuthRefreshRevoked)
    ));
    // Dropped: later calls are refused without asking the provider.
    assert!(matches!(
        world.token(&user_id, &[], false).await,
        Err(DomainError::OAuthRefreshRevoked)
    ));
    assert_eq!(world.refreshes(), 1);
    let links = world
        .gatehouse
        .list_linked_accounts(&world.server, Some(&user_id))
        .await
        .unwrap();
    assert!(!links[0].has_refresh_token);
    let values = world.stored_values().await;
    let stored = |needle: &str| {
        values
            .iter()
            .any(|value| value.windows(needle.len()).any(|w| w == needle.as_bytes()))
    };
    assert!(!stored("access-g-1") && !stored("refresh-g-1"));
    // Signing in again stores new tokens.
    world.signed_in("g-1", "ada@example.com").await;
    assert_eq!(
        world
            .token(&user_id, &[], false)
            .await
            .unwrap()
            .access_token,
        "access-g-1"
    );
}

#[tokio::test]
async fn a_provider_outage_keeps_the_tokens() {
    let world = World::new().await;
    let signed = world.signed_in("g-1", "ada@example.com").await;
    let user_id = signed.user.user_id.to_string();
    world.clock.advance(Duration::from_secs(3600));
    world.next_refresh(Err(RefreshFailure::Unavailable("timeout".to_owned())));
    assert!(matches!(
        world.token(&user_id, &[], false).await,
        Err(DomainError::OAuthUpstreamUnavailable(_))
    ));
    world.next_refresh(Err(RefreshFailure::Rejected("invalid_client".to_owned())));
    assert!(matches!(
        world.token(&user_id, &[], false).await,
        Err(DomainError::OAuthUpstreamRejected(_))
    ));
    let token = world.token(&user_id, &[], false).await.unwrap();
    assert_eq!(token.access_token, "refreshed-access-3");
    assert_eq!(
        *world.fake.refreshed_with.lock().unwrap(),
        ["refresh-g-1", "refresh-g-1", "refresh-g-1"]
    );
}

#[tokio::test]
async fn scopes_are_checked_and_only_servers_get_tokens() {
    let world = World::new().await;
    let signed = world.signed_in("g-1", "ada@example.com").await;
    let user_id = signed.user.user_id.to_string();
    let error = world
        .token(&user_id, &["email", "calendar.readonly"], false)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DomainError::OAuthScopesMissing(missing) if missing == "calendar.readonly"),
        "{error}"
    );
    let ada = world.user(&signed).await;
    assert!(matches!(
        world
            .gatehouse
            .connected_account_token(&ada, &user_id, "google", Vec::new(), false)
            .await,
        Err(DomainError::PermissionDenied(_))
    ));
    assert!(matches!(
        world
            .gatehouse
            .connected_account_token(&world.server, &user_id, "github", Vec::new(), false)
            .await,
        Err(DomainError::OAuthAccountNotLinked)
    ));
    // At rest the tokens are sealed.
    let values = world.stored_values().await;
    for secret in ["access-g-1", "refresh-g-1"] {
        assert!(
            !values
                .iter()
                .any(|value| value.windows(secret.len()).any(|w| w == secret.as_bytes())),
            "{secret}"
        );
    }
}
