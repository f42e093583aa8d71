//! The HTTP client every request to a provider goes through: no redirects followed, no proxy
//! from the environment, a 10 s timeout, user agent `gatehouse`, answers capped in size, 5xx
//! answers turned into errors so that they read as "unavailable" rather than as a refusal,
//! and, unless `[oauth] allow_private_providers`, no request to a private, loopback or
//! link-local address: a tenant's server key names the issuer (and the provider's discovery
//! document names the other endpoints), so without the check a tenant could make the node
//! fetch from its own network. Addresses are checked as written in the URL and as resolved.

use std::error::Error as StdError;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::webhook_sender::{CheckingResolver, TargetRefused, is_refused_address};

/// How long one request to a provider may take, connection included.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a provider (discovery documents, JWKS, tokens, user info).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The `User-Agent` of every request (GitHub's API refuses requests without one).
pub const USER_AGENT: &str = "gatehouse";

/// Why a request to a provider failed before it gave a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer within [`PROVIDER_TIMEOUT`].
    #[error("the provider did not answer in time")]
    Timeout,
    /// The connection could not be made.
    #[error("could not connect to the provider")]
    Connect,
    /// The provider answered 5xx.
    #[error("the provider answered HTTP {0}")]
    Server(u16),
    /// The answer was larger than [`MAX_BODY_BYTES`].
    #[error("the provider's answer is too large")]
    TooLarge,
    /// The request could not be built (a malformed URL).
    #[error("invalid provider URL")]
    Request,
    /// Any other transport failure.
    #[error("the request to the provider failed")]
    Transport,
    /// The provider's address is private, loopback or link-local, and this node does not
    /// allow such providers.
    #[error("the provider's address is private (see [oauth] allow_private_providers)")]
    PrivateAddress,
}

impl HttpError {
    /// Whether trying again later may succeed (timeouts, connection failures, 5xx, transport).
    pub fn is_unavailable(&self) -> bool {
        !matches!(
            self,
            HttpError::TooLarge | HttpError::Request | HttpError::PrivateAddress
        )
    }

    fn from_reqwest(error: &reqwest::Error) -> HttpError {
        let mut source = error.source();
        while let Some(cause) = source {
            if cause.is::<TargetRefused>() {
                return HttpError::PrivateAddress;
            }
            source = cause.source();
        }
        if error.is_timeout() {
            HttpError::Timeout
        } else if error.is_connect() {
            HttpError::Connect
        } else if error.is_builder() {
            HttpError::Request
        } else {
            HttpError::Transport
        }
    }
}

/// reqwest with the provider rules; implements the `oauth2` / `openidconnect` HTTP client.
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    allow_private: bool,
}

impl ProviderHttp {
    /// A client that follows no redirects, gives up after [`PROVIDER_TIMEOUT`] and says it is
    /// `gatehouse`; private addresses only when `allow_private`.
    pub fn new(allow_private: bool) -> Result<ProviderHttp, reqwest::Error> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckingResolver { allow_private }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(ProviderHttp {
            client,
            allow_private,
        })
    }

    /// Sends `request`; a 5xx answer is [`HttpError::Server`], any other status is returned.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|_| HttpError::Request)?;
        // The resolver sees host names only; an address written in the URL is checked here.
        let literal = match request.url().host() {
            Some(url::Host::Ipv4(address)) => Some(IpAddr::V4(address)),
            Some(url::Host::Ipv6(address)) => Some(IpAddr::V6(address)),
            _ => None,
        };
        if !self.allow_private && literal.is_some_and(is_refused_address) {
            return Err(HttpError::PrivateAddress);
        }
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|error| HttpError::from_reqwest(&error))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(HttpError::Server(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let mut builder = openidconnect::http::Response::builder()
            .status(status)
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| HttpError::from_reqwest(&error))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(|_| HttpError::Transport)
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + Sync + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn get(url: &str) -> HttpRequest {
        openidconnect::http::Request::builder()
            .uri(url)
            .body(Vec::new())
            .unwrap()
    }

    #[tokio::test]
    async fn private_providers_are_refused_as_written_and_as_resolved() {
        let http = ProviderHttp::new(false).unwrap();
        for url in [
            "http://127.0.0.1:9/.well-known/openid-configuration",
            "https://10.1.2.3/.well-known/openid-configuration",
            "https://[::1]/.well-known/openid-configuration",
            "https://169.254.169.254/latest/meta-data/",
            // A name that resolves to loopback: refused by the resolver.
            "http://localhost:9/.well-known/openid-configuration",
        ] {
            let error = http.send(get(url)).await.unwrap_err();
            assert!(
                matches!(error, HttpError::PrivateAddress),
                "{url}: {error:?}"
            );
            assert!(!error.is_unavailable(), "{url}");
        }
    }

    #[tokio::test]
    async fn private_providers_are_reached_when_allowed() {
        let http = ProviderHttp::new(true).unwrap();
        // Nothing listens on port 9: the request got as far as connecting.
        let error = http
            .send(get("http://127.0.0.1:9/.well-known/openid-configuration"))
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::Connect), "{error:?}");
    }
}
