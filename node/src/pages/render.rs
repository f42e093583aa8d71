//! The pages' templates (minijinja, HTML auto-escaped) and assets, all embedded in the
//! binary; the error page and the human words for an error code.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use gatehouse_actors::DomainError;
use gatehouse_actors::crypto::sha256;
use gatehouse_protocol::ErrorCode;
use minijinja::{Environment, UndefinedBehavior, Value};

/// Every template, by name; `base.html` is the layout the others extend.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("sign_up.html", include_str!("templates/sign_up.html")),
    ("account.html", include_str!("templates/account.html")),
    ("signed_out.html", include_str!("templates/signed_out.html")),
    ("notice.html", include_str!("templates/notice.html")),
    ("consent.html", include_str!("templates/consent.html")),
    (
        "end_session.html",
        include_str!("templates/end_session.html"),
    ),
    (
        "settings_layout.html",
        include_str!("templates/settings_layout.html"),
    ),
    (
        "settings_profile.html",
        include_str!("templates/settings_profile.html"),
    ),
    (
        "settings_security.html",
        include_str!("templates/settings_security.html"),
    ),
    (
        "settings_sessions.html",
        include_str!("templates/settings_sessions.html"),
    ),
    (
        "settings_apps.html",
        include_str!("templates/settings_apps.html"),
    ),
    ("error.html", include_str!("templates/error.html")),
    (
        "sign_in_code.html",
        include_str!("templates/sign_in_code.html"),
    ),
    ("mfa.html", include_str!("templates/mfa.html")),
    (
        "forgot_password.html",
        include_str!("templates/forgot_password.html"),
    ),
    (
        "reset_password.html",
        include_str!("templates/reset_password.html"),
    ),
];

/// The stylesheet and the theme toggle: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "pages.css",
        "text/css; charset=utf-8",
        include_str!("assets/pages.css"),
    ),
    (
        "theme.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/theme.js"),
    ),
];

/// Built once; a template that does not parse is an error on every render (and fails the
/// unit tests), never a panic.
static ENVIRONMENT: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    // Printing an undefined value is an error; `{% if missing %}` is allowed.
    environment.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    for (name, source) in TEMPLATES {
        environment
            .add_template(name, source)
            .map_err(|error| format!("template {name}: {error}"))?;
    }
    Ok(environment)
});

/// A short hash of the assets, in their URLs, so a new build's are fetched at once.
static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let all: String = ASSETS.iter().map(|(_, _, content)| *content).collect();
    hex::encode(&sha256(all.as_bytes())[..6])
});

/// See [`ASSET_VERSION`].
pub fn asset_version() -> &'static str {
    &ASSET_VERSION
}

/// The first letter of a tenant's name, for its mark.
pub fn initial(name: &str) -> String {
    name.trim()
        .chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "G".to_owned())
}

fn render(template: &str, context: &Value) -> Result<String, String> {
    let environment = ENVIRONMENT.as_ref().map_err(Clone::clone)?;
    environment
        .get_template(template)
        .and_then(|template| template.render(context))
        .map_err(|error| format!("template {template}: {error:#}"))
}

/// `template` rendered with `context`, as an HTML response with `status`.
pub fn page(status: StatusCode, template: &str, context: Value) -> Response {
    match render(template, &context) {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the page cannot be shown",
            )
                .into_response()
        }
    }
}

