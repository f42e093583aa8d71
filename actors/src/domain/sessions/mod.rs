//! Sessions: refresh-token families with rotation on every use and reuse detection
//! (RFC 9700 §4.14.2), revocation, and idle/absolute expiry.

use std::time::Duration;

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit;
use crate::context::{Context, Timestamp};
use crate::domain::audit::AuditAction;
use crate::domain::change::{record_change, record_events};
use crate::domain::crypto::{base64url, constant_time_eq, from_base64url, sha256};
use crate::domain::keyspace;
use crate::domain::outbox::EventType;
use crate::domain::tenants::TenantSettings;
use crate::domain::users;
use crate::error::{DomainError, DomainResult};

pub mod grace;
pub mod impersonation;
#[cfg(test)]
mod impersonation_tests;
mod listing;
pub mod liveness;
mod reason;
#[cfg(test)]
mod tests;

pub use reason::RevocationReason;

pub use listing::{
    delete_user_sessions, list_for_user, list_user_sessions, revoke_all_audited,
    revoke_user_sessions, user_session_ids,
};

/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "grt_";
/// How many spent token hashes a session remembers for reuse detection.
pub const SPENT_TOKENS_KEPT: usize = 64;
/// Longest user agent kept with a session.
const MAX_USER_AGENT_CHARS: usize = 256;

/// How a user proved who they are; a session keeps the `amr` values of its sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethod {
    /// Email and password.
    Password,
    /// An emailed code or magic link.
    EmailCode,
    /// A passkey with user verification (possession and PIN or biometrics).
    Passkey,
    /// A TOTP code.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// An upstream (OAuth / OpenID) provider vouched for the user.
    Upstream,
}

impl AuthMethod {
    /// Its `amr` values (RFC 8176 where one fits).
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            AuthMethod::Password => &["pwd"],
            AuthMethod::EmailCode => &["email"],
            AuthMethod::Passkey => &["hwk", "user"],
            AuthMethod::Totp => &["otp"],
            AuthMethod::RecoveryCode => &["recovery"],
            AuthMethod::Upstream => &["fed"],
        }
    }

    /// The `amr` claim of a sign-in by `methods`: their values, and `mfa` when the sign-in
    /// proved more than one factor (two methods, or a user-verified passkey).
    pub fn amr_of(methods: &[AuthMethod]) -> Vec<String> {
        let mut amr: Vec<String> = Vec::new();
        for value in methods.iter().flat_map(|method| method.amr()) {
            if !amr.iter().any(|known| known == value) {
                amr.push((*value).to_owned());
            }
        }
        if methods.len() > 1 || methods.contains(&AuthMethod::Passkey) {
            amr.push("mfa".to_owned());
        }
        amr
    }
}

/// Where a sign-in came from, kept with the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Remote address as seen by the node.
    pub ip_address: String,
    /// The client's user agent.
    pub user_agent: String,
}

/// A successful refresh.
#[derive(Clone, Serialize, Deserialize)]
pub struct Refreshed {
    /// The session after rotation.
    pub session: SessionRecord,
    /// New access token.
    pub access_token: String,
    /// Its expiry.
    pub access_token_expires_at: Timestamp,
    /// New refresh token; the presented one is spent.
    pub refresh_token: String,
}

impl std::fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshed")
            .field("session_id", &self.session.session_id)
            .finish_non_exhaustive()
    }
}

/// Why and when a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When.
    pub at: Timestamp,
    /// `sign_out`, `admin`, `refresh_token_reused`, `user_suspended`, `password_changed`.
    pub reason: String,
}

