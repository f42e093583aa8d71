//! The one error type of the domain, each variant mapped to one stable [`ErrorCode`].

use gatehouse_protocol::ErrorCode;
use gatehouse_storage::{AsStorageError, StorageError};

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A request field is invalid; `field` names it on the wire.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
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
    /// No such team in the tenant.
    #[error("team not found")]
    TeamNotFound,
    /// The user is not a member of the team.
    #[error("the user is not a member of this team")]
    TeamMembershipNotFound,
    /// The user already is a member.
    #[error("the user is already a member of this team")]
    TeamMembershipAlreadyExists,
    /// The invitation cannot be used.
    #[error("invitation is invalid: {0}")]
    InvitationInvalid(&'static str),
    /// No such permission definition.
    #[error("permission not found")]
    PermissionNotFound,
    /// The permission id is taken.
    #[error("permission already exists")]
    PermissionAlreadyExists,
    /// No such share visible to the caller.
    #[error("share not found")]
    ShareNotFound,
    /// The share was revoked.
    #[error("share was revoked")]
    ShareRevoked,
    /// The share expired.
    #[error("share has expired")]
    ShareExpired,
    /// The share's uses are exhausted.
    #[error("share reached its maximum number of uses")]
    ShareUseLimitReached,
    /// The share does not cover this.
    #[error("share does not grant this: {0}")]
    ShareScopeExceeded(String),
    /// No such pending proposal.
    #[error("proposal not found")]
    ProposalNotFound,
    /// No such webhook endpoint in the tenant.
    #[error("webhook endpoint not found")]
    WebhookEndpointNotFound,
    /// The webhook URL resolves to an address this node may not send to.
    #[error("webhook target not allowed: {0}")]
    WebhookTargetNotAllowed(String),
    /// The tenant has the most webhook endpoints it may have.
    #[error("the tenant already has {0} webhook endpoints, the most allowed")]
    WebhookEndpointLimitReached(usize),
    /// No stored webhook event with this id.
    #[error("webhook event not found")]
    WebhookEventNotFound,
    /// Too many attempts; retry later.
    #[error("too many requests, retry later")]
    RateLimited,
    /// Too many attempts; retry after this many seconds (`retry_after_seconds` metadata).
    #[error("too many attempts, retry in {0} s")]
    RateLimitedFor(u64),
    /// An emailed code or link token is wrong, used, expired or unknown (deliberately the same).
    #[error("the code is invalid or has expired")]
    InvalidCode,
    /// The user must verify their email address first.
    #[error("the email address must be verified first")]
    EmailNotVerified,
    /// The first factor was right; a second one is needed (`Debug` and the message leave the
    /// ticket out).
    #[error("a second factor is required")]
    MfaRequired(MfaChallenge),
    /// The MFA ticket is unknown, used, expired or out of tries.
    #[error("the MFA ticket is invalid or has expired")]
    MfaTicketInvalid,
    /// The sign-in is older than the tenant's step-up window.
    #[error("this operation needs a recent sign-in: sign in again and retry")]
    ReauthenticationRequired,
    /// The user must enrol a second factor before anything else.
    #[error("the tenant requires a second factor: enrol one first")]
    MfaEnrolmentRequired,
    /// The user is banned.
    #[error("user is banned")]
    UserBanned,
    /// No such factor.
    #[error("factor not found")]
    FactorNotFound,
    /// The factor is already enrolled.
    #[error("factor is already enrolled")]
    FactorAlreadyEnrolled,
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
    /// The API key is unknown, malformed, expired or revoked (deliberately the same).
    #[error("invalid api key")]
    ApiKeyInvalid,
    /// No such API key in the tenant, or not one the caller may see.
    #[error("api key not found")]
    ApiKeyNotFound,
    /// A machine token (from an API key) was sent where a user's access token is needed.
    #[error("the access token belongs to an api key, not to a signed-in user")]
    MachineTokenNotAccepted,
    /// No upstream provider with this id in the tenant.
    #[error("no such upstream provider")]
    OAuthProviderNotFound,
    /// The provider id is taken in the tenant.
    #[error("an upstream provider with this id already exists")]
    OAuthProviderAlreadyExists,
    /// The upstream flow's state is unknown, spent, expired or another browser's.
    #[error("the upstream sign-in is unknown, spent, expired or began in another browser")]
    OAuthStateInvalid,
    /// The single-use sign-in code is unknown, spent, expired or another tenant's.
    #[error("the sign-in code is unknown, spent or expired")]
    OAuthCodeInvalid,
    /// A user has the upstream email and the provider may not link to it.
    #[error("a user with this email exists; sign in and link the provider from the account")]
    OAuthAccountExists,
    /// The upstream account is linked to another user.
    #[error("this upstream account is linked to another user")]
    OAuthAccountLinkedElsewhere,
    /// The user has no link with this provider.
    #[error("the user has no linked account with this provider")]
    OAuthAccountNotLinked,
    /// Unlinking would leave the user no way to sign in.
    #[error("unlinking would leave the user no way to sign in")]
    OAuthLastSignInMethod,
    /// The provider answered `invalid_grant`; the stored refresh token was dropped.
    #[error(
        "the provider refused the stored refresh token; it was dropped and the user must sign in with the provider again"
    )]
    OAuthRefreshRevoked,
    /// The provider may not create users.
    #[error("this provider does not sign up new users")]
    OAuthSignUpDisabled,
    /// The provider refused the flow or its answer failed validation (the reason is logged
    /// and kept short for the caller).
    #[error("the upstream provider refused the sign-in: {0}")]
    OAuthUpstreamRejected(String),
    /// The provider timed out or failed (5xx, connection); nothing stored was changed.
    #[error("the upstream provider is unavailable: {0}")]
    OAuthUpstreamUnavailable(String),
    /// The stored grant lacks these scopes.
    #[error("the connected account lacks the scopes: {0}")]
    OAuthScopesMissing(String),
    /// No OpenID Connect client with this id in the tenant.
    #[error("oidc client not found")]
    OidcClientNotFound,
    /// Unknown client, public client or wrong secret (deliberately the same).
    #[error("invalid client credentials")]
    OidcClientInvalid,
    /// A public client has no secret.
    #[error("a public client has no secret")]
    OidcClientPublic,
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
            DomainError::TeamNotFound => ErrorCode::TeamNotFound,
            DomainError::TeamMembershipNotFound => ErrorCode::TeamMembershipNotFound,
            DomainError::TeamMembershipAlreadyExists => ErrorCode::TeamMembershipAlreadyExists,
            DomainError::InvitationInvalid(_) => ErrorCode::InvitationInvalid,
            DomainError::PermissionNotFound => ErrorCode::PermissionNotFound,
            DomainError::PermissionAlreadyExists => ErrorCode::PermissionAlreadyExists,
            DomainError::ShareNotFound => ErrorCode::ShareNotFound,
            DomainError::ShareRevoked => ErrorCode::ShareRevoked,
            DomainError::ShareExpired => ErrorCode::ShareExpired,
            DomainError::ShareUseLimitReached => ErrorCode::ShareUseLimitReached,
            DomainError::ShareScopeExceeded(_) => ErrorCode::ShareScopeExceeded,
            DomainError::ProposalNotFound => ErrorCode::ProposalNotFound,
            DomainError::WebhookEndpointNotFound => ErrorCode::WebhookEndpointNotFound,
            DomainError::WebhookTargetNotAllowed(_) => ErrorCode::WebhookTargetNotAllowed,
            DomainError::WebhookEndpointLimitReached(_) => ErrorCode::WebhookEndpointLimitReached,
            DomainError::WebhookEventNotFound => ErrorCode::WebhookEventNotFound,
            DomainError::RateLimited | DomainError::RateLimitedFor(_) => ErrorCode::RateLimited,
            DomainError::InvalidCode => ErrorCode::InvalidCode,
            DomainError::EmailNotVerified => ErrorCode::EmailNotVerified,
            DomainError::MfaRequired(_) => ErrorCode::MfaRequired,
            DomainError::MfaTicketInvalid => ErrorCode::MfaTicketInvalid,
            DomainError::ReauthenticationRequired => ErrorCode::ReauthenticationRequired,
            DomainError::UserBanned => ErrorCode::UserBanned,
            DomainError::MfaEnrolmentRequired => ErrorCode::MfaEnrolmentRequired,
            DomainError::FactorNotFound => ErrorCode::FactorNotFound,
            DomainError::FactorAlreadyEnrolled => ErrorCode::FactorAlreadyEnrolled,
            DomainError::Unavailable(_) => ErrorCode::Unavailable,
            DomainError::Remote { code, .. } => *code,
            DomainError::Storage(error) if error.is_retryable() => ErrorCode::Conflict,
            DomainError::Storage(StorageError::RetryLimitExceeded { .. }) => ErrorCode::Conflict,
            DomainError::Storage(_) | DomainError::Internal(_) => ErrorCode::Internal,
            DomainError::ApiKeyInvalid => ErrorCode::ApiKeyInvalid,
            DomainError::ApiKeyNotFound => ErrorCode::ApiKeyNotFound,
            DomainError::MachineTokenNotAccepted => ErrorCode::MachineTokenNotAccepted,
            DomainError::OAuthProviderNotFound => ErrorCode::OAuthProviderNotFound,
            DomainError::OAuthProviderAlreadyExists => ErrorCode::OAuthProviderAlreadyExists,
            DomainError::OAuthStateInvalid => ErrorCode::OAuthStateInvalid,
            DomainError::OAuthCodeInvalid => ErrorCode::OAuthCodeInvalid,
            DomainError::OAuthAccountExists => ErrorCode::OAuthAccountExists,
            DomainError::OAuthAccountLinkedElsewhere => ErrorCode::OAuthAccountLinkedElsewhere,
            DomainError::OAuthAccountNotLinked => ErrorCode::OAuthAccountNotLinked,
            DomainError::OAuthLastSignInMethod => ErrorCode::OAuthLastSignInMethod,
            DomainError::OAuthRefreshRevoked => ErrorCode::OAuthRefreshRevoked,
            DomainError::OAuthSignUpDisabled => ErrorCode::OAuthSignUpDisabled,
            DomainError::OAuthUpstreamRejected(_) => ErrorCode::OAuthUpstreamRejected,
            DomainError::OAuthUpstreamUnavailable(_) => ErrorCode::OAuthUpstreamUnavailable,
            DomainError::OAuthScopesMissing(_) => ErrorCode::OAuthScopesMissing,
            DomainError::OidcClientNotFound => ErrorCode::OidcClientNotFound,
            DomainError::OidcClientInvalid => ErrorCode::OidcClientInvalid,
            DomainError::OidcClientPublic => ErrorCode::OidcClientPublic,
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

    /// Extra `ErrorInfo` metadata the caller needs (the ticket of `MFA_REQUIRED`).
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            DomainError::MfaRequired(challenge) => vec![
                (
                    gatehouse_protocol::error_code::MFA_TICKET_METADATA_KEY,
                    challenge.ticket.clone(),
                ),
                (
                    gatehouse_protocol::error_code::MFA_FACTORS_METADATA_KEY,
                    challenge.factors.join(","),
                ),
            ],
            DomainError::RateLimitedFor(seconds) => vec![(
                gatehouse_protocol::error_code::RETRY_AFTER_METADATA_KEY,
                seconds.to_string(),
            )],
            _ => Vec::new(),
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

/// What a caller needs to complete a sign-in with a second factor.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// The single-use ticket for `CompleteMfa`.
    pub ticket: String,
    /// Factors the user can use: `totp`, `recovery_code`, `passkey`.
    pub factors: Vec<&'static str>,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("factors", &self.factors)
            .finish_non_exhaustive()
    }
}

/// Result of every domain operation.
pub type DomainResult<T> = Result<T, DomainError>;
