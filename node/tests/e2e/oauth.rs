//! Upstream sign-in against a real node and a real OpenID provider process (the test kit's
//! `oidc-provider`): providers managed by servers only, never showing their secret; a new
//! user through start → provider → callback → app URL with a single-use code; the same
//! upstream account back to the same user; the code spent once and only in its tenant; the
//! flow bound to the browser that began it; trusted redirect URLs. Linking is in
//! `oauth/linking.rs`, connected-account tokens in `oauth/connected.rs`.

mod connected;
mod linking;

use gatehouse_cluster_tests::oidc::{
    Browser, OidcAccount, OidcClient, OidcConfig, OidcProvider, query_value,
};
use gatehouse_protocol::sdk::{AuthedChannel, Client};
use gatehouse_protocol::v1::o_auth_client::OAuthClient;
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use reqwest::Url;

use crate::testkit::{TestNode, TestTenant, unique_email};

/// The app the flows return to (trusted by the tenant); the browser never fetches it.
pub const APP: &str = "https://app.example.test/";
/// The app's redirect URL.
pub const REDIRECT: &str = "https://app.example.test/oauth/done";
/// The provider's id in Gatehouse.
pub const PROVIDER: &str = "acme-idp";
const CLIENT_ID: &str = "gatehouse-e2e";
/// The test provider listens on 127.0.0.1, which nodes refuse to reach by default.
pub const ALLOW_LOOPBACK_PROVIDERS: (&str, &str) =
    ("GATEHOUSE_OAUTH_ALLOW_PRIVATE_PROVIDERS", "true");
const CLIENT_SECRET: &str = "gatehouse-e2e-client-secret-4f1c";

/// A node, a tenant that trusts `app.example.test`, a running OpenID provider and the
/// provider created in Gatehouse (the OP knows Gatehouse's callback as a client).
pub struct World {
    pub node: TestNode,
    pub tenant: TestTenant,
    pub op: OidcProvider,
    pub provider: v1::OAuthProvider,
}

/// The raw OAuth client of `client`'s connection, tenant and credentials.
pub fn oauth(client: &Client) -> OAuthClient<AuthedChannel> {
    OAuthClient::with_interceptor(client.channel(), client.request_metadata().clone())
}

/// The error of a refused call.
pub fn refused<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>) -> ApiError {
    ApiError::from(result.expect_err("the call must be refused"))
}

/// The reply of a call that must succeed.
pub fn ok<T>(result: Result<tonic::Response<T>, tonic::Status>) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("the call failed: {:?}", ApiError::from(status)),
    }
}

/// What to create the provider with.
pub fn provider_request(
    op: &OidcProvider,
    allow_email_linking: bool,
) -> v1::CreateOAuthProviderRequest {
    v1::CreateOAuthProviderRequest {
        provider_id: PROVIDER.to_owned(),
        kind: v1::OAuthProviderKind::OauthProviderKindOidc as i32,
        display_name: "Acme IdP".to_owned(),
        issuer: op.issuer().to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: CLIENT_SECRET.to_owned(),
        scopes: Vec::new(),
        allow_email_linking,
        allow_sign_up: None,
    }
}

/// A tenant that trusts `app.example.test` (and allows anonymous users when asked).
pub async fn trusting_tenant(node: &TestNode, name: &str, anonymous: bool) -> TestTenant {
    let tenant = node.tenant(name).await;
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            trusted_domains: vec!["app.example.test".to_owned()],
            set_trusted_domains: true,
            anonymous_enabled: anonymous.then_some(true),
            ..v1::UpdateTenantConfigRequest::default()
        })
        .await
        .expect("configure the tenant");
    tenant
}

impl World {
    /// The default world: email linking off, anonymous users off.
    pub async fn start() -> World {
        World::start_with(false, false).await
    }

