//! Per-tenant settings and their validated changes.

use gatehouse_storage::Transaction;
use serde::{Deserialize, Serialize};

use super::anonymous::{AnonymousSettingsChanges, TenantAnonymousSettings};
use super::auth_settings::{
    MfaSettingsChanges, PasskeySettingsChanges, TenantMfaSettings, TenantPasskeySettings,
};
use super::{TenantRecord, read_tenant, redirects, validate_display_name, write_tenant};
use crate::domain::permissions::{self, PermissionGraph};
use crate::domain::users::parse_email;
use crate::error::{DomainError, DomainResult};

/// Per-tenant settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    /// Access-token lifetime.
    pub access_token_ttl_seconds: u32,
    /// Absolute session lifetime.
    pub session_absolute_ttl_seconds: u32,
    /// Idle session lifetime.
    pub session_idle_ttl_seconds: u32,
    /// Seconds after a rotation in which the refresh token it spent answers with the same
    /// new token instead of revoking the session (0, the default, is off).
    pub refresh_grace_seconds: u32,
    /// Whether client keys may sign users up with a password.
    pub password_sign_up_enabled: bool,
    /// Whether signed-in users may create teams from a client.
    pub client_team_creation_enabled: bool,
    /// Team permissions a team's creator receives.
    pub team_creator_default_permissions: Vec<String>,
    /// Team permissions a member receives on joining.
    pub team_member_default_permissions: Vec<String>,
    /// Whether access tokens carry the user's tenant-wide permissions in a `perms` claim.
    pub permission_claims_in_token: bool,
    /// Where links in emails may send people back to: exact hosts (`app.example.com`,
    /// `localhost:3000`) or wildcard subdomains (`*.example.com`).
    pub trusted_domains: Vec<String>,
    /// Sender, lifetimes and limits of the tenant's email.
    pub email: TenantEmailSettings,
    /// Who must use a second factor; the step-up window.
    pub mfa: TenantMfaSettings,
    /// The passkey relying party.
    pub passkeys: TenantPasskeySettings,
    /// Anonymous users: the toggle and their idle lifetime.
    pub anonymous: TenantAnonymousSettings,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            access_token_ttl_seconds: 600,
            session_absolute_ttl_seconds: 30 * 24 * 3600,
            session_idle_ttl_seconds: 7 * 24 * 3600,
            refresh_grace_seconds: 0,
            password_sign_up_enabled: true,
            client_team_creation_enabled: true,
            team_creator_default_permissions: vec![permissions::TEAM_ADMIN.to_owned()],
            team_member_default_permissions: vec![permissions::TEAM_MEMBER.to_owned()],
            permission_claims_in_token: false,
            trusted_domains: Vec::new(),
            email: TenantEmailSettings::default(),
            mfa: TenantMfaSettings::default(),
            passkeys: TenantPasskeySettings::default(),
            anonymous: TenantAnonymousSettings::default(),
        }
    }
}

/// Requested changes to tenant settings; `None` leaves a setting alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SettingsChanges {
    /// Access-token lifetime (60..=86400 s).
    pub access_token_ttl_seconds: Option<u32>,
    /// Absolute session lifetime (300 s..=1 year).
    pub session_absolute_ttl_seconds: Option<u32>,
    /// Idle session lifetime (300 s..=1 year).
    pub session_idle_ttl_seconds: Option<u32>,
    /// Refresh grace window (0..=300 s; 0 is off).
    #[serde(default)]
    pub refresh_grace_seconds: Option<u32>,
    /// Client password sign-up.
    pub password_sign_up_enabled: Option<bool>,
    /// Client team creation.
    pub client_team_creation_enabled: Option<bool>,
    /// Permissions in tokens.
    pub permission_claims_in_token: Option<bool>,
    /// Team creator defaults.
    pub team_creator_default_permissions: Option<Vec<String>>,
    /// Team member defaults.
    pub team_member_default_permissions: Option<Vec<String>>,
    /// Trusted redirect domains (replaces the list).
    pub trusted_domains: Option<Vec<String>>,
    /// Email settings.
    pub email: EmailSettingsChanges,
    /// MFA policy and step-up window.
    #[serde(default)]
    pub mfa: MfaSettingsChanges,
    /// Passkey relying party.
    #[serde(default)]
    pub passkeys: PasskeySettingsChanges,
    /// Anonymous users.
    #[serde(default)]
    pub anonymous: AnonymousSettingsChanges,
}

pub(super) fn bounded(
    field: &'static str,
    value: Option<u32>,
    range: std::ops::RangeInclusive<u32>,
) -> DomainResult<()> {
    match value {
        Some(value) if !range.contains(&value) => Err(DomainError::invalid(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        )),
        _ => Ok(()),
    }
}

