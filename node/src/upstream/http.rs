//! The HTTP client every request to a provider goes through: no redirects followed, a 10 s
//! timeout, user agent `gatehouse`, answers capped in size, and 5xx answers turned into
//! errors so that they read as "unavailable" rather than as a refusal.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

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
}

impl HttpError {
    /// Whether trying again later may succeed (timeouts, connection failures, 5xx, transport).
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, HttpError::TooLarge | HttpError::Request)
    }

    fn from_reqwest(error: &reqwest::Error) -> HttpError {
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
}

impl ProviderHttp {
    /// A client that follows no redirects, gives up after [`PROVIDER_TIMEOUT`] and says it is
    /// `gatehouse`.
    pub fn new() -> Result<ProviderHttp, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(ProviderHttp { client })
    }

    /// Sends `request`; a 5xx answer is [`HttpError::Server`], any other status is returned.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|_| HttpError::Request)?;
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
