//! [`OidcUpstream`] against a fake OpenID provider on 127.0.0.1: discovery and its cache, the
//! code exchange with PKCE and client authentication, ID-token validation (nonce, at_hash)
//! and refresh outcomes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatehouse_actors::DomainError;
use gatehouse_actors::domain::upstream::{
    AuthorizeRequest, CodeExchange, ProviderEndpoint, ProviderKind, RefreshFailure, UpstreamClient,
};
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{AccessToken, AccessTokenHash};
use serde_json::{Value, json};

use super::OidcUpstream;

/// RFC 8032 test 1: the seed, wrapped as PKCS#8.
const ED25519_PKCS8: &str = "302e020100300506032b6570042204209d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
/// Its public key as a JWK `x` (RFC 8037, appendix A).
const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// What the ID token the fake signs gets wrong, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    OtherNonce,
    WrongAtHash,
    OtherAudience,
    /// An issuer outside the multi-tenant template.
    OtherIssuer,
}

/// The tenant Microsoft puts in personal accounts' issuer.
const MS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// One request to the token endpoint: its `Authorization` header and its form.
type TokenRequest = (Option<String>, Vec<(String, String)>);

#[derive(Debug)]
struct Fake {
    /// Where the fake listens.
    base: String,
    /// The configured issuer: where discovery is.
    issuer: String,
    /// The issuer the metadata names (a template for multi-tenant metadata).
    metadata_issuer: String,
    /// The `iss` of the ID tokens.
    token_issuer: String,
    nonce: String,
    flaw: Mutex<Flaw>,
    /// Only `client_secret_post` in the metadata.
    post_only: bool,
    discoveries: AtomicU32,
    token_requests: Mutex<Vec<TokenRequest>>,
}

fn jwk() -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "k1", "alg": "EdDSA", "use": "sig" })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn id_token(fake: &Fake, access_token: &str) -> String {
    let flaw = *fake.flaw.lock().unwrap();
    let key: CoreJsonWebKey = serde_json::from_value(jwk()).unwrap();
    let at_hash = AccessTokenHash::from_token(
        &AccessToken::new(if flaw == Flaw::WrongAtHash {
            "another token".to_owned()
        } else {
            access_token.to_owned()
        }),
        &CoreJwsSigningAlgorithm::EdDsa,
        &key,
    )
    .unwrap();
    let audience = if flaw == Flaw::OtherAudience {
        "someone-else"
    } else {
        "client-1"
    };
    let nonce = if flaw == Flaw::OtherNonce {
        "replayed"
    } else {
        fake.nonce.as_str()
    };
    let issuer = if flaw == Flaw::OtherIssuer {
        format!("http://evil.example/{MS_TENANT}/v2.0")
    } else {
        fake.token_issuer.clone()
    };
    let claims = json!({
        "iss": issuer,
        "sub": "user-1",
        "aud": audience,
        "exp": now() + 300,
        "iat": now(),
        "nonce": nonce,
        "at_hash": at_hash.as_str(),
        "email": "ada@example.com",
        "email_verified": true,
        "name": "Ada Lovelace",
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k1".to_owned());
    let key = jsonwebtoken::EncodingKey::from_ed_der(&hex::decode(ED25519_PKCS8).unwrap());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn discovery(State(fake): State<Arc<Fake>>) -> Response {
    fake.discoveries.fetch_add(1, Ordering::SeqCst);
    let methods = if fake.post_only {
        json!(["client_secret_post"])
    } else {
        json!(["client_secret_basic", "client_secret_post"])
    };
    axum::Json(json!({
        "issuer": fake.metadata_issuer,
        "authorization_endpoint": format!("{}/authorize", fake.base),
        "token_endpoint": format!("{}/token", fake.base),
        "jwks_uri": format!("{}/jwks", fake.base),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": methods,
    }))
    .into_response()
}

async fn jwks() -> Response {
    axum::Json(json!({ "keys": [jwk()] })).into_response()
}

async fn token(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap().to_owned());
    fake.token_requests
        .lock()
        .unwrap()
        .push((authorization, form.clone()));
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    match (field("grant_type"), field("refresh_token")) {
        (Some("refresh_token"), Some("dead")) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "invalid_grant" })),
        )
            .into_response(),
        (Some("refresh_token"), Some("flaky")) => {
            (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
        }
        (Some("refresh_token"), Some("wrong-client")) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": "invalid_client" })),
        )
            .into_response(),
        (Some("refresh_token"), _) => axum::Json(json!({
            "access_token": "at-2",
            "token_type": "Bearer",
            "expires_in": 3600,
        }))
        .into_response(),
        _ => axum::Json(json!({
            "access_token": "at-1",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "rt-1",
            "scope": "openid email",
            "id_token": id_token(&fake, "at-1"),
        }))
        .into_response(),
    }
}

