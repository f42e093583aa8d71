//! The per-tenant audit ledger: entries chained by SHA-256 so that editing, removing or
//! reordering any stored entry is detected by verification.

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::context::{Context, Timestamp};
use crate::domain::keyspace;
use crate::error::{DomainError, DomainResult};

/// Hash of the (absent) entry before the first one.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit entry records; `as_str` is its stable spelling in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `webhook_endpoint.update`.
    WebhookEndpointUpdate,
    /// `webhook_endpoint.rotate_secret`.
    WebhookEndpointRotateSecret,
    /// `webhook_endpoint.replay`.
    WebhookEndpointReplay,
    /// `webhook_endpoint.disable`.
    WebhookEndpointDisable,
    /// `webhook_endpoint.delete`.
    WebhookEndpointDelete,
    /// `webhook_endpoint.create`.
    WebhookEndpointCreate,
    /// `user.create`.
    UserCreate,
    /// `user.update`.
    UserUpdate,
    /// `user.suspend`.
    UserSuspend,
    /// `user.reactivate`.
    UserReactivate,
    /// `user.delete`.
    UserDelete,
    /// `user.revoke_sessions`.
    UserRevokeSessions,
    /// `tenant.create`.
    TenantCreate,
    /// `tenant.config`.
    TenantConfig,
    /// `key.rotate`.
    KeyRotate,
    /// `session.revoke`.
    SessionRevoke,
    /// `team.delete`.
    TeamDelete,
    /// `share.create`.
    ShareCreate,
    /// `share.use`.
    ShareUse,
    /// `share.use_refused`.
    ShareUseRefused,
    /// `share.revoke`.
    ShareRevoke,
    /// `share.proposal.decide`.
    ShareProposalDecide,
    /// `permission.grant`.
    PermissionGrant,
    /// `permission.revoke`.
    PermissionRevoke,
    /// `permission.define`.
    PermissionDefine,
    /// `permission.delete`.
    PermissionDelete,
    /// `email_template.set`.
    EmailTemplateSet,
    /// `email_template.reset`.
    EmailTemplateReset,
    /// `user.verify_email`.
    UserVerifyEmail,
    /// `user.reset_password`.
    UserResetPassword,
    /// `user.change_password`.
    UserChangePassword,
    /// `user.sign_in_code`: a user signed in (or up) with an emailed code or link.
    UserSignInCode,
    /// `user.ban`.
    UserBan,
    /// `user.factor_add`.
    UserFactorAdd,
    /// `user.factor_remove`.
    UserFactorRemove,
    /// `user.unlock`: an operator cleared a user's failed-try lockout.
    UserUnlock,
    /// `user.lockout`: unknown sources used up an account's password tries; only known
    /// devices (and other factors) sign in until they refill or an operator unlocks.
    UserLockout,
    /// `session.impersonation_start`: an operator or server began acting as a user.
    SessionImpersonationStart,
    /// `session.impersonation_end`: an impersonation session was signed out or revoked.
    SessionImpersonationEnd,
    /// `user.upgrade_anonymous`: an anonymous user became a full user in place.
    UserUpgradeAnonymous,
    /// `api_key.create`.
    ApiKeyCreate,
    /// `api_key.revoke`.
    ApiKeyRevoke,
    /// `oauth_provider.create`.
    OAuthProviderCreate,
    /// `oauth_provider.update`.
    OAuthProviderUpdate,
    /// `oauth_provider.delete`.
    OAuthProviderDelete,
    /// `user.oauth_link`: an upstream account was linked to a user.
    UserOAuthLink,
    /// `user.oauth_unlink`.
    UserOAuthUnlink,
    /// `oidc_client.create`.
    OidcClientCreate,
    /// `oidc_client.update`.
    OidcClientUpdate,
    /// `oidc_client.delete`.
    OidcClientDelete,
    /// `oidc_client.rotate_secret`.
    OidcClientRotateSecret,
}

