//! A browser without JavaScript for the pages' tests: plain HTTP, its own cookies kept by
//! hand, no redirects followed, so every header and attribute can be checked.

use std::collections::BTreeMap;

use cookie::Cookie;
use reqwest::header::{self, HeaderMap};
use reqwest::redirect::Policy;

use crate::testkit::{PASSWORD, TestNode, TestTenant};

pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
pub const SESSION_COOKIE: &str = "gatehouse_session";
pub const CSRF_COOKIE: &str = "gatehouse_csrf";

/// One browser: its own cookies, no redirects followed.
pub struct Browser {
    pub http: reqwest::Client,
    pub origin: String,
    pub cookies: BTreeMap<String, String>,
}

/// A page as the browser got it.
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|value| value.to_str().unwrap())
            .unwrap_or_default()
    }

    /// The `Set-Cookie` of `name`, parsed.
    pub fn set_cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| Cookie::parse(value.to_str().unwrap().to_owned()).unwrap())
            .find(|cookie| cookie.name() == name)
    }

    /// The value of the hidden field `name`.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!(r#"name="{name}" value=""#);
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }

    /// The text of the page's alert (a refused form's sentence), if any.
    pub fn alert(&self) -> Option<String> {
        let start = self.body.find(r#"role="alert""#)?;
        let open = self.body[start..].find('>')? + start + 1;
        let close = self.body[open..].find("</p>")? + open;
        Some(self.body[open..close].to_owned())
    }

    pub fn assert_security_headers(&self) {
        let get = |name: &str| {
            self.headers
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("no {name} header"))
        };
        assert_eq!(get("content-security-policy"), CSP);
        assert_eq!(get("x-frame-options"), "DENY");
        assert_eq!(get("x-content-type-options"), "nosniff");
        assert_eq!(get("referrer-policy"), "no-referrer");
        assert_eq!(get("cache-control"), "no-store");
    }
}

impl Browser {
    pub fn new(node: &TestNode) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            origin: node.http_url(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps what `Set-Cookie` says (a zero `Max-Age` removes).
    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let cookie = Cookie::parse(value.to_str().unwrap().to_owned()).unwrap();
            if cookie.max_age() == Some(cookie::time::Duration::ZERO) {
                self.cookies.remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }

    pub async fn page(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        Page {
            status,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.origin));
        self.page(request).await
    }

    /// Posts a form as a browser of this origin does (`Origin` set).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .http
            .post(format!("{}{path}", self.origin))
            .header(header::ORIGIN, self.origin.clone())
            .form(fields);
        self.page(request).await
    }

    /// Opens `form_path`, then posts `fields` with the page's CSRF token.
    pub async fn submit(&mut self, form_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let form = self.get(form_path).await;
        assert_eq!(form.status, 200, "{form_path}: {}", form.body);
        let csrf = form.hidden("csrf").expect("the form has a csrf field");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }
}

pub fn base(tenant: &TestTenant) -> String {
    format!("/t/{}/handler", tenant.id)
}

/// Signs up through the sign-up page; returns the page the form answered with.
pub async fn sign_up(browser: &mut Browser, tenant: &TestTenant, email: &str, name: &str) -> Page {
    let base = base(tenant);
    let fields = [
        ("email", email),
        ("password", PASSWORD),
        ("display_name", name),
    ];
    browser
        .submit(
            &format!("{base}/sign-up"),
            &format!("{base}/sign-up"),
            &fields,
        )
        .await
}

pub async fn sign_in(
    browser: &mut Browser,
    tenant: &TestTenant,
    email: &str,
    password: &str,
) -> Page {
    let base = base(tenant);
    let fields = [("email", email), ("password", password)];
    browser
        .submit(
            &format!("{base}/sign-in"),
            &format!("{base}/sign-in"),
            &fields,
        )
        .await
}
