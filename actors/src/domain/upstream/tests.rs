//! Unit tests of upstream sign-in through the facade, over the in-memory store with a manual
//! clock and a fake [`UpstreamClient`]: providers, the flow's state and browser binding,
//! the link and sign-in rules, anonymous upgrades, the single-use code and unlinking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_storage::{Database, RangeOptions, Subspace};
use url::Url;

use super::*;
use crate::access::{Caller, Credentials};
use crate::api::SignedIn;
use crate::api::oauth::{OAuthCallback, OAuthRedirect, OAuthStart, ProviderSpec, ProviderUpdate};
use crate::context::{Context, ManualClock, OsEntropy, Timestamp};
use crate::domain::crypto::MasterKey;
use crate::domain::passwords::Argon2Params;
use crate::domain::sessions::ClientInfo;
use crate::domain::tenants::SettingsChanges;
use crate::domain::tenants::anonymous::AnonymousSettingsChanges;
use crate::error::DomainError;
use crate::gatehouse::{Gatehouse, GatehouseOptions};

/// What the fake provider saw and will answer.
#[derive(Debug, Default)]
pub(super) struct FakeUpstream {
    /// The account the next code exchange returns.
    pub(super) identity: Mutex<Option<UpstreamIdentity>>,
    /// An error the next code exchange returns instead.
    pub(super) exchange_error: Mutex<Option<DomainError>>,
    /// Answers of the next refreshes, in order (a fresh token set when empty).
    pub(super) refresh_answers: Mutex<VecDeque<Result<TokenSet, RefreshFailure>>>,
    /// Refresh tokens the refreshes were called with.
    pub(super) refreshed_with: Mutex<Vec<String>>,
    /// How many refreshes ran.
    pub(super) refreshes: AtomicUsize,
    /// The last authorization request.
    pub(super) authorize: Mutex<Option<(ProviderEndpoint, AuthorizeRequest)>>,
    /// The last code exchange.
    pub(super) exchange: Mutex<Option<CodeExchange>>,
}

#[async_trait::async_trait]
impl UpstreamClient for FakeUpstream {
    async fn authorization_url(
        &self,
        provider: &ProviderEndpoint,
        request: &AuthorizeRequest,
    ) -> DomainResult<String> {
        *self.authorize.lock().unwrap() = Some((provider.clone(), request.clone()));
        Ok(format!(
            "https://idp.example/authorize?state={}",
            request.state
        ))
    }

    async fn exchange_code(
        &self,
        _provider: &ProviderEndpoint,
        exchange: &CodeExchange,
    ) -> DomainResult<UpstreamIdentity> {
        *self.exchange.lock().unwrap() = Some(exchange.clone());
        if let Some(error) = self.exchange_error.lock().unwrap().take() {
            return Err(error);
        }
        Ok(self.identity.lock().unwrap().clone().expect("an identity"))
    }

    async fn refresh(
        &self,
        _provider: &ProviderEndpoint,
        refresh_token: &str,
        scopes: &[String],
    ) -> Result<TokenSet, RefreshFailure> {
        let number = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
        self.refreshed_with
            .lock()
            .unwrap()
            .push(refresh_token.to_owned());
        // Give a concurrent caller the chance to overlap.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answer = self.refresh_answers.lock().unwrap().pop_front();
        answer.unwrap_or_else(|| {
            Ok(TokenSet {
                access_token: format!("refreshed-access-{number}"),
                refresh_token: None,
                expires_at: Some(Timestamp(START + 2 * 3_600_000)),
                scopes: scopes.to_vec(),
            })
        })
    }
}

/// The manual clock's start.
pub(super) const START: i64 = 1_700_000_000_000;
/// Where the app wants the browser back.
pub(super) const APP: &str = "https://app.example.com/done";

/// How a flow ended, from the URL the browser is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Code(String),
    Linked(String),
    Error(String),
}

pub(super) fn outcome_of(url: &str) -> Outcome {
    let url = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let (key, value) = pairs.last().cloned().unwrap();
    match key.as_str() {
        "code" => Outcome::Code(value),
        "linked" => Outcome::Linked(value),
        "error" => Outcome::Error(value),
        other => panic!("unexpected {other} in {url}"),
    }
}

pub(super) struct World {
    pub(super) gatehouse: Arc<Gatehouse>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) fake: Arc<FakeUpstream>,
    pub(super) server: Caller,
    pub(super) client_key: String,
}

