//! Stable, machine-readable error codes shared by the server and every client.
//!
//! A code is part of the public contract: once released it keeps its spelling and meaning.
//! Each code maps once to a gRPC status code and once to an HTTP status. The codes themselves
//! need no transport, so the domain uses this module with the `grpc` feature off.

use std::fmt;
use std::str::FromStr;

/// The error domain sent in `google.rpc.ErrorInfo.domain`.
pub const ERROR_DOMAIN: &str = "gatehouse.dev";

/// Metadata key in `google.rpc.ErrorInfo.metadata` naming the offending request field.
pub const FIELD_METADATA_KEY: &str = "field";
/// Metadata key of an `MFA_REQUIRED` error: the ticket for `Auth.CompleteMfa`.
pub const MFA_TICKET_METADATA_KEY: &str = "mfa_ticket";
/// Metadata key of an `MFA_REQUIRED` error: the factors the user can complete with.
pub const MFA_FACTORS_METADATA_KEY: &str = "mfa_factors";
/// Metadata key of a `RATE_LIMITED` error, when known: seconds until a retry may pass.
pub const RETRY_AFTER_METADATA_KEY: &str = "retry_after_seconds";

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $text:literal, $grpc:ident, $http:literal; )*) => {
        /// Every error Gatehouse can return, by stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The stable wire spelling, e.g. `USER_EMAIL_ALREADY_EXISTS`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $text, )* }
            }

            /// The gRPC status code this error is reported with.
            #[cfg(feature = "grpc")]
            pub fn grpc_code(self) -> tonic::Code {
                match self { $( ErrorCode::$variant => tonic::Code::$grpc, )* }
            }

            /// The HTTP status this error is reported with on HTTP endpoints.
            pub fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $http, )* }
            }
        }

        impl FromStr for ErrorCode {
            type Err = UnknownErrorCode;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( $text => Ok(ErrorCode::$variant), )*
                    other => Err(UnknownErrorCode(other.to_owned())),
                }
            }
        }
    };
}

