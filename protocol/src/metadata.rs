//! gRPC metadata keys (HTTP/2 header names) that callers send and servers read.

/// The tenant a request is for; every call except `Tenants` needs it.
pub const TENANT_HEADER: &str = "x-gatehouse-tenant";

/// A publishable client key, safe to ship inside apps.
pub const CLIENT_KEY_HEADER: &str = "x-gatehouse-client-key";

/// A secret server key, for trusted backends only.
pub const SERVER_KEY_HEADER: &str = "x-gatehouse-server-key";

/// The operator key, for cluster and tenant administration.
pub const OPERATOR_KEY_HEADER: &str = "x-gatehouse-operator-key";

/// The standard authorization header; its value is `Bearer <access token>`.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// The scheme prefix of an [`AUTHORIZATION_HEADER`] value, including the space.
pub const BEARER_PREFIX: &str = "Bearer ";

/// Response metadata carrying the stable error code, for clients that ignore status details.
pub const ERROR_CODE_HEADER: &str = "x-gatehouse-error-code";
