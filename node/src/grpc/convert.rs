//! Domain records to wire messages. Secrets (password hashes, token hashes, sealed keys)
//! never leave here.

use gatehouse_actors::Caller;
use gatehouse_actors::context::Timestamp;
use gatehouse_actors::domain::crypto::base64url;
use gatehouse_actors::domain::factors::passkeys::PasskeyRecord;
use gatehouse_actors::sessions::SessionRecord;
use gatehouse_actors::signing::SigningKeyRecord;
use gatehouse_actors::tenants::{ApiKeyKind, TenantEmailSettings, TenantRecord};
use gatehouse_actors::users::{UserRecord, UserState};
use gatehouse_protocol::v1;

fn tenant_email(email: &TenantEmailSettings) -> v1::TenantEmailConfig {
    v1::TenantEmailConfig {
        from_address: email.from_address.clone(),
        from_name: email.from_name.clone(),
        reply_to: email.reply_to.clone(),
        verification_required: email.verification_required,
        code_ttl_seconds: email.code_ttl_seconds,
        code_max_attempts: email.code_max_attempts,
        sends_per_address: email.sends_per_address,
        sends_per_source: email.sends_per_source,
        send_window_seconds: email.send_window_seconds,
        sign_in_code_enabled: email.sign_in_code_enabled,
        sign_up_with_code_enabled: email.sign_up_with_code_enabled,
        new_sign_in_notice: email.new_sign_in_notice,
        sign_up_enumeration_protection: email.sign_up_enumeration_protection,
    }
}