impl AuditAction {
    /// Stable spelling, e.g. `session.revoke`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::WebhookEndpointUpdate => "webhook_endpoint.update",
            AuditAction::WebhookEndpointRotateSecret => "webhook_endpoint.rotate_secret",
            AuditAction::WebhookEndpointReplay => "webhook_endpoint.replay",
            AuditAction::WebhookEndpointDisable => "webhook_endpoint.disable",
            AuditAction::WebhookEndpointDelete => "webhook_endpoint.delete",
            AuditAction::WebhookEndpointCreate => "webhook_endpoint.create",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserUpdate => "user.update",
            AuditAction::UserSuspend => "user.suspend",
            AuditAction::UserReactivate => "user.reactivate",
            AuditAction::UserDelete => "user.delete",
            AuditAction::UserRevokeSessions => "user.revoke_sessions",
            AuditAction::TenantCreate => "tenant.create",
            AuditAction::TenantConfig => "tenant.config",
            AuditAction::KeyRotate => "key.rotate",
            AuditAction::SessionRevoke => "session.revoke",
            AuditAction::TeamDelete => "team.delete",
            AuditAction::ShareCreate => "share.create",
            AuditAction::ShareUse => "share.use",
            AuditAction::ShareUseRefused => "share.use_refused",
            AuditAction::ShareRevoke => "share.revoke",
            AuditAction::ShareProposalDecide => "share.proposal.decide",
            AuditAction::PermissionGrant => "permission.grant",
            AuditAction::PermissionRevoke => "permission.revoke",
            AuditAction::PermissionDefine => "permission.define",
            AuditAction::PermissionDelete => "permission.delete",
            AuditAction::EmailTemplateSet => "email_template.set",
            AuditAction::EmailTemplateReset => "email_template.reset",
            AuditAction::UserVerifyEmail => "user.verify_email",
            AuditAction::UserResetPassword => "user.reset_password",
            AuditAction::UserChangePassword => "user.change_password",
            AuditAction::UserSignInCode => "user.sign_in_code",
            AuditAction::UserBan => "user.ban",
            AuditAction::UserFactorAdd => "user.factor_add",
            AuditAction::UserFactorRemove => "user.factor_remove",
            AuditAction::UserUnlock => "user.unlock",
            AuditAction::UserLockout => "user.lockout",
            AuditAction::SessionImpersonationStart => "session.impersonation_start",
            AuditAction::SessionImpersonationEnd => "session.impersonation_end",
            AuditAction::UserUpgradeAnonymous => "user.upgrade_anonymous",
            AuditAction::ApiKeyCreate => "api_key.create",
            AuditAction::ApiKeyRevoke => "api_key.revoke",
            AuditAction::OAuthProviderCreate => "oauth_provider.create",
            AuditAction::OAuthProviderUpdate => "oauth_provider.update",
            AuditAction::OAuthProviderDelete => "oauth_provider.delete",
            AuditAction::UserOAuthLink => "user.oauth_link",
            AuditAction::UserOAuthUnlink => "user.oauth_unlink",
            AuditAction::OidcClientCreate => "oidc_client.create",
            AuditAction::OidcClientUpdate => "oidc_client.update",
            AuditAction::OidcClientDelete => "oidc_client.delete",
            AuditAction::OidcClientRotateSecret => "oidc_client.rotate_secret",
        }
    }
}

/// What happened, by whom, from where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Who acted: `operator`, `server`, `user:<id>`, or `impersonator:<id>`.
    pub actor: String,
    /// What was done: `tenant.create`, `session.revoke`, `permission.grant`, ...
    pub action: String,
    /// What it was done to: `user:<id>`, `session:<id>`, `share:<id>`, ...
    pub target: String,
    /// Source address, when known.
    pub source_ip: String,
    /// Action-specific details.
    pub details: serde_json::Value,
}

/// A stored ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the tenant's ledger, from 1.
    pub seq: u64,
    /// When it was appended.
    pub at: Timestamp,
    /// The event.
    pub event: AuditEvent,
    /// Hash of the previous entry (`GENESIS_HASH` for the first).
    pub prev_hash: String,
    /// SHA-256 over `seq`, `at`, the event and `prev_hash`.
    pub hash: String,
}

/// The ledger head: last sequence number and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Last sequence number.
    pub seq: u64,
    /// Hash of the last entry.
    pub hash: String,
}

