//! The browser's side of upstream sign-in: `GET /t/{tenant}/oauth/{provider}/start` sends the
//! browser to the provider with a state cookie, `GET /t/{tenant}/oauth/{provider}/callback`
//! ends the flow and sends it back to the app (`?code=`, `?linked=` or `?error=`).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cookie::{Cookie, SameSite};
use gatehouse_actors::api::oauth::{OAUTH_STATE_COOKIE, OAuthCallback, OAuthStart};
use gatehouse_actors::sessions::ClientInfo;
use gatehouse_actors::{DomainError, audit};
use serde::Deserialize;

use crate::http::{HttpState, error_response};

/// The upstream sign-in routes.
pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/t/{tenant}/oauth/{provider}/start", get(start))
        .route("/t/{tenant}/oauth/{provider}/callback", get(callback))
}

/// `?redirect_url=…&link=…&scope=…` of the start URL.
#[derive(Debug, Default, Deserialize)]
struct StartQuery {
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    link: Option<String>,
    /// Extra scopes, space separated.
    #[serde(default)]
    scope: Option<String>,
}

/// The provider's answer on the callback URL. Other parameters (`error_description`,
/// `iss`, …) are accepted and ignored: the app gets the `error` code only.
#[derive(Default, Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The cookie's path: the tenant's OAuth routes only.
fn cookie_path(tenant: &str) -> String {
    format!("/t/{tenant}/oauth")
}

