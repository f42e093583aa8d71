//! Gatehouse as an OpenID provider, over HTTP: the token endpoint (RFC 6749 §3.2), userinfo
//! (OpenID Connect Core §5.3), revocation (RFC 7009) and introspection (RFC 7662) under
//! `/t/{tenant}/oauth2/`. Request bodies are `application/x-www-form-urlencoded`, parsed by
//! the `url` crate's parser; a parameter given twice is refused (RFC 6749 §3.1). Answers are
//! JSON with `Cache-Control: no-store`; errors are `{"error", "error_description"}`.

mod client_auth;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatehouse_actors::DomainError;
use gatehouse_actors::api::oidc::TokenRequest;
use gatehouse_actors::domain::oidc::OAuthError;
use gatehouse_actors::domain::oidc::token::ClientAuth;
use serde_json::{Value, json};

use crate::http::{HttpState, error_response};
use crate::oauth_http::client_info;

/// The provider's routes.
pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/t/{tenant}/oauth2/token", post(token))
        .route("/t/{tenant}/oauth2/userinfo", get(userinfo).post(userinfo))
        .route("/t/{tenant}/oauth2/revoke", post(revoke))
        .route("/t/{tenant}/oauth2/introspect", post(introspect))
}

/// The `name=value` pairs of a query string or form body, each name at most once
/// (RFC 6749 §3.1); `Err` names the one given twice. The authorize and logout endpoints of
/// the pages read their queries with it too.
pub(crate) fn unique_pairs(text: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(text) {
        if fields.iter().any(|(seen, _)| *seen == name) {
            return Err(format!("{name} is given more than once"));
        }
        fields.push((name.into_owned(), value.into_owned()));
    }
    Ok(fields)
}

/// A form body's fields; `Err` names a field given twice or a body that is not a form.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Form, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::new(
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        unique_pairs(body)
            .map(Form)
            .map_err(|why| OAuthError::new("invalid_request", why))
    }

    /// A field's value, if present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    no_store((status, axum::Json(body)).into_response())
}

/// An RFC 6749 §5.2 error: 401 with a `Basic` challenge for `invalid_client`, else 400.
fn oauth_error(error: &OAuthError) -> Response {
    let body = json!({ "error": error.error, "error_description": error.description });
    if error.error == "invalid_client" {
        let mut response = json_reply(StatusCode::UNAUTHORIZED, body);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"gatehouse\""),
        );
        return response;
    }
    json_reply(StatusCode::BAD_REQUEST, body)
}

/// A domain failure: an unknown tenant is 404 like everywhere; anything else is a server
/// error in the endpoint's shape.
fn failure(error: &DomainError) -> Response {
    match error {
        DomainError::TenantNotFound => error_response(error),
        error => {
            tracing::warn!(%error, "OpenID endpoint failed");
            let body = json!({ "error": "server_error", "error_description": "try again" });
            json_reply(error_status(error), body)
        }
    }
}

fn error_status(error: &DomainError) -> StatusCode {
    StatusCode::from_u16(error.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn token(
    State(state): State<HttpState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let form = match Form::parse(&headers, &body) {
        Ok(form) => form,
        Err(error) => return oauth_error(&error),
    };
    let auth = match client_auth::from_request(&headers, &form) {
        Ok(auth) => auth,
        Err(error) => return oauth_error(&error),
    };
    let request = TokenRequest {
        grant_type: form.get("grant_type").unwrap_or_default().to_owned(),
        code: form.owned("code"),
        redirect_uri: form.owned("redirect_uri"),
        code_verifier: form.owned("code_verifier"),
        refresh_token: form.owned("refresh_token"),
    };
    let info = client_info(&headers, &extensions);
    match state
        .gatehouse
        .oidc_token(&tenant, &auth, &request, &info)
        .await
    {
        Ok(Ok(reply)) => json_reply(
            StatusCode::OK,
            json!({
                "access_token": reply.access_token,
                "token_type": "Bearer",
                "expires_in": reply.expires_in,
                "refresh_token": reply.refresh_token,
                "id_token": reply.id_token,
                "scope": reply.scope,
            }),
        ),
        Ok(Err(error)) => oauth_error(&error),
        Err(error) => failure(&error),
    }
}

/// The bearer token of `Authorization: Bearer …` (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

async fn userinfo(
    State(state): State<HttpState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let refused = |error: &str| {
        let mut response = json_reply(StatusCode::UNAUTHORIZED, json!({ "error": error }));
        let challenge = format!("Bearer error=\"{error}\"");
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(token) = bearer(&headers) else {
        return refused("invalid_request");
    };
    match state.gatehouse.oidc_userinfo(&tenant, token).await {
        Ok(info) => json_reply(StatusCode::OK, info),
        Err(DomainError::TenantNotFound) => error_response(&DomainError::TenantNotFound),
        Err(DomainError::Storage(error)) => failure(&DomainError::Storage(error)),
        Err(_) => refused("invalid_token"),
    }
}

/// The form, client and `token` of a revocation or introspection request.
fn token_request(headers: &HeaderMap, body: &[u8]) -> Result<(ClientAuth, String), OAuthError> {
    let form = Form::parse(headers, body)?;
    let auth = client_auth::from_request(headers, &form)?;
    let token = form
        .owned("token")
        .ok_or_else(|| OAuthError::new("invalid_request", "token is missing"))?;
    Ok((auth, token))
}

async fn revoke(
    State(state): State<HttpState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (auth, token) = match token_request(&headers, &body) {
        Ok(request) => request,
        Err(error) => return oauth_error(&error),
    };
    let token = token.as_str();
    match state.gatehouse.oidc_revoke(&tenant, &auth, token).await {
        Ok(Ok(())) => no_store(StatusCode::OK.into_response()),
        Ok(Err(error)) => oauth_error(&error),
        Err(error) => failure(&error),
    }
}

async fn introspect(
    State(state): State<HttpState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (auth, token) = match token_request(&headers, &body) {
        Ok(request) => request,
        Err(error) => return oauth_error(&error),
    };
    let token = token.as_str();
    match state.gatehouse.oidc_introspect(&tenant, &auth, token).await {
        Ok(Ok(answer)) => json_reply(StatusCode::OK, answer),
        Ok(Err(error)) => oauth_error(&error),
        Err(error) => failure(&error),
    }
}
