//! Who is calling: credentials from the request, checked into a [`Caller`] that every
//! domain operation authorises against.

use std::sync::Arc;

use crate::domain::crypto::{constant_time_eq, sha256};
use crate::domain::signing::AccessClaims;
use crate::domain::tenants::{ApiKeyKind, TenantState};
use crate::error::{DomainError, DomainResult};

/// Credentials as they arrive with a request (all optional).
#[derive(Clone, Default)]
pub struct Credentials {
    /// `x-gatehouse-tenant`.
    pub tenant: Option<String>,
    /// `x-gatehouse-client-key`.
    pub client_key: Option<String>,
    /// `x-gatehouse-server-key`.
    pub server_key: Option<String>,
    /// `x-gatehouse-operator-key`.
    pub operator_key: Option<String>,
    /// The bearer access token from `authorization`.
    pub access_token: Option<String>,
    /// The call only ends the access token's session (`Auth.SignOut`): the token is not
    /// checked against the session and user state, so signing out of a session that already
    /// ended stays a harmless no-op.
    pub ending_session: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and tokens are secrets: show only which ones were sent.
        f.debug_struct("Credentials")
            .field("tenant", &self.tenant)
            .field("client_key", &self.client_key.is_some())
            .field("server_key", &self.server_key.is_some())
            .field("operator_key", &self.operator_key.is_some())
            .field("access_token", &self.access_token.is_some())
            .field("ending_session", &self.ending_session)
            .finish()
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The operator, optionally acting inside one tenant.
    Operator {
        /// The tenant named by the request, if any.
        tenant: Option<Arc<TenantState>>,
    },
    /// An app backend holding the tenant's secret server key.
    Server {
        /// Its tenant.
        tenant: Arc<TenantState>,
    },
    /// An app frontend holding a publishable client key, optionally for a signed-in user.
    Client {
        /// Its tenant.
        tenant: Arc<TenantState>,
        /// The verified access token's claims, if a bearer token was sent.
        user: Option<Box<AccessClaims>>,
    },
}

impl Caller {
    /// The tenant the call acts on, for any caller that has one.
    pub fn tenant(&self) -> DomainResult<&Arc<TenantState>> {
        match self {
            Caller::Operator {
                tenant: Some(tenant),
            }
            | Caller::Server { tenant }
            | Caller::Client { tenant, .. } => Ok(tenant),
            Caller::Operator { tenant: None } => {
                Err(DomainError::MissingCredentials("x-gatehouse-tenant"))
            }
        }
    }

    /// Allows operators only.
    pub fn require_operator(&self) -> DomainResult<()> {
        match self {
            Caller::Operator { .. } => Ok(()),
            _ => Err(DomainError::PermissionDenied("operator key required")),
        }
    }

    /// Allows server and operator callers: the tenant they act on.
    pub fn require_server(&self) -> DomainResult<&Arc<TenantState>> {
        match self {
            Caller::Operator { .. } | Caller::Server { .. } => self.tenant(),
            Caller::Client { .. } => Err(DomainError::PermissionDenied("server key required")),
        }
    }

    /// The signed-in user of a client call; a restricted user (the tenant requires a
    /// verified email they have not verified) is refused with `EMAIL_NOT_VERIFIED`.
    pub fn require_user(&self) -> DomainResult<(&Arc<TenantState>, &AccessClaims)> {
        let (tenant, claims) = self.require_user_even_restricted()?;
        if claims.is_restricted {
            return Err(
                if claims.restricted_reason.as_deref()
                    == Some(crate::runtime::services::RESTRICTED_MFA_ENROLMENT)
                {
                    DomainError::MfaEnrolmentRequired
                } else {
                    DomainError::EmailNotVerified
                },
            );
        }
        Ok((tenant, claims))
    }

    /// Like [`Caller::require_user`], but also lets through a restricted user (one who must
    /// still verify their email): for verifying it, reading themselves and signing out.
    pub fn require_user_even_restricted(&self) -> DomainResult<(&Arc<TenantState>, &AccessClaims)> {
        match self {
            Caller::Client {
                tenant,
                user: Some(claims),
            } => Ok((tenant, claims.as_ref())),
            Caller::Client { user: None, .. } => Err(DomainError::MissingCredentials(
                "authorization bearer access token",
            )),
            _ => Err(DomainError::PermissionDenied(
                "a user access token with a client key is required",
            )),
        }
    }

    /// The signed-in user of a client call whose sign-in is recent enough for a sensitive
    /// operation (the tenant's step-up window), else `REAUTHENTICATION_REQUIRED`. A user who
    /// must still enrol a second factor may enrol one (`allow_enrolment`).
    pub fn require_recent_user(
        &self,
        now: crate::context::Timestamp,
        allow_enrolment: bool,
    ) -> DomainResult<(&Arc<TenantState>, &AccessClaims)> {
        let (tenant, claims) = match self.require_user() {
            Err(DomainError::MfaEnrolmentRequired) if allow_enrolment => {
                self.require_user_even_restricted()?
            }
            other => other?,
        };
        if claims.act.is_some() {
            // An impersonator acts as the user but never changes how the user signs in.
            return Err(DomainError::PermissionDenied(
                "not allowed in an impersonation session",
            ));
        }
        self.refuse_anonymous()?;
        let window = i64::from(tenant.record.settings.mfa.step_up_window_seconds);
        if now.as_unix_seconds() - claims.auth_time > window {
            return Err(DomainError::ReauthenticationRequired);
        }
        Ok((tenant, claims))
    }

    /// Refuses an anonymous user (a client whose token says `role: anon`) what only full
    /// users may do: second factors and passkeys, passwords and addresses, inviting to
    /// teams, sharing, verification email. Anonymous users may read and change their own
    /// user (metadata), create and use teams, and manage their sessions.
    pub fn refuse_anonymous(&self) -> DomainResult<()> {
        match self {
            Caller::Client {
                user: Some(claims), ..
            } if claims.role == crate::domain::signing::ROLE_ANONYMOUS => Err(
                DomainError::PermissionDenied("anonymous users must sign up first"),
            ),
            _ => Ok(()),
        }
    }

    /// Whether the caller is an anonymous user.
    pub fn is_anonymous(&self) -> bool {
        self.refuse_anonymous().is_err()
    }

    /// Whether the caller may see server-only fields.
    pub fn is_trusted(&self) -> bool {
        !matches!(self, Caller::Client { .. })
    }

    /// The signed-in user of a client call; `None` for trusted (server, operator) callers.
    /// A client without a user token is refused.
    pub fn acting_user(&self) -> DomainResult<Option<uuid::Uuid>> {
        match self {
            Caller::Client { .. } => {
                let (_, claims) = self.require_user()?;
                uuid::Uuid::try_parse(&claims.sub)
                    .map(Some)
                    .map_err(|_| DomainError::InvalidAccessToken)
            }
            _ => Ok(None),
        }
    }

    /// Who acted, as recorded in the audit ledger.
    pub fn audit_actor(&self) -> String {
        crate::domain::audit::AuditOrigin::of(self).actor
    }
}

/// Checks a presented operator key against the stored hash.
pub fn operator_key_matches(stored_hash: &[u8], presented: &str) -> bool {
    constant_time_eq(stored_hash, &sha256(presented.as_bytes()))
}

/// Checks a tenant key of `kind`.
pub fn require_tenant_key(tenant: &TenantState, kind: ApiKeyKind, key: &str) -> DomainResult<()> {
    if tenant.has_api_key(kind, key) {
        Ok(())
    } else {
        Err(DomainError::InvalidApiKey)
    }
}