impl World {
    /// Tenant `acme` trusting `app.example.com`, with the provider `google`.
    pub(super) async fn new() -> World {
        let clock = Arc::new(ManualClock::new(Timestamp(START)));
        let context = Context {
            clock: clock.clone(),
            entropy: Arc::new(OsEntropy),
            live_sessions: Default::default(),
        };
        let fake = Arc::new(FakeUpstream::default());
        let gatehouse = Gatehouse::start(
            Database::memory(),
            context,
            MasterKey::from_bytes(&[9; 32]),
            GatehouseOptions {
                password_hash_threads: 1,
                argon2: Argon2Params {
                    memory_kib: 64,
                    iterations: 1,
                    parallelism: 1,
                },
                upstream: Some(fake.clone()),
                ..GatehouseOptions::default()
            },
        )
        .await
        .unwrap();
        let operator = Caller::Operator { tenant: None };
        let created = gatehouse
            .create_tenant(&operator, "Acme", "acme")
            .await
            .unwrap();
        gatehouse
            .update_tenant_settings(
                &operator,
                "acme",
                SettingsChanges {
                    trusted_domains: Some(vec!["app.example.com".to_owned()]),
                    anonymous: AnonymousSettingsChanges {
                        enabled: Some(true),
                        idle_ttl_seconds: None,
                    },
                    ..SettingsChanges::default()
                },
            )
            .await
            .unwrap();
        let server = Caller::Server {
            tenant: gatehouse.services().tenant("acme").await.unwrap(),
        };
        let world = World {
            gatehouse,
            clock,
            fake,
            server,
            client_key: created.publishable_client_key,
        };
        world
            .add_provider("google", ProviderKind::Google, false)
            .await;
        world
    }

    pub(super) async fn add_provider(&self, id: &str, kind: ProviderKind, linking: bool) {
        self.gatehouse
            .create_oauth_provider(&self.server, spec(id, kind, linking))
            .await
            .unwrap();
    }

    /// A client of `acme` without a user.
    pub(super) async fn client(&self) -> Caller {
        self.authenticate(None).await
    }

    /// A client of `acme` signed in as `signed`.
    pub(super) async fn user(&self, signed: &SignedIn) -> Caller {
        self.authenticate(Some(signed.access_token.token.clone()))
            .await
    }

    pub(super) async fn authenticate(&self, access_token: Option<String>) -> Caller {
        self.gatehouse
            .authenticate(&Credentials {
                tenant: Some("acme".to_owned()),
                client_key: Some(self.client_key.clone()),
                access_token,
                ..Credentials::default()
            })
            .await
            .unwrap()
    }

    /// The provider's next answer: `subject` with `email`, tokens named after the subject.
    pub(super) fn answer(&self, subject: &str, email: Option<&str>, verified: bool) {
        *self.fake.identity.lock().unwrap() = Some(UpstreamIdentity {
            subject: subject.to_owned(),
            email: email.map(str::to_owned),
            email_verified: verified,
            display_name: Some("Ada Upstream".to_owned()),
            tokens: TokenSet {
                access_token: format!("access-{subject}"),
                refresh_token: Some(format!("refresh-{subject}")),
                expires_at: Some(Timestamp(START + 3_600_000)),
                scopes: Vec::new(),
            },
        });
    }

    /// Starts a flow; returns the redirect and the state the provider was sent.
    pub(super) async fn start(
        &self,
        provider: &str,
        ticket: Option<&str>,
    ) -> DomainResult<(OAuthRedirect, String)> {
        let redirect = self
            .gatehouse
            .start_oauth(
                "acme",
                provider,
                OAuthStart {
                    redirect_url: APP.to_owned(),
                    link_ticket: ticket.map(str::to_owned),
                    extra_scopes: Vec::new(),
                    client: ClientInfo::default(),
                },
            )
            .await?;
        let state = self.fake.authorize.lock().unwrap().clone().unwrap().1.state;
        Ok((redirect, state))
    }

    pub(super) async fn callback(
        &self,
        provider: &str,
        state: &str,
        cookie: Option<&str>,
    ) -> DomainResult<Outcome> {
        self.gatehouse
            .finish_oauth("acme", provider, callback(state, cookie))
            .await
            .map(|url| outcome_of(&url))
    }

    /// A whole browser flow with `provider`, the provider answering as set.
    pub(super) async fn flow(&self, provider: &str, ticket: Option<&str>) -> Outcome {
        let (redirect, state) = self.start(provider, ticket).await.unwrap();
        self.callback(provider, &state, Some(&redirect.state_cookie))
            .await
            .unwrap()
    }

    /// Signs in (or up) through `google` as `subject`.
    pub(super) async fn signed_in(&self, subject: &str, email: &str) -> SignedIn {
        self.answer(subject, Some(email), true);
        let Outcome::Code(code) = self.flow("google", None).await else {
            panic!("no code");
        };
        self.exchange(&code).await.unwrap()
    }

