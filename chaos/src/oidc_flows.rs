//! The OpenID provider under load, over HTTP as an application and a browser use it:
//! `oidc_code_flow` (a signed-in browser's `GET …/oauth2/authorize` answered with a code,
//! then the application's `POST …/oauth2/token` for it: one flow), `oidc_refresh` (the token
//! endpoint's refresh grant) and `sign_in_page` (`GET …/handler/sign-in`, time to the
//! response's headers). Each worker is one browser signed in through the hosted sign-in
//! form (untimed setup) and one confidential, first-party client's back channel.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::PhaseSummary;
use crate::workload::{Account, Step, run_workers};

/// A PKCE verifier and its S256 challenge (one pair for every flow: the provider checks the
/// pair, the load does not need fresh secrets).
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K1C-ozH7ZGb0yE6vpDBCF0ju3E";
const CHALLENGE: &str = "TJwej6JDfTjl4bIDoNEgSDR517o-8Z3atJJB3G-XwLY";
const REDIRECT_URI: &str = "https://app.example.com/callback";

/// One browser and the application it signs in to.
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    issuer: String,
    pages: String,
    cookies: String,
    client_id: String,
    secret: String,
    refresh_token: Option<String>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The cookies of `response` as one `Cookie` header value, added to `jar`.
fn keep_cookies(jar: &mut Vec<(String, String)>, response: &reqwest::Response) {
    for value in response.headers().get_all(SET_COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        let pair = text.split(';').next().unwrap_or_default();
        if let Some((name, value)) = pair.split_once('=') {
            jar.retain(|(kept, _)| kept != name);
            jar.push((name.trim().to_owned(), value.to_owned()));
        }
    }
}

fn cookie_header(jar: &[(String, String)]) -> String {
    jar.iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn http_error(context: &str, error: impl std::fmt::Display) -> ChaosError {
    ChaosError::Http(format!("{context}: {error}"))
}

/// Registers the load's client and signs one browser in per account (untimed).
pub async fn prepare(
    http_base: &str,
    tenant_id: &str,
    issuer: &str,
    server: &Client,
    accounts: &[Account],
) -> Result<Vec<Browser>, ChaosError> {
    let created = server
        .create_oidc_client(v1::CreateOidcClientRequest {
            name: "gatehouse-load".to_owned(),
            kind: v1::OidcClientKind::Confidential as i32,
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            post_logout_redirect_uris: Vec::new(),
            allowed_scopes: Vec::new(),
            first_party: true,
        })
        .await
        .map_err(|error| ChaosError::api("create the OpenID client", error))?;
    let client_id = created
        .client
        .map(|client| client.client_id)
        .ok_or_else(|| ChaosError::Local("the created client has no id".to_owned()))?;
    let pages = format!("{}/t/{tenant_id}/handler", http_base.trim_end_matches('/'));
    let mut browsers = Vec::with_capacity(accounts.len());
    for account in accounts {
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| http_error("client", error))?;
        let mut jar = Vec::new();
        let page = http
            .get(format!("{pages}/sign-in"))
            .send()
            .await
            .map_err(|error| http_error("sign-in page", error))?;
        keep_cookies(&mut jar, &page);
        let html = page
            .text()
            .await
            .map_err(|error| http_error("sign-in page", error))?;
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| ChaosError::Local("the sign-in page has no CSRF field".to_owned()))?
            .to_owned();
        let signed_in = http
            .post(format!("{pages}/sign-in"))
            .header(COOKIE, cookie_header(&jar))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", account.email.as_str()),
                ("password", account.password.as_str()),
            ])
            .send()
            .await
            .map_err(|error| http_error("sign in", error))?;
        keep_cookies(&mut jar, &signed_in);
        if !jar.iter().any(|(name, _)| name == "gatehouse_session") {
            return Err(ChaosError::Local(format!(
                "signing {} in through the page gave no session ({})",
                account.email,
                signed_in.status()
            )));
        }
        browsers.push(Browser {
            http,
            issuer: issuer.to_owned(),
            pages: pages.clone(),
            cookies: cookie_header(&jar),
            client_id: client_id.clone(),
            secret: created.client_secret.clone(),
            refresh_token: None,
        });
    }
    Ok(browsers)
}

impl Browser {
    /// One authorization-code flow: authorize (the browser), then token (the application).
    async fn code_flow(&mut self) -> Result<(), String> {
        let authorize = self
            .http
            .get(format!("{}/oauth2/authorize", self.issuer))
            .header(COOKIE, &self.cookies)
            .query(&[
                ("client_id", self.client_id.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("response_type", "code"),
                ("scope", "openid email"),
                ("state", "load"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .map_err(|_| "HTTP_AUTHORIZE".to_owned())?;
        let location = authorize
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let code = url::Url::parse(location)
            .ok()
            .and_then(|url| {
                url.query_pairs()
                    .find(|(name, _)| name == "code")
                    .map(|(_, code)| code.into_owned())
            })
            .ok_or_else(|| format!("AUTHORIZE_{}", authorize.status().as_u16()))?;
        let tokens = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ])
            .await?;
        self.refresh_token = tokens["refresh_token"].as_str().map(str::to_owned);
        Ok(())
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<serde_json::Value, String> {
        let response = self
            .http
            .post(format!("{}/oauth2/token", self.issuer))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(form)
            .send()
            .await
            .map_err(|_| "HTTP_TOKEN".to_owned())?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|_| "TOKEN_BODY".to_owned())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(body["error"].as_str().unwrap_or("TOKEN_ERROR").to_owned())
        }
    }
}

struct CodeFlow(Browser);

impl Step for CodeFlow {
    async fn step(&mut self) -> Result<(), String> {
        self.0.code_flow().await
    }
}

struct Refresh(Browser);

impl Step for Refresh {
    async fn step(&mut self) -> Result<(), String> {
        let token = self.0.refresh_token.clone().ok_or("NO_REFRESH_TOKEN")?;
        let tokens = self
            .0
            .token(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
            .await?;
        self.0.refresh_token = tokens["refresh_token"].as_str().map(str::to_owned);
        Ok(())
    }
}

struct SignInPage(Browser);

impl Step for SignInPage {
    async fn step(&mut self) -> Result<(), String> {
        // A browser without a session: the form itself, not the redirect to the account.
        let response = self
            .0
            .http
            .get(format!("{}/sign-in", self.0.pages))
            .send()
            .await
            .map_err(|_| "HTTP_PAGE".to_owned())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("PAGE_{}", response.status().as_u16()))
        }
    }
}

/// `oidc_code_flow`: whole flows per second.
pub async fn run_code_flows(browsers: Vec<Browser>, budget: Arc<Budget>) -> PhaseSummary {
    run_workers(browsers.into_iter().map(CodeFlow).collect(), budget).await
}

/// `oidc_refresh`: each browser's application gets its tokens once (untimed), then
/// refreshes.
pub async fn run_refreshes(
    mut browsers: Vec<Browser>,
    budget: Arc<Budget>,
) -> Result<PhaseSummary, ChaosError> {
    for browser in &mut browsers {
        browser
            .code_flow()
            .await
            .map_err(|code| ChaosError::Local(format!("the first code flow failed: {code}")))?;
    }
    Ok(run_workers(browsers.into_iter().map(Refresh).collect(), budget).await)
}

/// `sign_in_page`: the sign-in page's time to its response headers.
pub async fn run_sign_in_page(browsers: Vec<Browser>, budget: Arc<Budget>) -> PhaseSummary {
    run_workers(browsers.into_iter().map(SignInPage).collect(), budget).await
}
