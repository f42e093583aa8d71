//! A real OpenID provider for tests: `cluster-tests/oidc/provider.mjs` (the `oidc-provider`
//! npm package on Node.js) on a loopback port, with test controls, and [`Browser`], the
//! cookie jar that walks a sign-in flow through Gatehouse and the provider.
//!
//! The provider runs the authorization code flow with PKCE S256 required, puts `nonce` and
//! the email and profile claims in the ID token, accepts `openid email profile
//! offline_access` and the [`OidcConfig::extra_scopes`], issues a refresh token to every
//! client allowed the `refresh_token` grant and, with [`OidcConfig::rotate_refresh_tokens`]
//! (the default), rotates it on each refresh (a spent one presented again revokes the
//! grant). Login and consent need no form: the provider signs in as the account of
//! [`OidcProvider::set_next_account`] and grants every scope asked for.
//!
//! It needs Node.js (`node`, or `GATEHOUSE_TEST_NODE`) and its packages:
//! `npm ci --prefix cluster-tests/oidc` in the workspace root.

mod browser;
#[cfg(test)]
mod tests;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tempfile::TempDir;

pub use browser::{Browser, Page, query_value};

use crate::error::SandboxError;

/// What the provider prints once it listens: `OIDC READY <port>`.
pub const OIDC_READY_PREFIX: &str = "OIDC READY ";