    /// A world whose provider links by verified email when `allow_email_linking`, and
    /// whose tenant allows anonymous users when `anonymous`.
    pub async fn start_with(allow_email_linking: bool, anonymous: bool) -> World {
        let node = TestNode::start_with_env(&[ALLOW_LOOPBACK_PROVIDERS]).await;
        let tenant = trusting_tenant(&node, "Upstream", anonymous).await;
        let op = OidcProvider::start(OidcConfig::default())
            .unwrap_or_else(|error| panic!("cannot start the OpenID provider: {error}"));
        let provider = ok(oauth(&node.server(&tenant).await)
            .create_provider(provider_request(&op, allow_email_linking))
            .await);
        op.add_client(&OidcClient::new(
            CLIENT_ID,
            CLIENT_SECRET,
            provider.redirect_uri.clone(),
        ))
        .await
        .unwrap();
        World {
            node,
            tenant,
            op,
            provider,
        }
    }

    /// `GET /t/{tenant}/oauth/{provider}/start?redirect_url=REDIRECT` plus `extra` query
    /// pairs.
    pub fn start_url(&self, extra: &[(&str, &str)]) -> String {
        let mut url = Url::parse(&format!(
            "{}/t/{}/oauth/{PROVIDER}/start",
            self.node.http_url(),
            self.tenant.id
        ))
        .unwrap();
        url.query_pairs_mut().append_pair("redirect_url", REDIRECT);
        for (name, value) in extra {
            url.query_pairs_mut().append_pair(name, value);
        }
        url.to_string()
    }

    /// The OP's next login is `account`; `browser` walks the flow from `start_url` back to
    /// the app: the app URL it ends at.
    pub async fn flow(&self, browser: &Browser, start_url: &str, account: &OidcAccount) -> Url {
        self.op.set_next_account(account).await.unwrap();
        browser.follow(start_url, APP).await.unwrap_or_else(|error| {
            panic!(
                "the flow did not reach the app: {error}; visited {:?}; provider stderr:\n{}\nnode stderr:\n{}",
                browser.visited(),
                self.op.stderr_tail(),
                self.node.kit().stderr_tail()
            )
        })
    }

    /// A plain sign-in flow for `account` in a fresh browser: the `goc_` code it ends with.
    pub async fn code_for(&self, account: &OidcAccount) -> String {
        let back = self
            .flow(&Browser::new(), &self.start_url(&[]), account)
            .await;
        code_of(&back)
    }

    /// Exchanges a code with the tenant's client key.
    pub async fn exchange(&self, code: &str) -> Result<v1::SignInReply, ApiError> {
        exchange_in(&self.node, &self.tenant, code).await
    }

    /// Signs `account` in through the provider: the session's reply.
    pub async fn sign_in(&self, account: &OidcAccount) -> v1::SignInReply {
        let code = self.code_for(account).await;
        self.exchange(&code)
            .await
            .unwrap_or_else(|error| panic!("exchange {code}: {error:?}"))
    }

    /// The tenant's server-key client.
    pub async fn server(&self) -> Client {
        self.node.server(&self.tenant).await
    }

    /// The tenant's client-key client acting as the user of `reply`.
    pub async fn user(&self, reply: &v1::SignInReply) -> Client {
        self.node
            .client(&self.tenant)
            .await
            .with_access_token(&reply.tokens.as_ref().unwrap().access_token)
    }
}

