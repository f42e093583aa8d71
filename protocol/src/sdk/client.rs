//! The SDK client: one shared channel plus the tenant, credentials and token of the caller.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Response, Status};

use super::metadata::{Credentials, RequestMetadata};
use crate::error_code::ErrorCode;
use crate::status::ApiError;
use crate::v1;

/// Default deadline of each request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline for opening the connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of retries of idempotent reads that failed with `UNAVAILABLE`.
pub const DEFAULT_RETRIES: u32 = 2;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A channel with the SDK's metadata interceptor, the transport of every raw client.
pub type AuthedChannel = InterceptedService<Channel, RequestMetadata>;

/// Configures and connects a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    endpoint: String,
    metadata: RequestMetadata,
    connect_timeout: Duration,
    retries: u32,
}

impl ClientBuilder {
    /// Sets the tenant every request is for.
    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.metadata.tenant = Some(tenant_id.into());
        self
    }

    /// Sets the key requests authenticate with.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.metadata.credentials = Some(credentials);
        self
    }

    /// Sets a user access token sent as `authorization: Bearer …`.
    pub fn access_token(mut self, token: impl Into<String>) -> Self {
        self.metadata.access_token = Some(token.into());
        self
    }

    /// Sets the deadline of each request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.metadata.timeout = Some(timeout);
        self
    }

    /// Sets the deadline for opening the connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how often an idempotent read failing with `UNAVAILABLE` is retried (default 2).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Connects now, failing with `UNAVAILABLE` when the node cannot be reached.
    pub async fn build(self) -> Result<Client, ApiError> {
        let endpoint = self.endpoint()?;
        let channel = endpoint.connect().await.map_err(|error| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "cannot connect to {}: {}",
                    self.endpoint,
                    error_chain(&error)
                ),
            )
        })?;
        Ok(self.into_client(channel))
    }

    /// Returns a client that connects on its first request; needs a Tokio runtime.
    pub fn build_lazy(self) -> Result<Client, ApiError> {
        let channel = self.endpoint()?.connect_lazy();
        Ok(self.into_client(channel))
    }

    fn endpoint(&self) -> Result<Endpoint, ApiError> {
        let uri = if self.endpoint.contains("://") {
            self.endpoint.clone()
        } else {
            format!("http://{}", self.endpoint)
        };
        let endpoint = Endpoint::from_shared(uri).map_err(|error| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "invalid endpoint {:?}: {}",
                    self.endpoint,
                    error_chain(&error)
                ),
            )
            .with_field("endpoint")
        })?;
        Ok(endpoint
            .timeout(self.metadata.timeout.unwrap_or(DEFAULT_TIMEOUT))
            .connect_timeout(self.connect_timeout))
    }

    fn into_client(self, channel: Channel) -> Client {
        Client {
            channel,
            endpoint: self.endpoint.into(),
            metadata: self.metadata,
            retries: self.retries,
        }
    }
}

/// An async Gatehouse client; cheap to clone, and clones share one connection.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    endpoint: Arc<str>,
    metadata: RequestMetadata,
    retries: u32,
}