/// The hash an entry must carry.
pub fn entry_hash(
    seq: u64,
    at: Timestamp,
    event: &AuditEvent,
    prev_hash: &str,
) -> DomainResult<String> {
    let canonical = serde_json::to_vec(&(seq, at.0, event, prev_hash))
        .map_err(|error| DomainError::Internal(format!("audit encoding: {error}")))?;
    Ok(hex::encode(Sha256::digest(&canonical)))
}

/// Reads the head of a tenant's ledger.
pub async fn read_head(tx: &Transaction, tenant: &str) -> DomainResult<AuditHead> {
    match tx.get(&keyspace::audit_head(tenant)).await? {
        Some(bytes) => Ok(codec::decode(&bytes)?),
        None => Ok(AuditHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }),
    }
}

/// Appends an entry in `tx`. Appends of one tenant serialise on the head key.
pub async fn append(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    event: AuditEvent,
) -> DomainResult<AuditEntry> {
    let head = read_head(tx, tenant).await?;
    let seq = head.seq + 1;
    let at = context.now();
    let hash = entry_hash(seq, at, &event, &head.hash)?;
    let entry = AuditEntry {
        seq,
        at,
        event,
        prev_hash: head.hash,
        hash: hash.clone(),
    };
    tx.set(&keyspace::audit_entry(tenant, seq), &codec::encode(&entry)?)?;
    tx.set(
        &keyspace::audit_head(tenant),
        &codec::encode(&AuditHead { seq, hash })?,
    )?;
    Ok(entry)
}

/// Reads up to `limit` entries after `after_seq`, in order.
pub async fn read_entries(
    tx: &Transaction,
    tenant: &str,
    after_seq: u64,
    limit: usize,
) -> DomainResult<Vec<AuditEntry>> {
    let (_, end) = keyspace::audit_subspace(tenant).range();
    let mut begin = keyspace::audit_entry(tenant, after_seq);
    begin.push(0x00);
    tx.get_range(
        &begin,
        &end,
        RangeOptions {
            limit: Some(limit),
            snapshot: true,
            ..RangeOptions::default()
        },
    )
    .await?
    .into_iter()
    .map(|(_, value)| codec::decode(&value).map_err(DomainError::from))
    .collect()
}

/// Who acts and from where, stamped on the audit entries of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOrigin {
    /// `operator`, `server`, `user:<id>`, `client` or `system`.
    pub actor: String,
    /// Source address of the request, when known.
    pub source_ip: String,
}

tokio::task_local! {
    /// Source address of the request being served, set by the transport.
    static SOURCE_IP: String;
}

/// Runs `future` with `source_ip` as the request's source address for audit entries.
pub async fn with_source_ip<F: std::future::Future>(source_ip: String, future: F) -> F::Output {
    SOURCE_IP.scope(source_ip, future).await
}

/// The source address of the request being served, empty outside one.
pub fn current_source_ip() -> String {
    SOURCE_IP.try_with(Clone::clone).unwrap_or_default()
}

impl AuditOrigin {
    /// The origin of a request by `caller`.
    pub fn of(caller: &crate::access::Caller) -> AuditOrigin {
        use crate::access::Caller;
        let actor = match caller {
            Caller::Operator { .. } => "operator".to_owned(),
            Caller::Server { .. } => "server".to_owned(),
            Caller::Client {
                user: Some(claims), ..
            } => format!("user:{}", claims.sub),
            Caller::Client { user: None, .. } => "client".to_owned(),
        };
        AuditOrigin {
            actor,
            source_ip: current_source_ip(),
        }
    }

    /// Gatehouse itself (reuse detection, a 410 from a webhook target).
    pub fn system() -> AuditOrigin {
        AuditOrigin {
            actor: "system".to_owned(),
            source_ip: String::new(),
        }
    }

    /// An event done by this origin.
    pub fn event(
        &self,
        action: AuditAction,
        target: impl Into<String>,
        details: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            actor: if self.actor.is_empty() {
                "system".to_owned()
            } else {
                self.actor.clone()
            },
            action: action.as_str().to_owned(),
            target: target.into(),
            source_ip: self.source_ip.clone(),
            details,
        }
    }
}

/// How a ledger fails verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainBreak {
    /// An entry's content does not match its hash, or cannot be read.
    Tampered,
    /// An entry is absent.
    Missing,
    /// An intact entry sits at the wrong position.
    Reordered,
}

