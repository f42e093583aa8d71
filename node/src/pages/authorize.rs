//! `GET /t/{tenant}/oauth2/authorize`: the OpenID provider's authorization endpoint, and
//! `POST …/handler/consent`, the answer of its consent page. Errors about the client or its
//! redirect URI are shown here, never redirected; every other answer goes to the client's
//! registered redirect URI with `state` and `iss` (RFC 9207). A browser without a session,
//! or whose sign-in is older than `max_age` or than a `prompt=login` request, is sent to the
//! sign-in page and comes back here; `prompt=none` answers `login_required` /
//! `consent_required` instead of showing a page.

use axum::Form;
use axum::extract::RawQuery;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::api::oidc_authorize::{Authorized, BrowserRef};
use gatehouse_actors::context::Timestamp;
use gatehouse_actors::oidc::authorize::{AuthorizationRequest, AuthorizeError, AuthorizeParams};
use gatehouse_actors::oidc_clients::OidcClientRecord;
use serde::Deserialize;
use url::Url;

use super::render::Problem;
use super::{PageRequest, see_other, session};

/// The internal parameter a `prompt=login` round trip adds: the sign-in must be newer.
const SIGNED_IN_AFTER: &str = "gh_signed_in_after";

/// The request's parameters, each at most once (RFC 6749 §3.1).
struct AuthorizeQuery {
    params: AuthorizeParams,
    signed_in_after: Option<Timestamp>,
}

fn parse(query: &str) -> Result<AuthorizeQuery, String> {
    let pairs = crate::oidc_http::unique_pairs(query.as_bytes())?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
    };
    let signed_in_after = get(SIGNED_IN_AFTER)
        .map(|text| text.parse::<i64>().map(Timestamp))
        .transpose()
        .map_err(|_| format!("{SIGNED_IN_AFTER} is not a time"))?;
    Ok(AuthorizeQuery {
        params: AuthorizeParams {
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            response_type: get("response_type"),
            scope: get("scope"),
            state: get("state"),
            nonce: get("nonce"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            prompt: get("prompt"),
            max_age: get("max_age"),
            login_hint: get("login_hint"),
            response_mode: get("response_mode"),
            request_object: get("request").is_some() || get("request_uri").is_some(),
        },
        signed_in_after,
    })
}

/// The query again, without `prompt=login` and with the sign-in it now needs to be newer
/// than `now`: what the sign-in page returns to.
fn after_new_sign_in(query: &str, now: Timestamp) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name == SIGNED_IN_AFTER {
            continue;
        }
        if name == "prompt" {
            let kept: Vec<&str> = value.split(' ').filter(|v| *v != "login").collect();
            if !kept.iter().all(|v| v.is_empty()) {
                out.append_pair("prompt", &kept.join(" "));
            }
            continue;
        }
        out.append_pair(&name, &value);
    }
    out.append_pair(SIGNED_IN_AFTER, &now.0.to_string());
    out.finish()
}

impl PageRequest {
    fn authorize_path(&self, query: &str) -> String {
        format!("/t/{}/oauth2/authorize?{query}", self.tenant_id())
    }

    /// To the sign-in page, which comes back to `query` (with `reauth` the form is shown
    /// even to a signed-in browser).
    fn to_sign_in(&self, query: &str, reauth: bool) -> Response {
        let mut target = url::form_urlencoded::Serializer::new(String::new());
        target.append_pair("return_to", &self.authorize_path(query));
        if reauth {
            target.append_pair("reauth", "1");
        }
        see_other(&format!("{}/sign-in?{}", self.base(), target.finish()), &[])
    }

    /// An error of the request, sent to the client's redirect URI.
    fn to_client_error(
        &self,
        redirect_uri: &str,
        error: &str,
        description: &str,
        state: Option<&str>,
    ) -> Response {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(state) = state {
            pairs.push(("state", state));
        }
        self.to_client(redirect_uri, &pairs)
    }

    /// To `redirect_uri` (registered, so trusted) with `pairs` and the issuer added.
    fn to_client(&self, redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
        let Ok(mut url) = Url::parse(redirect_uri) else {
            return self.problem(&Problem::internal());
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in pairs {
                query.append_pair(name, value);
            }
            query.append_pair("iss", &self.tenant.issuer);
        }
        see_other(url.as_str(), &[])
    }

    fn request_problem(&self, error: &'static str, description: &str) -> Response {
        self.problem(&Problem {
            status: StatusCode::BAD_REQUEST,
            code: error,
            message: format!(
                "The application that sent you here made a request that cannot be answered: \
                 {description}."
            ),
            retry_after: None,
        })
    }

    /// The browser's session as its cookie names it (the domain checks it is still live).
    fn browser_ref(&self) -> Option<BrowserRef> {
        let services = self.state.gatehouse.services();
        let opened = session::open(&services.master_key, self.tenant_id(), &self.headers)?;
        Some(BrowserRef {
            session_id: opened.session_id,
            user_id: opened.user_id,
        })
    }

