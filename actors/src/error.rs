//! The one error type of the domain, each variant mapped to one stable [`ErrorCode`].

use gatehouse_protocol::ErrorCode;
use gatehouse_storage::{AsStorageError, StorageError};

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A request field is invalid; `field` names it on the wire.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// The password does not meet the policy.
    #[error("password rejected: {0}")]
    InvalidPassword(String),
    /// Another user of the tenant has this email.
    #[error("a user with this email already exists")]
    UserEmailAlreadyExists,
    /// Unknown email or wrong password (deliberately the same).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The refresh token is not valid for any live session state.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A spent refresh token was presented; the session has been revoked.
    #[error("refresh token was already used; the session is revoked")]
    RefreshTokenReused,
    /// The session is revoked.
    #[error("session is revoked")]
    SessionRevoked,
    /// The session passed its idle or absolute expiry.
    #[error("session has expired")]
    SessionExpired,
    /// No such session in the tenant.
    #[error("session not found")]
    SessionNotFound,
    /// The bearer token is malformed, badly signed or for another tenant.
    #[error("invalid access token")]
    InvalidAccessToken,
    /// The bearer token has expired.
    #[error("access token has expired")]
    AccessTokenExpired,
    /// The call carries no usable credentials.
    #[error("missing credentials: {0}")]
    MissingCredentials(&'static str),
    /// A key was sent but is not valid for the tenant.
    #[error("invalid api key")]
    InvalidApiKey,
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(&'static str),
    /// The user is suspended.
    #[error("user is suspended")]
    UserSuspended,
    /// No such user in the tenant.
    #[error("user not found")]
    UserNotFound,
    /// No such tenant.
    #[error("tenant not found")]
    TenantNotFound,
    /// The tenant id is taken.
    #[error("tenant already exists")]
    TenantAlreadyExists,
    /// Too many attempts; retry later.
    #[error("too many requests, retry later")]
    RateLimited,
    /// The node cannot serve this now (hash pool saturated, actor stopping, shutting down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A storage error; retryable ones are retried by `Database::run` before surfacing.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An error another node returned for a forwarded call, kept with its code.
    #[error("{message}")]
    Remote {
        /// The stable code the owner node reported.
        code: ErrorCode,
        /// Its public message.
        message: String,
        /// The offending field, if any.
        field: Option<String>,
    },
    /// A bug or a corrupt record; the message goes to the log, never to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// The stable code this error is reported with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DomainError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            DomainError::InvalidPassword(_) => ErrorCode::InvalidPassword,
            DomainError::UserEmailAlreadyExists => ErrorCode::UserEmailAlreadyExists,
            DomainError::InvalidCredentials => ErrorCode::InvalidCredentials,
            DomainError::InvalidRefreshToken => ErrorCode::InvalidRefreshToken,
            DomainError::RefreshTokenReused => ErrorCode::RefreshTokenReused,
            DomainError::SessionRevoked => ErrorCode::SessionRevoked,
            DomainError::SessionExpired => ErrorCode::SessionExpired,
            DomainError::SessionNotFound => ErrorCode::SessionNotFound,
            DomainError::InvalidAccessToken => ErrorCode::InvalidAccessToken,
            DomainError::AccessTokenExpired => ErrorCode::AccessTokenExpired,
            DomainError::MissingCredentials(_) => ErrorCode::MissingCredentials,
            DomainError::InvalidApiKey => ErrorCode::InvalidApiKey,
            DomainError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            DomainError::UserSuspended => ErrorCode::UserSuspended,
            DomainError::UserNotFound => ErrorCode::UserNotFound,
            DomainError::TenantNotFound => ErrorCode::TenantNotFound,
            DomainError::TenantAlreadyExists => ErrorCode::TenantAlreadyExists,
            DomainError::RateLimited => ErrorCode::RateLimited,
            DomainError::Unavailable(_) => ErrorCode::Unavailable,
            DomainError::Remote { code, .. } => *code,
            DomainError::Storage(error) if error.is_retryable() => ErrorCode::Conflict,
            DomainError::Storage(StorageError::RetryLimitExceeded { .. }) => ErrorCode::Conflict,
            DomainError::Storage(_) | DomainError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The request field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            DomainError::InvalidArgument { field, .. } => Some(field),
            DomainError::InvalidPassword(_) => Some("password"),
            DomainError::Remote { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The message safe to show the caller: internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal => "internal error".to_owned(),
            _ => self.to_string(),
        }
    }

    /// Shorthand for an invalid field.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> DomainError {
        DomainError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl AsStorageError for DomainError {
    fn as_storage_error(&self) -> Option<&StorageError> {
        match self {
            DomainError::Storage(error) => Some(error),
            _ => None,
        }
    }
}

/// Result of every domain operation.
pub type DomainResult<T> = Result<T, DomainError>;
