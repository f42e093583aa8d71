//! Client authentication at the token, revocation and introspection endpoints (RFC 6749
//! §2.3.1): `client_secret_basic` (the `Authorization: Basic` header, id and secret each
//! form-urlencoded), `client_secret_post` (`client_id` and `client_secret` in the body) or
//! `none` (a public client's `client_id` alone). Using two methods at once is refused.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_actors::domain::oidc::OAuthError;
use gatehouse_actors::domain::oidc::token::ClientAuth;

use super::Form;

fn decode_component(text: &str) -> Option<String> {
    // `application/x-www-form-urlencoded` decoding of one component (RFC 6749 §2.3.1).
    let pair = format!("v={text}");
    url::form_urlencoded::parse(pair.as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
}

fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_client();
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = decode_component(id).ok_or_else(malformed)?;
    let secret = decode_component(secret).ok_or_else(malformed)?;
    Ok(Some((id, secret)))
}

/// How the request authenticates its client.
pub fn from_request(headers: &HeaderMap, form: &Form) -> Result<ClientAuth, OAuthError> {
    let header = basic(headers)?;
    let (posted_id, posted_secret) = (form.get("client_id"), form.get("client_secret"));
    match (header, posted_id, posted_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::new(
            "invalid_request",
            "use one client authentication method, not two",
        )),
        (Some((client_id, secret)), posted, None) => {
            if posted.is_some_and(|posted| posted != client_id) {
                return Err(OAuthError::new(
                    "invalid_request",
                    "client_id differs from the authenticated client",
                ));
            }
            Ok(ClientAuth::Secret { client_id, secret })
        }
        (None, Some(client_id), Some(secret)) => Ok(ClientAuth::Secret {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        }),
        (None, Some(client_id), None) => Ok(ClientAuth::None {
            client_id: client_id.to_owned(),
        }),
        (None, None, _) => Err(OAuthError::invalid_client()),
    }
}