/// `GET /t/{tenant}/handler/assets/{file}`: the same for every tenant.
pub async fn asset(Path((_tenant, file)): Path<(String, String)>) -> Response {
    let Some((_, content_type, content)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = (*content).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

/// What the error page shows: the stable code, a sentence for a person, and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The HTTP status of the page.
    pub status: StatusCode,
    /// The stable error code (`ErrorCode::as_str`).
    pub code: &'static str,
    /// What happened and what to do, in words for the person at the browser.
    pub message: String,
    /// For `RATE_LIMITED`: seconds until a retry may pass (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl Problem {
    /// The problem of a domain error: its code, its status and a sentence for it.
    pub fn of(error: &DomainError) -> Problem {
        let code = error.code();
        Problem {
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.as_str(),
            message: human_message(error),
            retry_after: match error {
                DomainError::RateLimitedFor(seconds) => Some(*seconds),
                _ => None,
            },
        }
    }

    /// A page path that names no tenant.
    pub fn not_found() -> Problem {
        Problem::of(&DomainError::TenantNotFound)
    }

    /// Something this node could not do (the details are in its log).
    pub fn internal() -> Problem {
        Problem::of(&DomainError::Internal(String::new()))
    }

    /// A form post refused by the CSRF checks.
    pub fn forged_form() -> Problem {
        Problem {
            status: StatusCode::FORBIDDEN,
            code: ErrorCode::PermissionDenied.as_str(),
            message: "This form has expired or was sent from another site. Go back, reload \
                      the page and try again."
                .to_owned(),
            retry_after: None,
        }
    }

    /// A form post whose body does not parse.
    pub fn malformed_form() -> Problem {
        Problem {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::InvalidArgument.as_str(),
            message: "The form could not be read. Go back, reload the page and try again."
                .to_owned(),
            retry_after: None,
        }
    }
}

/// "in 2 minutes", "in 40 seconds": how long a person waits after `RATE_LIMITED`.
pub fn wait_time(seconds: u64) -> String {
    match seconds {
        0..=1 => "in a second".to_owned(),
        2..=90 => format!("in {seconds} seconds"),
        _ => format!("in {} minutes", seconds.div_ceil(60)),
    }
}

/// The sentence the pages show for an error. Details of internal errors stay in the log.
pub fn human_message(error: &DomainError) -> String {
    match error {
        DomainError::InvalidCredentials => "Email or password is incorrect.".to_owned(),
        DomainError::RateLimitedFor(seconds) => {
            format!("Too many attempts. Try again {}.", wait_time(*seconds))
        }
        DomainError::RateLimited => "Too many attempts. Wait a little and try again.".to_owned(),
        DomainError::MfaRequired(_) => "This account is protected by a passkey as its second \
                                        factor, which these pages cannot ask for yet. Sign in \
                                        from the app instead."
            .to_owned(),
        DomainError::InvalidCode => {
            "This code is wrong or has expired. Check it and try again.".to_owned()
        }
        DomainError::MfaTicketInvalid => {
            "This sign-in has expired or had too many wrong codes. Sign in again.".to_owned()
        }
        DomainError::UserSuspended => "This account is suspended.".to_owned(),
        DomainError::UserBanned => "This account is banned.".to_owned(),
        DomainError::TenantNotFound => {
            "There is nothing to sign in to at this address. Check the link you followed."
                .to_owned()
        }
        DomainError::UserEmailAlreadyExists => {
            "An account with this email already exists. Sign in instead.".to_owned()
        }
        DomainError::InvalidPassword(reason) => format!("Choose another password: it {reason}."),
        DomainError::InvalidArgument { field, .. } if *field == "email" => {
            "Enter a valid email address.".to_owned()
        }
        DomainError::InvalidArgument { field, reason } if *field == "password" => {
            format!("Enter a password: it {reason}.")
        }
        DomainError::InvalidArgument { field, reason } if *field == "display_name" => {
            format!("Enter another name: it {reason}.")
        }
        DomainError::PermissionDenied(_) => "This is not allowed here.".to_owned(),
        _ => match error.code() {
            ErrorCode::Internal => {
                "Something went wrong on our side. Try again in a moment.".to_owned()
            }
            ErrorCode::Unavailable => "The service is busy. Try again in a moment.".to_owned(),
            _ => sentence(&error.public_message()),
        },
    }
}

/// An error message ("the code is invalid") as a sentence ("The code is invalid.").
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut sentence: String = first.to_uppercase().chain(chars).collect();
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

/// The error page. `tenant` is the tenant's name and id when the request named one that
/// exists; else the page is the node's own.
pub fn error_page(tenant: Option<(&str, &str)>, problem: &Problem) -> Response {
    let (tenant_name, base) = match tenant {
        Some((name, id)) => (name.to_owned(), Some(format!("/t/{id}/handler"))),
        None => ("Gatehouse".to_owned(), None),
    };
    let context = minijinja::context! {
        tenant_initial => initial(&tenant_name),
        tenant_name,
        assets => base.as_ref().map_or_else(
            || "/t/-/handler/assets".to_owned(),
            |base| format!("{base}/assets"),
        ),
        base,
        asset_version => asset_version(),
        code => problem.code,
        message => problem.message.clone(),
    };
    with_retry_after(
        page(problem.status, "error.html", context),
        problem.retry_after,
    )
}

/// Adds `Retry-After` when a retry time is known.
pub fn with_retry_after(mut response: Response, seconds: Option<u64>) -> Response {
    if let Some(seconds) = seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(template: &str) -> String {
        let context = minijinja::context! {
            tenant_name => "Acme <Rockets>",
            tenant_initial => "A",
            base => "/t/acme/handler",
            assets => "/t/acme/handler/assets",
            asset_version => asset_version(),
            csrf => "token123",
            return_to => "/t/acme/handler/account",
            email => "ada@example.com",
            display_name => "Ada",
            error => "Email or password is incorrect.",
            code => "INVALID_CREDENTIALS",
            message => "Something \"quoted\"",
            title => "Check your email",
            return_query => "?return_to=%2Ft%2Facme%2Fhandler%2Faccount",
            user_initial => "A",
            client_name => "Billing <App>",
            scopes => ["Know who you are"],
            request => "client_id=gci_x&scope=openid",
            redirect_host => "app.example.com",
            step => "code",
            ticket => "ticket123",
            token => "",
            method => "totp",
            code_sign_in => true,
            section => "profile",
            notice => "Your name is saved.",
            name_value => "Ada",
            totp => true,
            passkeys => 2,
            recovery_codes => 9,
            sessions => vec![
                minijinja::context! {
                    id => "s1", device => "Firefox", address => "127.0.0.1",
                    created => "2026-12-04 19:56 UTC", created_at => "2026-12-04T19:56:00Z",
                    last_used => "2026-12-04 19:56 UTC", last_used_at => "2026-12-04T19:56:00Z",
                    current => true,
                },
                minijinja::context! {
                    id => "s2", device => "", address => "",
                    created => "2026-12-04 19:56 UTC", created_at => "2026-12-04T19:56:00Z",
                    last_used => "2026-12-04 19:56 UTC", last_used_at => "2026-12-04T19:56:00Z",
                    current => false,
                },
            ],
            others => 1,
            apps => vec![minijinja::context! {
                client_id => "gci_x", name => "Billing <App>", scopes => ["Know who you are"],
                granted => "2026-12-04", granted_at => "2026-12-04T19:56:00Z",
            }],
        };
        render(template, &context).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn every_template_renders_escaped_without_inline_script_or_style() {
        for (name, _) in TEMPLATES.iter().filter(|(name, _)| *name != "base.html") {
            let html = sample(name);
            assert!(html.contains("Acme &lt;Rockets&gt;"), "{name}: {html}");
            assert!(!html.contains("<Rockets>"), "{name}");
            assert!(!html.contains("style="), "{name} has a style attribute");
            assert!(!html.contains("<style"), "{name} has a style element");
            assert!(
                !has_event_handler(&html),
                "{name} has an event handler attribute"
            );
            for (index, _) in html.match_indices("<script") {
                let tag = &html[index
                    ..html[index..]
                        .find('>')
                        .map_or(html.len(), |end| index + end)];
                assert!(tag.contains(" src="), "{name} has an inline script: {tag}");
            }
            // Auto-escaping writes `/` as `&#x2f;` in attributes; browsers read it back.
            assert!(html.contains("pages.css?v="), "{name}: {html}");
        }
    }

    /// ` onclick=`, ` onload=`, …: attributes the policy would refuse to run.
    fn has_event_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(index, _)| {
            let rest = &html[index + 3..];
            let name_len = rest.chars().take_while(char::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn forms_carry_the_csrf_token_and_labelled_inputs() {
        for name in [
            "sign_in.html",
            "sign_up.html",
            "account.html",
            "sign_in_code.html",
            "mfa.html",
            "forgot_password.html",
            "reset_password.html",
        ] {
            let html = sample(name);
            assert!(
                html.contains(r#"<input type="hidden" name="csrf" value="token123">"#),
                "{name}: {html}"
            );
        }
        let sign_in = sample("sign_in.html");
        assert!(sign_in.contains(r#"<label for="email">"#));
        assert!(sign_in.contains(r#"autocomplete="email""#));
        assert!(
            sign_in.contains(r#"name="password" type="password" autocomplete="current-password""#)
        );
        assert!(!sign_in.contains("onpaste"), "paste is never blocked");
        let sign_up = sample("sign_up.html");
        assert!(sign_up.contains(r#"name="password" type="password" autocomplete="new-password""#));
        assert!(sign_up.contains(r#"<label for="display_name">"#));
        for name in ["sign_in_code.html", "mfa.html", "reset_password.html"] {
            let html = sample(name);
            assert!(html.contains(r#"<label for="code">"#), "{name}");
            assert!(html.contains(r#"autocomplete="one-time-code""#), "{name}");
        }
        assert!(sample("mfa.html").contains(r#"name="ticket" value="ticket123""#));
        assert!(sample("reset_password.html").contains(r#"autocomplete="new-password""#));
        assert!(sign_in.contains("/forgot-password"));
        assert!(sign_in.contains("Email me a sign-in code"));
    }

    #[test]
    fn settings_forms_carry_the_csrf_token_labels_and_password_autocomplete() {
        for name in [
            "settings_profile.html",
            "settings_security.html",
            "settings_sessions.html",
            "settings_apps.html",
        ] {
            let html = sample(name);
            assert!(
                html.contains(r#"<input type="hidden" name="csrf" value="token123">"#),
                "{name}: {html}"
            );
            assert!(html.contains(r#"aria-label="Settings""#), "{name}: the nav");
        }
        let profile = sample("settings_profile.html");
        assert!(profile.contains(r#"<label for="display_name">"#));
        assert!(profile.contains(r#"aria-current="page">Profile"#));
        let security = sample("settings_security.html");
        assert!(security.contains(r#"<label for="current_password">"#));
        assert!(security.contains(r#"<label for="new_password">"#));
        assert!(security.contains(r#"type="password" autocomplete="current-password""#));
        assert!(security.contains(r#"type="password" autocomplete="new-password""#));
        let sessions = sample("settings_sessions.html");
        assert!(sessions.contains("This device"));
        assert_eq!(
            sessions.matches("Sign out this device").count(),
            1,
            "not the current"
        );
        assert!(sessions.contains("Unknown device"));
        assert!(sessions.contains("Sign out other devices"));
    }

    #[test]
    fn the_error_page_shows_the_code_and_the_sentence() {
        let html = sample("error.html");
        assert!(html.contains("INVALID_CREDENTIALS"));
        assert!(html.contains("Something &quot;quoted&quot;"), "{html}");
        let problem = Problem::of(&DomainError::RateLimitedFor(120));
        assert_eq!(problem.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(problem.code, "RATE_LIMITED");
        assert_eq!(
            problem.message,
            "Too many attempts. Try again in 2 minutes."
        );
        assert_eq!(problem.retry_after, Some(120));
        let response = error_page(Some(("Acme", "acme")), &problem);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "120");
        let internal = Problem::of(&DomainError::Internal("disk on fire".to_owned()));
        assert!(!internal.message.contains("disk"));
        assert_eq!(internal.code, "INTERNAL");
        assert_eq!(sentence("share was revoked"), "Share was revoked.");
    }

    #[test]
    fn wait_times_read_as_words() {
        assert_eq!(wait_time(1), "in a second");
        assert_eq!(wait_time(30), "in 30 seconds");
        assert_eq!(wait_time(91), "in 2 minutes");
        assert_eq!(wait_time(600), "in 10 minutes");
    }

    #[test]
    fn the_tenant_mark_is_its_first_letter() {
        assert_eq!(initial("acme corp"), "A");
        assert_eq!(initial("  ørsted"), "Ø");
        assert_eq!(initial("!!!"), "G");
    }

    #[tokio::test]
    async fn assets_are_served_with_their_types_and_unknown_ones_are_404() {
        let css = asset(Path(("acme".to_owned(), "pages.css".to_owned()))).await;
        assert_eq!(css.status(), StatusCode::OK);
        assert_eq!(
            css.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        let js = asset(Path(("acme".to_owned(), "theme.js".to_owned()))).await;
        assert_eq!(
            js.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let missing = asset(Path(("acme".to_owned(), "../Cargo.toml".to_owned()))).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