async fn start_fake(post_only: bool) -> Arc<Fake> {
    start_fake_with(post_only, false).await
}

/// With `multi_tenant`, the fake is shaped like Microsoft's `common` endpoint: configured as
/// `{base}/common/v2.0`, metadata issuer `{base}/{tenantid}/v2.0`, tokens from one tenant.
async fn start_fake_with(post_only: bool, multi_tenant: bool) -> Arc<Fake> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (issuer, metadata_issuer, token_issuer) = if multi_tenant {
        (
            format!("{base}/common/v2.0"),
            format!("{base}/{{tenantid}}/v2.0"),
            format!("{base}/{MS_TENANT}/v2.0"),
        )
    } else {
        (base.clone(), base.clone(), base.clone())
    };
    let fake = Arc::new(Fake {
        base,
        issuer,
        metadata_issuer,
        token_issuer,
        nonce: "nonce-1".to_owned(),
        flaw: Mutex::new(Flaw::None),
        post_only,
        discoveries: AtomicU32::new(0),
        token_requests: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route(
            "/common/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    fake
}

fn provider(fake: &Fake) -> ProviderEndpoint {
    ProviderEndpoint {
        kind: ProviderKind::Oidc,
        issuer: fake.issuer.clone(),
        client_id: "client-1".to_owned(),
        client_secret: "secret-1".to_owned(),
    }
}

fn exchange(fake: &Fake) -> CodeExchange {
    CodeExchange {
        code: "code-1".to_owned(),
        redirect_uri: "http://127.0.0.1:8080/t/acme/oauth/okta/callback".to_owned(),
        pkce_verifier: VERIFIER.to_owned(),
        nonce: fake.nonce.clone(),
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn a_valid_id_token_gives_the_account_and_its_tokens() {
    let fake = start_fake(false).await;
    let upstream = OidcUpstream::new(true).unwrap();
    let identity = upstream
        .exchange_code(&provider(&fake), &exchange(&fake))
        .await
        .unwrap();
    assert_eq!(identity.subject, "user-1");
    assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(identity.tokens.access_token, "at-1");
    assert_eq!(identity.tokens.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(identity.tokens.scopes, ["openid", "email"]);
    assert!(identity.tokens.expires_at.is_some());

    let requests = fake.token_requests.lock().unwrap().clone();
    let (authorization, form) = &requests[0];
    // client_secret_basic: the secret is in the header, not the body.
    assert!(authorization.as_deref().unwrap().starts_with("Basic "));
    assert_eq!(field(form, "client_secret"), None);
    assert_eq!(field(form, "code"), Some("code-1"));
    assert_eq!(field(form, "code_verifier"), Some(VERIFIER));
    assert_eq!(
        field(form, "redirect_uri"),
        Some("http://127.0.0.1:8080/t/acme/oauth/okta/callback")
    );
}

#[tokio::test]
async fn the_secret_goes_in_the_body_when_the_provider_lists_only_post() {
    let fake = start_fake(true).await;
    let upstream = OidcUpstream::new(true).unwrap();
    upstream
        .exchange_code(&provider(&fake), &exchange(&fake))
        .await
        .unwrap();
    let requests = fake.token_requests.lock().unwrap().clone();
    let (authorization, form) = &requests[0];
    assert_eq!(authorization, &None);
    assert_eq!(field(form, "client_secret"), Some("secret-1"));
}

#[tokio::test]
async fn discovery_is_cached_per_issuer() {
    let fake = start_fake(false).await;
    let upstream = OidcUpstream::new(true).unwrap();
    for _ in 0..3 {
        upstream
            .exchange_code(&provider(&fake), &exchange(&fake))
            .await
            .unwrap();
    }
    assert_eq!(fake.discoveries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn flawed_id_tokens_are_rejected_with_the_reason() {
    let fake = start_fake(false).await;
    let upstream = OidcUpstream::new(true).unwrap();
    for (flaw, reason) in [
        (Flaw::OtherNonce, "nonce"),
        (Flaw::WrongAtHash, "at_hash"),
        (Flaw::OtherAudience, "another client"),
    ] {
        *fake.flaw.lock().unwrap() = flaw;
        let error = upstream
            .exchange_code(&provider(&fake), &exchange(&fake))
            .await
            .unwrap_err();
        match error {
            DomainError::OAuthUpstreamRejected(message) => {
                assert!(message.contains(reason), "{flaw:?}: {message}");
            }
            other => panic!("{flaw:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_authorization_url_asks_for_openid_with_nonce_state_and_pkce() {
    let fake = start_fake(false).await;
    let upstream = OidcUpstream::new(true).unwrap();
    let url = upstream
        .authorization_url(
            &provider(&fake),
            &AuthorizeRequest {
                redirect_uri: "http://127.0.0.1:8080/t/acme/oauth/okta/callback".to_owned(),
                state: "state-1".to_owned(),
                nonce: "nonce-1".to_owned(),
                pkce_verifier: VERIFIER.to_owned(),
                scopes: vec!["openid".into(), "email".into(), "profile".into()],
            },
        )
        .await
        .unwrap();
    let url = url::Url::parse(&url).unwrap();
    assert_eq!(url.path(), "/authorize");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "openid email profile");
    assert_eq!(query["state"], "state-1");
    assert_eq!(query["nonce"], "nonce-1");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["code_challenge"],
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[tokio::test]
async fn refresh_outcomes_follow_the_token_endpoints_answer() {
    let fake = start_fake(false).await;
    let upstream = OidcUpstream::new(true).unwrap();
    let provider = provider(&fake);
    let tokens = upstream
        .refresh(&provider, "live", &["email".to_owned()])
        .await
        .unwrap();
    assert_eq!(tokens.access_token, "at-2");
    assert_eq!(
        tokens.refresh_token, None,
        "not rotated: the caller keeps its own"
    );
    assert_eq!(tokens.scopes, ["email"]);
    assert_eq!(
        upstream.refresh(&provider, "dead", &[]).await.unwrap_err(),
        RefreshFailure::Revoked
    );
    assert!(matches!(
        upstream.refresh(&provider, "flaky", &[]).await.unwrap_err(),
        RefreshFailure::Unavailable(_)
    ));
    assert!(matches!(
        upstream
            .refresh(&provider, "wrong-client", &[])
            .await
            .unwrap_err(),
        RefreshFailure::Rejected(_)
    ));
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let upstream = OidcUpstream::new(true).unwrap();
    let provider = ProviderEndpoint {
        kind: ProviderKind::Oidc,
        issuer,
        client_id: "client-1".to_owned(),
        client_secret: "secret-1".to_owned(),
    };
    let error = upstream
        .exchange_code(
            &provider,
            &CodeExchange {
                code: "c".into(),
                redirect_uri: "http://127.0.0.1/cb".into(),
                pkce_verifier: VERIFIER.into(),
                nonce: "n".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, DomainError::OAuthUpstreamUnavailable(_)),
        "{error:?}"
    );
    assert!(matches!(
        upstream.refresh(&provider, "rt", &[]).await.unwrap_err(),
        RefreshFailure::Unavailable(_)
    ));
}

#[tokio::test]
async fn microsofts_common_endpoint_takes_tokens_of_any_tenant_under_its_template() {
    let fake = start_fake_with(false, true).await;
    let upstream = OidcUpstream::new(true).unwrap();
    let mut microsoft = provider(&fake);
    microsoft.kind = ProviderKind::Microsoft;
    let identity = upstream
        .exchange_code(&microsoft, &exchange(&fake))
        .await
        .unwrap();
    assert_eq!(identity.subject, "user-1");

    *fake.flaw.lock().unwrap() = Flaw::OtherIssuer;
    let error = upstream
        .exchange_code(&microsoft, &exchange(&fake))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DomainError::OAuthUpstreamRejected(message) if message.contains("issuer")),
        "{error:?}"
    );
}

#[tokio::test]
async fn template_metadata_is_refused_for_a_plain_oidc_provider() {
    let fake = start_fake_with(false, true).await;
    let upstream = OidcUpstream::new(true).unwrap();
    let error = upstream
        .exchange_code(&provider(&fake), &exchange(&fake))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DomainError::OAuthUpstreamRejected(message) if message.contains("another issuer")),
        "{error:?}"
    );
}
