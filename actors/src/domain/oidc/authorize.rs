//! The authorization request (OpenID Connect Core §3.1.2.1, RFC 6749 §4.1.1, RFC 7636):
//! checked in the order the standards ask, so that an error about the client or its redirect
//! URI is shown to the person (never sent to a URI that is not the client's), and every
//! later error goes back to the registered redirect URI with the request's `state`.

use crate::domain::oidc_clients::{OPENID_SCOPE, OidcClientRecord, is_scope_token};

/// Longest `state` and `nonce` accepted.
pub const MAX_STATE_LEN: usize = 1024;
/// Longest `login_hint` accepted.
pub const MAX_LOGIN_HINT_LEN: usize = 320;

/// The request's parameters as they came (query or form), before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    /// The client asking.
    pub client_id: Option<String>,
    /// Where the answer goes.
    pub redirect_uri: Option<String>,
    /// Must be `code`.
    pub response_type: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Opaque to the provider, echoed to the client.
    pub state: Option<String>,
    /// Echoed in the ID token.
    pub nonce: Option<String>,
    /// The PKCE challenge.
    pub code_challenge: Option<String>,
    /// Must be `S256`.
    pub code_challenge_method: Option<String>,
    /// `none`, `login`, `consent`, space-separated.
    pub prompt: Option<String>,
    /// Seconds the sign-in may be old.
    pub max_age: Option<String>,
    /// The address to sign in with, prefilled.
    pub login_hint: Option<String>,
    /// `response_mode`; only `query` (the default for `code`) is supported.
    pub response_mode: Option<String>,
    /// `request` or `request_uri` was given (request objects are not supported).
    pub request_object: bool,
}

/// `prompt` values (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// No page may be shown: answer at once or with `login_required` / `consent_required`.
    pub none: bool,
    /// Ask the person to sign in again, even with a session.
    pub login: bool,
    /// Ask for consent again, even for a first-party client.
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The client asking.
    pub client_id: String,
    /// One of the client's registered redirect URIs, exactly.
    pub redirect_uri: String,
    /// Asked for, each allowed to the client; always holds `openid`.
    pub scopes: Vec<String>,
    /// Opaque to the provider, echoed to the client.
    pub state: Option<String>,
    /// Echoed in the ID token.
    pub nonce: Option<String>,
    /// The S256 PKCE challenge (43 base64url characters).
    pub code_challenge: String,
    /// `none`, `login`, `consent`, space-separated.
    pub prompt: Prompt,
    /// Seconds the sign-in may be old.
    pub max_age: Option<u64>,
    /// The address to sign in with, prefilled.
    pub login_hint: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: shown on a page, never redirected.
    Page {
        /// The RFC 6749 error code.
        error: &'static str,
        /// What is wrong, for people.
        description: String,
    },
    /// Sent to the registered redirect URI (RFC 6749 §4.1.2.1).
    Redirect {
        /// Where the answer goes.
        redirect_uri: String,
        /// The RFC 6749 error code.
        error: &'static str,
        /// What is wrong, for people.
        description: String,
        /// Opaque to the provider, echoed to the client.
        state: Option<String>,
    },
}

fn page(error: &'static str, description: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Page {
        error,
        description: description.into(),
    }
}

/// Whether `text` is a PKCE S256 challenge: 43 base64url characters (RFC 7636 §4.2).
fn is_s256_challenge(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

fn parse_prompt(text: Option<&str>) -> Result<Prompt, String> {
    let mut prompt = Prompt::default();
    for value in text
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            other => return Err(format!("prompt {other:?} is not supported")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err("prompt=none cannot be combined with other values".to_owned());
    }
    Ok(prompt)
}

/// Checks `params` against `client` (the client `client_id` names, `None` when unknown).
pub fn check(
    params: &AuthorizeParams,
    client: Option<&OidcClientRecord>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let Some(client_id) = params.client_id.as_deref().filter(|id| !id.is_empty()) else {
        return Err(page("invalid_request", "client_id is missing"));
    };
    let Some(client) = client.filter(|client| client.client_id == client_id) else {
        return Err(page("invalid_client", "this client is not registered"));
    };
    let Some(redirect_uri) = params.redirect_uri.as_deref().filter(|uri| !uri.is_empty()) else {
        return Err(page("invalid_request", "redirect_uri is missing"));
    };
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err(page(
            "invalid_request",
            "redirect_uri is not registered for this client",
        ));
    }
    let state = params.state.clone().filter(|state| !state.is_empty());
    let refuse = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        error,
        description: description.to_owned(),
        state: state.clone().filter(|state| state.len() <= MAX_STATE_LEN),
    };
    if state
        .as_ref()
        .is_some_and(|state| state.len() > MAX_STATE_LEN)
    {
        return Err(refuse("invalid_request", "state is too long"));
    }
    if params.request_object {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params
        .response_mode
        .as_deref()
        .is_some_and(|mode| mode != "query")
    {
        return Err(refuse(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None | Some("") => return Err(refuse("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    let mut scopes: Vec<String> = Vec::new();
    for scope in params.scope.as_deref().unwrap_or_default().split(' ') {
        if scope.is_empty() || scopes.iter().any(|seen| seen == scope) {
            continue;
        }
        if !is_scope_token(scope) || !client.allowed_scopes.iter().any(|s| s == scope) {
            return Err(refuse(
                "invalid_scope",
                "a scope is not allowed for this client",
            ));
        }
        scopes.push(scope.to_owned());
    }
    if !scopes.iter().any(|scope| scope == OPENID_SCOPE) {
        return Err(refuse("invalid_scope", "the openid scope is required"));
    }
    let Some(code_challenge) = params.code_challenge.as_deref().filter(|c| !c.is_empty()) else {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: code_challenge with code_challenge_method=S256",
        ));
    };
    if params.code_challenge_method.as_deref() != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if !is_s256_challenge(code_challenge) {
        return Err(refuse(
            "invalid_request",
            "code_challenge must be 43 base64url characters",
        ));
    }
    let nonce = params.nonce.clone().filter(|nonce| !nonce.is_empty());
    if nonce
        .as_ref()
        .is_some_and(|nonce| nonce.len() > MAX_STATE_LEN)
    {
        return Err(refuse("invalid_request", "nonce is too long"));
    }
    let prompt = parse_prompt(params.prompt.as_deref())
        .map_err(|description| refuse("invalid_request", &description))?;
    let max_age = match params.max_age.as_deref().filter(|age| !age.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| refuse("invalid_request", "max_age must be a number of seconds"))?,
        ),
    };
    let login_hint = params.login_hint.clone().filter(|hint| !hint.is_empty());
    if login_hint
        .as_ref()
        .is_some_and(|hint| hint.len() > MAX_LOGIN_HINT_LEN)
    {
        return Err(refuse("invalid_request", "login_hint is too long"));
    }
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state,
        nonce,
        code_challenge: code_challenge.to_owned(),
        prompt,
        max_age,
        login_hint,
    })
}
