//! The registration rules as tables: redirect URIs accepted and refused (with the field
//! named), and scope tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::rules::*;
use crate::error::DomainError;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

#[test]
fn redirect_uris_that_are_accepted() {
    for uri in [
        "https://app.example.com/callback",
        "https://app.example.com/callback?tenant=acme&x=1",
        "https://app.example.com:8443/cb",
        "HTTPS://App.Example.com/CB",
        "https://203.0.113.7/cb",
        "http://localhost/callback",
        "http://localhost:8080/callback",
        "http://127.0.0.1:53219/cb",
        "http://127.1.2.3/cb",
        "http://[::1]:8080/cb",
        "com.example.app:/oauth2redirect",
        "com.example.app:/callback",
        "com.example.app://callback/path",
        "com.example.app:callback",
    ] {
        validate_redirect_uri("redirect_uris", uri)
            .unwrap_or_else(|error| panic!("{uri}: {error}"));
    }
}

#[test]
fn redirect_uris_that_are_refused_name_the_field() {
    for (uri, why) in [
        ("https://*.example.com/cb", "wildcard"),
        ("https://app.example.com/*", "wildcard"),
        ("https://app.example.com/cb?next=*", "wildcard"),
        ("com.example.*:/cb", "wildcard"),
        ("https://app.example.com/cb#", "fragment"),
        ("https://app.example.com/cb#token", "fragment"),
        ("http://app.example.com/cb", "http to another host"),
        ("http://192.168.1.10/cb", "http to another host"),
        ("http://localhost.example.com/cb", "http to another host"),
        ("http://127.0.0.1.nip.io/cb", "http to another host"),
        ("http://[::2]/cb", "http to another host"),
        ("https://user:pass@app.example.com/cb", "user information"),
        ("https://user@app.example.com/cb", "user information"),
        ("https://@app.example.com/cb", "user information"),
        ("http://user@localhost/cb", "user information"),
        ("com.example.app://me@host/cb", "user information"),
        ("/callback", "relative"),
        ("callback", "relative"),
        ("//app.example.com/cb", "relative"),
        ("", "empty"),
        ("https:app.example.com/cb", "no //"),
        ("https:\\\\evil.example/cb", "backslash"),
        ("https://app.example.com/a b", "space"),
        (" https://app.example.com/cb", "leading space"),
        ("https://app.example.com/cb\n", "newline"),
        ("https://app.example.com/caf\u{e9}", "non-ASCII"),
        ("javascript:alert(1)", "scheme"),
        ("data:text/html,hi", "scheme"),
        ("ftp://files.example.com/cb", "scheme"),
        ("myapp:/cb", "scheme without a dot"),
        ("https://", "no host"),
    ] {
        match validate_redirect_uri("redirect_uris", uri) {
            Err(DomainError::InvalidArgument {
                field: "redirect_uris",
                ..
            }) => {}
            other => panic!("{uri:?} ({why}) must be refused, got {other:?}"),
        }
    }
    let long = format!(
        "https://app.example.com/{}",
        "a".repeat(MAX_REDIRECT_URI_LEN)
    );
    assert!(validate_redirect_uri("redirect_uris", &long).is_err());
}

#[test]
fn lists_are_bounded_kept_as_given_and_free_of_duplicates() {
    let field = |error: DomainError| match error {
        DomainError::InvalidArgument { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let given = strings(&["https://b.example/cb", "HTTPS://a.example/cb?x=1"]);
    assert_eq!(
        validate_redirect_uris("redirect_uris", &given, 1).unwrap(),
        given
    );
    assert_eq!(
        field(validate_redirect_uris("redirect_uris", &[], 1).unwrap_err()),
        "redirect_uris"
    );
    assert!(
        validate_redirect_uris("post_logout_redirect_uris", &[], 0)
            .unwrap()
            .is_empty()
    );
    let twice = strings(&["https://a.example/cb", "https://a.example/cb"]);
    assert_eq!(
        field(validate_redirect_uris("post_logout_redirect_uris", &twice, 0).unwrap_err()),
        "post_logout_redirect_uris"
    );
    // The same URI in another spelling is another URI: matching is byte for byte.
    let spelled = strings(&["https://a.example/cb", "https://A.example/cb"]);
    assert_eq!(
        validate_redirect_uris("redirect_uris", &spelled, 1).unwrap(),
        spelled
    );
    let many: Vec<String> = (0..=MAX_REDIRECT_URIS)
        .map(|n| format!("https://a.example/cb{n}"))
        .collect();
    assert!(validate_redirect_uris("redirect_uris", &many, 1).is_err());
    assert!(validate_redirect_uris("redirect_uris", &many[..MAX_REDIRECT_URIS], 1).is_ok());
}

#[test]
fn scopes_default_always_hold_openid_and_are_scope_tokens() {
    assert_eq!(
        validate_scopes(&[]).unwrap(),
        strings(&["openid", "profile", "email"])
    );
    assert_eq!(
        validate_scopes(&strings(&["email", "offline_access", "email"])).unwrap(),
        strings(&["openid", "email", "offline_access"]),
        "openid added first, duplicates dropped, order kept"
    );
    assert_eq!(
        validate_scopes(&strings(&["profile", "openid"])).unwrap(),
        strings(&["profile", "openid"])
    );
    assert!(validate_scopes(&strings(&["api:read", "urn:x-y/z!~"])).is_ok());
    let longest = "s".repeat(MAX_SCOPE_LEN);
    assert!(validate_scopes(std::slice::from_ref(&longest)).is_ok());
    for bad in [
        "",
        "two words",
        "quote\"d",
        "back\\slash",
        "caf\u{e9}",
        "tab\t",
        &format!("{longest}s"),
    ] {
        match validate_scopes(&[bad.to_owned()]) {
            Err(DomainError::InvalidArgument {
                field: "allowed_scopes",
                ..
            }) => {}
            other => panic!("{bad:?} must be refused, got {other:?}"),
        }
    }
    let many: Vec<String> = (0..MAX_SCOPES).map(|n| format!("s{n}")).collect();
    assert!(
        validate_scopes(&many).is_err(),
        "openid added makes one too many"
    );
}