/// Exchanges `code` in `tenant` with its client key.
pub async fn exchange_in(
    node: &TestNode,
    tenant: &TestTenant,
    code: &str,
) -> Result<v1::SignInReply, ApiError> {
    node.client(tenant)
        .await
        .auth()
        .exchange_o_auth_code(v1::ExchangeOAuthCodeRequest {
            code: code.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(ApiError::from)
}

/// The `code` of an app URL; panics when the flow ended otherwise.
pub fn code_of(back: &Url) -> String {
    let code = query_value(back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    assert!(code.starts_with("goc_"), "{back}");
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    code
}

/// A fresh upstream account with a verified email.
pub fn account(label: &str) -> OidcAccount {
    OidcAccount::new(
        format!("{label}-{}", uuid::Uuid::new_v4().simple()),
        unique_email(label),
    )
}

#[tokio::test]
async fn providers_are_managed_with_the_server_key_and_never_show_the_secret() {
    let world = World::start().await;
    let server = oauth(&world.server().await);
    let created = &world.provider;
    assert_eq!(created.provider_id, PROVIDER);
    assert_eq!(created.kind(), v1::OAuthProviderKind::OauthProviderKindOidc);
    assert_eq!(created.issuer, world.op.issuer());
    assert_eq!(created.client_id, CLIENT_ID);
    assert!(created.allow_sign_up, "sign-up is on by default");
    assert!(!created.allow_email_linking);
    assert!(
        created.scopes.iter().any(|scope| scope == "openid"),
        "{created:?}"
    );
    assert_eq!(
        created.redirect_uri,
        format!(
            "{}/t/{}/oauth/{PROVIDER}/callback",
            world.node.http_url(),
            world.tenant.id
        )
    );

    let listed = ok(server
        .clone()
        .list_providers(v1::ListOAuthProvidersRequest {})
        .await);
    assert_eq!(listed.providers.len(), 1);
    let got = ok(server
        .clone()
        .get_provider(v1::GetOAuthProviderRequest {
            provider_id: PROVIDER.to_owned(),
        })
        .await);
    assert_eq!(&got, created);
    for shown in [
        format!("{listed:?}"),
        format!("{got:?}"),
        format!("{created:?}"),
    ] {
        assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    }

    // The same id twice, and an unknown one.
    let error = refused(
        server
            .clone()
            .create_provider(provider_request(&world.op, false))
            .await,
    );
    assert_eq!(
        error.code,
        ErrorCode::OAuthProviderAlreadyExists,
        "{error:?}"
    );
    let error = refused(
        server
            .clone()
            .get_provider(v1::GetOAuthProviderRequest {
                provider_id: "nobody".to_owned(),
            })
            .await,
    );
    assert_eq!(error.code, ErrorCode::OAuthProviderNotFound, "{error:?}");

    // A client key manages nothing, even with a signed-in user.
    let user = world.sign_in(&account("ada")).await;
    let as_user = oauth(&world.user(&user).await);
    let mut request = provider_request(&world.op, false);
    request.provider_id = "other".to_owned();
    let error = refused(as_user.clone().create_provider(request).await);
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");
    let error = refused(
        as_user
            .clone()
            .list_providers(v1::ListOAuthProvidersRequest {})
            .await,
    );
    assert_eq!(error.code, ErrorCode::PermissionDenied, "{error:?}");
}

#[tokio::test]
async fn a_new_user_signs_in_through_the_provider_and_comes_back_as_the_same_user() {
    let world = World::start().await;
    let ada = account("ada");
    let first = world.sign_in(&ada).await;
    let user = first.user.as_ref().expect("the reply names the user");
    assert_eq!(user.user_id, first.user_id);
    assert_eq!(user.email, ada.email);
    assert!(user.email_verified, "{user:?}");
    assert!(!user.has_password);
    assert!(!user.is_anonymous);
    let tokens = first.tokens.as_ref().unwrap();
    assert!(!tokens.access_token.is_empty() && !tokens.refresh_token.is_empty());
    let me = world.user(&first).await.get_current_user().await.unwrap();
    assert_eq!(me.user_id, first.user_id);

    // Gatehouse asked with PKCE S256, a nonce and a state.
    let asked = world.op.authorizations().await.unwrap();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].pkce && asked[0].nonce && asked[0].state,
        "{asked:?}"
    );
    assert_eq!(
        asked[0].redirect_uri.as_deref(),
        Some(world.provider.redirect_uri.as_str())
    );

    // The same upstream account again: the same user, a new session.
    let again = world.sign_in(&ada).await;
    assert_eq!(again.user_id, first.user_id);
    assert_ne!(again.session_id, first.session_id);

    // Another upstream account is another user.
    let bob = world.sign_in(&account("bob")).await;
    assert_ne!(bob.user_id, first.user_id);
}

#[tokio::test]
async fn a_code_is_spent_by_its_first_exchange_and_only_valid_in_its_tenant() {
    let world = World::start().await;
    let ada = account("ada");
    let code = world.code_for(&ada).await;
    let signed_in = world.exchange(&code).await.unwrap();
    let error = world.exchange(&code).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::OAuthCodeInvalid, "{error:?}");

    // Another tenant's client key does not know the code (and does not spend it).
    let other = trusting_tenant(&world.node, "Other", false).await;
    let code = world.code_for(&ada).await;
    let error = exchange_in(&world.node, &other, &code).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::OAuthCodeInvalid, "{error:?}");
    assert_eq!(
        world.exchange(&code).await.unwrap().user_id,
        signed_in.user_id
    );

    for made_up in [
        "goc_nothing",
        "goc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let error = world.exchange(made_up).await.unwrap_err();
        assert_eq!(
            error.code,
            ErrorCode::OAuthCodeInvalid,
            "{made_up:?}: {error:?}"
        );
    }
}

