//! A signing-key rotation on one node reaches every node within 2 s: its JWKS publishes the
//! new key and its sign-ins are signed with it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::future::join_all;
use gatehouse_cluster_tests::{SandboxNode, SandboxTenant, eventually};
use jsonwebtoken::jwk::JwkSet;

use crate::support::{PASSWORD, sign_up, three_nodes};

/// The bound for a key change to reach every node.
const PROPAGATION_BOUND: Duration = Duration::from_secs(2);
/// How long the test keeps polling, so a slow propagation is measured, not hung on.
const POLL_LIMIT: Duration = Duration::from_secs(10);

async fn published_kids(
    node: &SandboxNode,
    tenant: &SandboxTenant,
) -> Result<BTreeSet<String>, String> {
    let url = format!("{}/t/{}/.well-known/jwks.json", node.http_url(), tenant.id);
    let response = reqwest::get(&url)
        .await
        .map_err(|error| format!("GET {url}: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: {}", response.status()));
    }
    let jwks: JwkSet = response
        .json()
        .await
        .map_err(|error| format!("GET {url}: {error}"))?;
    Ok(jwks
        .keys
        .into_iter()
        .filter_map(|key| key.common.key_id)
        .collect())
}

async fn signing_kid(
    node: &SandboxNode,
    tenant: &SandboxTenant,
    email: &str,
) -> Result<String, String> {
    let reply = node
        .client(tenant)
        .map_err(|error| error.to_string())?
        .sign_in_with_password(email, PASSWORD)
        .await
        .map_err(|error| format!("sign-in on node {}: {error:?}", node.id()))?;
    jsonwebtoken::decode_header(&reply.access_token)
        .map_err(|error| error.to_string())?
        .kid
        .ok_or_else(|| "access token without kid".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reaches_every_node_within_2s() {
    let sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Keys").await.unwrap();
    let user = sign_up(sandbox.node(0), &tenant, "keys").await;

    // Every node serves and signs with the first key, so each has it cached.
    let mut first_kid = None;
    for node in sandbox.nodes() {
        let kids = published_kids(node, &tenant).await.unwrap();
        let signing = signing_kid(node, &tenant, &user.email).await.unwrap();
        assert!(
            kids.contains(&signing),
            "node {} signs with {signing}, publishes {kids:?}",
            node.id()
        );
        assert_eq!(
            first_kid.get_or_insert(signing.clone()),
            &signing,
            "node {}",
            node.id()
        );
    }
    let first_kid = first_kid.unwrap();

    let rotated = sandbox
        .node(0)
        .operator()
        .unwrap()
        .rotate_signing_key(&tenant.id)
        .await
        .unwrap();
    let rotated_at = Instant::now();
    assert!(rotated.active);
    assert_ne!(rotated.kid, first_kid);

    let per_node = join_all(sandbox.nodes().iter().map(|node| {
        let new_kid = rotated.kid.clone();
        let old_kid = first_kid.clone();
        let tenant = &tenant;
        let email = &user.email;
        async move {
            eventually(POLL_LIMIT, || async {
                let kids = published_kids(node, tenant).await?;
                if !kids.contains(&new_kid) {
                    return Err(format!("node {} publishes {kids:?}", node.id()));
                }
                if !kids.contains(&old_kid) {
                    return Err(format!(
                        "node {} dropped the previous key: {kids:?}",
                        node.id()
                    ));
                }
                let signing = signing_kid(node, tenant, email).await?;
                if signing != new_kid {
                    return Err(format!("node {} still signs with {signing}", node.id()));
                }
                Ok(rotated_at.elapsed())
            })
            .await
            .map_err(|failure| format!("node {}: {failure}", node.id()))
        }
    }))
    .await;
    for (node, outcome) in sandbox.nodes().iter().zip(per_node) {
        let took = outcome.unwrap_or_else(|failure| panic!("{failure}"));
        println!(
            "node {} publishes and signs with the new key after {took:?}",
            node.id()
        );
        assert!(
            took < PROPAGATION_BOUND,
            "node {} took {took:?} to publish and sign with the rotated key",
            node.id()
        );
    }
}
