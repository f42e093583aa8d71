//! Connected accounts on three nodes: the upstream access token of a user's connected account,
//! asked for on every node at once when it needs renewing, is renewed by exactly one refresh
//! at the provider (the account's actor runs one at a time, wherever the calls arrive), and
//! every node hands out the token that refresh produced.

use std::time::Duration;

use gatehouse_cluster_tests::oidc::{
    Browser, OidcAccount, OidcClient, OidcConfig, OidcProvider, query_value,
};
use gatehouse_protocol::v1;

use gatehouse_cluster_tests::ClusterSandbox;

use crate::support::unique_email;

const APP: &str = "https://app.example.test/";
const PROVIDER: &str = "acme-idp";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_asked_for_on_every_node_at_once_is_refreshed_once() {
    let sandbox = ClusterSandbox::builder()
        .nodes(3)
        .node_env("GATEHOUSE_OAUTH_ALLOW_PRIVATE_PROVIDERS", "true")
        .build()
        .await
        .unwrap();
    let tenant = sandbox.create_tenant("Connected").await.unwrap();
    sandbox
        .node(0)
        .operator()
        .unwrap()
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            trusted_domains: vec!["app.example.test".to_owned()],
            set_trusted_domains: true,
            ..v1::UpdateTenantConfigRequest::default()
        })
        .await
        .unwrap();
    // Access tokens that live 30 s: always under the minute Gatehouse wants left, so every
    // call finds the stored one due for renewal.
    let op = OidcProvider::start(OidcConfig::default().access_token_ttl(Duration::from_secs(30)))
        .unwrap();
    let server = sandbox.node(0).server(&tenant).unwrap();
    let provider = server
        .create_oauth_provider(v1::CreateOAuthProviderRequest {
            provider_id: PROVIDER.to_owned(),
            kind: v1::OAuthProviderKind::OauthProviderKindOidc as i32,
            display_name: "Acme IdP".to_owned(),
            issuer: op.issuer().to_owned(),
            client_id: "gatehouse-cluster".to_owned(),
            client_secret: "gatehouse-cluster-secret-7d2e".to_owned(),
            scopes: Vec::new(),
            allow_email_linking: false,
            allow_sign_up: None,
        })
        .await
        .unwrap();
    op.add_client(&OidcClient::new(
        "gatehouse-cluster",
        "gatehouse-cluster-secret-7d2e",
        provider.redirect_uri.clone(),
    ))
    .await
    .unwrap();

    // A user signs up through the provider on node 1.
    let upstream = OidcAccount::new("cluster-ada", unique_email("ada"));
    op.set_next_account(&upstream).await.unwrap();
    let mut start = reqwest::Url::parse(&format!(
        "{}/t/{}/oauth/{PROVIDER}/start",
        sandbox.node(1).http_url(),
        tenant.id
    ))
    .unwrap();
    start
        .query_pairs_mut()
        .append_pair("redirect_url", &format!("{APP}done"));
    // The cluster's public URL (the callback the provider knows) names no one node: the
    // browser comes back through node 2, which finishes the flow node 1 began.
    let browser = Browser::new();
    let public = "http://gatehouse.localhost/";
    let callback = browser.follow(start.as_str(), public).await.unwrap();
    let callback =
        callback
            .as_str()
            .replacen(public.trim_end_matches('/'), &sandbox.node(2).http_url(), 1);
    let back = browser.follow(&callback, APP).await.unwrap();
    let code = query_value(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let user_id = sandbox
        .node(2)
        .client(&tenant)
        .unwrap()
        .exchange_oauth_code(&code)
        .await
        .unwrap()
        .user_id;
    let before = op.stats().await.unwrap();

    // Every node asks at once; the provider answers slowly, so the calls overlap.
    op.set_token_delay(Duration::from_millis(400))
        .await
        .unwrap();
    let servers: Vec<_> = (0..3)
        .map(|index| sandbox.node(index).server(&tenant).unwrap())
        .collect();
    let calls = servers.iter().map(|server| {
        let user_id = user_id.clone();
        async move {
            server
                .connected_account_token(&user_id, PROVIDER, &[], false)
                .await
        }
    });
    let tokens: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|reply| reply.unwrap().access_token)
        .collect();

    let after = op.stats().await.unwrap();
    assert_eq!(
        after.refresh_grants_served - before.refresh_grants_served,
        1,
        "one refresh for three overlapping calls: {after:?}"
    );
    assert_eq!(after.max_concurrent_token_requests, 1, "{after:?}");
    assert!(
        tokens.iter().all(|token| token == &tokens[0]),
        "every node hands out the refreshed token"
    );
}