/// `browser` walks from the start to the provider and back, stopping at Gatehouse's
/// callback: the callback URL, not yet fetched.
async fn up_to_callback(world: &World, browser: &Browser, account: &OidcAccount) -> String {
    world.op.set_next_account(account).await.unwrap();
    browser
        .follow(&world.start_url(&[]), &world.provider.redirect_uri)
        .await
        .unwrap()
        .to_string()
}

fn state_invalid(browser: &Browser) {
    let page = browser.last_page().expect("the flow stopped at a page");
    assert_eq!(page.status, 400, "{page:?}");
    let body = page.json().unwrap_or_else(|| panic!("not JSON: {page:?}"));
    assert_eq!(body["code"], "OAUTH_STATE_INVALID", "{page:?}");
}

#[tokio::test]
async fn the_callback_in_another_browser_is_refused_and_the_first_browser_still_finishes() {
    let world = World::start().await;
    let ada = account("ada");
    let mine = Browser::new();
    let callback = up_to_callback(&world, &mine, &ada).await;

    // Another browser, with a flow (and a state cookie) of its own.
    let other = Browser::new();
    let _ = up_to_callback(&world, &other, &ada).await;
    other.follow(&callback, APP).await.unwrap_err();
    state_invalid(&other);
    // And one with no cookie at all.
    let bare = Browser::new();
    bare.follow(&callback, APP).await.unwrap_err();
    state_invalid(&bare);

    // The state was not burnt: the browser that began the flow finishes it.
    let back = mine.follow(&callback, APP).await.unwrap();
    let signed_in = world.exchange(&code_of(&back)).await.unwrap();
    assert_eq!(signed_in.user.unwrap().email, ada.email);
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let world = World::start().await;
    let browser = Browser::new();
    let callback = up_to_callback(&world, &browser, &account("ada")).await;
    let back = browser.follow(&callback, APP).await.unwrap();
    let code = code_of(&back);
    browser.follow(&callback, APP).await.unwrap_err();
    state_invalid(&browser);
    // The first code is still good.
    world.exchange(&code).await.unwrap();
}

#[tokio::test]
async fn a_redirect_url_outside_the_trusted_domains_is_refused_at_start() {
    let world = World::start().await;
    let browser = Browser::new();
    let mut start = Url::parse(&world.start_url(&[])).unwrap();
    start
        .query_pairs_mut()
        .clear()
        .append_pair("redirect_url", "https://evil.example.net/steal");
    browser.follow(start.as_str(), APP).await.unwrap_err();
    let page = browser.last_page().unwrap();
    assert_eq!(
        page.url.as_str(),
        start.as_str(),
        "no redirect was made: {page:?}"
    );
    assert_eq!(page.status, 400, "{page:?}");
    let body = page.json().unwrap_or_else(|| panic!("not JSON: {page:?}"));
    assert_eq!(body["code"], "INVALID_ARGUMENT", "{page:?}");
    assert!(world.op.authorizations().await.unwrap().is_empty());

    // An unknown provider is no flow either.
    let unknown = world.start_url(&[]).replace(PROVIDER, "nobody");
    browser.follow(&unknown, APP).await.unwrap_err();
    assert_eq!(browser.last_page().unwrap().status, 404);
}