impl Client {
    /// Starts configuring a client for a node address such as `http://127.0.0.1:50051`.
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
            metadata: RequestMetadata {
                timeout: Some(DEFAULT_TIMEOUT),
                ..RequestMetadata::default()
            },
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retries: DEFAULT_RETRIES,
        }
    }

    /// Wraps an existing channel (for example an in-process one) with default settings.
    pub fn from_channel(channel: Channel) -> Client {
        Client::builder("channel").into_client(channel)
    }

    /// The same connection, for another tenant.
    pub fn with_tenant(&self, tenant_id: &str) -> Client {
        let mut client = self.clone();
        client.metadata.tenant = Some(tenant_id.to_owned());
        client
    }

    /// The same connection and tenant, with other credentials.
    pub fn with_credentials(&self, credentials: Credentials) -> Client {
        let mut client = self.clone();
        client.metadata.credentials = Some(credentials);
        client
    }

    /// The same connection, tenant and credentials, acting as the user of `token`.
    pub fn with_access_token(&self, token: &str) -> Client {
        let mut client = self.clone();
        client.metadata.access_token = Some(token.to_owned());
        client
    }

    /// The same client without a user access token.
    pub fn without_access_token(&self) -> Client {
        let mut client = self.clone();
        client.metadata.access_token = None;
        client
    }

    /// The tenant requests are sent for, if set.
    pub fn tenant(&self) -> Option<&str> {
        self.metadata.tenant.as_deref()
    }

    /// The metadata every request of this client carries.
    pub fn request_metadata(&self) -> &RequestMetadata {
        &self.metadata
    }

    /// The raw `Auth` client with this client's metadata applied.
    pub fn auth(&self) -> v1::auth_client::AuthClient<AuthedChannel> {
        v1::auth_client::AuthClient::with_interceptor(self.channel.clone(), self.metadata.clone())
    }

    /// The raw `Users` client with this client's metadata applied.
    pub fn users(&self) -> v1::users_client::UsersClient<AuthedChannel> {
        v1::users_client::UsersClient::with_interceptor(self.channel.clone(), self.metadata.clone())
    }

    /// The raw `Sessions` client with this client's metadata applied.
    pub fn sessions(&self) -> v1::sessions_client::SessionsClient<AuthedChannel> {
        v1::sessions_client::SessionsClient::with_interceptor(
            self.channel.clone(),
            self.metadata.clone(),
        )
    }

    /// The raw `Tenants` client with this client's metadata applied.
    pub fn tenants(&self) -> v1::tenants_client::TenantsClient<AuthedChannel> {
        v1::tenants_client::TenantsClient::with_interceptor(
            self.channel.clone(),
            self.metadata.clone(),
        )
    }

    /// The shared channel (cheap to clone), for raw clients of other services.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The raw `Cluster` client with this client's metadata.
    pub fn cluster(&self) -> v1::cluster_client::ClusterClient<AuthedChannel> {
        v1::cluster_client::ClusterClient::with_interceptor(
            self.channel.clone(),
            self.metadata.clone(),
        )
    }

    /// The raw `Webhooks` client with this client's metadata.
    pub fn webhooks(&self) -> v1::webhooks_client::WebhooksClient<AuthedChannel> {
        v1::webhooks_client::WebhooksClient::with_interceptor(
            self.channel.clone(),
            self.metadata.clone(),
        )
    }

    /// The raw `Email` client with this client's metadata.
    pub fn email(&self) -> v1::email_client::EmailClient<AuthedChannel> {
        v1::email_client::EmailClient::with_interceptor(self.channel.clone(), self.metadata.clone())
    }

    /// The raw `Mfa` client with this client's metadata.
    pub fn mfa(&self) -> v1::mfa_client::MfaClient<AuthedChannel> {
        v1::mfa_client::MfaClient::with_interceptor(self.channel.clone(), self.metadata.clone())
    }

    /// The raw `Passkeys` client with this client's metadata.
    pub fn passkeys(&self) -> v1::passkeys_client::PasskeysClient<AuthedChannel> {
        v1::passkeys_client::PasskeysClient::with_interceptor(
            self.channel.clone(),
            self.metadata.clone(),
        )
    }

    /// The raw `Audit` client with this client's metadata.
    pub fn audit(&self) -> v1::audit_client::AuditClient<AuthedChannel> {
        v1::audit_client::AuditClient::with_interceptor(self.channel.clone(), self.metadata.clone())
    }

    /// Runs an idempotent read, retrying `UNAVAILABLE` with exponential backoff.
    pub(crate) async fn read<T, F, Fut>(&self, mut call: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if status.code() == Code::Unavailable && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(status) => return Err(ApiError::from(status)),
            }
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("metadata", &self.metadata)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// Runs a call that must not be repeated automatically (writes, sign-in, refresh).
pub(crate) async fn once<T>(
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<T, ApiError> {
    call.await.map(Response::into_inner).map_err(ApiError::from)
}

/// Joins an error and its sources, since transport errors hide the cause in the chain.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
