//! The authorization request's checks: client and redirect URI errors stay on a page, the
//! rest go back to the registered URI with `state`; PKCE S256 is required.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::authorize::{AuthorizeError, AuthorizeParams, Prompt, check};
use crate::context::Timestamp;
use crate::domain::oidc_clients::{ClientKind, OidcClientRecord};

const CALLBACK: &str = "https://app.example.com/callback";
const CHALLENGE: &str = "TJwej6JDfTjl4bIDoNEgSDR517o-8Z3atJJB3G-XwLY";

fn client() -> OidcClientRecord {
    OidcClientRecord {
        client_id: "gci_app".to_owned(),
        name: "App".to_owned(),
        kind: ClientKind::Public,
        secret_hash: Vec::new(),
        redirect_uris: vec![CALLBACK.to_owned()],
        post_logout_redirect_uris: Vec::new(),
        allowed_scopes: ["openid", "profile", "email", "billing:read"]
            .map(str::to_owned)
            .to_vec(),
        first_party: false,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        created_by: "operator".to_owned(),
    }
}

fn params() -> AuthorizeParams {
    let some = |text: &str| Some(text.to_owned());
    AuthorizeParams {
        client_id: some("gci_app"),
        redirect_uri: some(CALLBACK),
        response_type: some("code"),
        scope: some("openid email billing:read"),
        state: some("xyz"),
        nonce: some("n-0S6_WzA2Mj"),
        code_challenge: some(CHALLENGE),
        code_challenge_method: some("S256"),
        ..AuthorizeParams::default()
    }
}

fn redirected(result: Result<super::authorize::AuthorizationRequest, AuthorizeError>) -> String {
    match result {
        Err(AuthorizeError::Redirect {
            redirect_uri,
            error,
            state,
            ..
        }) => {
            assert_eq!(redirect_uri, CALLBACK);
            assert_eq!(state.as_deref(), Some("xyz"));
            error.to_owned()
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

fn on_page(result: Result<super::authorize::AuthorizationRequest, AuthorizeError>) -> String {
    match result {
        Err(AuthorizeError::Page { error, .. }) => error.to_owned(),
        other => panic!("expected a page, got {other:?}"),
    }
}

#[test]
fn a_good_request_is_checked_into_its_parts() {
    let request = check(&params(), Some(&client())).unwrap();
    assert_eq!(request.redirect_uri, CALLBACK);
    assert_eq!(request.scopes, ["openid", "email", "billing:read"]);
    assert_eq!(request.state.as_deref(), Some("xyz"));
    assert_eq!(request.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(request.prompt, Prompt::default());
    let with = AuthorizeParams {
        prompt: Some("login consent".to_owned()),
        max_age: Some("300".to_owned()),
        login_hint: Some("ada@example.com".to_owned()),
        ..params()
    };
    let request = check(&with, Some(&client())).unwrap();
    assert!(request.prompt.login && request.prompt.consent && !request.prompt.none);
    assert_eq!(request.max_age, Some(300));
    assert_eq!(request.login_hint.as_deref(), Some("ada@example.com"));
}

#[test]
fn client_and_redirect_uri_errors_are_shown_never_redirected() {
    assert_eq!(on_page(check(&params(), None)), "invalid_client");
    let other = AuthorizeParams {
        client_id: Some("gci_other".to_owned()),
        ..params()
    };
    assert_eq!(on_page(check(&other, Some(&client()))), "invalid_client");
    for uri in [
        None,
        Some("https://app.example.com/callback/"),
        Some("https://app.example.com/callback?x=1"),
        Some("https://app.example.com/call"),
        Some("https://evil.example/https://app.example.com/callback"),
        Some("HTTPS://app.example.com/callback"),
    ] {
        let request = AuthorizeParams {
            redirect_uri: uri.map(str::to_owned),
            ..params()
        };
        assert_eq!(
            on_page(check(&request, Some(&client()))),
            "invalid_request",
            "{uri:?}"
        );
    }
}

#[test]
fn pkce_must_be_s256() {
    for (challenge, method) in [
        (None, None),
        (Some(CHALLENGE), None),
        (Some(CHALLENGE), Some("plain")),
        (Some("short"), Some("S256")),
        (Some(&CHALLENGE.replace('-', "+")[..]), Some("S256")),
    ] {
        let request = AuthorizeParams {
            code_challenge: challenge.map(str::to_owned),
            code_challenge_method: method.map(str::to_owned),
            ..params()
        };
        assert_eq!(
            redirected(check(&request, Some(&client()))),
            "invalid_request",
            "{challenge:?} {method:?}"
        );
    }
}

#[test]
fn other_errors_go_back_with_the_state() {
    let cases: Vec<(AuthorizeParams, &str)> = vec![
        (
            AuthorizeParams {
                response_type: Some("token".to_owned()),
                ..params()
            },
            "unsupported_response_type",
        ),
        (
            AuthorizeParams {
                response_type: None,
                ..params()
            },
            "invalid_request",
        ),
        (
            AuthorizeParams {
                scope: Some("email".to_owned()),
                ..params()
            },
            "invalid_scope",
        ),
        (
            AuthorizeParams {
                scope: Some("openid admin".to_owned()),
                ..params()
            },
            "invalid_scope",
        ),
        (
            AuthorizeParams {
                prompt: Some("none login".to_owned()),
                ..params()
            },
            "invalid_request",
        ),
        (
            AuthorizeParams {
                prompt: Some("sometimes".to_owned()),
                ..params()
            },
            "invalid_request",
        ),
        (
            AuthorizeParams {
                max_age: Some("-1".to_owned()),
                ..params()
            },
            "invalid_request",
        ),
        (
            AuthorizeParams {
                response_mode: Some("fragment".to_owned()),
                ..params()
            },
            "invalid_request",
        ),
        (
            AuthorizeParams {
                request_object: true,
                ..params()
            },
            "request_not_supported",
        ),
    ];
    for (request, error) in cases {
        assert_eq!(
            redirected(check(&request, Some(&client()))),
            error,
            "{request:?}"
        );
    }
}