/// The stored session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session id.
    pub session_id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Sign-in time.
    pub created_at: Timestamp,
    /// Last refresh.
    pub last_used_at: Timestamp,
    /// No refresh after this instant.
    pub expires_at: Timestamp,
    /// Idle lifetime in seconds.
    pub idle_ttl_seconds: u32,
    /// SHA-256 of the refresh token that is valid now.
    #[serde(with = "serde_bytes")]
    pub refresh_token_hash: Vec<u8>,
    /// SHA-256 of recently spent refresh tokens, newest last.
    pub spent_token_hashes: Vec<serde_bytes::ByteBuf>,
    /// Number of rotations so far.
    pub generation: u64,
    /// Set once the session is revoked.
    pub revoked: Option<Revocation>,
    /// Client address at sign-in.
    pub ip_address: String,
    /// Client user agent at sign-in.
    pub user_agent: String,
    /// How the user signed in (`amr` values).
    #[serde(default)]
    pub amr: Vec<String>,
    /// When the user last proved who they are (sign-in); `None` for sessions from before it
    /// was kept, which count from `created_at`.
    #[serde(default)]
    pub auth_time: Option<Timestamp>,
    /// The tenant requires MFA and the user must enrol a second factor: the session's tokens
    /// are restricted to that until a factor is added.
    #[serde(default)]
    pub mfa_enrolment_required: bool,
    /// A session of an anonymous user: its tokens say `role: anon`, signed by the tenant's
    /// anonymous key.
    #[serde(default)]
    pub anonymous: bool,
    /// Set on impersonation sessions: who acts as the user, and why.
    #[serde(default)]
    pub impersonation: Option<impersonation::Impersonation>,
    /// The latest rotation, kept while the tenant has a refresh grace window.
    #[serde(default)]
    pub grace: Option<grace::GraceRotation>,
    /// Set on sessions an OpenID client holds: the client and the scopes granted.
    #[serde(default)]
    pub oidc: Option<crate::domain::oidc::OidcGrant>,
    /// Bumped on every change.
    pub version: u64,
}

impl SessionRecord {
    /// When the user last proved who they are.
    pub fn auth_time(&self) -> Timestamp {
        self.auth_time.unwrap_or(self.created_at)
    }

    /// Whether the session can still be refreshed at `now` (ignoring the token).
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked.is_none() && self.expiry_reason(now).is_none()
    }

    fn expiry_reason(&self, now: Timestamp) -> Option<&'static str> {
        if now >= self.expires_at {
            return Some("absolute");
        }
        let idle_deadline = self
            .last_used_at
            .plus(Duration::from_secs(u64::from(self.idle_ttl_seconds)));
        (now >= idle_deadline).then_some("idle")
    }
}

/// A refresh token split into the session it names and its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefreshToken {
    /// The session.
    pub session_id: Uuid,
    /// SHA-256 of the whole token.
    pub hash: [u8; 32],
}

impl RefreshToken {
    /// Parses `grt_<session id hex>.<secret>`; anything else is `INVALID_REFRESH_TOKEN`
    /// (or `INVALID_ARGUMENT` when empty or absurdly long).
    pub fn parse(text: &str) -> DomainResult<RefreshToken> {
        if text.is_empty() {
            return Err(DomainError::invalid("refresh_token", "must not be empty"));
        }
        if text.len() > 256 {
            return Err(DomainError::invalid("refresh_token", "is too long"));
        }
        let body = text
            .strip_prefix(REFRESH_TOKEN_PREFIX)
            .ok_or(DomainError::InvalidRefreshToken)?;
        let (session_hex, secret) = body
            .split_once('.')
            .ok_or(DomainError::InvalidRefreshToken)?;
        let session_id =
            Uuid::try_parse(session_hex).map_err(|_| DomainError::InvalidRefreshToken)?;
        if from_base64url(secret).is_none_or(|bytes| bytes.len() != 32) {
            return Err(DomainError::InvalidRefreshToken);
        }
        Ok(RefreshToken {
            session_id,
            hash: sha256(text.as_bytes()),
        })
    }

    /// Mints a fresh token for `session_id`.
    pub fn mint(context: &Context, session_id: Uuid) -> (String, [u8; 32]) {
        let text = format!(
            "{REFRESH_TOKEN_PREFIX}{}.{}",
            session_id.simple(),
            base64url(&context.random::<32>())
        );
        let hash = sha256(text.as_bytes());
        (text, hash)
    }
}

