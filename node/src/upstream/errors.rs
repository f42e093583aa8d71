//! How provider failures become domain errors: short messages, never a token, a secret or the
//! provider's own error text.

use gatehouse_actors::DomainError;
use gatehouse_actors::domain::upstream::RefreshFailure;
use openidconnect::core::CoreErrorResponseType;
use openidconnect::{
    ClaimsVerificationError, DiscoveryError, RequestTokenError, StandardErrorResponse,
    UserInfoError,
};

use super::http::HttpError;

/// A token endpoint's failure as `oauth2` reports it through [`super::http::ProviderHttp`].
pub type TokenError = RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>;

/// `OAUTH_UPSTREAM_UNAVAILABLE` with `message`.
pub fn unavailable(message: impl Into<String>) -> DomainError {
    DomainError::OAuthUpstreamUnavailable(message.into())
}

/// `OAUTH_UPSTREAM_REJECTED` with `message`.
pub fn rejected(message: impl Into<String>) -> DomainError {
    DomainError::OAuthUpstreamRejected(message.into())
}

/// A transport failure of a request about `what`.
pub fn http_error(what: &str, error: &HttpError) -> DomainError {
    if error.is_unavailable() {
        unavailable(format!("{what}: {error}"))
    } else {
        rejected(format!("{what}: {error}"))
    }
}

/// GitHub answers refusals with HTTP 200 and an `error` field; read one from a body that did
/// not parse as a token response.
pub fn error_in_body(body: &[u8]) -> Option<CoreErrorResponseType> {
    serde_json::from_slice::<StandardErrorResponse<CoreErrorResponseType>>(body)
        .ok()
        .map(|response| response.error().clone())
}

/// The failure of a code exchange.
pub fn code_exchange_error(error: &TokenError) -> DomainError {
    match error {
        RequestTokenError::Request(error) => http_error("token endpoint", error),
        RequestTokenError::ServerResponse(response) => rejected(format!(
            "the token endpoint refused the code ({})",
            response.error().as_ref()
        )),
        RequestTokenError::Parse(_, body) => code_exchange_error_in_body(body),
        RequestTokenError::Other(_) => rejected("the token endpoint's answer is malformed"),
    }
}

fn code_exchange_error_in_body(body: &[u8]) -> DomainError {
    match error_in_body(body) {
        Some(code) => rejected(format!(
            "the token endpoint refused the code ({})",
            code.as_ref()
        )),
        None => rejected("the token endpoint's answer is malformed"),
    }
}

/// Whether a refusal says the refresh token is dead: `invalid_grant` (RFC 6749), or
/// GitHub's `bad_refresh_token`.
fn is_dead_grant(code: &CoreErrorResponseType) -> bool {
    match code {
        CoreErrorResponseType::InvalidGrant => true,
        CoreErrorResponseType::Extension(other) => other == "bad_refresh_token",
        _ => false,
    }
}

/// The failure of a refresh: `invalid_grant` is [`RefreshFailure::Revoked`], timeouts,
/// connection failures and 5xx are [`RefreshFailure::Unavailable`], the rest
/// [`RefreshFailure::Rejected`].
pub fn refresh_failure(error: &TokenError) -> RefreshFailure {
    match error {
        RequestTokenError::Request(error) if error.is_unavailable() => {
            RefreshFailure::Unavailable(format!("token endpoint: {error}"))
        }
        RequestTokenError::Request(error) => {
            RefreshFailure::Rejected(format!("token endpoint: {error}"))
        }
        RequestTokenError::ServerResponse(response) if is_dead_grant(response.error()) => {
            RefreshFailure::Revoked
        }
        RequestTokenError::ServerResponse(response) => RefreshFailure::Rejected(format!(
            "the token endpoint refused the refresh ({})",
            response.error().as_ref()
        )),
        RequestTokenError::Parse(_, body) => refresh_failure_in_body(body),
        RequestTokenError::Other(_) => {
            RefreshFailure::Rejected("the token endpoint's answer is malformed".into())
        }
    }
}

/// A refresh answer that was not a token response: a refusal in the body (GitHub answers
/// HTTP 200 with an `error`), or a malformed answer.
fn refresh_failure_in_body(body: &[u8]) -> RefreshFailure {
    match error_in_body(body) {
        Some(code) if is_dead_grant(&code) => RefreshFailure::Revoked,
        Some(code) => RefreshFailure::Rejected(format!(
            "the token endpoint refused the refresh ({})",
            code.as_ref()
        )),
        None => RefreshFailure::Rejected("the token endpoint's answer is malformed".into()),
    }
}

/// A refresh failure where the domain wants an error (discovery before the refresh).
pub fn refresh_failure_of(error: DomainError) -> RefreshFailure {
    match error {
        DomainError::OAuthUpstreamUnavailable(message) => RefreshFailure::Unavailable(message),
        DomainError::OAuthUpstreamRejected(message) => RefreshFailure::Rejected(message),
        other => RefreshFailure::Rejected(other.public_message()),
    }
}

