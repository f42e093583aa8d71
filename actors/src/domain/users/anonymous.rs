//! Anonymous users: a user with no email, made by `Auth.SignInAnonymously` when the tenant
//! allows it. Its tokens say `role: anon` and are signed by the tenant's anonymous key. It is
//! left out of user lists unless asked for, and an anonymous user idle (no sign-in or refresh)
//! longer than the tenant's `anonymous.idle_ttl_seconds` can no longer refresh: the refresh
//! that finds it idle deletes it (with its sessions), audited as `user.delete` by `system`.
//!
//! It becomes a full user in place ([`upgrade_anonymous`]: same id, teams, permissions and
//! metadata) by password sign-up or sign-in by emailed code while signed in as it, or by an
//! upstream (OAuth) sign-in whose link flow it began (`OAuth.BeginLink`). The upgrade revokes the
//! anonymous sessions (`anonymous_upgraded`) and the caller starts a normal session.

use std::time::Duration;

use gatehouse_storage::Transaction;
use serde_json::json;
use uuid::Uuid;

use super::{Email, UserRecord, UserState, find_user, new_user_id, read_user, write_user};
use crate::context::{Context, Timestamp};
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::{record_change, record_events};
use crate::domain::keyspace;
use crate::domain::outbox::EventType;
use crate::domain::sessions::{self, AuthMethod, ClientInfo, RevocationReason};
use crate::domain::sign_in::{self, NewSession};
use crate::domain::tenants::{TenantSettings, TenantState};
use crate::error::{DomainError, DomainResult};

/// An anonymous user's activity is written at most this often (refreshes in between only
/// read it).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Creates an anonymous user: no email, no index entry, nothing about other users read.
pub fn create_anonymous_user(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
) -> DomainResult<UserRecord> {
    let now = context.now();
    let record = UserRecord {
        user_id: new_user_id(now),
        email: String::new(),
        email_normalized: String::new(),
        display_name: String::new(),
        state: UserState::Active,
        email_verified: false,
        password_hash: None,
        created_at: now,
        updated_at: now,
        client_metadata: String::new(),
        client_read_only_metadata: String::new(),
        server_metadata: String::new(),
        selected_team_id: None,
        ban_reason: None,
        secondary_emails: Vec::new(),
        is_anonymous: true,
        last_active_at: Some(now),
        version: 1,
    };
    write_user(tx, tenant, &record)?;
    record_events(
        tx,
        context,
        tenant,
        [(EventType::UserCreated, record.event_data())],
    )?;
    Ok(record)
}

impl UserRecord {
    /// Whether this is an anonymous user idle longer than the tenant allows at `now`.
    pub fn is_idle_anonymous(&self, settings: &TenantSettings, now: Timestamp) -> bool {
        let idle = Duration::from_secs(u64::from(settings.anonymous.idle_ttl_seconds));
        self.is_anonymous && now >= self.last_active_at.unwrap_or(self.created_at).plus(idle)
    }
}

/// What a refresh found about the session's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Not anonymous, or anonymous and active.
    Active,
    /// An idle anonymous user, now deleted: commit, then report `SESSION_EXPIRED`.
    Expired,
}

/// Run by every refresh of an anonymous session before the token is spent, in its
/// transaction: an idle anonymous user is deleted with its sessions.
pub async fn expire_if_idle(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    settings: &TenantSettings,
    user_id: Uuid,
) -> DomainResult<Activity> {
    let Some(user) = find_user(tx, tenant, user_id).await? else {
        return Ok(Activity::Active);
    };
    if !user.is_idle_anonymous(settings, context.now()) {
        return Ok(Activity::Active);
    }
    let origin = AuditOrigin::system();
    super::changes::delete(tx, context, tenant, user_id, &origin).await?;
    metrics::counter!("gatehouse_anonymous_users_expired_total").increment(1);
    Ok(Activity::Expired)
}

/// Records an anonymous user's activity after a successful refresh (at most once a
/// minute); other users are left alone.
pub async fn touch(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<()> {
    let Some(mut user) = find_user(tx, tenant, user_id).await? else {
        return Ok(());
    };
    let now = context.now();
    let last = user.last_active_at.unwrap_or(user.created_at);
    if user.is_anonymous && now >= last.plus(TOUCH_EVERY) {
        user.last_active_at = Some(now);
        write_user(tx, tenant, &user)?;
    }
    Ok(())
}

/// The new identity of an upgraded anonymous user.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// Its email (must not belong to any user).
    pub email: Email,
    /// Whether that email is proven (an emailed code, an upstream provider's verified
    /// address).
    pub email_verified: bool,
    /// The argon2id hash of its password, for a password sign-up.
    pub password_hash: Option<String>,
    /// Its display name; `None` keeps the (empty) one.
    pub display_name: Option<String>,
}