/// Applies `changes` to the tenant's settings, validated against its permission graph.
pub async fn update_settings(
    tx: &Transaction,
    tenant_id: &str,
    graph: &PermissionGraph,
    changes: &SettingsChanges,
    now: i64,
) -> DomainResult<TenantRecord> {
    const YEAR: u32 = 365 * 24 * 3600;
    bounded(
        "access_token_ttl_seconds",
        changes.access_token_ttl_seconds,
        60..=86_400,
    )?;
    bounded(
        "session_absolute_ttl_seconds",
        changes.session_absolute_ttl_seconds,
        300..=YEAR,
    )?;
    bounded(
        "session_idle_ttl_seconds",
        changes.session_idle_ttl_seconds,
        300..=YEAR,
    )?;
    bounded(
        "refresh_grace_seconds",
        changes.refresh_grace_seconds,
        0..=crate::domain::sessions::grace::MAX_GRACE_SECONDS,
    )?;
    for (field, list) in [
        (
            "team_creator_default_permissions",
            &changes.team_creator_default_permissions,
        ),
        (
            "team_member_default_permissions",
            &changes.team_member_default_permissions,
        ),
    ] {
        if let Some(unknown) = list.iter().flatten().find(|permission| {
            graph
                .get(permission)
                .is_none_or(|definition| definition.scope != permissions::PermissionScope::Team)
        }) {
            return Err(DomainError::invalid(
                field,
                format!("{unknown} is not a team permission"),
            ));
        }
    }
    let trusted_domains = changes
        .trusted_domains
        .as_deref()
        .map(redirects::parse_trusted_domains)
        .transpose()?;
    let mut record = read_tenant(tx, tenant_id).await?;
    let settings = &mut record.settings;
    if let Some(domains) = trusted_domains {
        settings.trusted_domains = domains;
    }
    changes.email.apply(&mut settings.email)?;
    changes.mfa.apply(&mut settings.mfa, now)?;
    changes.passkeys.apply(&mut settings.passkeys)?;
    changes.anonymous.apply(&mut settings.anonymous)?;
    if let Some(value) = changes.access_token_ttl_seconds {
        settings.access_token_ttl_seconds = value;
    }
    if let Some(value) = changes.session_absolute_ttl_seconds {
        settings.session_absolute_ttl_seconds = value;
    }
    if let Some(value) = changes.session_idle_ttl_seconds {
        settings.session_idle_ttl_seconds = value;
    }
    if let Some(value) = changes.refresh_grace_seconds {
        settings.refresh_grace_seconds = value;
    }
    if let Some(value) = changes.password_sign_up_enabled {
        settings.password_sign_up_enabled = value;
    }
    if let Some(value) = changes.client_team_creation_enabled {
        settings.client_team_creation_enabled = value;
    }
    if let Some(value) = changes.permission_claims_in_token {
        settings.permission_claims_in_token = value;
    }
    if let Some(value) = &changes.team_creator_default_permissions {
        settings.team_creator_default_permissions = value.clone();
    }
    if let Some(value) = &changes.team_member_default_permissions {
        settings.team_member_default_permissions = value.clone();
    }
    record.version += 1;
    write_tenant(tx, &record)?;
    Ok(record)
}

/// The tenant's email: who it comes from, how long its codes live, how often it may be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantEmailSettings {
    /// Sender address.
    pub from_address: String,
    /// Sender name; empty means the tenant's display name.
    pub from_name: String,
    /// `Reply-To`; empty for none.
    pub reply_to: String,
    /// Whether users with an unverified email are restricted until they verify it.
    pub verification_required: bool,
    /// Lifetime of codes and links (at most ten minutes).
    pub code_ttl_seconds: u32,
    /// Wrong codes accepted before a code is spent.
    pub code_max_attempts: u32,
    /// Messages with codes or links one address may be sent per window.
    pub sends_per_address: u32,
    /// Messages with codes or links one source address may cause per window.
    pub sends_per_source: u32,
    /// Length of the send-limit window.
    pub send_window_seconds: u32,
    /// Whether users may sign in with an emailed code or magic link.
    pub sign_in_code_enabled: bool,
    /// Whether an emailed code may sign up an unknown address (client keys).
    pub sign_up_with_code_enabled: bool,
    /// Whether a sign-in from a source address and user agent none of the user's sessions
    /// had is notified by email.
    pub new_sign_in_notice: bool,
    /// Whether password sign-up answers the same for a taken address as for a new one: no
    /// session either way, a verification email to the new user, a `sign_up_attempt` notice
    /// to the owner of a taken address.
    pub sign_up_enumeration_protection: bool,
}