/// Starts a session for `user_id`, signed in by `methods` (`enrol`: restricted to enrolling
/// a second factor); returns it with its first refresh token.
#[allow(clippy::too_many_arguments)]
pub fn create_session(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    settings: &TenantSettings,
    user_id: Uuid,
    client: &ClientInfo,
    methods: &[AuthMethod],
    enrol: bool,
) -> DomainResult<(SessionRecord, String)> {
    let now = context.now();
    let session_id = uuid::Builder::from_random_bytes(context.random::<16>()).into_uuid();
    let (token, hash) = RefreshToken::mint(context, session_id);
    let record = SessionRecord {
        session_id,
        user_id,
        created_at: now,
        last_used_at: now,
        expires_at: now.plus(Duration::from_secs(u64::from(
            settings.session_absolute_ttl_seconds,
        ))),
        idle_ttl_seconds: settings.session_idle_ttl_seconds,
        refresh_token_hash: hash.to_vec(),
        spent_token_hashes: Vec::new(),
        generation: 0,
        revoked: None,
        ip_address: client.ip_address.chars().take(64).collect(),
        user_agent: client
            .user_agent
            .chars()
            .take(MAX_USER_AGENT_CHARS)
            .collect(),
        amr: AuthMethod::amr_of(methods),
        auth_time: Some(now),
        mfa_enrolment_required: enrol,
        anonymous: false,
        impersonation: None,
        grace: None,
        oidc: None,
        version: 1,
    };
    write_session(tx, tenant, &record)?;
    tx.set(&keyspace::user_session(tenant, user_id, session_id), b"")?;
    record_events(
        tx,
        context,
        tenant,
        [(EventType::SessionCreated, record.event_data())],
    )?;
    Ok((record, token))
}

/// Writes a session record.
pub fn write_session(tx: &Transaction, tenant: &str, record: &SessionRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::session(tenant, record.session_id),
        &codec::encode(record)?,
    )?;
    Ok(())
}

/// Reads a session, if it exists.
pub async fn find_session(
    tx: &Transaction,
    tenant: &str,
    session_id: Uuid,
) -> DomainResult<Option<SessionRecord>> {
    match tx.get(&keyspace::session(tenant, session_id)).await? {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// What presenting a refresh token did (`Debug` leaves the new token out).
pub enum RefreshOutcome {
    /// The token was current: the session rotated to `refresh_token`.
    Rotated {
        /// The session after rotation.
        session: Box<SessionRecord>,
        /// The new refresh token.
        refresh_token: String,
        /// Whether the user's email is verified (for the `is_restricted` claim).
        email_verified: bool,
    },
    /// The token was already spent: the session is now revoked. Commit, then report
    /// `REFRESH_TOKEN_REUSED`.
    Reused,
}

impl std::fmt::Debug for RefreshOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefreshOutcome::Rotated { session, .. } => f
                .debug_struct("Rotated")
                .field("session_id", &session.session_id)
                .finish_non_exhaustive(),
            RefreshOutcome::Reused => f.write_str("Reused"),
        }
    }
}

/// Spends `token`: rotates the session, or revokes it when a spent token comes back (unless
/// it is the one the latest rotation spent and `grace`'s window still holds: then the answer
/// is that rotation's token again).
pub async fn refresh(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    token: &RefreshToken,
    grace: Option<grace::Grace<'_>>,
) -> DomainResult<RefreshOutcome> {
    let now = context.now();
    let mut session = find_session(tx, tenant, token.session_id)
        .await?
        .ok_or(DomainError::InvalidRefreshToken)?;
    let is_current = constant_time_eq(&session.refresh_token_hash, &token.hash);
    let was_spent = session
        .spent_token_hashes
        .iter()
        .fold(false, |found, spent| {
            found | constant_time_eq(spent, &token.hash)
        });
    if !is_current && !was_spent {
        return Err(DomainError::InvalidRefreshToken);
    }
    if session.revoked.is_some() {
        return Err(DomainError::SessionRevoked);
    }
    let replayed = match (was_spent, grace) {
        (true, Some(grace)) => grace.replay(tenant, &session, &token.hash, now)?,
        _ => None,
    };
    if was_spent && replayed.is_none() {
        session.revoked = Some(Revocation {
            at: now,
            reason: RevocationReason::RefreshTokenReused.as_str().to_owned(),
        });
        session.version += 1;
        write_session(tx, tenant, &session)?;
        liveness::note_revocation(tx, context, session.user_id)?;
        let data = session.revoked_event_data(RevocationReason::RefreshTokenReused);
        let event = audit::AuditOrigin::system().event(
            AuditAction::SessionRevoke,
            format!("session:{}", session.session_id),
            data.clone(),
        );
        let events = [(EventType::SessionRevoked, data)];
        record_change(tx, context, tenant, Some(event), events).await?;
        metrics::counter!("gatehouse_refresh_token_reuse_total").increment(1);
        return Ok(RefreshOutcome::Reused);
    }
    if session.expiry_reason(now).is_some() {
        return Err(DomainError::SessionExpired);
    }
    let user = users::find_user(tx, tenant, session.user_id)
        .await?
        .ok_or(DomainError::SessionRevoked)?;
    user.ensure_may_sign_in()?;
    if let Some(refresh_token) = replayed {
        metrics::counter!("gatehouse_refresh_grace_replays_total").increment(1);
        return Ok(RefreshOutcome::Rotated {
            session: Box::new(session),
            refresh_token,
            email_verified: user.email_verified,
        });
    }
    let (refresh_token, new_hash) = RefreshToken::mint(context, session.session_id);
    session.grace = match grace {
        Some(grace) => grace.keep(
            context,
            tenant,
            session.session_id,
            &session.refresh_token_hash,
            &refresh_token,
        )?,
        None => None,
    };
    let spent = std::mem::replace(&mut session.refresh_token_hash, new_hash.to_vec());
    session
        .spent_token_hashes
        .push(serde_bytes::ByteBuf::from(spent));
    let overflow = session
        .spent_token_hashes
        .len()
        .saturating_sub(SPENT_TOKENS_KEPT);
    session.spent_token_hashes.drain(..overflow);
    session.generation += 1;
    session.last_used_at = now;
    session.version += 1;
    write_session(tx, tenant, &session)?;
    Ok(RefreshOutcome::Rotated {
        session: Box::new(session),
        refresh_token,
        email_verified: user.email_verified,
    })
}