#[tokio::test]
async fn a_provider_without_sign_up_refuses_new_users_but_not_linked_ones() {
    let world = World::start().await;
    let ada = account("ada");
    let existing = world.sign_in(&ada).await;
    ok(oauth(&world.server().await)
        .update_provider(v1::UpdateOAuthProviderRequest {
            provider_id: PROVIDER.to_owned(),
            allow_sign_up: Some(false),
            ..v1::UpdateOAuthProviderRequest::default()
        })
        .await);

    let back = world
        .flow(&Browser::new(), &world.start_url(&[]), &account("bob"))
        .await;
    assert_eq!(
        query_value(&back, "error").as_deref(),
        Some("OAUTH_SIGN_UP_DISABLED"),
        "{back}"
    );
    assert!(query_value(&back, "code").is_none(), "{back}");
    assert_eq!(world.sign_in(&ada).await.user_id, existing.user_id);
}

#[tokio::test]
async fn an_id_token_with_a_wrong_claim_or_a_foreign_key_signs_nobody_in() {
    let world = World::start().await;
    let server = world.server().await;
    for mode in ["nonce", "audience", "issuer", "expired", "signature"] {
        let victim = account(&format!("tamper-{mode}"));
        world.op.tamper_next_id_token(mode).await.unwrap();
        let back = world
            .flow(&Browser::new(), &world.start_url(&[]), &victim)
            .await;
        assert!(back.as_str().starts_with(REDIRECT), "{mode}: {back}");
        assert_eq!(
            query_value(&back, "error").as_deref(),
            Some("OAUTH_UPSTREAM_REJECTED"),
            "{mode}: {back}"
        );
        assert_eq!(query_value(&back, "code"), None, "{mode}: {back}");
        let users = server
            .list_users(v1::ListUsersRequest {
                email_prefix: victim.email.clone(),
                ..v1::ListUsersRequest::default()
            })
            .await
            .unwrap()
            .users;
        assert!(users.is_empty(), "{mode}: a user was created: {users:?}");
    }
    // The provider's untouched ID tokens still sign in: each refusal was that one claim.
    let signed_in = world.sign_in(&account("after-tamper")).await;
    assert!(!signed_in.user_id.is_empty());
}

#[tokio::test]
async fn a_node_does_not_reach_a_provider_on_a_private_address_unless_allowed() {
    // The same provider setup, on a node left with the default `[oauth]` settings.
    let node = TestNode::start().await;
    let tenant = trusting_tenant(&node, "Private", false).await;
    let op = OidcProvider::start(OidcConfig::default()).unwrap();
    ok(oauth(&node.server(&tenant).await)
        .create_provider(provider_request(&op, false))
        .await);
    let mut start = Url::parse(&format!(
        "{}/t/{}/oauth/{PROVIDER}/start",
        node.http_url(),
        tenant.id
    ))
    .unwrap();
    start
        .query_pairs_mut()
        .append_pair("redirect_url", REDIRECT);
    let browser = Browser::new();
    let refused = browser.follow(start.as_str(), APP).await;
    assert!(refused.is_err(), "the flow went on: {refused:?}");
    let page = browser.last_page().expect("the start answered");
    assert_eq!(page.status, 401, "{}", page.body);
    let body = page.json().expect("a JSON error");
    assert_eq!(body["code"], "OAUTH_UPSTREAM_REJECTED", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("private"),
        "{body}"
    );
    assert!(op.authorizations().await.unwrap().is_empty());
}
