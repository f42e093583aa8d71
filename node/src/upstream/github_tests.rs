//! [`OidcUpstream`]'s GitHub kind against a fake GitHub Enterprise Server on 127.0.0.1: the
//! token endpoint's habits (errors with HTTP 200, comma-separated scopes), then the user and
//! emails API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatehouse_actors::DomainError;
use gatehouse_actors::domain::upstream::{
    CodeExchange, ProviderEndpoint, ProviderKind, RefreshFailure, UpstreamClient,
};
use serde_json::json;

use super::OidcUpstream;

#[derive(Debug, Default)]
struct Fake {
    /// `/user/emails` answers 404 (no `user:email` scope).
    no_emails: bool,
    api_headers: Mutex<Vec<HeaderMap>>,
}

async fn token(body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    if field("client_secret").as_deref() != Some("gh-secret") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    match (
        field("grant_type").as_deref(),
        field("code").as_deref(),
        field("refresh_token").as_deref(),
    ) {
        // GitHub's refusals come with HTTP 200.
        (Some("authorization_code"), Some("stale"), _) => {
            axum::Json(json!({ "error": "bad_verification_code" })).into_response()
        }
        (Some("refresh_token"), _, Some("expired")) => {
            axum::Json(json!({ "error": "bad_refresh_token" })).into_response()
        }
        _ => axum::Json(json!({
            "access_token": "gho_1",
            "token_type": "bearer",
            "scope": "read:user,user:email",
        }))
        .into_response(),
    }
}

async fn user(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    fake.api_headers.lock().unwrap().push(headers);
    axum::Json(
        json!({ "id": 583231, "login": "octocat", "name": null, "email": "public@example.com" }),
    )
    .into_response()
}

async fn emails(State(fake): State<Arc<Fake>>) -> Response {
    if fake.no_emails {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(json!([
        { "email": "old@example.com", "primary": false, "verified": true },
        { "email": "octo@example.com", "primary": true, "verified": true },
    ]))
    .into_response()
}

async fn start_fake(no_emails: bool) -> (Arc<Fake>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let fake = Arc::new(Fake {
        no_emails,
        ..Fake::default()
    });
    let app = Router::new()
        .route("/login/oauth/access_token", post(token))
        .route("/api/v3/user", get(user))
        .route("/api/v3/user/emails", get(emails))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, issuer)
}

fn provider(issuer: &str) -> ProviderEndpoint {
    ProviderEndpoint {
        kind: ProviderKind::Github,
        issuer: issuer.to_owned(),
        client_id: "Iv1.client".to_owned(),
        client_secret: "gh-secret".to_owned(),
    }
}

fn exchange(code: &str) -> CodeExchange {
    CodeExchange {
        code: code.to_owned(),
        redirect_uri: "http://127.0.0.1:8080/t/acme/oauth/github/callback".to_owned(),
        pkce_verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
        nonce: String::new(),
    }
}

#[tokio::test]
async fn the_account_is_the_user_id_with_the_primary_verified_address() {
    let (fake, issuer) = start_fake(false).await;
    let upstream = OidcUpstream::new(true).unwrap();
    let identity = upstream
        .exchange_code(&provider(&issuer), &exchange("good"))
        .await
        .unwrap();
    assert_eq!(identity.subject, "583231");
    assert_eq!(identity.email.as_deref(), Some("octo@example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.display_name.as_deref(), Some("octocat"));
    assert_eq!(identity.tokens.access_token, "gho_1");
    assert_eq!(identity.tokens.scopes, ["read:user", "user:email"]);

    let headers = fake.api_headers.lock().unwrap()[0].clone();
    assert_eq!(headers[header::AUTHORIZATION], "Bearer gho_1");
    assert_eq!(headers[header::USER_AGENT], "gatehouse");
    assert_eq!(headers[header::ACCEPT], "application/vnd.github+json");
}

#[tokio::test]
async fn without_the_emails_api_the_public_address_is_not_verified() {
    let (_fake, issuer) = start_fake(true).await;
    let upstream = OidcUpstream::new(true).unwrap();
    let identity = upstream
        .exchange_code(&provider(&issuer), &exchange("good"))
        .await
        .unwrap();
    assert_eq!(identity.email.as_deref(), Some("public@example.com"));
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn a_refusal_in_a_200_answer_is_rejected() {
    let (_fake, issuer) = start_fake(false).await;
    let upstream = OidcUpstream::new(true).unwrap();
    let error = upstream
        .exchange_code(&provider(&issuer), &exchange("stale"))
        .await
        .unwrap_err();
    match error {
        DomainError::OAuthUpstreamRejected(message) => {
            assert!(message.contains("bad_verification_code"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_expired_refresh_token_is_revoked() {
    let (_fake, issuer) = start_fake(false).await;
    let upstream = OidcUpstream::new(true).unwrap();
    assert_eq!(
        upstream
            .refresh(&provider(&issuer), "expired", &[])
            .await
            .unwrap_err(),
        RefreshFailure::Revoked
    );
    let tokens = upstream
        .refresh(&provider(&issuer), "fine", &[])
        .await
        .unwrap();
    assert_eq!(tokens.access_token, "gho_1");
    let mut wrong = provider(&issuer);
    wrong.client_secret = "nope".to_owned();
    assert!(matches!(
        upstream.refresh(&wrong, "fine", &[]).await.unwrap_err(),
        RefreshFailure::Rejected(_)
    ));
}
