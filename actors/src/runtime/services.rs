//! The services every part of one node shares: storage, clock and randomness, the master key,
//! the password-hashing pool, the tenant cache, and the public URL for issuers.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_storage::Database;

use crate::context::{Context, Timestamp};
use crate::domain::crypto::MasterKey;
use crate::domain::passwords::PasswordHasher;
use crate::domain::permissions::{self, PermissionGraph};
use crate::domain::sessions::SessionRecord;
use crate::domain::signing::{self, AccessClaims};
use crate::domain::tenants::{self, TenantCache, TenantState};
use crate::error::{DomainError, DomainResult};

/// `restricted_reason` of a user who must verify their email.
pub const RESTRICTED_EMAIL_NOT_VERIFIED: &str = "email_not_verified";
/// `restricted_reason` of a user who must enrol a second factor.
pub const RESTRICTED_MFA_ENROLMENT: &str = "mfa_enrolment_required";

/// Storage, time, randomness, secrets and caches of one node.
#[derive(Debug)]
pub struct NodeServices {
    /// The transactional store.
    pub db: Database,
    /// Clock and randomness.
    pub context: Context,
    /// Seals secrets at rest.
    pub master_key: MasterKey,
    /// Bounded argon2 pool.
    pub hasher: PasswordHasher,
    /// Decoded tenant state.
    pub tenants: TenantCache,
    /// Base URL of the HTTP endpoint, for issuers.
    pub public_url: String,
    /// HTTP to upstream OAuth / OpenID providers, for connected-account refreshes.
    pub upstream: Option<Arc<dyn crate::domain::upstream::UpstreamClient>>,
}

/// A freshly signed access token (`Debug` shows only its expiry).
#[derive(Clone)]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// Its expiry.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl NodeServices {
    /// The tenant's decoded state, from the cache or storage.
    pub async fn tenant(&self, tenant_id: &str) -> DomainResult<Arc<TenantState>> {
        if let Some(state) = self.tenants.get(tenant_id) {
            return Ok(state);
        }
        if tenant_id.is_empty() || tenant_id.len() > 63 {
            return Err(DomainError::TenantNotFound);
        }
        let (record, definitions) = self
            .db
            .run(|tx| async move {
                let record = tenants::read_tenant(&tx, tenant_id).await?;
                let definitions = permissions::read_definitions(&tx, tenant_id).await?;
                Ok::<_, DomainError>((record, definitions))
            })
            .await?;
        let graph = PermissionGraph::new(definitions)?;
        let state = TenantState::new(record, graph, &self.master_key, &self.public_url)?;
        Ok(self.tenants.put(Arc::new(state)))
    }

    /// Signs an access token for `session`. The token is restricted (`is_restricted`) while
    /// the tenant requires verified emails and this one is not, or while the user must enrol
    /// a second factor.
    pub fn issue_access_token(
        &self,
        tenant: &TenantState,
        session: &SessionRecord,
        perms: Option<Vec<String>>,
        email_verified: bool,
    ) -> DomainResult<AccessToken> {
        let now = self.context.now();
        let ttl = Duration::from_secs(u64::from(tenant.record.settings.access_token_ttl_seconds));
        let expires_at =
            crate::domain::sessions::impersonation::access_token_expiry(session, now, ttl);
        let claims = session_claims(tenant, session, perms, email_verified, now, expires_at);
        Ok(AccessToken {
            token: tenant.keys.sign(&claims)?,
            expires_at,
        })
    }
}

/// The claims an access token of `session` carries at `now`: the user, the session, how and
/// when the user signed in, the restriction and the impersonator, if any. The hosted pages'
/// callers (`Gatehouse::browser_caller`) carry the same claims as a token would.
pub fn session_claims(
    tenant: &TenantState,
    session: &SessionRecord,
    perms: Option<Vec<String>>,
    email_verified: bool,
    now: Timestamp,
    expires_at: Timestamp,
) -> AccessClaims {
    let restricted_reason = if session.anonymous {
        // An anonymous user has no email to verify; `role: anon` is its restriction.
        None
    } else if session.mfa_enrolment_required {
        Some(RESTRICTED_MFA_ENROLMENT)
    } else if tenant.record.settings.email.verification_required && !email_verified {
        Some(RESTRICTED_EMAIL_NOT_VERIFIED)
    } else {
        None
    };
    AccessClaims {
        sub: session.user_id.to_string(),
        iss: tenant.issuer.clone(),
        aud: tenant.tenant_id().to_owned(),
        exp: expires_at.as_unix_seconds(),
        iat: now.as_unix_seconds(),
        sid: session.session_id.to_string(),
        tid: tenant.tenant_id().to_owned(),
        role: if session.anonymous {
            signing::ROLE_ANONYMOUS
        } else {
            signing::ROLE_AUTHENTICATED
        }
        .to_owned(),
        is_restricted: restricted_reason.is_some(),
        restricted_reason: restricted_reason.map(str::to_owned),
        amr: session.amr.clone(),
        auth_time: session.auth_time().as_unix_seconds(),
        perms,
        act: session
            .impersonation
            .as_ref()
            .map(|impersonation| signing::ActorClaim {
                sub: impersonation.impersonator.clone(),
            }),
        principal_kind: None,
        api_key_id: None,
    }
}