    pub(super) async fn exchange(&self, code: &str) -> DomainResult<SignedIn> {
        let client = self.client().await;
        self.gatehouse
            .exchange_oauth_code(&client, code, &ClientInfo::default())
            .await
    }

    /// The actions of `acme`'s audit ledger, oldest first.
    pub(super) async fn audit_actions(&self) -> Vec<String> {
        let page = self
            .gatehouse
            .list_audit_entries(&self.server, 200, "")
            .await
            .unwrap();
        page.entries
            .into_iter()
            .map(|entry| entry.event.action)
            .collect()
    }

    /// Every stored value of `acme`.
    pub(super) async fn stored_values(&self) -> Vec<Vec<u8>> {
        let (begin, end) = Subspace::from(&("t", "acme")).range();
        let (begin, end) = (&begin, &end);
        self.gatehouse
            .services()
            .db
            .run(|tx| async move {
                let rows = tx.get_range(begin, end, RangeOptions::default()).await?;
                Ok::<_, DomainError>(rows.into_iter().map(|(_, value)| value).collect())
            })
            .await
            .unwrap()
    }
}

pub(super) fn spec(id: &str, kind: ProviderKind, linking: bool) -> ProviderSpec {
    ProviderSpec {
        provider_id: id.to_owned(),
        kind,
        display_name: String::new(),
        issuer: String::new(),
        client_id: format!("client-{id}"),
        client_secret: format!("very-secret-{id}"),
        scopes: Vec::new(),
        allow_email_linking: linking,
        allow_sign_up: None,
    }
}

pub(super) fn callback(state: &str, cookie: Option<&str>) -> OAuthCallback {
    OAuthCallback {
        state: state.to_owned(),
        code: Some("upstream-code".to_owned()),
        error: None,
        state_cookie: cookie.map(str::to_owned),
        client: ClientInfo::default(),
    }
}