/// A domain timestamp as a protobuf one.
pub fn timestamp(at: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.0.div_euclid(1000),
        nanos: i32::try_from(at.0.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// A user as `caller` may see it: server metadata only for trusted callers.
pub fn user(record: &UserRecord, caller: &Caller) -> v1::User {
    v1::User {
        user_id: record.user_id.to_string(),
        email: record.email.clone(),
        display_name: record.display_name.clone(),
        state: match record.state {
            UserState::Active => v1::UserState::Active,
            UserState::Suspended => v1::UserState::Suspended,
            UserState::Banned => v1::UserState::Banned,
        } as i32,
        email_verified: record.email_verified,
        has_password: record.password_hash.is_some(),
        created_at: Some(timestamp(record.created_at)),
        updated_at: Some(timestamp(record.updated_at)),
        client_metadata_json: record.client_metadata.clone(),
        client_read_only_metadata_json: record.client_read_only_metadata.clone(),
        server_metadata_json: if caller.is_trusted() {
            record.server_metadata.clone()
        } else {
            String::new()
        },
        secondary_emails: record
            .secondary_emails
            .iter()
            .map(|secondary| v1::UserEmail {
                email: secondary.email.clone(),
                verified: secondary.verified,
                added_at: Some(timestamp(secondary.added_at)),
            })
            .collect(),
        ban_reason: if caller.is_trusted() {
            record.ban_reason.clone().unwrap_or_default()
        } else {
            String::new()
        },
        is_anonymous: record.is_anonymous,
    }
}

/// A passkey (never its key material).
pub fn passkey(record: &PasskeyRecord) -> v1::Passkey {
    v1::Passkey {
        passkey_id: record.passkey_id.to_string(),
        name: record.name.clone(),
        credential_id: base64url(&record.credential_id),
        created_at: Some(timestamp(record.created_at)),
        last_used_at: record.last_used_at.map(timestamp),
        counter: record.counter,
        backup_eligible: record.backup_eligible,
        backup_state: record.backup_state,
    }
}

fn tenant_mfa(record: &TenantRecord) -> v1::TenantMfaConfig {
    let mfa = &record.settings.mfa;
    v1::TenantMfaConfig {
        required: mfa.required,
        grace_period_seconds: mfa.grace_period_seconds,
        step_up_window_seconds: mfa.step_up_window_seconds,
    }
}

fn tenant_passkeys(record: &TenantRecord) -> v1::TenantPasskeyConfig {
    let settings = &record.settings;
    let passkeys = &settings.passkeys;
    let rp = passkeys.relying_party(&settings.trusted_domains, &record.display_name);
    v1::TenantPasskeyConfig {
        enabled: passkeys.enabled,
        rp_id: passkeys.rp_id.clone(),
        rp_name: passkeys.rp_name.clone(),
        origins: passkeys.origins.clone(),
        effective_rp_id: rp.rp_id,
        effective_origins: rp
            .origins
            .iter()
            .map(|origin| origin.origin().ascii_serialization())
            .collect(),
    }
}

/// A session.
pub fn session(record: &SessionRecord) -> v1::Session {
    v1::Session {
        session_id: record.session_id.to_string(),
        user_id: record.user_id.to_string(),
        created_at: Some(timestamp(record.created_at)),
        last_used_at: Some(timestamp(record.last_used_at)),
        expires_at: Some(timestamp(record.expires_at)),
        user_agent: record.user_agent.clone(),
        ip_address: record.ip_address.clone(),
        revoked: record.revoked.is_some(),
        revoked_reason: record
            .revoked
            .as_ref()
            .map(|revocation| revocation.reason.clone())
            .unwrap_or_default(),
        impersonator: record
            .impersonation
            .as_ref()
            .map(|impersonation| impersonation.impersonator.clone())
            .unwrap_or_default(),
        impersonation_reason: record
            .impersonation
            .as_ref()
            .map(|impersonation| impersonation.reason.clone())
            .unwrap_or_default(),
        anonymous: record.anonymous,
    }
}

/// A signing key's public description.
pub fn signing_key(record: &SigningKeyRecord) -> v1::SigningKey {
    v1::SigningKey {
        kid: record.kid.clone(),
        algorithm: record.algorithm.clone(),
        created_at: Some(timestamp(record.created_at)),
        active: record.retired_at.is_none(),
    }
}

/// A tenant.
pub fn tenant(record: &TenantRecord) -> v1::Tenant {
    v1::Tenant {
        tenant_id: record.tenant_id.clone(),
        display_name: record.display_name.clone(),
        created_at: Some(timestamp(record.created_at)),
        signing_keys: record.signing_keys.iter().map(signing_key).collect(),
        api_keys: record
            .api_keys
            .iter()
            .map(|key| v1::ApiKeyInfo {
                key_id: key.key_id.clone(),
                kind: match key.kind {
                    ApiKeyKind::Client => "client",
                    ApiKeyKind::Server => "server",
                }
                .to_owned(),
                display: key.display.clone(),
                created_at: Some(timestamp(key.created_at)),
            })
            .collect(),
        config: Some(v1::TenantConfig {
            access_token_ttl_seconds: record.settings.access_token_ttl_seconds,
            session_absolute_ttl_seconds: record.settings.session_absolute_ttl_seconds,
            session_idle_ttl_seconds: record.settings.session_idle_ttl_seconds,
            password_sign_up_enabled: record.settings.password_sign_up_enabled,
            client_team_creation_enabled: record.settings.client_team_creation_enabled,
            permission_claims_in_token: record.settings.permission_claims_in_token,
            team_creator_default_permissions: record
                .settings
                .team_creator_default_permissions
                .clone(),
            team_member_default_permissions: record
                .settings
                .team_member_default_permissions
                .clone(),
            trusted_domains: record.settings.trusted_domains.clone(),
            email: Some(tenant_email(&record.settings.email)),
            mfa: Some(tenant_mfa(record)),
            passkeys: Some(tenant_passkeys(record)),
            anonymous_enabled: record.settings.anonymous.enabled,
            anonymous_idle_ttl_seconds: record.settings.anonymous.idle_ttl_seconds,
            refresh_grace_seconds: record.settings.refresh_grace_seconds,
        }),
    }
}