/// How long the provider may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A client registered with the provider.
#[derive(Clone, Serialize)]
pub struct OidcClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret` (sent with HTTP Basic at the token endpoint).
    pub client_secret: String,
    /// Redirect URIs the client may use.
    pub redirect_uris: Vec<String>,
    /// Grant types, `authorization_code` and `refresh_token` by default.
    pub grant_types: Vec<String>,
    /// How the client authenticates at the token endpoint: `client_secret_basic` (the
    /// default) or `client_secret_post`; the provider accepts only that one.
    pub token_endpoint_auth_method: String,
}

impl OidcClient {
    /// A client with one redirect URI and both the code and the refresh-token grant.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> OidcClient {
        OidcClient {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris: vec![redirect_uri.into()],
            grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
        }
    }

    /// The same client authenticating with `client_secret_post` instead of HTTP Basic.
    pub fn with_secret_post(mut self) -> OidcClient {
        self.token_endpoint_auth_method = "client_secret_post".to_owned();
        self
    }

    /// The same client without the refresh-token grant (it then gets no refresh token).
    pub fn without_refresh(mut self) -> OidcClient {
        self.grant_types.retain(|grant| grant != "refresh_token");
        self
    }
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("client_id", &self.client_id)
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .finish_non_exhaustive()
    }
}

/// How to start the provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Port on 127.0.0.1; 0 (the default) for any free port.
    pub port: u16,
    /// Clients known from the start ([`OidcProvider::add_client`] adds more later).
    pub clients: Vec<OidcClient>,
    /// Lifetime of access tokens (one hour by default).
    pub access_token_ttl: Duration,
    /// Whether each refresh answers a new refresh token and spends the old one (default on).
    pub rotate_refresh_tokens: bool,
    /// Scopes beyond `openid email profile offline_access` that the provider grants.
    pub extra_scopes: Vec<String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            port: 0,
            clients: Vec::new(),
            access_token_ttl: Duration::from_secs(3600),
            rotate_refresh_tokens: true,
            extra_scopes: vec!["repo.read".to_owned(), "repo.write".to_owned()],
        }
    }
}

impl OidcConfig {
    /// Adds a client known from the start.
    pub fn client(mut self, client: OidcClient) -> OidcConfig {
        self.clients.push(client);
        self
    }

    /// Adds a scope the provider grants.
    pub fn extra_scope(mut self, scope: impl Into<String>) -> OidcConfig {
        self.extra_scopes.push(scope.into());
        self
    }

    /// Sets the access tokens' lifetime (whole seconds, at least one).
    pub fn access_token_ttl(mut self, ttl: Duration) -> OidcConfig {
        self.access_token_ttl = ttl;
        self
    }

    /// Turns refresh-token rotation on or off.
    pub fn rotate_refresh_tokens(mut self, rotate: bool) -> OidcConfig {
        self.rotate_refresh_tokens = rotate;
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "clients": self.clients,
            "access_token_ttl_seconds": self.access_token_ttl.as_secs().max(1),
            "rotate_refresh_tokens": self.rotate_refresh_tokens,
            "extra_scopes": self.extra_scopes,
        })
    }
}

/// The upstream account a login signs in as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcAccount {
    /// The provider's subject.
    pub sub: String,
    /// `email`.
    pub email: String,
    /// `email_verified`.
    pub email_verified: bool,
    /// `name`.
    pub name: String,
}

impl OidcAccount {
    /// An account with a verified email, named after its subject.
    pub fn new(sub: impl Into<String>, email: impl Into<String>) -> OidcAccount {
        let sub = sub.into();
        OidcAccount {
            name: format!("User {sub}"),
            sub,
            email: email.into(),
            email_verified: true,
        }
    }

    /// The same account with `email_verified: false`.
    pub fn unverified(mut self) -> OidcAccount {
        self.email_verified = false;
        self
    }
}

/// The token endpoint's counters since the provider started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct OidcStats {
    /// Authorization codes exchanged.
    pub code_grants_served: u64,
    /// Refresh-token grants answered with tokens.
    pub refresh_grants_served: u64,
    /// Refresh-token grants refused (`invalid_grant` and the like).
    pub refresh_grants_refused: u64,
    /// Token requests answered 503 by an outage.
    pub token_requests_refused_by_outage: u64,
    /// The most token requests that were in progress at once.
    pub max_concurrent_token_requests: u64,
}

/// One authorization request the provider received.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuthorizationRecord {
    /// `client_id`.
    pub client_id: String,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `scope` as asked for.
    pub scope: Option<String>,
    /// Whether it carried a `code_challenge` with `code_challenge_method=S256`.
    pub pkce: bool,
    /// `code_challenge_method`.
    pub code_challenge_method: Option<String>,
    /// Whether it carried a `nonce`.
    pub nonce: bool,
    /// Whether it carried a `state`.
    pub state: bool,
    /// `prompt`.
    pub prompt: Option<String>,
}

/// A running test OpenID provider; dropping it kills the process and removes its files.
#[derive(Debug)]
pub struct OidcProvider {
    port: u16,
    issuer: String,
    dir: TempDir,
    http: reqwest::Client,
    process: Option<ProviderProcess>,
}

#[derive(Debug)]
struct ProviderProcess {
    child: Child,
    /// The provider exits when this closes, so it never outlives the test process.
    _stdin: ChildStdin,
}

impl OidcProvider {
    /// Starts a provider on 127.0.0.1 and waits for its ready line.
    pub fn start(config: OidcConfig) -> Result<OidcProvider, SandboxError> {
        let oidc_dir = oidc_dir();
        packages_installed(&oidc_dir)?;
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-oidc-")
            .tempdir()
            .map_err(SandboxError::io("create the OpenID provider's directory"))?;
        let config_path = dir.path().join("config.json");
        fs::write(&config_path, config.to_json().to_string())
            .map_err(SandboxError::io("write the OpenID provider's config"))?;
        let stderr_path = dir.path().join("stderr.log");
        let stderr = fs::File::create(&stderr_path)
            .map_err(SandboxError::io(format!("open {}", stderr_path.display())))?;
        let node = node_binary();
        let mut child = Command::new(&node)
            .arg(oidc_dir.join("provider.mjs"))
            .arg(config.port.to_string())
            .arg(&config_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(SandboxError::io(format!(
                "run the test OpenID provider with {} (install Node.js or set GATEHOUSE_TEST_NODE)",
                node.display()
            )))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(provider_failed("no stdin or stdout pipe", &stderr_path));
        };
        let mut provider = OidcProvider {
            port: 0,
            issuer: String::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(http_error("build the HTTP client"))?,
            process: Some(ProviderProcess {
                child,
                _stdin: stdin,
            }),
            dir,
        };
        match wait_for_ready(stdout, READY_TIMEOUT) {
            Some(port) if config.port == 0 || port == config.port => {
                provider.port = port;
                provider.issuer = format!("http://127.0.0.1:{port}");
                Ok(provider)
            }
            Some(port) => Err(provider_failed(
                &format!("it announced port {port}, not {}", config.port),
                &stderr_path,
            )),
            None => Err(provider_failed("it printed no ready line", &stderr_path)),
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The issuer, `http://127.0.0.1:PORT` (discovery under `/.well-known/openid-configuration`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The authorization endpoint.
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The userinfo endpoint (a bearer access token it issued answers the account's claims).
    pub fn userinfo_endpoint(&self) -> String {
        format!("{}/me", self.issuer)
    }

    /// The last lines the provider wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        tail(&self.dir.path().join("stderr.log"))
    }

    /// Registers a client, or replaces the one with its id.
    pub async fn add_client(&self, client: &OidcClient) -> Result<(), SandboxError> {
        self.control("clients", &serde_json::to_value(client).unwrap_or_default())
            .await
            .map(drop)
    }

    /// The account every following login signs in as (a browser signed in at the
    /// provider as another account signs in again).
    pub async fn set_next_account(&self, account: &OidcAccount) -> Result<(), SandboxError> {
        self.control(
            "next-account",
            &serde_json::to_value(account).unwrap_or_default(),
        )
        .await
        .map(drop)
    }

    /// Destroys every grant of `sub` with its tokens: its refresh tokens then get
    /// `invalid_grant`. Returns how many grants there were.
    pub async fn revoke_grants(&self, sub: &str) -> Result<u64, SandboxError> {
        let reply = self.control("revoke", &json!({ "sub": sub })).await?;
        Ok(reply["revoked"].as_u64().unwrap_or(0))
    }

    /// While on, the token endpoint answers every request with 503.
    pub async fn set_outage(&self, enabled: bool) -> Result<(), SandboxError> {
        self.control("outage", &json!({ "enabled": enabled }))
            .await
            .map(drop)
    }

    /// Makes the token endpoint wait this long before each answer (zero: not at all), so
    /// that concurrent refreshes would overlap.
    pub async fn set_token_delay(&self, delay: Duration) -> Result<(), SandboxError> {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.control("token-delay", &json!({ "ms": ms }))
            .await
            .map(drop)
    }

    /// Makes the ID token of the next code grant wrong in one way, re-signed so that only
    /// that one check can catch it: `nonce`, `audience`, `issuer`, `expired`, or `signature`
    /// (signed with a key the provider's JWKS does not list, under the real key's `kid`).
    pub async fn tamper_next_id_token(&self, mode: &str) -> Result<(), SandboxError> {
        self.control("tamper", &json!({ "mode": mode }))
            .await
            .map(drop)
    }

    /// The token endpoint's counters.
    pub async fn stats(&self) -> Result<OidcStats, SandboxError> {
        self.read("stats").await
    }

    /// How many refresh-token grants the token endpoint answered with tokens.
    pub async fn refresh_grants_served(&self) -> Result<u64, SandboxError> {
        Ok(self.stats().await?.refresh_grants_served)
    }

    /// Every authorization request received so far, in order (whether it used PKCE S256,
    /// carried a nonce, which scopes).
    pub async fn authorizations(&self) -> Result<Vec<AuthorizationRecord>, SandboxError> {
        self.read("authorizations").await
    }

    /// Stops the provider (it is killed; its state is gone).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }

    async fn control(&self, route: &str, body: &Value) -> Result<Value, SandboxError> {
        let url = format!("{}/test/{route}", self.issuer);
        let response = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(http_error(format!("POST {url}")))?;
        self.answer(&url, response).await
    }

    async fn read<T: serde::de::DeserializeOwned>(&self, route: &str) -> Result<T, SandboxError> {
        let url = format!("{}/test/{route}", self.issuer);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(http_error(format!("GET {url}")))?;
        let value = self.answer(&url, response).await?;
        serde_json::from_value(value).map_err(|error| SandboxError::Io {
            context: format!("parse the answer of {url}"),
            source: std::io::Error::other(error),
        })
    }

    async fn answer(&self, url: &str, response: reqwest::Response) -> Result<Value, SandboxError> {
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(http_error(format!("read the answer of {url}")))?;
        if !status.is_success() {
            return Err(SandboxError::Io {
                context: format!("{url} answered {status}"),
                source: std::io::Error::other(format!("{body}; stderr:\n{}", self.stderr_tail())),
            });
        }
        serde_json::from_str(&body).map_err(|error| SandboxError::Io {
            context: format!("parse the answer of {url}: {body}"),
            source: std::io::Error::other(error),
        })
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP failure as a [`SandboxError::Io`].
pub(crate) fn http_error(
    context: impl Into<String>,
) -> impl FnOnce(reqwest::Error) -> SandboxError {
    let context = context.into();
    move |error| SandboxError::Io {
        context,
        source: std::io::Error::other(error),
    }
}

fn provider_failed(reason: &str, stderr_path: &Path) -> SandboxError {
    SandboxError::Io {
        context: format!("the test OpenID provider did not start: {reason}"),
        source: std::io::Error::other(format!("end of its stderr:\n{}", tail(stderr_path))),
    }
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The ready line's port, read on a thread so a silent process cannot hang the caller; the
/// thread then keeps draining stdout so the provider never blocks on a full pipe.
fn wait_for_ready(stdout: std::process::ChildStdout, timeout: Duration) -> Option<u16> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("gatehouse-oidc-stdout".to_owned())
        .spawn(move || {
            let mut announced = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !announced && let Some(port) = line.strip_prefix(OIDC_READY_PREFIX) {
                    announced = true;
                    let _ = sender.send(port.trim().parse::<u16>().ok());
                }
            }
        })
        .ok()?;
    receiver.recv_timeout(timeout).ok().flatten()
}

/// Whether `npm ci` has installed the provider's packages in `dir`.
fn packages_installed(dir: &Path) -> Result<(), SandboxError> {
    let package = dir
        .join("node_modules")
        .join("oidc-provider")
        .join("package.json");
    if package.is_file() {
        return Ok(());
    }
    Err(SandboxError::Io {
        context: "the test OpenID provider needs its npm packages: run \
                  `npm ci --prefix cluster-tests/oidc` in the workspace root"
            .to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is missing", package.display()),
        ),
    })
}

/// `cluster-tests/oidc`: the script, its package files and its `node_modules`.
fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

/// `GATEHOUSE_TEST_NODE`, else `node`.
fn node_binary() -> PathBuf {
    std::env::var_os("GATEHOUSE_TEST_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"))
}