#[tokio::test]
async fn a_sign_up_ends_in_a_code_that_signs_in_once() {
    let world = World::new().await;
    world.answer("g-1", Some("Ada@Example.com"), true);
    let (redirect, state) = world.start("google", None).await.unwrap();
    assert_eq!(redirect.cookie_max_age, Duration::from_secs(600));
    let (_, request) = world.fake.authorize.lock().unwrap().clone().unwrap();
    assert!(request.pkce_verifier.len() >= 43);
    assert_eq!(
        request.redirect_uri,
        "http://127.0.0.1:8080/t/acme/oauth/google/callback"
    );
    let url = world
        .gatehouse
        .finish_oauth(
            "acme",
            "google",
            callback(&state, Some(&redirect.state_cookie)),
        )
        .await
        .unwrap();
    assert!(
        url.starts_with("https://app.example.com/done?code=goc_"),
        "{url}"
    );
    let exchange = world.fake.exchange.lock().unwrap().clone().unwrap();
    assert_eq!(exchange.pkce_verifier, request.pkce_verifier);
    assert_eq!(exchange.nonce, request.nonce);
    let Outcome::Code(code) = outcome_of(&url) else {
        panic!("{url}");
    };
    let signed = world.exchange(&code).await.unwrap();
    assert_eq!(signed.user.email, "Ada@Example.com");
    assert!(signed.user.email_verified);
    assert_eq!(signed.user.display_name, "Ada Upstream");
    assert_eq!(signed.session.amr, ["fed"]);
    assert!(matches!(
        world.exchange(&code).await,
        Err(DomainError::OAuthCodeInvalid)
    ));
    // The second sign-in finds the link.
    let again = world.signed_in("g-1", "changed@example.com").await;
    assert_eq!(again.user.user_id, signed.user.user_id);
    let user_id = signed.user.user_id.to_string();
    let links = world
        .gatehouse
        .list_linked_accounts(&world.server, Some(&user_id))
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].subject.as_str(), links[0].email.as_str()),
        ("g-1", "changed@example.com")
    );
    assert!(links[0].has_refresh_token && links[0].last_sign_in_at.is_some());
    assert_eq!(links[0].scopes, ["openid", "email", "profile"]);
    let own = world.user(&signed).await;
    assert_eq!(
        world
            .gatehouse
            .list_linked_accounts(&own, None)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_state_is_single_use_and_bound_to_the_browser() {
    let world = World::new().await;
    world.answer("g-1", Some("ada@example.com"), true);
    let (redirect, state) = world.start("google", None).await.unwrap();
    for cookie in [None, Some("another-browser")] {
        assert!(matches!(
            world.callback("google", &state, cookie).await,
            Err(DomainError::OAuthStateInvalid)
        ));
    }
    assert!(matches!(
        world
            .callback("other", &state, Some(&redirect.state_cookie))
            .await,
        Err(DomainError::OAuthStateInvalid)
    ));
    // The wrong cookies did not burn it.
    let cookie = Some(redirect.state_cookie.as_str());
    assert!(matches!(
        world.callback("google", &state, cookie).await,
        Ok(Outcome::Code(_))
    ));
    assert!(matches!(
        world.callback("google", &state, cookie).await,
        Err(DomainError::OAuthStateInvalid)
    ));
    assert!(matches!(
        world.callback("google", "unknown-state", cookie).await,
        Err(DomainError::OAuthStateInvalid)
    ));
    let (redirect, state) = world.start("google", None).await.unwrap();
    world.clock.advance(Duration::from_secs(601));
    assert!(matches!(
        world
            .callback("google", &state, Some(&redirect.state_cookie))
            .await,
        Err(DomainError::OAuthStateInvalid)
    ));
}

#[tokio::test]
async fn concurrent_callbacks_spend_the_state_once() {
    let world = World::new().await;
    world.answer("g-1", Some("ada@example.com"), true);
    let (redirect, state) = world.start("google", None).await.unwrap();
    let cookie = Some(redirect.state_cookie.as_str());
    let (first, second) = tokio::join!(
        world.callback("google", &state, cookie),
        world.callback("google", &state, cookie)
    );
    let passed = [&first, &second]
        .iter()
        .filter(|result| matches!(result, Ok(Outcome::Code(_))))
        .count();
    assert_eq!(passed, 1, "{first:?} {second:?}");
    assert!(
        [&first, &second]
            .iter()
            .any(|result| matches!(result, Err(DomainError::OAuthStateInvalid)))
    );
}

#[tokio::test]
async fn refusals_go_back_to_the_app_as_error_codes() {
    let world = World::new().await;
    world
        .gatehouse
        .update_oauth_provider(
            &world.server,
            "google",
            ProviderUpdate {
                allow_sign_up: Some(false),
                ..ProviderUpdate::default()
            },
        )
        .await
        .unwrap();
    world.answer("g-1", Some("new@example.com"), true);
    assert_eq!(
        world.flow("google", None).await,
        Outcome::Error("OAUTH_SIGN_UP_DISABLED".to_owned())
    );
    let (redirect, state) = world.start("google", None).await.unwrap();
    let mut denied = callback(&state, Some(&redirect.state_cookie));
    denied.code = None;
    denied.error = Some("access_denied".to_owned());
    let url = world
        .gatehouse
        .finish_oauth("acme", "google", denied)
        .await
        .unwrap();
    assert_eq!(
        url,
        "https://app.example.com/done?error=OAUTH_UPSTREAM_REJECTED"
    );
    *world.fake.exchange_error.lock().unwrap() =
        Some(DomainError::OAuthUpstreamUnavailable("timeout".to_owned()));
    assert_eq!(
        world.flow("google", None).await,
        Outcome::Error("OAUTH_UPSTREAM_UNAVAILABLE".to_owned())
    );
    let error = world
        .gatehouse
        .start_oauth(
            "acme",
            "google",
            OAuthStart {
                redirect_url: "https://evil.example.net/".to_owned(),
                link_ticket: None,
                extra_scopes: Vec::new(),
                client: ClientInfo::default(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        DomainError::InvalidArgument {
            field: "redirect_url",
            ..
        }
    ));
}

#[tokio::test]
async fn abandoned_flows_are_swept_and_starts_are_limited_per_source() {
    let world = World::new().await;
    for _ in 0..3 {
        world.start("google", None).await.unwrap();
    }
    let flows = || async {
        let (begin, end) = Subspace::from(&("t", "acme", "oauth_flow")).range();
        let (begin, end) = (&begin, &end);
        world
            .gatehouse
            .services()
            .db
            .run(|tx| async move {
                let rows = tx.get_range(begin, end, RangeOptions::default()).await?;
                Ok::<_, DomainError>(rows.len())
            })
            .await
            .unwrap()
    };
    assert_eq!(flows().await, 3);
    world.clock.advance(Duration::from_secs(601));
    let (redirect, state) = world.start("google", None).await.unwrap();
    assert_eq!(flows().await, 1);
    world.answer("g-1", Some("ada@example.com"), true);
    assert!(matches!(
        world
            .callback("google", &state, Some(&redirect.state_cookie))
            .await,
        Ok(Outcome::Code(_))
    ));
    assert_eq!(flows().await, 0);
    let mut limited = 0;
    for _ in 0..101 {
        if matches!(
            world.start("google", None).await,
            Err(DomainError::RateLimited)
        ) {
            limited += 1;
        }
    }
    // The bucket refilled while the clock moved on; one start was spent since.
    assert_eq!(limited, 2);
}
