//! Connected accounts: `OAuth.GetConnectedAccountToken` hands servers the user's upstream
//! access token (checked at the provider's userinfo endpoint), refreshes it when forced (the
//! provider counts the refresh), refuses scopes the user did not grant and client keys, says
//! `OAUTH_REFRESH_REVOKED` once the provider revoked the grant and `OAUTH_UPSTREAM_UNAVAILABLE`
//! during an outage (the tokens kept), and refreshes one at a time per account.

use std::time::Duration;

use gatehouse_cluster_tests::oidc::{Browser, OidcAccount};
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use serde_json::Value;

use super::{PROVIDER, World, account, code_of, oauth, refused};

/// A world with a user who signed in through the provider granting `repo.read`.
async fn connected() -> (World, OidcAccount, v1::SignInReply) {
    let world = World::start().await;
    let upstream = account("ada");
    let start = world.start_url(&[("scope", "repo.read")]);
    let back = world.flow(&Browser::new(), &start, &upstream).await;
    let signed_in = world.exchange(&code_of(&back)).await.unwrap();
    (world, upstream, signed_in)
}

fn request(
    user_id: &str,
    scopes: &[&str],
    force_refresh: bool,
) -> v1::GetConnectedAccountTokenRequest {
    v1::GetConnectedAccountTokenRequest {
        user_id: user_id.to_owned(),
        provider_id: PROVIDER.to_owned(),
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        force_refresh,
    }
}

/// The server's call.
async fn token(
    world: &World,
    user_id: &str,
    scopes: &[&str],
    force_refresh: bool,
) -> Result<v1::GetConnectedAccountTokenReply, ApiError> {
    oauth(&world.server().await)
        .get_connected_account_token(request(user_id, scopes, force_refresh))
        .await
        .map(tonic::Response::into_inner)
        .map_err(ApiError::from)
}

/// The subject the provider's userinfo endpoint answers for `access_token`.
async fn userinfo_sub(world: &World, access_token: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .get(world.op.userinfo_endpoint())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    if !response.status().is_success() {
        return None;
    }
    let claims: Value = response.json().await.unwrap();
    claims["sub"].as_str().map(str::to_owned)
}

async fn has_refresh_token(world: &World, user_id: &str) -> bool {
    let accounts = oauth(&world.server().await)
        .list_linked_accounts(v1::ListLinkedAccountsRequest {
            user_id: user_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    accounts[0].has_refresh_token
}

#[tokio::test]
async fn the_server_gets_the_upstream_token_and_a_new_one_when_it_forces_a_refresh() {
    let (world, upstream, signed_in) = connected().await;
    let user_id = signed_in.user_id.as_str();
    assert!(has_refresh_token(&world, user_id).await);

    // The stored token, still valid: no refresh.
    let stored = token(&world, user_id, &[], false).await.unwrap();
    assert!(!stored.access_token.is_empty());
    assert!(
        stored.scopes.iter().any(|scope| scope == "repo.read"),
        "{:?}",
        stored.scopes
    );
    assert!(stored.expires_at.is_some());
    assert_eq!(
        userinfo_sub(&world, &stored.access_token).await,
        Some(upstream.sub.clone())
    );
    assert_eq!(world.op.refresh_grants_served().await.unwrap(), 0);
    let with_scope = token(&world, user_id, &["repo.read"], false).await.unwrap();
    assert_eq!(with_scope.access_token, stored.access_token);

    // Forced: a new token from the provider's refresh grant.
    let refreshed = token(&world, user_id, &[], true).await.unwrap();
    assert_ne!(refreshed.access_token, stored.access_token);
    assert_eq!(world.op.refresh_grants_served().await.unwrap(), 1);
    assert_eq!(
        userinfo_sub(&world, &refreshed.access_token).await,
        Some(upstream.sub.clone())
    );
    // The refreshed token is the one stored now.
    let after = token(&world, user_id, &[], false).await.unwrap();
    assert_eq!(after.access_token, refreshed.access_token);
    assert_eq!(world.op.refresh_grants_served().await.unwrap(), 1);
}

#[tokio::test]
async fn scopes_not_granted_and_client_keys_are_refused() {
    let (world, _, signed_in) = connected().await;
    let user_id = signed_in.user_id.as_str();
    let error = token(&world, user_id, &["repo.write"], false)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::OAuthScopesMissing, "{error:?}");
    let error = token(&world, user_id, &["repo.read", "repo.write"], true)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::OAuthScopesMissing, "{error:?}");

    // The user's own client key and token: refused, it is a server's power.
    let as_user = oauth(&world.user(&signed_in).await);
    let error = refused(
        as_user
            .clone()
            .get_connected_account_token(request(user_id, &[], false))
            .await,
    );
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");
    let client = oauth(&world.node.client(&world.tenant).await);
    let error = refused(
        client
            .clone()
            .get_connected_account_token(request(user_id, &[], false))
            .await,
    );
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");

    // A user with no link to the provider.
    let other = world
        .server()
        .await
        .create_user(v1::CreateUserRequest {
            email: crate::testkit::unique_email("bob"),
            ..v1::CreateUserRequest::default()
        })
        .await
        .unwrap();
    let error = token(&world, &other.user_id, &[], false).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::OAuthAccountNotLinked, "{error:?}");
}

