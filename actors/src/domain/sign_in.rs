//! The transactions of sign-up and sign-in: the user and its new session (and the
//! permissions claim of its first access token) in one transaction — or, for a user who must
//! also give a second factor, an MFA ticket instead of the session.

use gatehouse_storage::Transaction;
use uuid::Uuid;

use crate::context::Context;
use crate::domain::factors::{self, SecondFactor, mfa};
use crate::domain::permissions;
use crate::domain::sessions::{self, AuthMethod, ClientInfo, SessionRecord};
use crate::domain::tenants::TenantState;
use crate::domain::users::{self, NewUser, UserRecord};
use crate::error::{DomainResult, MfaChallenge};

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

/// What a first factor that succeeded led to.
#[derive(Debug, Clone)]
pub enum SignInOutcome {
    /// A session.
    Session(Box<NewSession>),
    /// The user must also give a second factor; the ticket is written in this transaction,
    /// so commit before reporting `MFA_REQUIRED`.
    MfaRequired(MfaChallenge),
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
    method: AuthMethod,
) -> DomainResult<NewSession> {
    let tenant_id = tenant.tenant_id();
    let user = users::create_user(tx, context, tenant_id, new_user).await?;
    let settings = &tenant.record.settings;
    // A new user has no factor yet: only the tenant's requirement matters.
    let enrol = factors::enrolment_due(settings, &user, context.now());
    start_session(tx, context, tenant, user, client, &[method], enrol).await
}

/// Writes a session for `user`, signed in by `methods`; `enrol` restricts it to enrolling
/// a second factor.
pub async fn start_session(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    user: UserRecord,
    client: &ClientInfo,
    methods: &[AuthMethod],
    enrol: bool,
) -> DomainResult<NewSession> {
    let tenant_id = tenant.tenant_id();
    let settings = &tenant.record.settings;
    let (session, refresh_token) = sessions::create_session(
        tx,
        context,
        tenant_id,
        settings,
        user.user_id,
        client,
        methods,
        enrol,
    )?;
    let permissions = token_permissions(tx, tenant, user.user_id).await?;
    Ok(NewSession {
        user,
        session,
        refresh_token,
        permissions,
    })
}

/// Starts a session for a user whose first factor (`method`) was verified, storing
/// `new_hash` when the password hash needed upgrading; or, when the user must also give a
/// second factor, an MFA ticket.
pub async fn sign_in(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    user_id: Uuid,
    new_hash: Option<&str>,
    client: &ClientInfo,
    method: AuthMethod,
) -> DomainResult<SignInOutcome> {
    let tenant_id = tenant.tenant_id();
    // Re-read inside the transaction: a suspension or deletion that commits concurrently
    // conflicts with this sign-in instead of racing it.
    let mut user = users::read_user(tx, tenant_id, user_id).await?;
    user.ensure_may_sign_in()?;
    if let Some(hash) = new_hash {
        user.password_hash = Some(hash.to_owned());
        user.version += 1;
        users::write_user(tx, tenant_id, &user)?;
    }
    let settings = &tenant.record.settings;
    let second = if method == AuthMethod::Passkey {
        // A user-verified passkey is two factors by itself.
        SecondFactor::NotNeeded
    } else {
        factors::second_factor(tx, settings, tenant_id, &user, context.now()).await?
    };
    match second {
        SecondFactor::Needed(available) => {
            let challenge =
                mfa::create_ticket(tx, context, tenant_id, user.user_id, method, available)?;
            Ok(SignInOutcome::MfaRequired(challenge))
        }
        other => {
            let enrol = other == SecondFactor::EnrolmentRequired;
            let session =
                start_session(tx, context, tenant, user, client, &[method], enrol).await?;
            Ok(SignInOutcome::Session(Box::new(session)))
        }
    }
}