impl ChainBreak {
    /// Lower-case name for the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainBreak::Tampered => "tampered",
            ChainBreak::Missing => "missing",
            ChainBreak::Reordered => "reordered",
        }
    }
}

/// The first problem verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditProblem {
    /// The first bad sequence number.
    pub seq: u64,
    /// What kind of break.
    pub kind: ChainBreak,
    /// Details for the operator.
    pub reason: String,
}

/// The result of walking a tenant's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    /// Entries that checked out before the first problem (or all of them).
    pub entries_checked: u64,
    /// The head's sequence number when verification started.
    pub head_seq: u64,
    /// The first problem, `None` when the chain is intact.
    pub problem: Option<AuditProblem>,
}

impl AuditVerification {
    /// Whether the chain is intact.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

fn broken(seq: u64, kind: ChainBreak, reason: String) -> Option<AuditProblem> {
    Some(AuditProblem { seq, kind, reason })
}

/// Walks a tenant's ledger up to the head read at the start, recomputing every hash and
/// checking sequence numbers and links, page by page (one transaction per page).
pub async fn verify(
    db: &gatehouse_storage::Database,
    tenant: &str,
    page_size: usize,
) -> DomainResult<AuditVerification> {
    let head = db
        .run(|tx| async move { read_head(&tx, tenant).await })
        .await?;
    let subspace = keyspace::audit_subspace(tenant);
    let mut report = AuditVerification {
        entries_checked: 0,
        head_seq: head.seq,
        problem: None,
    };
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut expected = 1u64;
    'pages: while expected <= head.seq {
        let after = expected - 1;
        let page = db
            .run(|tx| async move {
                let (_, end) = keyspace::audit_subspace(tenant).range();
                let mut begin = keyspace::audit_entry(tenant, after);
                begin.push(0x00);
                let options = RangeOptions {
                    limit: Some(page_size.max(1)),
                    snapshot: true,
                    ..RangeOptions::default()
                };
                Ok::<_, DomainError>(tx.get_range(&begin, &end, options).await?)
            })
            .await?;
        if page.is_empty() {
            break;
        }
        for (key, value) in page {
            let Ok((key_seq,)) = subspace.unpack::<(u64,)>(&key) else {
                report.problem = broken(expected, ChainBreak::Tampered, "unreadable key".into());
                break 'pages;
            };
            if key_seq > head.seq {
                break 'pages;
            }
            if key_seq != expected {
                let reason = format!("entry {expected} is absent (the next one is {key_seq})");
                report.problem = broken(expected, ChainBreak::Missing, reason);
                break 'pages;
            }
            let entry: AuditEntry = match codec::decode(&value) {
                Ok(entry) => entry,
                Err(error) => {
                    let reason = format!("entry cannot be decoded: {error}");
                    report.problem = broken(key_seq, ChainBreak::Tampered, reason);
                    break 'pages;
                }
            };
            if entry_hash(entry.seq, entry.at, &entry.event, &entry.prev_hash)? != entry.hash {
                let reason = "content does not match the entry's hash".to_owned();
                report.problem = broken(key_seq, ChainBreak::Tampered, reason);
                break 'pages;
            }
            if entry.seq != key_seq {
                let reason = format!("entry {} is stored at position {key_seq}", entry.seq);
                report.problem = broken(key_seq, ChainBreak::Reordered, reason);
                break 'pages;
            }
            if entry.prev_hash != prev_hash {
                let reason = "does not link to the previous entry's hash".to_owned();
                report.problem = broken(key_seq, ChainBreak::Reordered, reason);
                break 'pages;
            }
            prev_hash = entry.hash;
            expected += 1;
            report.entries_checked += 1;
        }
    }
    if report.problem.is_none() && report.entries_checked < head.seq {
        let reason = format!(
            "the head is at {} but the entries end at {}",
            head.seq, report.entries_checked
        );
        report.problem = broken(expected, ChainBreak::Missing, reason);
    }
    if report.problem.is_none() && head.seq > 0 && prev_hash != head.hash {
        let reason = "the last entry's hash differs from the head's".to_owned();
        report.problem = broken(head.seq, ChainBreak::Tampered, reason);
    }
    Ok(report)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
