//! What an OpenID client may register: redirect URIs (RFC 6749 §3.1.2, the native-app rules
//! of RFC 8252 §7) and scopes (RFC 6749 §3.3).
//!
//! A redirect URI is parsed with the `url` crate and then kept as given: the provider will
//! compare the `redirect_uri` of an authorization request with it byte for byte, so the text
//! is refused, not repaired, whenever the parser would have read it differently from a
//! person (spaces, controls, backslashes, non-ASCII characters).

use url::{Host, Url};

use crate::error::{DomainError, DomainResult};

/// Most redirect URIs (and most post-logout redirect URIs) one client may register.
pub const MAX_REDIRECT_URIS: usize = 20;
/// Longest redirect URI, in bytes.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;
/// Most scopes one client may be allowed.
pub const MAX_SCOPES: usize = 50;
/// Longest scope token.
pub const MAX_SCOPE_LEN: usize = 64;
/// The scope every client is allowed: the provider speaks OpenID Connect.
pub const OPENID_SCOPE: &str = "openid";
/// Scopes allowed when none are given.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];

fn refuse(field: &'static str, uri: &str, why: &str) -> DomainError {
    DomainError::invalid(field, format!("{uri:?} {why}"))
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain == "localhost",
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

/// The authority of `raw` as written (between `//` and the path, query or fragment), if any.
fn written_authority(raw: &str) -> Option<&str> {
    let (_, rest) = raw.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Checks one redirect URI for `field`: absolute; `https`, `http` only to a loopback host, or
/// a private-use scheme named after a reversed domain (`com.example.app:/callback`, RFC 8252
/// §7.1); no fragment, no user information, no `*` anywhere; printable ASCII only.
pub fn validate_redirect_uri(field: &'static str, uri: &str) -> DomainResult<()> {
    if uri.is_empty() {
        return Err(DomainError::invalid(field, "must not hold an empty URI"));
    }
    if !uri.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(refuse(
            field,
            uri,
            "must be printable ASCII without spaces (percent-encode anything else)",
        ));
    }
    if uri.len() > MAX_REDIRECT_URI_LEN {
        // ASCII by now, so any byte is a character boundary.
        return Err(refuse(field, &uri[..40], "is longer than 2000 bytes"));
    }
    if uri.contains('*') {
        return Err(refuse(field, uri, "must not hold a wildcard '*'"));
    }
    if uri.contains('\\') {
        return Err(refuse(field, uri, "must not hold a backslash"));
    }
    if uri.contains('#') {
        return Err(refuse(field, uri, "must not have a fragment"));
    }
    let url = Url::parse(uri)
        .map_err(|error| refuse(field, uri, &format!("is not an absolute URI: {error}")))?;
    let user_info = !url.username().is_empty()
        || url.password().is_some()
        || written_authority(uri).is_some_and(|authority| authority.contains('@'));
    if user_info {
        return Err(refuse(field, uri, "must not carry user information"));
    }
    match url.scheme() {
        "https" | "http" => {
            let scheme = url.scheme();
            if !uri
                .get(..scheme.len() + 3)
                .is_some_and(|start| start.eq_ignore_ascii_case(&format!("{scheme}://")))
            {
                return Err(refuse(field, uri, "must start with https:// or http://"));
            }
            if scheme == "http" && !is_loopback(&url) {
                return Err(refuse(
                    field,
                    uri,
                    "must use https (http only to localhost, 127.0.0.0/8 or [::1])",
                ));
            }
            Ok(())
        }
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(refuse(
            field,
            uri,
            "must use https, http to a loopback host, or a private-use scheme such as \
             com.example.app:/callback",
        )),
    }
}

/// Checks a list of redirect URIs for `field`: `min` to [`MAX_REDIRECT_URIS`] valid URIs,
/// no two the same. Returns them as given, in the given order.
pub fn validate_redirect_uris(
    field: &'static str,
    uris: &[String],
    min: usize,
) -> DomainResult<Vec<String>> {
    if uris.len() < min || uris.len() > MAX_REDIRECT_URIS {
        return Err(DomainError::invalid(
            field,
            format!("must list {min} to {MAX_REDIRECT_URIS} URIs"),
        ));
    }
    for (index, uri) in uris.iter().enumerate() {
        validate_redirect_uri(field, uri)?;
        if uris[..index].contains(uri) {
            return Err(refuse(field, uri, "is listed twice"));
        }
    }
    Ok(uris.to_vec())
}

/// Whether `scope` is an RFC 6749 scope token of at most [`MAX_SCOPE_LEN`] characters:
/// `%x21 / %x23-5B / %x5D-7E` (printable ASCII but space, `"` and `\`).
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= MAX_SCOPE_LEN
        && scope
            .bytes()
            .all(|byte| matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// The scopes to store: [`DEFAULT_SCOPES`] when none are given; else the given ones without
/// duplicates, in the given order, with `openid` first when it was left out.
pub fn validate_scopes(scopes: &[String]) -> DomainResult<Vec<String>> {
    if scopes.is_empty() {
        return Ok(DEFAULT_SCOPES
            .iter()
            .map(|scope| (*scope).to_owned())
            .collect());
    }
    let mut clean: Vec<String> = Vec::with_capacity(scopes.len() + 1);
    if !scopes.iter().any(|scope| scope == OPENID_SCOPE) {
        clean.push(OPENID_SCOPE.to_owned());
    }
    for scope in scopes {
        if !is_scope_token(scope) {
            return Err(DomainError::invalid(
                "allowed_scopes",
                format!(
                    "{scope:?} is not a scope: 1 to {MAX_SCOPE_LEN} printable ASCII characters \
                     without space, '\"' or '\\'"
                ),
            ));
        }
        if !clean.contains(scope) {
            clean.push(scope.clone());
        }
    }
    if clean.len() > MAX_SCOPES {
        return Err(DomainError::invalid(
            "allowed_scopes",
            format!("must list at most {MAX_SCOPES} scopes"),
        ));
    }
    Ok(clean)
}
