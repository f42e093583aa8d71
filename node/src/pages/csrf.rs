//! CSRF protection of every form post: a random token in its own `HttpOnly` cookie
//! (`gatehouse_csrf`) that the form's hidden `csrf` field must match (compared in constant
//! time), and a post whose `Origin` is present but not the node's own is refused outright.
//!
//! `Origin: null` is what browsers send for a post from a page with `Referrer-Policy:
//! no-referrer` — every one of these pages — so it cannot be refused as such: it passes only
//! when `Sec-Fetch-Site` (sent by current browsers, and not settable by a page) is absent or
//! `same-origin`. A post that says `Sec-Fetch-Site: cross-site` is refused whatever its origin.

use axum::http::{HeaderMap, header};
use gatehouse_actors::crypto::{constant_time_eq, random_token};
use url::Url;

use super::PageRequest;
use super::session::{build, sent_cookie};

/// The CSRF cookie's name.
pub const CSRF_COOKIE: &str = "gatehouse_csrf";

/// Length of a token: 256 random bits in unpadded base64url.
const TOKEN_LEN: usize = 43;

/// Why a post was refused (for the log; the browser sees one page for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Origin` names another site, or is `null` from another site.
    ForeignOrigin,
    /// No CSRF cookie, no field, or they differ.
    TokenMismatch,
}

fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The token a page puts in its forms: the browser's, or a new one with its `Set-Cookie`.
pub fn token_for_page(request: &PageRequest) -> (String, Option<String>) {
    if let Some(token) = sent_cookie(&request.headers, CSRF_COOKIE).filter(|t| well_formed(t)) {
        return (token, None);
    }
    let token = random_token(&request.state.gatehouse.services().context, "");
    let cookie = build(
        request.tenant_id(),
        CSRF_COOKIE,
        token.clone(),
        None,
        request.secure,
    );
    (token, Some(cookie.to_string()))
}

/// Checks a form post: its `Origin` (when sent) is `public_url`'s, it is not from another
/// site by `Sec-Fetch-Site`, and `field` matches the CSRF cookie.
pub fn check(headers: &HeaderMap, public_url: &str, field: &str) -> Result<(), Refusal> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|value| value.to_str().unwrap_or_default());
    if fetch_site == Some("cross-site") {
        return Err(Refusal::ForeignOrigin);
    }
    match headers.get(header::ORIGIN).map(|value| value.to_str()) {
        None => {}
        Some(Ok("null")) if fetch_site.is_none_or(|site| site == "same-origin") => {}
        Some(origin) => {
            let sent = origin
                .ok()
                .and_then(|origin| Url::parse(origin).ok())
                .map(|url| url.origin());
            let own = Url::parse(public_url).ok().map(|url| url.origin());
            match (sent, own) {
                (Some(sent), Some(own)) if sent.is_tuple() && sent == own => {}
                _ => return Err(Refusal::ForeignOrigin),
            }
        }
    }
    let cookie = sent_cookie(headers, CSRF_COOKIE).unwrap_or_default();
    if !well_formed(&cookie) || !constant_time_eq(cookie.as_bytes(), field.as_bytes()) {
        return Err(Refusal::TokenMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const NODE: &str = "http://127.0.0.1:8080";
    const TOKEN: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";

    fn headers(origin: Option<&'static str>, cookie: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        if let Some(cookie) = cookie {
            let value = format!("a=b; {CSRF_COOKIE}={cookie}");
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("")),
            );
        }
        headers
    }

    #[test]
    fn a_matching_token_from_the_own_origin_or_no_origin_passes() {
        assert_eq!(TOKEN.len(), TOKEN_LEN);
        assert_eq!(check(&headers(None, Some(TOKEN)), NODE, TOKEN), Ok(()));
        let own = headers(Some("http://127.0.0.1:8080"), Some(TOKEN));
        assert_eq!(check(&own, NODE, TOKEN), Ok(()));
    }

    #[test]
    fn a_missing_or_different_token_is_refused() {
        let mismatch = Err(Refusal::TokenMismatch);
        assert_eq!(check(&headers(None, None), NODE, TOKEN), mismatch);
        assert_eq!(check(&headers(None, Some(TOKEN)), NODE, ""), mismatch);
        let other = "bbcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
        assert_eq!(check(&headers(None, Some(TOKEN)), NODE, other), mismatch);
        assert_eq!(check(&headers(None, Some("")), NODE, ""), mismatch);
        assert_eq!(
            check(&headers(None, Some("short")), NODE, "short"),
            mismatch
        );
    }

    #[test]
    fn a_foreign_or_opaque_origin_is_refused_even_with_the_token() {
        for origin in [
            "https://evil.example",
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "not a url",
        ] {
            assert_eq!(
                check(&headers(Some(origin), Some(TOKEN)), NODE, TOKEN),
                Err(Refusal::ForeignOrigin),
                "{origin}"
            );
        }
    }

    fn fetched_from(site: &'static str, origin: &'static str) -> HeaderMap {
        let mut sent = headers(Some(origin), Some(TOKEN));
        sent.insert("sec-fetch-site", HeaderValue::from_static(site));
        sent
    }

    /// A page with `Referrer-Policy: no-referrer` posts with `Origin: null`.
    #[test]
    fn a_null_origin_passes_only_from_the_same_origin_by_fetch_metadata() {
        assert_eq!(
            check(&headers(Some("null"), Some(TOKEN)), NODE, TOKEN),
            Ok(())
        );
        let own = fetched_from("same-origin", "null");
        assert_eq!(check(&own, NODE, TOKEN), Ok(()));
        for site in ["cross-site", "same-site", "none"] {
            assert_eq!(
                check(&fetched_from(site, "null"), NODE, TOKEN),
                Err(Refusal::ForeignOrigin),
                "{site}"
            );
        }
        assert_eq!(
            check(&fetched_from("cross-site", NODE), NODE, TOKEN),
            Err(Refusal::ForeignOrigin),
            "cross-site whatever the origin says"
        );
        assert_eq!(check(&own, NODE, "wrong"), Err(Refusal::TokenMismatch));
    }
}
