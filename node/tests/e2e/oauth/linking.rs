//! Linking upstream accounts to users: an existing user with the upstream email (refused
//! unless the provider links by verified email), `BeginLink` by a signed-in user ending in
//! `?linked=`, listing and unlinking (refused for the last way to sign in), and an
//! anonymous user upgraded in place by the flow.

use gatehouse_cluster_tests::oidc::{Browser, OidcAccount, query_value};
use gatehouse_protocol::{ErrorCode, v1};

use super::{APP, PROVIDER, REDIRECT, World, account, code_of, oauth, ok, refused};
use crate::testkit::PASSWORD;

/// A user with a password and a verified `email`, made by the server.
async fn password_user(world: &World, email: &str) -> v1::User {
    world
        .server()
        .await
        .create_user(v1::CreateUserRequest {
            email: email.to_owned(),
            password: Some(PASSWORD.to_owned()),
            display_name: String::new(),
            email_verified: true,
        })
        .await
        .unwrap()
}

async fn set_email_linking(world: &World, allow: bool) {
    ok(oauth(&world.server().await)
        .update_provider(v1::UpdateOAuthProviderRequest {
            provider_id: PROVIDER.to_owned(),
            allow_email_linking: Some(allow),
            ..v1::UpdateOAuthProviderRequest::default()
        })
        .await);
}

async fn linked_accounts(world: &World, user_id: &str) -> Vec<v1::LinkedAccount> {
    ok(oauth(&world.server().await)
        .list_linked_accounts(v1::ListLinkedAccountsRequest {
            user_id: user_id.to_owned(),
        })
        .await)
    .accounts
}

/// The flow for `account` in a fresh browser: the `error` it ends with (and no code).
async fn flow_error(world: &World, account: &OidcAccount) -> String {
    let back = world
        .flow(&Browser::new(), &world.start_url(&[]), account)
        .await;
    assert!(query_value(&back, "code").is_none(), "{back}");
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    query_value(&back, "error").unwrap_or_else(|| panic!("no error in {back}"))
}

#[tokio::test]
async fn an_existing_user_with_the_email_is_not_linked_while_email_linking_is_off() {
    let world = World::start().await;
    let upstream = account("ada");
    let existing = password_user(&world, &upstream.email).await;
    assert_eq!(flow_error(&world, &upstream).await, "OAUTH_ACCOUNT_EXISTS");
    assert!(linked_accounts(&world, &existing.user_id).await.is_empty());
}

#[tokio::test]
async fn a_verified_upstream_email_links_to_the_existing_user_when_allowed() {
    let world = World::start().await;
    set_email_linking(&world, true).await;
    let upstream = account("ada");
    let existing = password_user(&world, &upstream.email).await;

    let signed_in = world.sign_in(&upstream).await;
    assert_eq!(signed_in.user_id, existing.user_id);
    let links = linked_accounts(&world, &existing.user_id).await;
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].provider_id, PROVIDER);
    assert_eq!(links[0].subject, upstream.sub);
    assert_eq!(links[0].email, upstream.email);
    // The password still works.
    world
        .node
        .client(&world.tenant)
        .await
        .sign_in_with_password(&upstream.email, PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unverified_upstream_email_never_links() {
    let world = World::start_with(true, false).await;
    let upstream = account("ada").unverified();
    let existing = password_user(&world, &upstream.email).await;
    assert_eq!(flow_error(&world, &upstream).await, "OAUTH_ACCOUNT_EXISTS");
    assert!(linked_accounts(&world, &existing.user_id).await.is_empty());
}

#[tokio::test]
async fn a_signed_in_user_links_the_provider_and_may_unlink_it_while_a_password_remains() {
    let world = World::start().await;
    let email = crate::testkit::unique_email("ada");
    let signed_up = world
        .node
        .client(&world.tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let as_user = oauth(&world.user(&signed_up).await);
    let begun = ok(as_user
        .clone()
        .begin_link(v1::BeginOAuthLinkRequest {
            provider_id: PROVIDER.to_owned(),
            redirect_url: REDIRECT.to_owned(),
            scopes: Vec::new(),
        })
        .await);
    assert!(begun.expires_at.is_some());
    assert!(
        begun.start_url.starts_with(&format!(
            "{}/t/{}/oauth/{PROVIDER}/start",
            world.node.http_url(),
            world.tenant.id
        )),
        "{begun:?}"
    );

    // The upstream account has another address: linking does not need it to match.
    let upstream = account("ada-upstream");
    let back = world
        .flow(&Browser::new(), &begun.start_url, &upstream)
        .await;
    assert!(back.as_str().starts_with(APP), "{back}");
    assert_eq!(
        query_value(&back, "linked").as_deref(),
        Some(PROVIDER),
        "{back}"
    );
    assert!(query_value(&back, "code").is_none(), "{back}");

    let own = ok(as_user
        .clone()
        .list_linked_accounts(v1::ListLinkedAccountsRequest::default())
        .await)
    .accounts;
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].provider_id, PROVIDER);
    assert_eq!(own[0].subject, upstream.sub);
    assert!(own[0].linked_at.is_some());

    // Signing in through the provider now reaches the same user.
    assert_eq!(world.sign_in(&upstream).await.user_id, signed_up.user_id);

    ok(as_user
        .clone()
        .unlink(v1::UnlinkOAuthAccountRequest {
            user_id: String::new(),
            provider_id: PROVIDER.to_owned(),
        })
        .await);
    assert!(linked_accounts(&world, &signed_up.user_id).await.is_empty());
    let error = refused(
        as_user
            .clone()
            .unlink(v1::UnlinkOAuthAccountRequest {
                user_id: String::new(),
                provider_id: PROVIDER.to_owned(),
            })
            .await,
    );
    assert_eq!(error.code, ErrorCode::OAuthAccountNotLinked, "{error:?}");
}

