//! ID tokens (OpenID Connect Core §2, §5.4): signed with the tenant's active key (EdDSA, the
//! JWKS the discovery document names), for the client as audience, with the claims the
//! granted scopes allow.

use serde::{Deserialize, Serialize};

use super::OidcGrant;
use crate::context::Timestamp;
use crate::domain::sessions::SessionRecord;
use crate::domain::users::UserRecord;

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The tenant's issuer URL.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// The client the token was issued to (the only audience).
    pub azp: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// When the user signed in.
    pub auth_time: i64,
    /// The authorization request's nonce, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// How the user signed in (RFC 8176).
    pub amr: Vec<String>,
    /// The session the client's tokens belong to.
    pub sid: String,
    /// With the `email` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether that address is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// With the `profile` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The claims `scopes` release about `user` (also the userinfo answer, with `sub`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopedClaims {
    /// The primary address (with `email`).
    pub email: Option<String>,
    /// Whether that address is verified (with `email`).
    pub email_verified: Option<bool>,
    /// The display name (with `profile`).
    pub name: Option<String>,
}

impl ScopedClaims {
    /// What `scopes` allow of `user`: `email` and `email_verified` for `email`, `name` for
    /// `profile` (when the user has a display name).
    pub fn of(user: &UserRecord, scopes: &[String]) -> ScopedClaims {
        let has = |scope: &str| scopes.iter().any(|granted| granted == scope);
        let email = has("email") && !user.email.is_empty();
        ScopedClaims {
            email: email.then(|| user.email.clone()),
            email_verified: email.then_some(user.email_verified),
            name: (has("profile") && !user.display_name.is_empty())
                .then(|| user.display_name.clone()),
        }
    }
}

impl IdTokenClaims {
    /// The ID token of `session`, the client's session of `grant`, valid `ttl_seconds`;
    /// `nonce` is the authorization request's (none on a refresh).
    pub fn new(
        issuer: &str,
        grant: &OidcGrant,
        user: &UserRecord,
        session: &SessionRecord,
        nonce: Option<String>,
        now: Timestamp,
        ttl_seconds: u32,
    ) -> IdTokenClaims {
        let scoped = ScopedClaims::of(user, &grant.scopes);
        IdTokenClaims {
            iss: issuer.to_owned(),
            sub: user.user_id.to_string(),
            aud: grant.client_id.clone(),
            azp: grant.client_id.clone(),
            exp: now.as_unix_seconds() + i64::from(ttl_seconds),
            iat: now.as_unix_seconds(),
            auth_time: session.auth_time().as_unix_seconds(),
            nonce,
            amr: session.amr.clone(),
            sid: session.session_id.to_string(),
            email: scoped.email,
            email_verified: scoped.email_verified,
            name: scoped.name,
        }
    }
}
