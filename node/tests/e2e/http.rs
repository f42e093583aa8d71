//! JWKS, OIDC discovery, metrics, health; tokens verified by a standard JWT library.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::testkit::{PASSWORD, TestNode, unique_email};

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn verify(token: &str, jwks: &JwkSet, issuer: &str, tenant: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("kid is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[tenant]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn access_tokens_verify_against_the_jwks_served_over_http() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("ivy"), PASSWORD)
        .await
        .unwrap();

    let (status, discovery) = get_json(&format!(
        "{}/t/{}/.well-known/openid-configuration",
        node.http_url(),
        tenant.id
    ))
    .await;
    assert_eq!(status, 200);
    let issuer = format!("{}/t/{}", node.http_url(), tenant.id);
    assert_eq!(discovery["issuer"], issuer.as_str());
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_owned();
    assert_eq!(jwks_uri, format!("{issuer}/.well-known/jwks.json"));

    let jwks: JwkSet = reqwest::get(&jwks_uri).await.unwrap().json().await.unwrap();
    let claims = verify(&signed_up.access_token, &jwks, &issuer, &tenant.id);
    assert_eq!(claims["sub"], signed_up.user_id.as_str());
    assert_eq!(claims["sid"], signed_up.session_id.as_str());
    assert_eq!(claims["tid"], tenant.id.as_str());
    assert_eq!(claims["role"], "authenticated");
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(ttl, 600, "access tokens live 10 minutes");

    // A token of another tenant does not verify with this tenant's keys.
    let other = node.tenant("Other").await;
    let other_user = node
        .client(&other)
        .await
        .sign_up_with_password(&unique_email("ivy"), PASSWORD)
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&other_user.access_token).unwrap();
    assert!(
        jwks.find(&header.kid.unwrap()).is_none(),
        "keys are per tenant"
    );
}

#[tokio::test]
async fn rotation_publishes_a_new_key_and_keeps_the_old_one() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;
    let before = client
        .sign_up_with_password(&unique_email("jack"), PASSWORD)
        .await
        .unwrap();
    let new_key = node
        .operator()
        .await
        .rotate_signing_key(&tenant.id)
        .await
        .unwrap();
    assert!(new_key.active);
    let after = client.refresh_session(&before.refresh_token).await.unwrap();

    let issuer = format!("{}/t/{}", node.http_url(), tenant.id);
    let jwks: JwkSet = reqwest::get(format!("{issuer}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks.keys.len(), 2);
    verify(&before.access_token, &jwks, &issuer, &tenant.id);
    verify(&after.access_token, &jwks, &issuer, &tenant.id);
    let after_kid = jsonwebtoken::decode_header(&after.access_token)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(after_kid, new_key.kid);
}

#[tokio::test]
async fn unknown_tenant_jwks_is_a_404_with_a_code() {
    let node = TestNode::start().await;
    let (status, body) =
        get_json(&format!("{}/t/nope/.well-known/jwks.json", node.http_url())).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "TENANT_NOT_FOUND");
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    node.client(&tenant)
        .await
        .sign_up_with_password(&unique_email("kim"), PASSWORD)
        .await
        .unwrap();
    for path in ["/healthz", "/readyz"] {
        let response = reqwest::get(format!("{}{path}", node.http_url()))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let metrics = reqwest::get(node.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gatehouse_rpc_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("Auth/SignUpWithPassword"));
    assert!(metrics.contains("gatehouse_storage_commits_total"));
    assert!(metrics.contains("gatehouse_password_hash_queue_seconds"));
}

#[tokio::test]
async fn tenant_config_sets_token_lifetime_and_permission_claims() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let operator = node.operator().await;
    let updated = operator
        .update_tenant_config(gatehouse_protocol::v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            access_token_ttl_seconds: Some(120),
            permission_claims_in_token: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let config = updated.config.unwrap();
    assert_eq!(config.access_token_ttl_seconds, 120);
    assert!(config.permission_claims_in_token);
    let out_of_range = operator
        .update_tenant_config(gatehouse_protocol::v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            access_token_ttl_seconds: Some(5),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        out_of_range.field.as_deref(),
        Some("access_token_ttl_seconds")
    );
    let denied = node
        .server(&tenant)
        .await
        .update_tenant_config(gatehouse_protocol::v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code, gatehouse_protocol::ErrorCode::PermissionDenied);

    let server = node.server(&tenant).await;
    server
        .define_permission(gatehouse_protocol::v1::DefinePermissionRequest {
            definition: Some(gatehouse_protocol::v1::PermissionDefinition {
                permission_id: "reports:read".to_owned(),
                description: String::new(),
                contains: Vec::new(),
                scope: gatehouse_protocol::v1::PermissionScope::Tenant as i32,
            }),
            create_only: true,
        })
        .await
        .unwrap();
    let email = unique_email("perm-claims");
    let client = node.client(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    server
        .grant_permission(gatehouse_protocol::v1::GrantPermissionRequest {
            user_id: signed_up.user_id.clone(),
            permission_id: "reports:read".to_owned(),
            team_id: String::new(),
        })
        .await
        .unwrap();
    let refreshed = client
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
    let issuer = format!("{}/t/{}", node.http_url(), tenant.id);
    let jwks: JwkSet = reqwest::get(format!("{issuer}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = verify(&refreshed.access_token, &jwks, &issuer, &tenant.id);
    assert_eq!(claims["perms"], serde_json::json!(["reports:read"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
}