#[tokio::test]
async fn a_grant_revoked_upstream_is_refresh_revoked_from_then_on() {
    let (world, upstream, signed_in) = connected().await;
    let user_id = signed_in.user_id.as_str();
    token(&world, user_id, &[], false).await.unwrap();

    assert_eq!(world.op.revoke_grants(&upstream.sub).await.unwrap(), 1);
    let error = token(&world, user_id, &[], true).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::OAuthRefreshRevoked, "{error:?}");
    assert_eq!(world.op.stats().await.unwrap().refresh_grants_refused, 1);
    assert!(
        !has_refresh_token(&world, user_id).await,
        "the refused token is dropped"
    );

    // Later calls say the same, without asking the provider again.
    for force_refresh in [false, true] {
        let error = token(&world, user_id, &[], force_refresh)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::OAuthRefreshRevoked, "{error:?}");
    }
    assert_eq!(world.op.stats().await.unwrap().refresh_grants_refused, 1);

    // Signing in through the provider again connects the account anew.
    world.sign_in(&upstream).await;
    assert!(has_refresh_token(&world, user_id).await);
    token(&world, user_id, &[], true).await.unwrap();
}

#[tokio::test]
async fn an_upstream_outage_is_unavailable_and_the_tokens_work_after_it() {
    let (world, _, signed_in) = connected().await;
    let user_id = signed_in.user_id.as_str();
    let before = token(&world, user_id, &[], false).await.unwrap();

    world.op.set_outage(true).await.unwrap();
    let error = token(&world, user_id, &[], true).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::OAuthUpstreamUnavailable, "{error:?}");
    assert!(
        world
            .op
            .stats()
            .await
            .unwrap()
            .token_requests_refused_by_outage
            >= 1
    );
    assert!(
        has_refresh_token(&world, user_id).await,
        "the stored tokens are kept"
    );

    world.op.set_outage(false).await.unwrap();
    let after = token(&world, user_id, &[], true).await.unwrap();
    assert_ne!(after.access_token, before.access_token);
    assert_eq!(world.op.refresh_grants_served().await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_forced_refreshes_reach_the_provider_one_at_a_time() {
    let (world, upstream, signed_in) = connected().await;
    let user_id = signed_in.user_id.clone();
    // Each refresh takes a while at the provider, so unserialised ones would overlap; and
    // the provider rotates refresh tokens, so two presenting the same one would revoke the
    // grant.
    world
        .op
        .set_token_delay(Duration::from_millis(300))
        .await
        .unwrap();
    let (a, b, c, d) = tokio::join!(
        token(&world, &user_id, &[], true),
        token(&world, &user_id, &[], true),
        token(&world, &user_id, &[], true),
        token(&world, &user_id, &[], true),
    );
    for reply in [&a, &b, &c, &d] {
        let reply = reply.as_ref().unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            userinfo_sub(&world, &reply.access_token).await,
            Some(upstream.sub.clone())
        );
    }
    let stats = world.op.stats().await.unwrap();
    assert_eq!(stats.max_concurrent_token_requests, 1, "{stats:?}");
    assert!(stats.refresh_grants_served >= 1, "{stats:?}");
    assert_eq!(stats.refresh_grants_refused, 0, "{stats:?}");
}