#[tokio::test]
async fn the_link_that_is_the_only_way_to_sign_in_cannot_be_unlinked() {
    let world = World::start().await;
    let signed_in = world.sign_in(&account("ada")).await;
    let request = v1::UnlinkOAuthAccountRequest {
        user_id: String::new(),
        provider_id: PROVIDER.to_owned(),
    };
    let error = refused(oauth(&world.user(&signed_in).await).unlink(request).await);
    assert_eq!(error.code, ErrorCode::OAuthLastSignInMethod, "{error:?}");
    // Not by the server either.
    let error = refused(
        oauth(&world.server().await)
            .unlink(v1::UnlinkOAuthAccountRequest {
                user_id: signed_in.user_id.clone(),
                provider_id: PROVIDER.to_owned(),
            })
            .await,
    );
    assert_eq!(error.code, ErrorCode::OAuthLastSignInMethod, "{error:?}");
    assert_eq!(linked_accounts(&world, &signed_in.user_id).await.len(), 1);
}

#[tokio::test]
async fn an_anonymous_user_who_links_is_upgraded_in_place() {
    let world = World::start_with(false, true).await;
    let anonymous = world
        .node
        .client(&world.tenant)
        .await
        .sign_in_anonymously()
        .await
        .unwrap();
    assert!(anonymous.user.as_ref().unwrap().is_anonymous);
    let begun = ok(oauth(&world.user(&anonymous).await)
        .begin_link(v1::BeginOAuthLinkRequest {
            provider_id: PROVIDER.to_owned(),
            redirect_url: REDIRECT.to_owned(),
            scopes: Vec::new(),
        })
        .await);

    let upstream = account("anon");
    let back = world
        .flow(&Browser::new(), &begun.start_url, &upstream)
        .await;
    let signed_in = world.exchange(&code_of(&back)).await.unwrap();
    assert_eq!(
        signed_in.user_id, anonymous.user_id,
        "the same user, upgraded"
    );
    let user = signed_in.user.unwrap();
    assert!(!user.is_anonymous, "{user:?}");
    assert_eq!(user.email, upstream.email);
    let stored = world
        .server()
        .await
        .get_user(&anonymous.user_id)
        .await
        .unwrap();
    assert!(!stored.is_anonymous);
    assert_eq!(linked_accounts(&world, &anonymous.user_id).await.len(), 1);

    // The anonymous session was ended by the upgrade.
    let error = world
        .node
        .client(&world.tenant)
        .await
        .refresh_session(&anonymous.tokens.as_ref().unwrap().refresh_token)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::SessionRevoked, "{error:?}");
}

#[tokio::test]
async fn an_address_signed_up_here_but_never_verified_is_not_linked() {
    // Someone signs up with the victim's address and a password of their own, never
    // proving they own it; the victim then arrives through the provider.
    let world = World::start_with(true, false).await;
    let upstream = account("victim");
    let squatter = world
        .node
        .client(&world.tenant)
        .await
        .sign_up_with_password(&upstream.email, PASSWORD)
        .await
        .unwrap();
    assert_eq!(flow_error(&world, &upstream).await, "OAUTH_ACCOUNT_EXISTS");
    assert!(linked_accounts(&world, &squatter.user_id).await.is_empty());
}
