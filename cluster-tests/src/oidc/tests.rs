//! The test provider driven by hand, as a relying party would: authorize with PKCE S256,
//! exchange the code, check the ID token against the provider's JWKS, refresh, and the test
//! controls (revocation, outage, the next account).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::*;

const CLIENT_ID: &str = "kit-client";
const CLIENT_SECRET: &str = "kit-client-secret";
const REDIRECT_URI: &str = "https://app.example.test/callback";

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A PKCE verifier and its S256 challenge (RFC 7636 section 4.2).
fn pkce() -> (String, String) {
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn provider() -> OidcProvider {
    let config =
        OidcConfig::default().client(OidcClient::new(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI));
    OidcProvider::start(config).unwrap()
}

fn authorize_url(op: &OidcProvider, scope: &str, nonce: &str, challenge: Option<&str>) -> String {
    let mut url = Url::parse(&op.authorization_endpoint()).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", "kit-state")
        .append_pair("nonce", nonce);
    if let Some(challenge) = challenge {
        url.query_pairs_mut()
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
    }
    url.to_string()
}

async fn token_request(op: &OidcProvider, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(op.token_endpoint())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Signs `browser` in through the provider and exchanges the code: the token response.
async fn sign_in(op: &OidcProvider, browser: &Browser, scope: &str, nonce: &str) -> Value {
    let (verifier, challenge) = pkce();
    let back = browser
        .follow(
            &authorize_url(op, scope, nonce, Some(&challenge)),
            REDIRECT_URI,
        )
        .await
        .unwrap();
    assert_eq!(query_value(&back, "state").as_deref(), Some("kit-state"));
    let code = query_value(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let (status, tokens) = token_request(
        op,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// The ID token's claims, its signature checked against the JWKS that discovery names.
async fn verified_id_token(op: &OidcProvider, id_token: &str) -> Value {
    let discovery: Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", op.issuer()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(discovery["issuer"], op.issuer());
    let jwks: JwkSet = reqwest::get(discovery["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[op.issuer()]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims
}

async fn refresh(op: &OidcProvider, refresh_token: &str) -> (u16, Value) {
    token_request(
        op,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

#[tokio::test]
async fn a_code_flow_with_pkce_gives_an_id_token_with_the_nonce_and_the_account() {
    let op = provider();
    let account = OidcAccount::new("upstream-ada", "ada@example.test");
    op.set_next_account(&account).await.unwrap();
    let browser = Browser::new();
    let tokens = sign_in(&op, &browser, "openid email profile repo.read", "nonce-1").await;

    let claims = verified_id_token(&op, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["sub"], "upstream-ada");
    assert_eq!(claims["email"], "ada@example.test");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], account.name.as_str());
    let scopes: Vec<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&"repo.read"), "{scopes:?}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    assert!(tokens["access_token"].is_string());

    let seen = op.authorizations().await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].pkce && seen[0].nonce && seen[0].state, "{seen:?}");
    assert_eq!(op.stats().await.unwrap().code_grants_served, 1);

    // The userinfo endpoint knows the account too.
    let userinfo: Value = reqwest::Client::new()
        .get(op.userinfo_endpoint())
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["email"], "ada@example.test");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_die_with_a_revoked_grant() {
    let op = provider();
    op.set_next_account(&OidcAccount::new("upstream-bob", "bob@example.test"))
        .await
        .unwrap();
    let tokens = sign_in(&op, &Browser::new(), "openid email", "n").await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();

    let (status, refreshed) = refresh(&op, &first).await;
    assert_eq!(status, 200, "{refreshed}");
    let second = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "rotation is on by default");
    assert_ne!(refreshed["access_token"], tokens["access_token"]);
    assert_eq!(op.refresh_grants_served().await.unwrap(), 1);

    assert_eq!(op.revoke_grants("upstream-bob").await.unwrap(), 1);
    let (status, refused) = refresh(&op, &second).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    let stats = op.stats().await.unwrap();
    assert_eq!(stats.refresh_grants_served, 1);
    assert_eq!(stats.refresh_grants_refused, 1);
}

#[tokio::test]
async fn an_outage_answers_503_until_it_ends() {
    let op = provider();
    let tokens = sign_in(&op, &Browser::new(), "openid", "n").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    op.set_outage(true).await.unwrap();
    let (status, _) = refresh(&op, refresh_token).await;
    assert_eq!(status, 503);
    op.set_outage(false).await.unwrap();
    let (status, body) = refresh(&op, refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let stats = op.stats().await.unwrap();
    assert_eq!(stats.token_requests_refused_by_outage, 1);
    assert_eq!(stats.refresh_grants_served, 1);
}

#[tokio::test]
async fn a_request_without_pkce_is_refused() {
    let op = provider();
    let back = Browser::new()
        .follow(&authorize_url(&op, "openid", "n", None), REDIRECT_URI)
        .await
        .unwrap();
    assert_eq!(
        query_value(&back, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(query_value(&back, "code").is_none());
    assert!(!op.authorizations().await.unwrap()[0].pkce);
}

#[tokio::test]
async fn the_same_browser_signs_in_again_as_the_next_account() {
    let op = provider();
    let browser = Browser::new();
    op.set_next_account(&OidcAccount::new("first", "first@example.test"))
        .await
        .unwrap();
    let tokens = sign_in(&op, &browser, "openid email", "n1").await;
    let claims = verified_id_token(&op, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "first");

    // Same account again: the provider's session is reused.
    let tokens = sign_in(&op, &browser, "openid email", "n2").await;
    let claims = verified_id_token(&op, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "first");

    op.set_next_account(&OidcAccount::new("second", "second@example.test").unverified())
        .await
        .unwrap();
    let tokens = sign_in(&op, &browser, "openid email", "n3").await;
    let claims = verified_id_token(&op, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "second");
    assert_eq!(claims["email_verified"], false);
}

#[tokio::test]
async fn clients_added_later_work_and_a_stopped_flow_shows_its_page() {
    let op = OidcProvider::start(OidcConfig::default()).unwrap();
    let browser = Browser::new();
    // Unknown client: the provider cannot redirect back, it answers a page itself.
    let error = browser
        .follow(
            &authorize_url(&op, "openid", "n", Some(&pkce().1)),
            REDIRECT_URI,
        )
        .await
        .unwrap_err();
    let page = browser.last_page().expect("the page the flow stopped at");
    assert_eq!(page.status, 400, "{error}: {page:?}");

    op.add_client(&OidcClient::new(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI))
        .await
        .unwrap();
    let tokens = sign_in(&op, &browser, "openid", "n").await;
    assert!(tokens["id_token"].is_string());
}

#[tokio::test]
async fn prompt_consent_grants_offline_access_without_a_form() {
    let op = provider();
    let (verifier, challenge) = pkce();
    let url =
        authorize_url(&op, "openid offline_access", "n", Some(&challenge)) + "&prompt=consent";
    let browser = Browser::new();
    let back = browser.follow(&url, REDIRECT_URI).await.unwrap();
    let code = query_value(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let (status, tokens) = token_request(
        &op,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let scopes: Vec<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&"offline_access"), "{scopes:?}");
    assert!(tokens["refresh_token"].is_string());
    // A wrong verifier is refused.
    let back = browser
        .follow(
            &authorize_url(&op, "openid", "n", Some(&challenge)),
            REDIRECT_URI,
        )
        .await
        .unwrap();
    let code = query_value(&back, "code").unwrap();
    let (status, refused) = token_request(
        &op,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &pkce().0),
        ],
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
}

#[test]
fn the_script_and_its_lock_file_ship_with_the_kit() {
    let dir = oidc_dir();
    assert!(dir.join("provider.mjs").is_file());
    let lock = fs::read_to_string(dir.join("package-lock.json")).unwrap();
    let lock: Value = serde_json::from_str(&lock).unwrap();
    let version = lock["packages"]["node_modules/oidc-provider"]["version"]
        .as_str()
        .unwrap();
    assert!(version.starts_with("8."), "{version}");
}

#[test]
fn missing_packages_are_reported_with_how_to_install_them() {
    let empty = tempfile::tempdir().unwrap();
    let message = packages_installed(empty.path()).unwrap_err().to_string();
    assert!(
        message.contains("npm ci --prefix cluster-tests/oidc"),
        "{message}"
    );
    packages_installed(&oidc_dir()).unwrap();
}
