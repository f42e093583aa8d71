//! API keys on three nodes: a key created on one node exchanges on every other with the
//! scopes it was given, and a revocation acknowledged by one node is refused by every node
//! with no wait between.

use gatehouse_cluster_tests::{SandboxNode, SandboxTenant};
use gatehouse_protocol::{ErrorCode, v1};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::support::three_nodes;

/// The claims of `token`, verified against the JWKS `node` publishes for `tenant`.
async fn verified_claims(node: &SandboxNode, tenant: &SandboxTenant, token: &str) -> Value {
    let url = format!("{}/t/{}/.well-known/jwks.json", node.http_url(), tenant.id);
    let jwks: JwkSet = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[tenant.id.as_str()]);
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_from_one_node_exchanges_on_every_node_until_revoked_anywhere() {
    let sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("ApiKeys").await.unwrap();
    let first = sandbox.node(0).server(&tenant).unwrap();
    for id in ["exports:read", "exports:write"] {
        first
            .define_permission(v1::DefinePermissionRequest {
                definition: Some(v1::PermissionDefinition {
                    permission_id: id.to_owned(),
                    description: String::new(),
                    contains: Vec::new(),
                    scope: v1::PermissionScope::Tenant as i32,
                }),
                create_only: true,
            })
            .await
            .unwrap();
    }
    let created = first
        .create_api_key(v1::CreateApiKeyRequest {
            owner: None,
            name: "exporter".to_owned(),
            scopes: vec!["exports:write".to_owned(), "exports:read".to_owned()],
            expiry: None,
        })
        .await
        .unwrap();
    let key_id = created.api_key.unwrap().key_id;

    // Exchanged on the other nodes (and the first), right after the create returned.
    for index in [1, 2, 0] {
        let node = sandbox.node(index);
        let exchanged = node
            .client(&tenant)
            .unwrap()
            .exchange_client_credentials(&created.secret)
            .await
            .unwrap_or_else(|error| panic!("node {}: {error:?}", node.id()));
        let claims = verified_claims(node, &tenant, &exchanged.access_token).await;
        assert_eq!(claims["sub"], tenant.id.as_str(), "node {}", node.id());
        assert_eq!(claims["principal_kind"], "tenant");
        assert_eq!(claims["api_key_id"], key_id.as_str());
        assert_eq!(
            claims["perms"],
            json!(["exports:read", "exports:write"]),
            "node {}",
            node.id()
        );
    }

    // Revoked through node 1: every node refuses it as soon as that returns.
    let revoked = sandbox
        .node(1)
        .server(&tenant)
        .unwrap()
        .revoke_api_key(&key_id)
        .await
        .unwrap();
    assert!(revoked.revoked);
    for node in sandbox.nodes() {
        let refused = node
            .client(&tenant)
            .unwrap()
            .exchange_client_credentials(&created.secret)
            .await
            .expect_err("a revoked key must not exchange");
        assert_eq!(refused.code, ErrorCode::ApiKeyInvalid, "node {}", node.id());
        let listed = node
            .server(&tenant)
            .unwrap()
            .get_api_key(&key_id)
            .await
            .unwrap();
        assert!(listed.revoked, "node {} shows {listed:?}", node.id());
    }
}
