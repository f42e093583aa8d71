//! The browser session of the hosted pages: one cookie, `gatehouse_session`, sealed with
//! the `cookie` crate's private jar (AES-256-GCM, the cookie's name bound as associated
//! data) under a key derived per tenant from the node master key (`MasterKey::mac`). It
//! carries the session's and user's ids and the session's refresh token (which signs it
//! out); the domain decides on every page load whether the session still counts.

use axum::http::{HeaderMap, header};
use cookie::{Cookie, CookieJar, Key, SameSite};
use gatehouse_actors::crypto::MasterKey;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "gatehouse_session";

/// What the sealed cookie holds (`Debug` leaves the refresh token out).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BrowserSession {
    /// The tenant the session belongs to; a cookie of another tenant is refused.
    pub tenant: String,
    /// The session.
    pub session_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// The session's refresh token, spent only to sign out.
    pub refresh_token: String,
}

impl std::fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("tenant", &self.tenant)
            .field("session_id", &self.session_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// The tenant's cookie key: 64 bytes (the jar's signing and encryption halves) from two
/// HMACs of the tenant id under the master key's derived key, so no two tenants share one.
fn cookie_key(master_key: &MasterKey, tenant_id: &str) -> Option<Key> {
    let mut bytes = [0u8; 64];
    let (signing, encryption) = bytes.split_at_mut(32);
    signing.copy_from_slice(
        &master_key.mac(b"gatehouse pages cookie signing v1", tenant_id.as_bytes()),
    );
    encryption.copy_from_slice(&master_key.mac(
        b"gatehouse pages cookie encryption v1",
        tenant_id.as_bytes(),
    ));
    Key::try_from(&bytes[..]).ok()
}

/// The path every cookie of the pages is scoped to: the tenant's.
pub fn cookie_path(tenant_id: &str) -> String {
    format!("/t/{tenant_id}/")
}

/// A cookie of the pages: `HttpOnly`, `SameSite=Lax`, the tenant's path, `Secure` when
/// asked; kept `max_age_seconds` (or for the browser's session when `None`).
pub fn build(
    tenant_id: &str,
    name: &'static str,
    value: String,
    max_age_seconds: Option<i64>,
    secure: bool,
) -> Cookie<'static> {
    let mut cookie = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(cookie_path(tenant_id))
        .secure(secure)
        .build();
    if let Some(seconds) = max_age_seconds {
        cookie.set_max_age(cookie::time::Duration::seconds(seconds));
    }
    cookie
}

/// The value of the cookie `name` the browser sent, if any.
pub fn sent_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| Cookie::split_parse(value.to_owned()))
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// `Set-Cookie` for `session`, sealed; kept until the session's absolute expiry.
pub fn seal(
    master_key: &MasterKey,
    session: &BrowserSession,
    max_age_seconds: i64,
    secure: bool,
) -> Option<String> {
    let key = cookie_key(master_key, &session.tenant)?;
    let value = serde_json::to_string(session).ok()?;
    let mut jar = CookieJar::new();
    jar.private_mut(&key).add(build(
        &session.tenant,
        SESSION_COOKIE,
        value,
        Some(max_age_seconds.max(0)),
        secure,
    ));
    jar.get(SESSION_COOKIE).map(ToString::to_string)
}

/// The session cookie the browser sent, opened with `tenant_id`'s key. `None` when there is
/// none, or it does not open (tampered, another tenant's, an old master key) or names
/// another tenant.
pub fn open(
    master_key: &MasterKey,
    tenant_id: &str,
    headers: &HeaderMap,
) -> Option<BrowserSession> {
    let sealed = sent_cookie(headers, SESSION_COOKIE)?;
    let key = cookie_key(master_key, tenant_id)?;
    let jar = CookieJar::new();
    let opened = jar
        .private(&key)
        .decrypt(Cookie::new(SESSION_COOKIE, sealed))?;
    let session: BrowserSession = serde_json::from_str(opened.value()).ok()?;
    (session.tenant == tenant_id).then_some(session)
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared(tenant_id: &str, secure: bool) -> String {
    build(tenant_id, SESSION_COOKIE, String::new(), Some(0), secure).to_string()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn session(tenant: &str) -> BrowserSession {
        BrowserSession {
            tenant: tenant.to_owned(),
            session_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            refresh_token: "grt_secret".to_owned(),
        }
    }

    fn sent(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap_or_default().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {pair}"))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        headers
    }

    #[test]
    fn a_sealed_session_opens_for_its_tenant_only() {
        let key = MasterKey::from_bytes(&[7; 32]);
        let set_cookie = seal(&key, &session("acme"), 3600, true).unwrap_or_default();
        let parsed = Cookie::parse(set_cookie.clone()).unwrap_or_else(|_| Cookie::new("", ""));
        assert_eq!(parsed.name(), SESSION_COOKIE);
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.same_site(), Some(SameSite::Lax));
        assert_eq!(parsed.path(), Some("/t/acme/"));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(
            parsed.max_age(),
            Some(cookie::time::Duration::seconds(3600))
        );
        assert!(
            !set_cookie.contains("grt_secret"),
            "the value is sealed: {set_cookie}"
        );
        assert!(!set_cookie.contains(&Uuid::from_u128(2).to_string()));

        let headers = sent(&set_cookie);
        assert_eq!(open(&key, "acme", &headers), Some(session("acme")));
        assert_eq!(open(&key, "globex", &headers), None, "another tenant's key");
        let other_node = MasterKey::from_bytes(&[8; 32]);
        assert_eq!(open(&other_node, "acme", &headers), None);
        assert_eq!(open(&key, "acme", &HeaderMap::new()), None);
    }

    #[test]
    fn a_tampered_cookie_does_not_open() {
        let key = MasterKey::from_bytes(&[7; 32]);
        let set_cookie = seal(&key, &session("acme"), 60, false).unwrap_or_default();
        let pair = set_cookie.split(';').next().unwrap_or_default();
        let (name, value) = pair.split_once('=').unwrap_or_default();
        let mut bytes = value.as_bytes().to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8_lossy(&bytes));
        assert_eq!(open(&key, "acme", &sent(&tampered)), None);
        let plain = format!(
            "{SESSION_COOKIE}={}",
            serde_json::to_string(&session("acme")).unwrap_or_default()
        );
        assert_eq!(open(&key, "acme", &sent(&plain)), None, "an unsealed value");
    }

    #[test]
    fn the_cleared_cookie_expires_at_once_on_the_same_path() {
        let parsed = Cookie::parse(cleared("acme", false)).unwrap_or_else(|_| Cookie::new("", ""));
        assert_eq!(parsed.name(), SESSION_COOKIE);
        assert_eq!(parsed.value(), "");
        assert_eq!(parsed.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(parsed.path(), Some("/t/acme/"));
        assert_eq!(parsed.secure(), None);
    }

    #[test]
    fn the_debug_form_leaves_the_refresh_token_out() {
        assert!(!format!("{:?}", session("acme")).contains("grt_secret"));
    }
}