/// Revokes one session. Returns `false` when it was already revoked.
pub async fn revoke_session(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    session_id: Uuid,
    reason: RevocationReason,
) -> DomainResult<bool> {
    let mut session = find_session(tx, tenant, session_id)
        .await?
        .ok_or(DomainError::SessionNotFound)?;
    if session.revoked.is_some() {
        return Ok(false);
    }
    session.revoked = Some(Revocation {
        at: context.now(),
        reason: reason.as_str().to_owned(),
    });
    session.version += 1;
    write_session(tx, tenant, &session)?;
    liveness::note_revocation(tx, context, session.user_id)?;
    record_events(
        tx,
        context,
        tenant,
        [(
            EventType::SessionRevoked,
            session.revoked_event_data(reason),
        )],
    )?;
    impersonation::record_end(tx, context, tenant, &session, reason).await?;
    Ok(true)
}

/// Revokes one session for `origin`; a revocation by an operator or server is audited (signing
/// out is the user's own business).
pub async fn revoke_audited(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    session_id: Uuid,
    reason: RevocationReason,
    origin: &audit::AuditOrigin,
) -> DomainResult<bool> {
    let revoked = revoke_session(tx, context, tenant, session_id, reason).await?;
    if revoked && reason != RevocationReason::SignOut {
        let event = origin.event(
            AuditAction::SessionRevoke,
            format!("session:{session_id}"),
            serde_json::json!({ "reason": reason.as_str() }),
        );
        record_change(tx, context, tenant, Some(event), []).await?;
    }
    Ok(revoked)
}

/// Ends the session `token` belongs to, if the token is its current or a recently spent one.
pub async fn sign_out(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    token: &RefreshToken,
) -> DomainResult<bool> {
    let session = find_session(tx, tenant, token.session_id)
        .await?
        .ok_or(DomainError::InvalidRefreshToken)?;
    let known = constant_time_eq(&session.refresh_token_hash, &token.hash)
        | session
            .spent_token_hashes
            .iter()
            .fold(false, |found, spent| {
                found | constant_time_eq(spent, &token.hash)
            });
    if !known {
        return Err(DomainError::InvalidRefreshToken);
    }
    revoke_session(
        tx,
        context,
        tenant,
        token.session_id,
        RevocationReason::SignOut,
    )
    .await
}

impl SessionRecord {
    /// `data` of `session.created`: never token hashes.
    pub fn event_data(&self) -> serde_json::Value {
        serde_json::json!({
            "session_id": self.session_id,
            "user_id": self.user_id,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
            "created_at": self.created_at.rfc3339(),
            "expires_at": self.expires_at.rfc3339(),
        })
    }

    /// `data` of `session.revoked`.
    pub fn revoked_event_data(&self, reason: RevocationReason) -> serde_json::Value {
        serde_json::json!({
            "session_id": self.session_id,
            "user_id": self.user_id,
            "reason": reason.as_str(),
        })
    }
}
