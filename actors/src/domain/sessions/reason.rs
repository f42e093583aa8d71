//! Why sessions end.

use serde::{Deserialize, Serialize};

/// Why a session was revoked; `as_str` is the spelling stored and sent in webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevocationReason {
    /// The user signed out.
    SignOut,
    /// A server or operator revoked it.
    Admin,
    /// A spent refresh token came back (RFC 9700 §4.14.2).
    RefreshTokenReused,
    /// The user was suspended.
    UserSuspended,
    /// The user's password changed.
    PasswordChanged,
    /// The user was banned.
    UserBanned,
    /// A second factor of the user was added or removed.
    FactorChanged,
    /// The anonymous user became a full user; its anonymous sessions ended.
    AnonymousUpgraded,
    /// The authorization code that issued the session was presented again (RFC 6749 §4.1.2).
    AuthorizationCodeReused,
}

impl RevocationReason {
    /// Stable spelling in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::SignOut => "sign_out",
            RevocationReason::Admin => "admin",
            RevocationReason::RefreshTokenReused => "refresh_token_reused",
            RevocationReason::UserSuspended => "user_suspended",
            RevocationReason::PasswordChanged => "password_changed",
            RevocationReason::UserBanned => "user_banned",
            RevocationReason::FactorChanged => "factor_changed",
            RevocationReason::AnonymousUpgraded => "anonymous_upgraded",
            RevocationReason::AuthorizationCodeReused => "authorization_code_reused",
        }
    }
}