/// `Set-Cookie` binding a flow to this browser.
pub fn state_cookie(tenant: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    Cookie::build((OAUTH_STATE_COOKIE, value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(cookie_path(tenant))
        .max_age(cookie::time::Duration::seconds(max_age_seconds))
        .secure(secure)
        .build()
        .to_string()
}

/// `Set-Cookie` removing the state cookie once the flow has ended.
pub fn cleared_state_cookie(tenant: &str, secure: bool) -> String {
    state_cookie(tenant, "", 0, secure)
}

/// The state cookie the browser sent, if any.
pub fn sent_state_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| Cookie::split_parse(value.to_owned()))
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == OAUTH_STATE_COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

/// The browser, as recorded on the sessions and audit entries the flow creates.
pub(crate) fn client_info(headers: &HeaderMap, extensions: &Extensions) -> ClientInfo {
    ClientInfo {
        ip_address: extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_default(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

fn is_https(state: &HttpState) -> bool {
    state
        .gatehouse
        .services()
        .public_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// A 303 to `location` that no cache keeps and that sends no referrer.
fn see_other(location: &str, cookie: &str) -> Response {
    let (Ok(location), Ok(cookie)) = (
        HeaderValue::from_str(location),
        HeaderValue::from_str(cookie),
    ) else {
        return error_response(&DomainError::Internal(
            "a redirect or cookie is not a valid header value".into(),
        ));
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::SET_COOKIE, cookie);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// An error as JSON with the code's status, uncached.
fn error(error: &DomainError) -> Response {
    let mut response = error_response(error);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A query string that does not parse; not logged, it may carry the provider's code.
fn query_error(_rejection: &QueryRejection) -> Response {
    error(&DomainError::invalid(
        "query",
        "the query string is malformed",
    ))
}

async fn start(
    State(state): State<HttpState>,
    Path((tenant, provider)): Path<(String, String)>,
    query: Result<Query<StartQuery>, QueryRejection>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return query_error(&rejection),
    };
    let client = client_info(&headers, &extensions);
    let start = OAuthStart {
        redirect_url: query.redirect_url,
        link_ticket: query.link.filter(|ticket| !ticket.is_empty()),
        extra_scopes: query
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        client: client.clone(),
    };
    let started = audit::with_source_ip(
        client.ip_address,
        state.gatehouse.start_oauth(&tenant, &provider, start),
    )
    .await;
    match started {
        Ok(redirect) => {
            let max_age = i64::try_from(redirect.cookie_max_age.as_secs()).unwrap_or(600);
            let cookie = state_cookie(&tenant, &redirect.state_cookie, max_age, is_https(&state));
            see_other(&redirect.authorize_url, &cookie)
        }
        Err(failure) => error(&failure),
    }
}

async fn callback(
    State(state): State<HttpState>,
    Path((tenant, provider)): Path<(String, String)>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return query_error(&rejection),
    };
    let client = client_info(&headers, &extensions);
    let callback = OAuthCallback {
        state: query.state,
        code: query.code.filter(|code| !code.is_empty()),
        error: query.error.filter(|error| !error.is_empty()),
        state_cookie: sent_state_cookie(&headers),
        client: client.clone(),
    };
    let finished = audit::with_source_ip(
        client.ip_address,
        state.gatehouse.finish_oauth(&tenant, &provider, callback),
    )
    .await;
    match finished {
        Ok(location) => see_other(&location, &cleared_state_cookie(&tenant, is_https(&state))),
        Err(failure) => error(&failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_cookie_is_http_only_lax_and_scoped_to_the_tenants_oauth_routes() {
        let cookie = state_cookie("acme", "abc123", 600, false);
        let parsed = Cookie::parse(cookie.clone()).unwrap_or_else(|_| Cookie::new("", ""));
        assert_eq!(parsed.name(), OAUTH_STATE_COOKIE);
        assert_eq!(parsed.value(), "abc123");
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.same_site(), Some(SameSite::Lax));
        assert_eq!(parsed.path(), Some("/t/acme/oauth"));
        assert_eq!(parsed.max_age(), Some(cookie::time::Duration::seconds(600)));
        assert_eq!(parsed.secure(), None, "{cookie}");
        let secure = state_cookie("acme", "abc123", 600, true);
        assert!(secure.contains("Secure"), "{secure}");
    }

    #[test]
    fn the_cleared_cookie_expires_at_once() {
        let cookie = cleared_state_cookie("acme", true);
        let parsed = Cookie::parse(cookie.clone()).unwrap_or_else(|_| Cookie::new("", ""));
        assert_eq!(parsed.name(), OAUTH_STATE_COOKIE);
        assert_eq!(parsed.value(), "");
        assert_eq!(parsed.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(parsed.path(), Some("/t/acme/oauth"));
    }

    #[test]
    fn the_state_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(sent_state_cookie(&headers), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; gatehouse_oauth_state=s3cr3t; x=y"),
        );
        assert_eq!(sent_state_cookie(&headers).as_deref(), Some("s3cr3t"));
    }

    #[test]
    fn the_client_is_the_peer_address_and_user_agent() {
        let mut headers = HeaderMap::new();
        headers.insert(header::USER_AGENT, HeaderValue::from_static("Firefox"));
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
        let client = client_info(&headers, &extensions);
        assert_eq!(client.ip_address, "127.0.0.1");
        assert_eq!(client.user_agent, "Firefox");
        let client = client_info(&HeaderMap::new(), &Extensions::new());
        assert_eq!(client.ip_address, "");
    }

    #[test]
    fn redirects_are_303_uncached_without_referrer() {
        let response = see_other(
            "https://app.example/done?code=goc_1",
            &cleared_state_cookie("acme", false),
        );
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let headers = response.headers();
        assert_eq!(
            headers[header::LOCATION],
            "https://app.example/done?code=goc_1"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers.contains_key(header::SET_COOKIE));
    }

    /// The routes are part of the node's router, and a query that does not parse is a JSON
    /// 400 before the domain is asked anything.
    #[tokio::test]
    async fn a_malformed_query_is_refused_with_a_json_400() {
        use gatehouse_actors::context::Context;
        use gatehouse_actors::crypto::MasterKey;
        use gatehouse_actors::{Gatehouse, GatehouseOptions};

        let gatehouse = Gatehouse::start(
            gatehouse_storage::Database::memory(),
            Context::system(),
            MasterKey::from_bytes(&[7; 32]),
            GatehouseOptions::default(),
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        let state = HttpState {
            gatehouse: gatehouse.clone(),
            metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            ready: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            metrics_token: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("{error}"));
        let app =
            crate::http::router(state, false).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let http = reqwest::Client::new();
        for path in [
            "/t/acme/oauth/github/start?redirect_url=a&redirect_url=b",
            "/t/acme/oauth/github/callback?state=a&state=b",
        ] {
            let response = http
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                response.status(),
                reqwest::StatusCode::BAD_REQUEST,
                "{path}"
            );
            assert_eq!(response.headers()["cache-control"], "no-store");
            let body: serde_json::Value = response
                .json()
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(body["code"], "INVALID_ARGUMENT", "{path}: {body}");
        }
        gatehouse.shutdown().await;
    }

    #[test]
    fn an_invalid_state_is_a_400_with_its_code() {
        let response = error(&DomainError::OAuthStateInvalid);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }
}