/// The failure of discovery or of the JWKS fetch.
pub fn discovery_error(error: &DiscoveryError<HttpError>) -> DomainError {
    match error {
        DiscoveryError::Request(error) => http_error("discovery", error),
        DiscoveryError::Response(status, _, _) if status.is_server_error() => {
            unavailable(format!("discovery: the provider answered HTTP {status}"))
        }
        DiscoveryError::Response(status, _, _) => {
            rejected(format!("discovery: the provider answered HTTP {status}"))
        }
        DiscoveryError::Parse(_) => rejected("discovery: the provider's metadata is malformed"),
        DiscoveryError::UrlParse(_) => rejected("discovery: the issuer is not a valid URL"),
        DiscoveryError::Validation(_) => {
            rejected("discovery: the provider's metadata names another issuer")
        }
        _ => rejected("discovery failed"),
    }
}

/// An ID token that failed validation.
pub fn claims_error(error: &ClaimsVerificationError) -> DomainError {
    rejected(match error {
        ClaimsVerificationError::Expired(_) => "the ID token has expired",
        ClaimsVerificationError::InvalidAudience(_) => "the ID token is for another client",
        ClaimsVerificationError::InvalidIssuer(_) => "the ID token is from another issuer",
        ClaimsVerificationError::InvalidNonce(_) => "the ID token's nonce does not match",
        ClaimsVerificationError::SignatureVerification(_) => {
            "the ID token's signature does not verify"
        }
        _ => "the ID token is invalid",
    })
}

/// A user info request that failed.
pub fn user_info_error(error: &UserInfoError<HttpError>) -> DomainError {
    match error {
        UserInfoError::Request(error) => http_error("user info", error),
        UserInfoError::Response(status, _, _) if status.is_server_error() => {
            unavailable(format!("user info: the provider answered HTTP {status}"))
        }
        UserInfoError::ClaimsVerification(_) => {
            rejected("user info: the answer is for another subject or issuer")
        }
        _ => rejected("user info: the provider's answer is unusable"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use openidconnect::http::StatusCode;

    use super::*;

    fn server_error(code: CoreErrorResponseType) -> TokenError {
        RequestTokenError::ServerResponse(StandardErrorResponse::new(
            code,
            Some("a description that might carry details".into()),
            None,
        ))
    }

    #[test]
    fn invalid_grant_means_the_refresh_token_is_revoked() {
        assert_eq!(
            refresh_failure(&server_error(CoreErrorResponseType::InvalidGrant)),
            RefreshFailure::Revoked
        );
        // GitHub: HTTP 200 with an error body.
        assert_eq!(
            refresh_failure_in_body(br#"{"error":"bad_refresh_token"}"#),
            RefreshFailure::Revoked
        );
    }

    #[test]
    fn transport_failures_and_5xx_are_unavailable() {
        for error in [
            HttpError::Timeout,
            HttpError::Connect,
            HttpError::Server(503),
            HttpError::Transport,
        ] {
            let failure = refresh_failure(&RequestTokenError::Request(error));
            assert!(
                matches!(failure, RefreshFailure::Unavailable(_)),
                "{failure:?}"
            );
        }
        assert!(matches!(
            code_exchange_error(&RequestTokenError::Request(HttpError::Server(502))),
            DomainError::OAuthUpstreamUnavailable(_)
        ));
    }

    #[test]
    fn other_refusals_are_rejected_without_the_providers_text() {
        let failure = refresh_failure(&server_error(CoreErrorResponseType::InvalidClient));
        match failure {
            RefreshFailure::Rejected(message) => {
                assert!(message.contains("invalid_client"), "{message}");
                assert!(!message.contains("description"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            refresh_failure_in_body(b"<html>oops</html>"),
            RefreshFailure::Rejected(_)
        ));
        assert!(matches!(
            refresh_failure(&RequestTokenError::Request(HttpError::TooLarge)),
            RefreshFailure::Rejected(_)
        ));
    }

    #[test]
    fn a_refused_code_is_rejected() {
        let error = code_exchange_error(&server_error(CoreErrorResponseType::InvalidGrant));
        assert!(matches!(error, DomainError::OAuthUpstreamRejected(_)));
        let error = code_exchange_error_in_body(
            br#"{"error":"bad_verification_code","error_description":"secret-ish"}"#,
        );
        match error {
            DomainError::OAuthUpstreamRejected(message) => {
                assert!(message.contains("bad_verification_code"), "{message}");
                assert!(!message.contains("secret-ish"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn discovery_5xx_is_unavailable_and_4xx_rejected() {
        let error = discovery_error(&DiscoveryError::Response(
            StatusCode::SERVICE_UNAVAILABLE,
            Vec::new(),
            String::new(),
        ));
        assert!(matches!(error, DomainError::OAuthUpstreamUnavailable(_)));
        let error = discovery_error(&DiscoveryError::Response(
            StatusCode::NOT_FOUND,
            Vec::new(),
            String::new(),
        ));
        assert!(matches!(error, DomainError::OAuthUpstreamRejected(_)));
        let error = discovery_error(&DiscoveryError::Request(HttpError::Timeout));
        assert!(matches!(error, DomainError::OAuthUpstreamUnavailable(_)));
    }

    #[test]
    fn claims_errors_name_the_check_that_failed() {
        let error = claims_error(&ClaimsVerificationError::InvalidNonce("n".into()));
        match error {
            DomainError::OAuthUpstreamRejected(message) => assert!(message.contains("nonce")),
            other => panic!("{other:?}"),
        }
    }
}
