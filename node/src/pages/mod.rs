//! The hosted pages: server-rendered HTML a person uses in a browser, served by the node
//! under `/t/{tenant}/handler/…`: sign-in (password, emailed code or link, then a second
//! factor), sign-up, password reset, email verification, sign-out, the signed-out page, a
//! minimal account page and the account settings (`settings`, `settings_sessions`).
//! Templates and assets are embedded in the binary (`render`); every response carries
//! [`security_headers`]; every form post passes `csrf`; the browser session is a sealed
//! cookie (`session`) that every page load checks against the domain.

mod account;
mod authorize;
mod csrf;
mod email_code;
mod email_links;
mod end_session;
mod mfa;
mod render;
mod return_to;
mod session;
mod settings;
mod settings_apps;
mod settings_sessions;
mod sign_in;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatehouse_actors::sessions::ClientInfo;
use gatehouse_actors::tenants::TenantState;
use gatehouse_actors::users::UserRecord;
use gatehouse_actors::{Caller, DomainError};
use gatehouse_protocol::ErrorCode;
use minijinja::Value;

use crate::http::HttpState;
use render::Problem;
use session::SESSION_COOKIE;

/// The policy of every page: nothing inline, nothing from another origin, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The hosted pages' routes.
pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/t/{tenant}/handler", get(account::home))
        .route("/t/{tenant}/handler/", get(account::home))
        .route(
            "/t/{tenant}/handler/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in),
        )
        .route(
            "/t/{tenant}/handler/sign-up",
            get(sign_in::sign_up_page).post(sign_in::sign_up),
        )
        .route(
            "/t/{tenant}/handler/sign-in/code",
            get(email_code::request_page).post(email_code::send),
        )
        .route(
            "/t/{tenant}/handler/sign-in/code/verify",
            post(email_code::verify),
        )
        .route(
            "/t/{tenant}/handler/sign-in/link",
            get(email_code::link_page).post(email_code::follow_link),
        )
        .route("/t/{tenant}/handler/mfa", post(mfa::complete))
        .route(
            "/t/{tenant}/handler/forgot-password",
            get(email_links::forgot_page).post(email_links::forgot),
        )
        .route(
            "/t/{tenant}/handler/reset-password",
            get(email_links::reset_page).post(email_links::reset),
        )
        .route(
            "/t/{tenant}/handler/verify-email",
            get(email_links::verify_email),
        )
        .route("/t/{tenant}/handler/sign-out", post(account::sign_out))
        .route("/t/{tenant}/handler/signed-out", get(account::signed_out))
        .route("/t/{tenant}/handler/account", get(account::account))
        .route("/t/{tenant}/handler/settings", get(settings::settings_home))
        .route(
            "/t/{tenant}/handler/settings/profile",
            get(settings::profile_page).post(settings::update_profile),
        )
        .route(
            "/t/{tenant}/handler/settings/security",
            get(settings::security_page),
        )
        .route(
            "/t/{tenant}/handler/settings/password",
            post(settings::change_password),
        )
        .route(
            "/t/{tenant}/handler/settings/sessions",
            get(settings_sessions::sessions_page),
        )
        .route(
            "/t/{tenant}/handler/settings/sessions/revoke",
            post(settings_sessions::revoke_session),
        )
        .route(
            "/t/{tenant}/handler/settings/sessions/revoke-others",
            post(settings_sessions::revoke_other_sessions),
        )
        .route(
            "/t/{tenant}/handler/settings/apps",
            get(settings_apps::apps_page),
        )
        .route(
            "/t/{tenant}/handler/settings/apps/revoke",
            post(settings_apps::withdraw),
        )
        .route("/t/{tenant}/handler/consent", post(authorize::consent))
        .route("/t/{tenant}/oauth2/authorize", get(authorize::authorize))
        .route(
            "/t/{tenant}/oauth2/end_session",
            get(end_session::end_session),
        )
        .route(
            "/t/{tenant}/handler/end-session",
            post(end_session::confirm),
        )
        .route("/t/{tenant}/handler/assets/{file}", get(render::asset))
        .layer(middleware::map_response(security_headers))
}

/// The headers of every response of the pages, redirects and refusals included; pages are
/// never cached (assets say otherwise themselves).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A page whose form leads elsewhere (consent, logout) sets its own, wider `form-action`.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One page request: its tenant, the browser's headers and address, and whether its cookies
/// are `Secure`.
pub(crate) struct PageRequest {
    state: HttpState,
    tenant: Arc<TenantState>,
    headers: HeaderMap,
    client: ClientInfo,
    secure: bool,
}

impl FromRequestParts<HttpState> for PageRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, Response> {
        let Path(tenant_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| render::error_page(None, &Problem::not_found()))?;
        let tenant = state
            .gatehouse
            .services()
            .tenant(&tenant_id)
            .await
            .map_err(|error| render::error_page(None, &Problem::of(&error)))?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        Ok(PageRequest {
            secure: cookies_secure(&state.gatehouse.services().public_url, peer),
            client: crate::oauth_http::client_info(&parts.headers, &parts.extensions),
            headers: parts.headers.clone(),
            tenant,
            state: state.clone(),
        })
    }
}

/// Cookies are `Secure` unless the node is reached over plain HTTP from loopback (a
/// developer's machine, the tests); a browser elsewhere gets them only over HTTPS.
fn cookies_secure(public_url: &str, peer: Option<SocketAddr>) -> bool {
    let plain_http = public_url
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    !(plain_http && peer.is_some_and(|peer| peer.ip().is_loopback()))
}

impl PageRequest {
    fn tenant_id(&self) -> &str {
        self.tenant.tenant_id()
    }

