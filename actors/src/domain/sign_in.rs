//! The transactions of password sign-up and sign-in: the user and its new session (and the
//! permissions claim of its first access token) in one transaction.

use gatehouse_storage::Transaction;
use uuid::Uuid;

use crate::context::Context;
use crate::domain::permissions;
use crate::domain::sessions::{self, ClientInfo, SessionRecord};
use crate::domain::tenants::TenantState;
use crate::domain::users::{self, NewUser, UserRecord, UserState};
use crate::error::{DomainError, DomainResult};

/// A user with a new session, before its access token is signed.
#[derive(Clone)]
pub struct NewSession {
    /// The user.
    pub user: UserRecord,
    /// The session.
    pub session: SessionRecord,
    /// The session's first refresh token.
    pub refresh_token: String,
    /// The `perms` claim, when the tenant puts permissions in tokens.
    pub permissions: Option<Vec<String>>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("user_id", &self.user.user_id)
            .field("session_id", &self.session.session_id)
            .finish_non_exhaustive()
    }
}

/// The `perms` claim of a user's tokens: tenant-wide effective permissions, when the tenant
/// asks for them.
pub async fn token_permissions(
    tx: &Transaction,
    tenant: &TenantState,
    user_id: Uuid,
) -> DomainResult<Option<Vec<String>>> {
    if !tenant.record.settings.permission_claims_in_token {
        return Ok(None);
    }
    let direct = permissions::direct_grants(tx, tenant.tenant_id(), None, user_id).await?;
    Ok(Some(
        permissions::effective(&tenant.permissions, &direct)
            .into_iter()
            .collect(),
    ))
}

/// Creates a user and its first session.
pub async fn sign_up(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    new_user: NewUser,
    client: &ClientInfo,
) -> DomainResult<NewSession> {
    let tenant_id = tenant.tenant_id();
    let user = users::create_user(tx, context, tenant_id, new_user).await?;
    let settings = &tenant.record.settings;
    let (session, refresh_token) =
        sessions::create_session(tx, context, tenant_id, settings, user.user_id, client)?;
    let permissions = token_permissions(tx, tenant, user.user_id).await?;
    Ok(NewSession {
        user,
        session,
        refresh_token,
        permissions,
    })
}

/// Starts a session for a user whose password was verified, storing `new_hash` when the
/// hash needed upgrading.
pub async fn sign_in(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    user_id: Uuid,
    new_hash: Option<&str>,
    client: &ClientInfo,
) -> DomainResult<NewSession> {
    let tenant_id = tenant.tenant_id();
    // Re-read inside the transaction: a suspension or deletion that commits concurrently
    // conflicts with this sign-in instead of racing it.
    let mut user = users::read_user(tx, tenant_id, user_id).await?;
    if user.state == UserState::Suspended {
        return Err(DomainError::UserSuspended);
    }
    if let Some(hash) = new_hash {
        user.password_hash = Some(hash.to_owned());
        user.version += 1;
        users::write_user(tx, tenant_id, &user)?;
    }
    let settings = &tenant.record.settings;
    let (session, refresh_token) =
        sessions::create_session(tx, context, tenant_id, settings, user.user_id, client)?;
    let permissions = token_permissions(tx, tenant, user.user_id).await?;
    Ok(NewSession {
        user,
        session,
        refresh_token,
        permissions,
    })
}