    /// `query` checked against its client: the request, or the response that refuses it.
    async fn checked(
        &self,
        query: &str,
    ) -> Result<(AuthorizeQuery, AuthorizationRequest, OidcClientRecord), Response> {
        let parsed = parse(query).map_err(|why| self.request_problem("invalid_request", &why))?;
        let checked = self
            .state
            .gatehouse
            .oidc_check_authorization(&self.tenant, &parsed.params)
            .await
            .map_err(|error| self.error(&error))?;
        match checked {
            Ok((request, client)) => Ok((parsed, request, client)),
            Err(AuthorizeError::Page { error, description }) => {
                Err(self.request_problem(error, &description))
            }
            Err(AuthorizeError::Redirect {
                redirect_uri,
                error,
                description,
                state,
            }) => Err(self.to_client_error(&redirect_uri, error, &description, state.as_deref())),
        }
    }

    /// The answer of `outcome` for `request` (from `query`).
    async fn answer(
        &self,
        query: &str,
        request: &AuthorizationRequest,
        client: &OidcClientRecord,
        outcome: Authorized,
    ) -> Response {
        let state = request.state.as_deref();
        match outcome {
            Authorized::Code(code) => {
                let mut pairs = vec![("code", code.as_str())];
                if let Some(state) = state {
                    pairs.push(("state", state));
                }
                self.to_client(&request.redirect_uri, &pairs)
            }
            Authorized::LoginRequired if request.prompt.none => self.to_client_error(
                &request.redirect_uri,
                "login_required",
                "the person must sign in",
                state,
            ),
            Authorized::LoginRequired => self.to_sign_in(query, true),
            Authorized::ConsentRequired if request.prompt.none => self.to_client_error(
                &request.redirect_uri,
                "consent_required",
                "the person must consent",
                state,
            ),
            Authorized::ConsentRequired => self.consent_page(query, request, client).await,
        }
    }

    async fn consent_page(
        &self,
        query: &str,
        request: &AuthorizationRequest,
        client: &OidcClientRecord,
    ) -> Response {
        let email = match self.browser_state().await {
            Ok(super::BrowserState::SignedIn { user }) => user.email.clone(),
            Ok(super::BrowserState::SignedOut { .. }) => return self.to_sign_in(query, false),
            Err(error) => return self.error(&error),
        };
        let scopes: Vec<&str> = request.scopes.iter().map(|scope| describe(scope)).collect();
        let redirect_host = Url::parse(&request.redirect_uri)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| request.redirect_uri.clone());
        let context = minijinja::context! {
            client_name => client.name.clone(),
            email,
            scopes,
            request => query,
            redirect_host,
        };
        let page = self.html(StatusCode::OK, "consent.html", context, Vec::new());
        super::with_form_target(page, &request.redirect_uri)
    }
}

/// What a scope lets the client do, in words.
pub(super) fn describe(scope: &str) -> &str {
    match scope {
        "openid" => "Know who you are",
        "profile" => "See your name",
        "email" => "See your email address and whether it is verified",
        other => other,
    }
}

/// `GET /t/{tenant}/oauth2/authorize`.
pub async fn authorize(page: PageRequest, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let (parsed, request, client) = match page.checked(&query).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    if request.prompt.login && parsed.signed_in_after.is_none() {
        let now = page.state.gatehouse.services().context.now();
        return page.to_sign_in(&after_new_sign_in(&query, now), true);
    }
    let Some(browser) = page.browser_ref() else {
        return page
            .answer(&query, &request, &client, Authorized::LoginRequired)
            .await;
    };
    let outcome = page
        .state
        .gatehouse
        .oidc_authorize(
            &page.tenant,
            &request,
            &client,
            browser,
            parsed.signed_in_after,
            false,
        )
        .await;
    match outcome {
        Ok(outcome) => page.answer(&query, &request, &client, outcome).await,
        Err(error) => page.error(&error),
    }
}

/// The consent form's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConsentForm {
    csrf: String,
    /// The authorization request's query, as the page received it.
    request: String,
    /// `allow` or `deny`.
    decision: String,
}

/// `POST /t/{tenant}/handler/consent`.
pub async fn consent(
    page: PageRequest,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return page.problem(&Problem::malformed_form());
    };
    if let Some(refused) = page.refuse_forged(&form.csrf) {
        return refused;
    }
    let (parsed, request, client) = match page.checked(&form.request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    if form.decision != "allow" {
        return page.to_client_error(
            &request.redirect_uri,
            "access_denied",
            "the person did not allow access",
            request.state.as_deref(),
        );
    }
    let Some(browser) = page.browser_ref() else {
        return page.to_sign_in(&form.request, false);
    };
    let outcome = page
        .state
        .gatehouse
        .oidc_authorize(
            &page.tenant,
            &request,
            &client,
            browser,
            parsed.signed_in_after,
            true,
        )
        .await;
    match outcome {
        Ok(outcome) => page.answer(&form.request, &request, &client, outcome).await,
        Err(error) => page.error(&error),
    }
}