    /// The domain's view of a page request: a client of the tenant with no token.
    fn caller(&self) -> Caller {
        Caller::Client {
            tenant: self.tenant.clone(),
            user: None,
        }
    }

    /// `/t/{tenant}/handler`, the prefix of every page.
    fn base(&self) -> String {
        format!("/t/{}/handler", self.tenant_id())
    }

    /// Where a sign-in goes when it has nowhere else to go.
    fn account_path(&self) -> String {
        format!("{}/account", self.base())
    }

    /// The node's public base URL, whose origin is the pages' own.
    fn public_url(&self) -> &str {
        &self.state.gatehouse.services().public_url
    }

    /// A page rendered from `template` with the tenant's name, the paths and this browser's
    /// CSRF token (set as a cookie when it had none), plus `cookies`.
    fn html(
        &self,
        status: StatusCode,
        template: &str,
        context: Value,
        mut cookies: Vec<String>,
    ) -> Response {
        let (token, new_cookie) = csrf::token_for_page(self);
        cookies.extend(new_cookie);
        let base = self.base();
        let common = minijinja::context! {
            tenant_name => self.tenant.record.display_name.clone(),
            tenant_initial => render::initial(&self.tenant.record.display_name),
            base => base.clone(),
            assets => format!("{base}/assets"),
            asset_version => render::asset_version(),
            csrf => token,
        };
        let merged = minijinja::context! { ..context, ..common };
        with_cookies(render::page(status, template, merged), &cookies)
    }

    /// The error page for `problem`, with the tenant's name.
    fn problem(&self, problem: &Problem) -> Response {
        let name = &self.tenant.record.display_name;
        render::error_page(Some((name, self.tenant_id())), problem)
    }

    /// The error page of a domain error.
    fn error(&self, error: &DomainError) -> Response {
        self.problem(&Problem::of(error))
    }

    /// The 403 page for a form post that fails the CSRF checks; `None` when it passes.
    fn refuse_forged(&self, csrf_field: &str) -> Option<Response> {
        let refusal = csrf::check(&self.headers, self.public_url(), csrf_field).err()?;
        tracing::info!(?refusal, tenant = self.tenant_id(), "form post refused");
        Some(self.problem(&Problem::forged_form()))
    }

    /// `Set-Cookie` removing the session cookie.
    fn cleared_session(&self) -> String {
        session::cleared(self.tenant_id(), self.secure)
    }

    /// The browser's session as the domain sees it now: its cookie opened, then the session
    /// live and the user active (`Gatehouse::live_session_user`). A session that ended or a
    /// user who may not act is the signed-out state; other failures (storage) are errors.
    async fn browser_state(&self) -> Result<BrowserState, DomainError> {
        let services = self.state.gatehouse.services();
        let Some(session) = session::open(&services.master_key, self.tenant_id(), &self.headers)
        else {
            let stale = session::sent_cookie(&self.headers, SESSION_COOKIE).is_some();
            return Ok(BrowserState::SignedOut { stale });
        };
        let live = self
            .state
            .gatehouse
            .live_session_user(self.tenant_id(), session.session_id, session.user_id)
            .await;
        match live {
            Ok(user) => Ok(BrowserState::SignedIn {
                user: Box::new(user),
            }),
            Err(error) if ends_session(&error) => Ok(BrowserState::SignedOut { stale: true }),
            Err(error) => Err(error),
        }
    }
}

/// What the browser's session cookie amounts to.
enum BrowserState {
    /// A live session of an active user.
    SignedIn { user: Box<UserRecord> },
    /// No session; `stale` when the browser sent a cookie that no longer counts.
    SignedOut { stale: bool },
}

/// The refusals that mean "this browser is signed out" rather than "something failed".
fn ends_session(error: &DomainError) -> bool {
    matches!(
        error.code(),
        ErrorCode::SessionRevoked
            | ErrorCode::SessionExpired
            | ErrorCode::SessionNotFound
            | ErrorCode::UserSuspended
            | ErrorCode::UserBanned
            | ErrorCode::UserNotFound
            | ErrorCode::InvalidAccessToken
            | ErrorCode::InvalidRefreshToken
    )
}

/// `response` with the pages' policy, its forms also allowed to lead to `target`'s origin
/// (browsers apply `form-action` to where a form's answer redirects).
fn with_form_target(mut response: Response, target: &str) -> Response {
    let source = match url::Url::parse(target) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => return response,
    };
    let policy = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// A 303 to `location` (a path of this origin), with `cookies`.
fn see_other(location: &str, cookies: &[String]) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return render::error_page(None, &Problem::internal());
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    with_cookies(response, cookies)
}

/// Appends a `Set-Cookie` for each of `cookies`.
fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for cookie in cookies {
        match HeaderValue::from_str(cookie) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(_) => return render::error_page(None, &Problem::internal()),
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_except_over_plain_http_from_loopback() {
        let loopback = Some(SocketAddr::from(([127, 0, 0, 1], 5000)));
        let remote = Some(SocketAddr::from(([203, 0, 113, 9], 5000)));
        assert!(!cookies_secure("http://127.0.0.1:8080", loopback));
        assert!(!cookies_secure("HTTP://localhost:8080", loopback));
        assert!(cookies_secure("http://auth.example", remote));
        assert!(cookies_secure("https://auth.example", loopback));
        assert!(cookies_secure("http://127.0.0.1:8080", None));
    }

    #[tokio::test]
    async fn every_response_gets_the_security_headers_and_pages_are_not_cached() {
        let response = security_headers(StatusCode::OK.into_response()).await;
        let headers = response.headers();
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");

        let mut asset = StatusCode::OK.into_response();
        asset
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
        let asset = security_headers(asset).await;
        assert_eq!(asset.headers()[header::CACHE_CONTROL], "public");
    }
}