error_codes! {
    /// A request field is missing, malformed or out of bounds; the field is named.
    InvalidArgument => "INVALID_ARGUMENT", InvalidArgument, 400;
    /// The password does not meet the password policy (length, common passwords).
    InvalidPassword => "INVALID_PASSWORD", InvalidArgument, 400;
    /// Another user of the tenant already has this email address.
    UserEmailAlreadyExists => "USER_EMAIL_ALREADY_EXISTS", AlreadyExists, 409;
    /// Email or password is wrong; deliberately does not say which.
    InvalidCredentials => "INVALID_CREDENTIALS", Unauthenticated, 401;
    /// The refresh token is unknown, malformed or expired.
    InvalidRefreshToken => "INVALID_REFRESH_TOKEN", Unauthenticated, 401;
    /// A refresh token that was already spent was presented again; the session is revoked.
    RefreshTokenReused => "REFRESH_TOKEN_REUSED", Unauthenticated, 401;
    /// The session was revoked (sign-out, admin revocation, reuse detection, suspension).
    SessionRevoked => "SESSION_REVOKED", Unauthenticated, 401;
    /// The session passed its idle or absolute lifetime.
    SessionExpired => "SESSION_EXPIRED", Unauthenticated, 401;
    /// No session with this id exists in the tenant.
    SessionNotFound => "SESSION_NOT_FOUND", NotFound, 404;
    /// The access token is missing, malformed, badly signed or for another tenant.
    InvalidAccessToken => "INVALID_ACCESS_TOKEN", Unauthenticated, 401;
    /// The access token is well-formed but past its expiry.
    AccessTokenExpired => "ACCESS_TOKEN_EXPIRED", Unauthenticated, 401;
    /// No usable credentials were sent (tenant, client, server or operator key).
    MissingCredentials => "MISSING_CREDENTIALS", Unauthenticated, 401;
    /// A client, server or operator key was sent but is not valid for the tenant.
    InvalidApiKey => "INVALID_API_KEY", Unauthenticated, 401;
    /// The caller is authenticated but may not perform this operation.
    PermissionDenied => "PERMISSION_DENIED", PermissionDenied, 403;
    /// The user is suspended and may not sign in or refresh a session.
    UserSuspended => "USER_SUSPENDED", PermissionDenied, 403;
    /// No user with this id exists in the tenant.
    UserNotFound => "USER_NOT_FOUND", NotFound, 404;
    /// No tenant with this id exists.
    TenantNotFound => "TENANT_NOT_FOUND", NotFound, 404;
    /// A tenant with this id already exists.
    TenantAlreadyExists => "TENANT_ALREADY_EXISTS", AlreadyExists, 409;
    /// No team with this id exists in the tenant.
    TeamNotFound => "TEAM_NOT_FOUND", NotFound, 404;
    /// The user is not a member of the team.
    TeamMembershipNotFound => "TEAM_MEMBERSHIP_NOT_FOUND", NotFound, 404;
    /// The user is already a member of the team.
    TeamMembershipAlreadyExists => "TEAM_MEMBERSHIP_ALREADY_EXISTS", AlreadyExists, 409;
    /// The invitation token is unknown, expired, used or revoked.
    InvitationInvalid => "INVITATION_INVALID", FailedPrecondition, 400;
    /// No permission with this id is defined.
    PermissionNotFound => "PERMISSION_NOT_FOUND", NotFound, 404;
    /// A permission with this id is already defined.
    PermissionAlreadyExists => "PERMISSION_ALREADY_EXISTS", AlreadyExists, 409;
    /// No share with this id (or token) exists, or it is not visible to the caller.
    ShareNotFound => "SHARE_NOT_FOUND", NotFound, 404;
    /// The share was revoked by its owner.
    ShareRevoked => "SHARE_REVOKED", PermissionDenied, 403;
    /// The share passed its expiry.
    ShareExpired => "SHARE_EXPIRED", PermissionDenied, 403;
    /// The share reached its maximum number of uses.
    ShareUseLimitReached => "SHARE_USE_LIMIT_REACHED", ResourceExhausted, 429;
    /// The share does not grant this operation or field.
    ShareScopeExceeded => "SHARE_SCOPE_EXCEEDED", PermissionDenied, 403;
    /// No pending proposal with this id exists for the share.
    ProposalNotFound => "PROPOSAL_NOT_FOUND", NotFound, 404;
    /// No webhook endpoint with this id exists in the tenant.
    WebhookEndpointNotFound => "WEBHOOK_ENDPOINT_NOT_FOUND", NotFound, 404;
    /// The webhook URL points at a private, loopback or link-local address, which this
    /// node's configuration does not allow (`webhooks.allow_private_targets`).
    WebhookTargetNotAllowed => "WEBHOOK_TARGET_NOT_ALLOWED", InvalidArgument, 400;
    /// The tenant already has the most webhook endpoints it may have.
    WebhookEndpointLimitReached => "WEBHOOK_ENDPOINT_LIMIT_REACHED", FailedPrecondition, 409;
    /// No stored webhook event with this id exists in the tenant (it may have expired).
    WebhookEventNotFound => "WEBHOOK_EVENT_NOT_FOUND", NotFound, 404;
    /// Too many requests for this account or source; retry later.

    RateLimited => "RATE_LIMITED", ResourceExhausted, 429;
    /// An emailed code or link token is wrong, already used, expired or unknown; which of
    /// these is deliberately not said.
    InvalidCode => "INVALID_CODE", Unauthenticated, 401;
    /// The tenant requires a verified email address and the user has not verified theirs.
    EmailNotVerified => "EMAIL_NOT_VERIFIED", PermissionDenied, 403;
    /// The first factor was right, and the user must also give a second one: the error's
    /// `mfa_ticket` metadata is a short-lived, single-use ticket for `Auth.CompleteMfa`, and
    /// `mfa_factors` lists the factors the user can use (`totp,recovery_code,passkey`).
    MfaRequired => "MFA_REQUIRED", FailedPrecondition, 401;
    /// The MFA ticket is unknown, used, expired or out of tries.
    MfaTicketInvalid => "MFA_TICKET_INVALID", Unauthenticated, 401;
    /// The operation is sensitive and the caller's sign-in is older than the tenant's step-up
    /// window: sign in again (with every factor the user has) and retry.
    ReauthenticationRequired => "REAUTHENTICATION_REQUIRED", PermissionDenied, 403;
    /// The tenant requires a second factor and the user's grace period to enrol is over: the
    /// session may only enrol one (`Mfa.EnrollTotp`, `Passkeys.BeginRegistration`).
    MfaEnrolmentRequired => "MFA_ENROLMENT_REQUIRED", PermissionDenied, 403;
    /// The user is banned: no sign-in by any method, no refresh.
    UserBanned => "USER_BANNED", PermissionDenied, 403;
    /// The user has no such factor (TOTP, recovery codes, passkey).
    FactorNotFound => "FACTOR_NOT_FOUND", NotFound, 404;
    /// The factor is already enrolled (disable it first to enrol again).
    FactorAlreadyEnrolled => "FACTOR_ALREADY_ENROLLED", AlreadyExists, 409;
    /// A concurrent change won; the request may be retried.
    Conflict => "CONFLICT", Aborted, 409;
    /// The node cannot serve the request right now (draining, storage down); retry.
    Unavailable => "UNAVAILABLE", Unavailable, 503;
    /// The request ran past its deadline.
    DeadlineExceeded => "DEADLINE_EXCEEDED", DeadlineExceeded, 504;
    /// An unexpected server error; details are in the server log, never in the reply.
    Internal => "INTERNAL", Internal, 500;
    /// The API key is unknown, malformed, expired or revoked; which of these is deliberately
    /// not said.
    ApiKeyInvalid => "API_KEY_INVALID", Unauthenticated, 401;
    /// No API key with this id exists in the tenant (or the caller may not see it).
    ApiKeyNotFound => "API_KEY_NOT_FOUND", NotFound, 404;
    /// The bearer token was issued for an API key (`Auth.ExchangeClientCredentials`), not
    /// for a signed-in user: Gatehouse's own API takes it as no user's token.
    MachineTokenNotAccepted => "MACHINE_TOKEN_NOT_ACCEPTED", Unauthenticated, 401;
    /// No upstream provider with this id exists in the tenant.
    OAuthProviderNotFound => "OAUTH_PROVIDER_NOT_FOUND", NotFound, 404;
    /// A provider with this id already exists in the tenant.
    OAuthProviderAlreadyExists => "OAUTH_PROVIDER_ALREADY_EXISTS", AlreadyExists, 409;
    /// The upstream sign-in's state is unknown, spent, expired or belongs to another browser.
    OAuthStateInvalid => "OAUTH_STATE_INVALID", InvalidArgument, 400;
    /// The single-use sign-in code is unknown, spent, expired or another tenant's.
    OAuthCodeInvalid => "OAUTH_CODE_INVALID", Unauthenticated, 401;
    /// The provider refused the sign-in or sent an answer that failed validation (ID token
    /// signature, issuer, audience, expiry, nonce).
    OAuthUpstreamRejected => "OAUTH_UPSTREAM_REJECTED", Unauthenticated, 401;
    /// The provider could not be reached, timed out or failed; nothing stored was changed.
    OAuthUpstreamUnavailable => "OAUTH_UPSTREAM_UNAVAILABLE", Unavailable, 503;
    /// A user with the upstream account's email exists and the provider may not link to it
    /// (the email is not verified upstream or the provider does not allow email linking).
    OAuthAccountExists => "OAUTH_ACCOUNT_EXISTS", AlreadyExists, 409;
    /// The upstream account is already linked to another user.
    OAuthAccountLinkedElsewhere => "OAUTH_ACCOUNT_LINKED_ELSEWHERE", AlreadyExists, 409;
    /// The user has no linked account with this provider.
    OAuthAccountNotLinked => "OAUTH_ACCOUNT_NOT_LINKED", NotFound, 404;
    /// Unlinking would leave the user no way to sign in.
    OAuthLastSignInMethod => "OAUTH_LAST_SIGN_IN_METHOD", FailedPrecondition, 400;
    /// The provider refused the stored refresh token (`invalid_grant`); it was dropped and
    /// the user must sign in with the provider again.
    OAuthRefreshRevoked => "OAUTH_REFRESH_REVOKED", FailedPrecondition, 400;
    /// The user's grant lacks a requested scope; send them through the link flow again with
    /// the scope.
    OAuthScopesMissing => "OAUTH_SCOPES_MISSING", FailedPrecondition, 400;
    /// The provider does not allow new users to sign up through it.
    OAuthSignUpDisabled => "OAUTH_SIGN_UP_DISABLED", PermissionDenied, 403;
    /// No OpenID Connect client with this id exists in the tenant.
    OidcClientNotFound => "OIDC_CLIENT_NOT_FOUND", NotFound, 404;
    /// Client authentication failed: the client is unknown, public, or the secret is wrong;
    /// which of these is deliberately not said.
    OidcClientInvalid => "OIDC_CLIENT_INVALID", Unauthenticated, 401;
    /// The OpenID Connect client is public: it has no secret to rotate.
    OidcClientPublic => "OIDC_CLIENT_PUBLIC", FailedPrecondition, 400;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code string that this version of the protocol does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0}")]
pub struct UnknownErrorCode(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_spelling() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
        }
    }

    #[test]
    fn spellings_are_unique_screaming_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "duplicate code {text}");
            assert!(
                text.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_spelling_is_an_error() {
        assert!("NOT_A_CODE".parse::<ErrorCode>().is_err());
    }
}
