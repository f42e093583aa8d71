//! Credentials and the interceptor that attaches them (and the tenant) to every request.

use std::fmt;
use std::time::Duration;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::error_code::ErrorCode;
use crate::metadata::{
    AUTHORIZATION_HEADER, BEARER_PREFIX, CLIENT_KEY_HEADER, OPERATOR_KEY_HEADER, SERVER_KEY_HEADER,
    TENANT_HEADER,
};
use crate::status::error_status;

/// The key a caller authenticates with; each kind travels in its own metadata entry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A publishable client key: end-user flows, usually together with an access token.
    Client {
        /// The tenant's publishable client key.
        publishable_key: String,
    },
    /// A secret server key: trusted backends managing users and sessions of one tenant.
    Server {
        /// The tenant's secret server key.
        secret_key: String,
    },
    /// The operator key: tenant and cluster administration.
    Operator {
        /// The cluster's operator key.
        operator_key: String,
    },
}

impl Credentials {
    /// The metadata key and value this credential is sent as.
    pub fn header(&self) -> (&'static str, &str) {
        match self {
            Credentials::Client { publishable_key } => (CLIENT_KEY_HEADER, publishable_key),
            Credentials::Server { secret_key } => (SERVER_KEY_HEADER, secret_key),
            Credentials::Operator { operator_key } => (OPERATOR_KEY_HEADER, operator_key),
        }
    }
}

// Secret keys must never reach logs through `{:?}`.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Client { publishable_key } => f
                .debug_struct("Client")
                .field("publishable_key", publishable_key)
                .finish(),
            Credentials::Server { .. } => f
                .debug_struct("Server")
                .field("secret_key", &"<redacted>")
                .finish(),
            Credentials::Operator { .. } => f
                .debug_struct("Operator")
                .field("operator_key", &"<redacted>")
                .finish(),
        }
    }
}

/// Interceptor adding tenant, credential, bearer token and deadline metadata to each request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RequestMetadata {
    /// The tenant sent as `x-gatehouse-tenant`, if any.
    pub tenant: Option<String>,
    /// The key sent in the header of its kind, if any.
    pub credentials: Option<Credentials>,
    /// The user access token sent as `authorization: Bearer …`, if any.
    pub access_token: Option<String>,
    /// The deadline sent as `grpc-timeout` unless the request already has one.
    pub timeout: Option<Duration>,
}

impl RequestMetadata {
    /// Writes the tenant, credential and bearer token into `metadata`, replacing earlier values.
    pub fn apply(&self, metadata: &mut MetadataMap) -> Result<(), Status> {
        if let Some(tenant) = &self.tenant {
            metadata.insert(TENANT_HEADER, ascii_value(tenant, "tenant")?);
        }
        if let Some(credentials) = &self.credentials {
            let (key, value) = credentials.header();
            metadata.insert(key, ascii_value(value, "credentials")?);
        }
        if let Some(token) = &self.access_token {
            let value = format!("{BEARER_PREFIX}{token}");
            metadata.insert(AUTHORIZATION_HEADER, ascii_value(&value, "access_token")?);
        }
        Ok(())
    }
}

impl Interceptor for RequestMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.apply(request.metadata_mut())?;
        if let Some(timeout) = self.timeout
            && !request.metadata().contains_key("grpc-timeout")
        {
            request.set_timeout(timeout);
        }
        Ok(request)
    }
}

impl fmt::Debug for RequestMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMetadata")
            .field("tenant", &self.tenant)
            .field("credentials", &self.credentials)
            .field("has_access_token", &self.access_token.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn ascii_value(text: &str, field: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, Status> {
    text.parse().map_err(|_| {
        error_status(
            ErrorCode::InvalidArgument,
            format!("{field} is not a valid metadata value"),
            Some(field),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::status::ApiError;

    fn header<'a>(request: &'a Request<()>, key: &str) -> Option<&'a str> {
        request
            .metadata()
            .get(key)
            .map(|value| value.to_str().unwrap())
    }

    #[test]
    fn each_credential_kind_uses_its_own_header() {
        let cases = [
            (
                Credentials::Client {
                    publishable_key: "pk_1".into(),
                },
                CLIENT_KEY_HEADER,
                "pk_1",
            ),
            (
                Credentials::Server {
                    secret_key: "sk_1".into(),
                },
                SERVER_KEY_HEADER,
                "sk_1",
            ),
            (
                Credentials::Operator {
                    operator_key: "op_1".into(),
                },
                OPERATOR_KEY_HEADER,
                "op_1",
            ),
        ];
        for (credentials, key, value) in cases {
            let mut interceptor = RequestMetadata {
                credentials: Some(credentials),
                ..RequestMetadata::default()
            };
            let request = interceptor.call(Request::new(())).unwrap();
            assert_eq!(header(&request, key), Some(value));
            assert_eq!(request.metadata().len(), 1, "{:?}", request.metadata());
        }
    }

    #[test]
    fn tenant_bearer_and_deadline_are_attached() {
        let mut interceptor = RequestMetadata {
            tenant: Some("acme".into()),
            credentials: Some(Credentials::Client {
                publishable_key: "pk".into(),
            }),
            access_token: Some("a.b.c".into()),
            timeout: Some(Duration::from_secs(10)),
        };
        let request = interceptor.call(Request::new(())).unwrap();
        assert_eq!(header(&request, TENANT_HEADER), Some("acme"));
        assert_eq!(header(&request, CLIENT_KEY_HEADER), Some("pk"));
        assert_eq!(header(&request, AUTHORIZATION_HEADER), Some("Bearer a.b.c"));
        assert_eq!(header(&request, "grpc-timeout"), Some("10000000u"));
    }

    #[test]
    fn an_explicit_request_deadline_wins() {
        let mut interceptor = RequestMetadata {
            timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        let mut request = Request::new(());
        request.set_timeout(Duration::from_millis(5));
        let request = interceptor.call(request).unwrap();
        assert_eq!(header(&request, "grpc-timeout"), Some("5000000n"));
    }

    #[test]
    fn empty_metadata_adds_nothing() {
        let request = RequestMetadata::default().call(Request::new(())).unwrap();
        assert!(request.metadata().is_empty());
    }

    #[test]
    fn invalid_values_fail_the_request_with_a_field() {
        let mut interceptor = RequestMetadata {
            tenant: Some("bad\ntenant".into()),
            ..Default::default()
        };
        let error = ApiError::from(interceptor.call(Request::new(())).unwrap_err());
        assert_eq!(error.code, ErrorCode::InvalidArgument);
        assert_eq!(error.field.as_deref(), Some("tenant"));
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let metadata = RequestMetadata {
            credentials: Some(Credentials::Server {
                secret_key: "sk_secret".into(),
            }),
            access_token: Some("token_secret".into()),
            ..Default::default()
        };
        let text = format!("{metadata:?}");
        assert!(
            !text.contains("sk_secret") && !text.contains("token_secret"),
            "{text}"
        );
    }
}