/// The sender of a tenant's email when none is set.
pub const DEFAULT_FROM_ADDRESS: &str = "no-reply@localhost";
/// The longest a code or link may live.
pub const MAX_CODE_TTL_SECONDS: u32 = 600;

impl Default for TenantEmailSettings {
    fn default() -> Self {
        TenantEmailSettings {
            from_address: DEFAULT_FROM_ADDRESS.to_owned(),
            from_name: String::new(),
            reply_to: String::new(),
            verification_required: false,
            code_ttl_seconds: MAX_CODE_TTL_SECONDS,
            code_max_attempts: 5,
            sends_per_address: 5,
            sends_per_source: 50,
            send_window_seconds: 900,
            sign_in_code_enabled: true,
            sign_up_with_code_enabled: true,
            new_sign_in_notice: false,
            sign_up_enumeration_protection: false,
        }
    }
}

/// Requested changes to a tenant's email settings; `None` leaves a setting alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmailSettingsChanges {
    /// Sender address.
    pub from_address: Option<String>,
    /// Sender name.
    pub from_name: Option<String>,
    /// `Reply-To` (empty clears it).
    pub reply_to: Option<String>,
    /// Restrict unverified users.
    pub verification_required: Option<bool>,
    /// Code lifetime (5..=600 s).
    pub code_ttl_seconds: Option<u32>,
    /// Wrong codes per code (1..=20).
    pub code_max_attempts: Option<u32>,
    /// Sends per address per window (1..=1000).
    pub sends_per_address: Option<u32>,
    /// Sends per source per window (1..=100000).
    pub sends_per_source: Option<u32>,
    /// Window length (60..=86400 s).
    pub send_window_seconds: Option<u32>,
    /// Code sign-in.
    pub sign_in_code_enabled: Option<bool>,
    /// Code sign-up.
    pub sign_up_with_code_enabled: Option<bool>,
    /// New sign-in notices.
    pub new_sign_in_notice: Option<bool>,
    /// Sign-up enumeration protection.
    #[serde(default)]
    pub sign_up_enumeration_protection: Option<bool>,
}

impl EmailSettingsChanges {
    /// Validates the changes and applies them to `settings`.
    pub fn apply(&self, settings: &mut TenantEmailSettings) -> DomainResult<()> {
        bounded(
            "email.code_ttl_seconds",
            self.code_ttl_seconds,
            5..=MAX_CODE_TTL_SECONDS,
        )?;
        bounded("email.code_max_attempts", self.code_max_attempts, 1..=20)?;
        bounded("email.sends_per_address", self.sends_per_address, 1..=1000)?;
        bounded("email.sends_per_source", self.sends_per_source, 1..=100_000)?;
        bounded(
            "email.send_window_seconds",
            self.send_window_seconds,
            60..=86_400,
        )?;
        if let Some(address) = &self.from_address {
            settings.from_address = parse_email(address)
                .map_err(|_| {
                    DomainError::invalid("email.from_address", "is not a valid email address")
                })?
                .display;
        }
        if let Some(name) = &self.from_name {
            validate_display_name("email.from_name", name, false)?;
            settings.from_name = name.trim().to_owned();
        }
        if let Some(address) = &self.reply_to {
            settings.reply_to = if address.trim().is_empty() {
                String::new()
            } else {
                parse_email(address)
                    .map_err(|_| {
                        DomainError::invalid("email.reply_to", "is not a valid email address")
                    })?
                    .display
            };
        }
        let assign = |target: &mut u32, value: Option<u32>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        assign(&mut settings.code_ttl_seconds, self.code_ttl_seconds);
        assign(&mut settings.code_max_attempts, self.code_max_attempts);
        assign(&mut settings.sends_per_address, self.sends_per_address);
        assign(&mut settings.sends_per_source, self.sends_per_source);
        assign(&mut settings.send_window_seconds, self.send_window_seconds);
        for (target, value) in [
            (
                &mut settings.verification_required,
                self.verification_required,
            ),
            (
                &mut settings.sign_in_code_enabled,
                self.sign_in_code_enabled,
            ),
            (
                &mut settings.sign_up_with_code_enabled,
                self.sign_up_with_code_enabled,
            ),
            (&mut settings.new_sign_in_notice, self.new_sign_in_notice),
            (
                &mut settings.sign_up_enumeration_protection,
                self.sign_up_enumeration_protection,
            ),
        ] {
            if let Some(value) = value {
                *target = value;
            }
        }
        Ok(())
    }
}