/// Turns the anonymous user `user_id` into a full user in place: same id, teams,
/// permissions and metadata; the email gets its index entry (`USER_EMAIL_ALREADY_EXISTS` if
/// taken), the anonymous flag is cleared and every anonymous session revoked
/// (`anonymous_upgraded`). Audited as `user.upgrade_anonymous` for `origin`, sent as
/// `user.updated`. The caller starts the user's normal session in the same transaction.
/// Upstream (OAuth) sign-in calls this when the request carries an anonymous user's token.
pub async fn upgrade_anonymous(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    settings: &TenantSettings,
    user_id: Uuid,
    upgrade: Upgrade,
    origin: &AuditOrigin,
) -> DomainResult<UserRecord> {
    let mut user = read_user(tx, tenant, user_id).await?;
    if !user.is_anonymous {
        return Err(DomainError::invalid("user_id", "is not an anonymous user"));
    }
    user.ensure_may_sign_in()?;
    let now = context.now();
    if user.is_idle_anonymous(settings, now) {
        return Err(DomainError::SessionExpired);
    }
    super::normalize::adopt_legacy_key(tx, tenant, &upgrade.email.normalized).await?;
    let index_key = keyspace::email_index(tenant, &upgrade.email.normalized);
    if tx.get(&index_key).await?.is_some() {
        return Err(DomainError::UserEmailAlreadyExists);
    }
    tx.set(&index_key, user_id.as_bytes())?;
    user.email = upgrade.email.display;
    user.email_normalized = upgrade.email.normalized;
    user.email_verified = upgrade.email_verified;
    if let Some(hash) = upgrade.password_hash {
        user.password_hash = Some(hash);
    }
    if let Some(name) = upgrade.display_name {
        user.display_name = name;
    }
    user.is_anonymous = false;
    user.last_active_at = None;
    user.updated_at = now;
    user.version += 1;
    write_user(tx, tenant, &user)?;
    sessions::revoke_user_sessions(
        tx,
        context,
        tenant,
        user_id,
        RevocationReason::AnonymousUpgraded,
        None,
    )
    .await?;
    let audit = origin.event(
        AuditAction::UserUpgradeAnonymous,
        format!("user:{user_id}"),
        json!({ "email_verified": user.email_verified, "password": user.password_hash.is_some() }),
    );
    record_change(
        tx,
        context,
        tenant,
        Some(audit),
        [(EventType::UserUpdated, user.event_data())],
    )
    .await?;
    Ok(user)
}

/// Creates an anonymous user and its first session (tokens `role: anon`). The session has
/// no absolute lifetime: it ends when the user has been idle for the tenant's anonymous idle
/// lifetime (a lost session could never be replaced). Anonymous users have no second factor
/// and cannot enrol one, so the tenant's MFA requirement does not restrict them; it applies
/// from the upgrade on.
pub async fn sign_in_anonymously(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    client: &ClientInfo,
) -> DomainResult<NewSession> {
    let tenant_id = tenant.tenant_id();
    let user = create_anonymous_user(tx, context, tenant_id)?;
    let mut settings = tenant.record.settings.clone();
    settings.session_idle_ttl_seconds = settings.anonymous.idle_ttl_seconds;
    settings.session_absolute_ttl_seconds = u32::MAX;
    let (mut session, refresh_token) = sessions::create_session(
        tx,
        context,
        tenant_id,
        &settings,
        user.user_id,
        client,
        &[],
        false,
    )?;
    session.anonymous = true;
    sessions::write_session(tx, tenant_id, &session)?;
    let permissions = sign_in::token_permissions(tx, tenant, user.user_id).await?;
    Ok(NewSession {
        user,
        session,
        refresh_token,
        permissions,
    })
}

/// Upgrades the anonymous user `user_id` with a password sign-up and starts its normal
/// session, in one transaction.
pub async fn sign_up_in_place(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    user_id: Uuid,
    upgrade: Upgrade,
    client: &ClientInfo,
) -> DomainResult<NewSession> {
    let origin = AuditOrigin {
        actor: format!("user:{user_id}"),
        source_ip: client.ip_address.clone(),
    };
    let settings = &tenant.record.settings;
    let tenant_id = tenant.tenant_id();
    let user =
        upgrade_anonymous(tx, context, tenant_id, settings, user_id, upgrade, &origin).await?;
    let enrol = crate::domain::factors::enrolment_due(settings, &user, context.now());
    let methods = [AuthMethod::Password];
    sign_in::start_session(tx, context, tenant, user, client, &methods, enrol).await
}
